"""`RawResponse`: the HTTP answer behind a call, for ``client.with_raw_response.<method>(...)``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_UNPARSED: Any = object()


class RawResponse(Generic[T]):
    """The answer to one call: its status, headers and timing, and `parse` for the record.

    Attributes:
        method, url: the request (the URL with its query; never the key).
        status: the HTTP status of the answer that was used (always a success status: error
            statuses raise as usual).
        headers: the answer's headers (case-insensitive; repeated headers kept).
        request_id: the server's request id (``x-request-id`` and kin), if it sent one.
        elapsed: from the start of the attempt that succeeded to its headers.
        retries_taken: how many attempts failed and were retried before this one.
        content: the body as received (empty for `download_job_output_to`, which streamed it
            to disk).

    `parse()` gives what the plain method returns; it validates then, so an answer that does
    not match the contract raises `ResponseValidationError` from `parse()`, while status and
    headers stay readable.
    """

    def __init__(
        self,
        *,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        request_id: str | None,
        elapsed: timedelta,
        retries_taken: int,
        content: bytes,
        parse: Callable[[], T],
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers
        self.request_id = request_id
        self.elapsed = elapsed
        self.retries_taken = retries_taken
        self.content = content
        self._parse = parse
        self._parsed: T = _UNPARSED

    def parse(self) -> T:
        """The record the plain method returns (parsed once, then cached)."""
        if self._parsed is _UNPARSED:
            self._parsed = self._parse()
        return self._parsed

    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body decoded as JSON, without validation against the contract."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<RawResponse [{self.status}] {self.method} {self.url}>"
