"""`FakeClock`: virtual time for clients and the emulator, so tests never really sleep."""

from __future__ import annotations

import threading

import anyio.lowlevel


class FakeClock:
    """A `Clock` whose sleeps return at once and move its time forward.

    Give the same one to the client and the emulator, and retries, polling, launch rates and
    job schedules all follow one virtual time::

        clock = FakeClock()
        async with Emulator(clock=clock, schedule=Schedule(run_for=30)) as emu:
            async with AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client:
                job = await client.wait_for_job(job_id)   # returns at once; clock.now() ~ 30

    - ``await clock.sleep(s)`` records `s` in `sleeps`, adds it to the time and yields to the
      event loop once (so other tasks run, as they would during a real sleep). Concurrent
      sleepers each move time forward by their own amount: time only ever grows.
    - ``clock.now()``, or calling the clock itself (the form ``Emulator(clock=...)`` takes),
      reads the virtual time; `advance` moves it by hand.

    It is safe to share between threads (the emulator may run in its own).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        """Every duration slept, in order."""

    def now(self) -> float:
        """The virtual time, in seconds."""
        return self._now

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the time forward by `seconds` (never backwards)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait, move the time forward by it, and let other tasks run once."""
        seconds = max(float(seconds), 0.0)
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds
        await anyio.lowlevel.checkpoint()

    @property
    def slept(self) -> float:
        """The sum of every sleep so far."""
        return sum(self.sleeps)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:g}, sleeps={len(self.sleeps)})"
