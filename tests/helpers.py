"""Test helpers importable from any test module (``tests/`` is on sys.path via conftest).

aioresponses 0.7.9 builds `ClientResponse` without the `stream_writer` argument that aiohttp 3.14
requires (aioresponses #289), so every mocked answer here uses a response class that supplies a
stub writer. This is the only place that knows about it; aiohttp is not pinned to an old release
for the tests' sake.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aioresponses import aioresponses

API_URL = "https://api.test.invalid"
API_KEY = "sk-test-secret-key-123"


class _StubStreamWriter:
    output_size = 0


class CompatClientResponse(aiohttp.ClientResponse):
    """A ClientResponse that aioresponses 0.7.9 can build under aiohttp 3.14."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _StubStreamWriter())
        super().__init__(*args, **kwargs)


class CompatAioresponses(aioresponses):
    """aioresponses whose mocked answers use `CompatClientResponse` by default."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", CompatClientResponse)
        super().add(*args, **kwargs)


def public_async_methods() -> dict[str, Any]:
    """The `AsyncJobsClient` methods that have a blocking twin on `JobsClient`."""
    import inspect

    from unstructured_jobs import AsyncJobsClient

    return {
        name: fn
        for name, fn in inspect.getmembers(AsyncJobsClient, inspect.isfunction)
        if not name.startswith("_")
        and name != "aclose"
        and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn))
    }


def raw_methods() -> list[str]:
    """The methods that send one request, and so have a `with_raw_response` twin."""
    from unstructured_jobs._client import AsyncRawResponses

    return [name for name in vars(AsyncRawResponses) if not name.startswith("_")]
