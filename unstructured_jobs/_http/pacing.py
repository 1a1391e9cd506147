"""`CallPacer`: at most N calls per key in any window of W seconds, by waiting, not failing.

`get_job_file_status` is published as "at most 12 calls per minute for each job and identity".
The client keeps to it itself: a call that would be the 13th within a minute waits, on the
client's `Clock`, until the oldest of the 12 is a minute (plus a margin) old, so the server
never has to refuse it. Turns are handed out in call order, also to concurrent callers; a call
cancelled while it waits keeps its turn (the pacer errs on the side of waiting).
"""

from __future__ import annotations

from collections import deque

from .._clock import Clock

PRUNE_ABOVE = 256  # keys kept before those whose window has passed are forgotten


class CallPacer:
    """Hands out turns: at most `calls` per key in any `window` seconds of `clock`."""

    def __init__(self, *, calls: int, window: float, margin: float, clock: Clock) -> None:
        if calls < 1 or window <= 0 or margin < 0:
            raise ValueError("calls must be >= 1, window > 0 and margin >= 0")
        self.calls = calls
        self.window = window
        self.margin = margin
        self.clock = clock
        self._turns: dict[str, deque[float]] = {}

    def reserve(self, key: str) -> float:
        """Take the next turn for `key`; return the seconds to wait before using it (0: now)."""
        now = self.clock.now()
        if len(self._turns) > PRUNE_ABOVE:
            self._prune(now)
        turns = self._turns.setdefault(key, deque(maxlen=self.calls))
        start = now
        if len(turns) == self.calls:  # the turn `calls` back must be a window (+ margin) old
            start = max(now, turns[0] + self.window + self.margin)
        turns.append(start)  # the turns stay sorted: each starts no earlier than the last
        return start - now

    async def wait_turn(self, key: str) -> None:
        """Wait until `key` may be called again (at once when it has had fewer calls)."""
        delay = self.reserve(key)
        if delay > 0:
            await self.clock.sleep(delay)

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._turns.items() if t[-1] + self.window <= now]:
            del self._turns[key]
