"""Public value types of the emulator: the schedule and what tests read back."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "JOB_STATUSES",
    "TERMINAL_STATUSES",
    "EmulatedJob",
    "ReceivedFile",
    "RecordedRequest",
    "Schedule",
    "iso_duration",
]

#: Every ``JobStatus`` of the contract, in lifecycle order.
JOB_STATUSES: tuple[str, ...] = ("SCHEDULED", "IN_PROGRESS", "COMPLETED", "STOPPED", "FAILED")
#: The statuses a job never leaves.
TERMINAL_STATUSES: frozenset[str] = frozenset({"COMPLETED", "STOPPED", "FAILED"})


class Schedule:
    """How emulated jobs move ``SCHEDULED -> IN_PROGRESS -> COMPLETED``.

    Times are seconds on the emulator's clock (``Emulator(clock=...)``) and are applied lazily
    whenever a job is read, so no background task runs:

    - ``Schedule()``: a job is ``COMPLETED`` at the first read after its creation.
    - ``Schedule(start_after=1.0, run_for=2.0)``: ``SCHEDULED`` for one second (or longer when
      ``max_running`` jobs already run), then ``IN_PROGRESS`` for two seconds.
    - ``Schedule.manual()`` or ``Schedule(manual=True)``: jobs stay ``SCHEDULED`` until the
      test calls ``Emulator.advance()`` or ``Emulator.set_status()``.
    """

    __slots__ = ("_manual", "run_for", "start_after")

    def __init__(self, start_after: float = 0.0, run_for: float = 0.0, manual: bool = False):
        for name, value in (("start_after", start_after), ("run_for", run_for)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.start_after = float(start_after)
        self.run_for = float(run_for)
        self._manual = bool(manual)

    @classmethod
    def manual(cls) -> Schedule:
        """A schedule under which jobs move only when the test says so."""
        return cls(manual=True)

    @property
    def is_manual(self) -> bool:
        """True when jobs move only through ``advance()``/``set_status()``."""
        return self._manual

    def __repr__(self) -> str:
        if self._manual:
            return "Schedule.manual()"
        return f"Schedule(start_after={self.start_after!r}, run_for={self.run_for!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (self.start_after, self.run_for, self._manual) == (
            other.start_after,
            other.run_for,
            other._manual,
        )

    def __hash__(self) -> int:
        return hash((self.start_after, self.run_for, self._manual))


@dataclass(frozen=True)
class ReceivedFile:
    """One uploaded file part, as the emulator received it (the content itself is not kept)."""

    field_name: str
    """The multipart field name: ``input_files`` or ``input_files[]``."""
    filename: str
    content_type: str | None
    size: int
    """Number of bytes received."""
    sha256: str
    """Hex digest of the bytes received."""


@dataclass(frozen=True)
class RecordedRequest:
    """One API request the emulator saw (faulted ones included; requests to the ``/_emulator/``
    control endpoints are not recorded). ``Emulator.requests`` in Python, ``GET
    /_emulator/received`` from another process. The API key is never kept."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None
    """The status answered, or None when the connection was dropped without an answer."""
    fault: str | None = None
    """The kind of fault injected (``"status"``, ``"drop_before"``, ...) or None."""
    raw_path: str = ""
    """The path as sent, still percent-encoded (``path`` is decoded)."""
    headers: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """The request headers as sent, in order; the values of ``unstructured-api-key``,
    ``Authorization``, ``Proxy-Authorization`` and ``Cookie`` read ``"<redacted>"`` (not
    compared by ``==``, which compares what was asked and answered)."""
    files: tuple[ReceivedFile, ...] = field(default=(), compare=False)
    """The files of an upload the API read (create job, run workflow); empty when a fault or a
    refusal answered before the body was parsed (not compared by ``==``)."""

    def header(self, name: str) -> str | None:
        """The first value of the header `name` (any case), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


@dataclass(frozen=True)
class EmulatedJob:
    """A snapshot of one job held by the emulator (see ``Emulator.jobs``)."""

    id: str
    workflow_id: str
    workflow_name: str
    status: str
    created_at: str
    """ISO 8601 UTC timestamp, as served in ``created_at``."""
    endpoint: str
    """``"create_job"`` or ``"run_workflow"``."""
    request_data: dict[str, Any] | None
    """The parsed ``request_data`` part (None for run-workflow jobs)."""
    files: list[ReceivedFile] = field(default_factory=list)
    runtime: str | None = None
    failed_files: list[str] = field(default_factory=list)
    """Names of the input files reported in ``/failed-files``."""
    job_type: str = "ephemeral"
    """As served: ``template`` for a template's job, ``persistent``/``scheduled`` for a
    workflow's run, else ``ephemeral``."""


def iso_duration(seconds: float) -> str:
    """Format seconds as an ISO 8601 duration: ``PT0S``, ``PT0.2S``, ``PT2M30S``, ``PT1H``."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or ms or out == "PT":
        out += f"{secs}.{ms:03d}".rstrip("0").rstrip(".") + "S"
    return out
