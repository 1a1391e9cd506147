"""The service's published limits, as opt-in settings of the emulator (`EmulatorLimits`), and the
state that enforces the account-wide ones: the launch interval and the quota (`LimitState`)."""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LIMIT_NAMES", "PUBLISHED_MAX_FILE_SIZE", "EmulatorLimits", "LimitState"]

PUBLISHED_MAX_FILE_SIZE = 10 * 1000 * 1000
"""10 MB: the stricter of the two sizes the docs publish (the newer pages say 50 MB)."""

LIMIT_NAMES = ("launch_interval", "max_files_per_job", "max_file_size", "quota")
"""The limits whose refusals `LimitState.refused` counts (the running cap never refuses)."""

QUOTA_DETAIL = "Insufficient API quota"
RATE_DETAIL = "Rate limit exceeded"


@dataclass(frozen=True)
class EmulatorLimits:
    """The limits an `Emulator` enforces, each off with None (the defaults are the emulator's
    behaviour without limits: only the cap of 5 running jobs).

    Use ``EmulatorLimits.published()`` for the limits the service's docs publish, or
    ``dataclasses.replace(EmulatorLimits.published(), max_file_size=50_000_000)`` to change one.

    Attributes:
        launch_interval: seconds that must separate the *arrivals* of two launches (create job,
            run workflow) that create a job. A launch arriving sooner after the last accepted
            one is answered 429 ``{"detail": "Rate limit exceeded"}`` with ``Retry-After`` in
            whole seconds (rounded up, at least 1); it creates nothing and does not count.
        max_running: jobs ``IN_PROGRESS`` at once; more stay ``SCHEDULED`` (never an error).
        max_files_per_job: files one launch may carry; more is 400 ``{"detail": "Too many
            files: 11 (limit 10 per job)"}`` and nothing is created.
        max_file_size: bytes one file may have; a larger one is 413 with a JSON ``detail``
            naming every file over the limit, and nothing is created.
        quota_files: files the account may still send. Each file of a created job spends one
            (the emulator does not count pages: one file is one unit). A launch with more
            files than are left, or any launch once nothing is left, is 402 ``{"detail":
            "Insufficient API quota"}``: nothing is created, nothing is spent.
    """

    launch_interval: float | None = None
    max_running: int | None = 5
    max_files_per_job: int | None = None
    max_file_size: int | None = None
    quota_files: int | None = None

    def __post_init__(self) -> None:
        interval = self.launch_interval
        if interval is not None and not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"launch_interval must be a number > 0 or None, got {interval!r}")
        for name in ("max_running", "max_files_per_job", "max_file_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1 or None, got {value!r}")
        quota = self.quota_files
        if quota is not None and (not isinstance(quota, int) or quota < 0):
            raise ValueError(f"quota_files must be an integer >= 0 or None, got {quota!r}")

    @classmethod
    def published(cls, *, max_file_size: int | None = PUBLISHED_MAX_FILE_SIZE) -> EmulatorLimits:
        """The limits the service's docs publish for on-demand jobs (``docs/emulator.md`` names
        the page of each): one launch per second, 5 jobs running, 10 files per job, 10 MB per
        file (pass ``max_file_size=50_000_000`` for the newer pages' 50 MB). No quota."""
        return cls(
            launch_interval=1.0,
            max_running=5,
            max_files_per_job=10,
            max_file_size=max_file_size,
        )

    def as_json(self) -> dict[str, Any]:
        """The settings as a JSON object (``GET /_emulator/limits``)."""
        return asdict(self)


class LimitState:
    """The account-wide state behind the limits: accepted launch arrivals, the quota left, and
    how many requests each limit refused. The caller holds the job store's lock."""

    def __init__(self, limits: EmulatorLimits) -> None:
        self.limits = limits
        self._arrivals: list[float] = []  # accepted launches, sorted
        self.quota_left = limits.quota_files
        self.refused = dict.fromkeys(LIMIT_NAMES, 0)
        self.launches = 0

    def refuse(self, name: str) -> None:
        """Count one refusal by limit `name`."""
        self.refused[name] += 1

    def launch_wait(self, arrived: float, now: float) -> int | None:
        """The ``Retry-After`` seconds when a launch that arrived at `arrived` comes less than
        ``launch_interval`` after an accepted one (None: it may go).

        Launches are compared by arrival, strictly: 0.999 s after an accepted launch is too soon
        for an interval of 1 s (a nanosecond of float rounding is forgiven). An accepted launch
        that arrived *later* (a slow upload finishing after a quick one) counts too.
        """
        interval = self.limits.launch_interval
        if interval is None or not self._arrivals:
            return None
        at = bisect.bisect_left(self._arrivals, arrived)
        near = [self._arrivals[i] for i in (at - 1, at) if 0 <= i < len(self._arrivals)]
        blocking = [t for t in near if abs(arrived - t) < interval - 1e-9]
        if not blocking:
            return None
        free_at = max(blocking) + interval
        return max(1, math.ceil(free_at - now))

    def quota_refuses(self, files: int) -> bool:
        """Whether the quota refuses a launch of `files` files."""
        left = self.quota_left
        return left is not None and (left == 0 or files > left)

    def accept(self, arrived: float, files: int) -> None:
        """Record a launch that created a job."""
        bisect.insort(self._arrivals, arrived)
        if len(self._arrivals) > 64:  # only the neighbours of an arrival matter
            del self._arrivals[:32]
        if self.quota_left is not None:
            self.quota_left -= files
        self.launches += 1

    def set_quota(self, files: int | None) -> None:
        """Set the files left (None: no quota)."""
        if files is not None and files < 0:
            raise ValueError("the quota must be >= 0 or None")
        self.quota_left = files

    def clear(self) -> None:
        """Forget launches and refusals; the quota starts again from its setting."""
        self._arrivals.clear()
        self.quota_left = self.limits.quota_files
        self.refused = dict.fromkeys(LIMIT_NAMES, 0)
        self.launches = 0

    def as_json(self) -> dict[str, Any]:
        """``GET /_emulator/limits``: the settings, the quota left, launches and refusals."""
        return {
            "limits": self.limits.as_json(),
            "quota_left": self.quota_left,
            "launches": self.launches,
            "refused": dict(self.refused),
        }
