"""Blocking file calls off the event loop, in batches: `offload`.

Every call that may wait on the disk (``stat``, ``open``, a read that is not from the page cache)
runs in the loop's default executor, never on the loop's thread. A trip to a worker thread and
back costs several times what such a call does on a warm cache (futex wake-ups, the loop's
self-pipe, future chaining: 30-60 us of CPU against 5-15 us), so calls made while earlier ones
are queued share a trip: each executor job runs every call pending when it starts, one after
the other, and answers them all at once. With 64 uploads at a time, a call then costs about
what it costs on the loop's thread (benchmarks/README.md).

At most `FILE_CALL_JOBS` jobs run at once, so a slow disk still gets that many calls in
parallel; calls made meanwhile wait for the next job. A call's failure is its own (its future
gets the exception); the others of its job are unaffected.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ._constants import FILE_CALL_JOBS

T = TypeVar("T")
Call = tuple[Callable[..., Any], tuple[Any, ...]]


def offload(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``fn(*args)`` in the running loop's default executor, batched with other calls.

    Returns a future on the loop; it is never cancelled by this module, so a caller that is
    cancelled can still wait for the call to end (see `_multipart._wait_thread`).
    """
    loop = asyncio.get_running_loop()
    batcher = _BATCHERS.get(loop)
    if batcher is None:
        batcher = _BATCHERS[loop] = _Batcher()
    return batcher.submit(loop, fn, args)


def run_calls(calls: list[Call]) -> list[tuple[bool, Any]]:
    """One executor job: every call in turn, each answer ``(True, result)`` or
    ``(False, exception)``."""
    answers: list[tuple[bool, Any]] = []
    for fn, args in calls:
        try:
            answers.append((True, fn(*args)))
        except BaseException as exc:  # the caller's to see, like any executor call's
            answers.append((False, exc))
    return answers


class _Batcher:
    """The pending calls of one event loop (touched on the loop's thread only). It holds no
    reference to its loop, which would keep the loop alive as a key of `_BATCHERS`."""

    def __init__(self) -> None:
        self.pending: list[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self.running = 0  # executor jobs under way
        self.scheduled = False  # a `_start` is due in this pass of the loop

    def submit(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[..., T], args: tuple[Any, ...]
    ) -> asyncio.Future[T]:
        future: asyncio.Future[T] = loop.create_future()
        self.pending.append((future, fn, args))
        self._schedule(loop)
        return future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        # After the current callbacks: calls made in this pass of the loop join the same job.
        if not self.scheduled and self.running < FILE_CALL_JOBS:
            self.scheduled = True
            loop.call_soon(self._start, loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.scheduled = False
        if not self.pending or self.running >= FILE_CALL_JOBS:
            return
        batch, self.pending = self.pending, []
        calls = [(fn, args) for _, fn, args in batch]
        try:
            job = loop.run_in_executor(None, run_calls, calls)
        except BaseException as exc:  # the executor is shut down: each call fails alike
            for future, _, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.running += 1
        job.add_done_callback(functools.partial(self._finish, batch))

    def _finish(
        self,
        batch: list[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]]],
        job: asyncio.Future[list[tuple[bool, Any]]],
    ) -> None:
        self.running -= 1
        if job.cancelled():  # pragma: no cover - nothing here cancels a job
            for future, _, _ in batch:
                future.cancel()
            answers: list[tuple[bool, Any]] = []
        elif job.exception() is not None:  # pragma: no cover - run_calls catches everything
            answers = [(False, job.exception())] * len(batch)
        else:
            answers = job.result()
        for (future, _, _), (ok, value) in zip(batch, answers, strict=False):
            if future.done():  # its caller gave up waiting (a cancelled prepare)
                if ok:
                    _discard(value)
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if self.pending:
            self._schedule(job.get_loop())


def _discard(value: object) -> None:
    close = getattr(value, "close", None)
    if callable(close):  # a file opened for a caller that is gone
        close()


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher]
_BATCHERS = weakref.WeakKeyDictionary()
