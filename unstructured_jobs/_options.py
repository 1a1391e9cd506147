"""Configuration value objects shared by the async client, the sync facade and the batch engine."""

from __future__ import annotations

import attrs

from ._constants import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_WRITE_TIMEOUT,
)
from ._exceptions import InvalidInputError


@attrs.frozen(repr=False)
class Timeout:
    """Timeouts in seconds; None disables one. By default there is no total timeout.

    - `connect`: establishing the TCP/TLS connection (not time queued for a free connection).
    - `read`: the longest silence while waiting for or reading an answer.
    - `write`: the longest an upload may make no progress (a server that stopped reading).
    - `total`: the whole call, retries and their waits included (default None: a total would
      cut long uploads short; set it per call, e.g. for a web request that must answer in
      time, or against an answer drip-fed one byte at a time). Past it the call raises
      `APITimeoutError` with ``phase="total"``, or `JobMayExistError` for a job-creating
      request that may already have reached the server.

    ``Timeout(30)`` sets connect, read and write; ``Timeout(connect=5, read=300)`` keeps
    `write`'s default.

    >>> Timeout(5)
    Timeout(connect=5.0, read=5.0, write=5.0, total=None)
    >>> Timeout(total=20)
    Timeout(connect=10.0, read=120.0, write=120.0, total=20.0)
    """

    connect: float | None = attrs.field(default=DEFAULT_CONNECT_TIMEOUT)
    read: float | None = DEFAULT_READ_TIMEOUT
    write: float | None = DEFAULT_WRITE_TIMEOUT
    total: float | None = None

    def __init__(
        self,
        all: float | None = None,
        *,
        connect: float | None = DEFAULT_CONNECT_TIMEOUT,
        read: float | None = DEFAULT_READ_TIMEOUT,
        write: float | None = DEFAULT_WRITE_TIMEOUT,
        total: float | None = None,
    ) -> None:
        if all is not None:
            connect = read = write = all
        for value in (connect, read, write, total):
            if value is not None and not value > 0:
                raise InvalidInputError("timeouts must be positive seconds or None")
        self.__attrs_init__(  # type: ignore[attr-defined]
            None if connect is None else float(connect),
            None if read is None else float(read),
            None if write is None else float(write),
            None if total is None else float(total),
        )

    def __repr__(self) -> str:
        # Safe on a half-built instance too (a refused value): error reporters repr locals.
        shown = (f"{a.name}={getattr(self, a.name, None)!r}" for a in attrs.fields(Timeout))
        return f"Timeout({', '.join(shown)})"

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout | None:
        """Accept a `Timeout`, a number (all three), or None (use the client's)."""
        if value is None or isinstance(value, Timeout):
            return value
        return cls(float(value))


@attrs.frozen
class RetryConfig:
    """How many times to retry and how long to spend sleeping between attempts (seconds)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    budget: float = DEFAULT_RETRY_BUDGET

    def __attrs_post_init__(self) -> None:
        if self.max_retries < 0 or self.budget < 0:
            raise InvalidInputError("max_retries and budget must be >= 0")
