"""Helpers shared by the orchestrator (`run.py`) and the per-client child processes."""

from __future__ import annotations

import json
import math
import resource
import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any

API_KEY = "bench-key"
TEMPLATE_ID = "00000000-0000-4000-8000-00000000b0b0"
RESULT_PREFIX = "BENCH-RESULT "
MIB = 1024 * 1024
GIB = 1024 * MIB


def proc_status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmHWM: peak RSS, VmRSS: current RSS), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Wall and CPU time of the ``with`` block (one block per child)."""

    wall = 0.0
    cpu = 0.0

    def __enter__(self) -> Meter:
        self._cpu0 = cpu_seconds()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = cpu_seconds() - self._cpu0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def latency_summary(seconds: Iterable[float]) -> dict[str, float]:
    """Median and p99 of per-call latencies, in milliseconds."""
    values = [s * 1000.0 for s in seconds]
    return {
        "lat_median_ms": statistics.median(values) if values else math.nan,
        "lat_p99_ms": percentile(values, 99),
    }


def emit(result: dict[str, Any]) -> None:
    """Print the child's result as one tagged JSON line (the parent looks for the tag)."""
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)


def describe_error(exc: BaseException) -> str:
    """A one-line description of an exception, for the result tables."""
    text = " ".join(str(exc).split())
    filename = getattr(exc, "filename", None)
    if isinstance(filename, str) and "/" in filename:  # temp paths are noise in a table
        text = text.replace(filename, "…/" + filename.rsplit("/", 1)[-1])
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
