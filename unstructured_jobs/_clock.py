"""Time, as one public seam: every wait the package makes goes through a `Clock`.

Retries (backoff and ``Retry-After``), `wait_for_job`/`watch_job` polling and the batch engine's
launch rate and reconcile grace all read ``clock.now()`` and await ``clock.sleep()`` of the
client's clock. Pass ``clock=`` to a client to control time: in tests,
`unstructured_jobs.testing.FakeClock` makes every wait return at once while its virtual time
advances, so retries, waits and whole batches run without real sleeping.

Timeouts on the wire (connect, read, upload stall) are not waits of ours: they are real time,
measured by aiohttp and the operating system.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio


@runtime_checkable
class Clock(Protocol):
    """What the client needs of time: monotonic seconds, and a way to wait."""

    def now(self) -> float:
        """Monotonic seconds (only differences between two readings mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (cancellable like any await)."""
        ...


class SystemClock:
    """Real time: `time.monotonic` and `anyio.sleep`. The default of every client."""

    def now(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """`anyio.sleep(seconds)`."""
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
