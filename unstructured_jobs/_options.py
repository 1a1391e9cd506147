"""Configuration value objects shared by the async client, the sync facade and the batch engine."""

from __future__ import annotations

from typing import Any

import attrs

from ._constants import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_WRITE_TIMEOUT,
    SERVICE_LAUNCH_INTERVAL,
    SERVICE_MAX_FILE_BYTES,
    SERVICE_MAX_FILES_PER_JOB,
    SERVICE_RUNNING_JOBS,
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


def _positive_int_or_none(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{attribute.name} must be an int >= 1 or None, got {value!r}")


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidInputError(f"{attribute.name} must be > 0 seconds or None, got {value!r}")


@attrs.frozen
class ServiceLimits:
    """The service's published limits on on-demand jobs, in one place; None lifts one.

    The client checks `files_per_job` and `bytes_per_file` before sending anything
    (`create_job`, `run_workflow`: `ServiceLimitError`); the batch engine groups files by them,
    paces its launches by `launch_interval` and keeps at most a few jobs queued per
    `running_jobs`. Pass ``AsyncJobsClient(limits=...)`` (or `JobsClient`), or ``limits=`` to
    a batch.

    The defaults are the docs' (docs.unstructured.io): 10 files per job, one launch per second
    ("wait at least one second between launch requests, otherwise a rate limit error") and 5
    jobs running per account (more stay SCHEDULED) on every on-demand quickstart. The size
    follows ``api-reference/workflow/quickstart/transform``, the newer page: 50 MB per file;
    the older ``api-reference/quickstart/transform`` and the embed quickstart say 10 MB. A
    server that refuses a file as too large (413) costs the batch one upload of that file:
    it is failed alone, with advice to lower `bytes_per_file`, and its group-mates are sent.

    >>> ServiceLimits()
    ServiceLimits(files_per_job=10, bytes_per_file=50000000, launch_interval=1.0, running_jobs=5)
    >>> ServiceLimits(bytes_per_file=10_000_000, launch_interval=None)  # a 10 MB server, no pacing
    ServiceLimits(files_per_job=10, bytes_per_file=10000000, launch_interval=None, running_jobs=5)
    """

    files_per_job: int | None = attrs.field(
        default=SERVICE_MAX_FILES_PER_JOB, validator=_positive_int_or_none
    )
    """Input files in one job-creating request, at most."""
    bytes_per_file: int | None = attrs.field(
        default=SERVICE_MAX_FILE_BYTES, validator=_positive_int_or_none
    )
    """Bytes of one input file, at most (decimal MB: 50 MB is 50,000,000 bytes)."""
    launch_interval: float | None = attrs.field(
        default=SERVICE_LAUNCH_INTERVAL, validator=_positive_or_none
    )
    """Seconds between two job launches, at least (a batch adds a small margin)."""
    running_jobs: int | None = attrs.field(
        default=SERVICE_RUNNING_JOBS, validator=_positive_int_or_none
    )
    """Jobs running at once per account; the batch keeps at most twice as many unfinished."""
