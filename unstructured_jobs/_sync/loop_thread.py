"""`EventLoopThread`: the one mechanism that runs async code for synchronous callers.

An event loop in a daemon thread (run by ``anyio.run``), and blocking calls into it.
`JobsClient` (and so `run_batch`) and the emulator's thread mode use it.

- A call blocks the calling thread until the coroutine has finished, from any thread, including
  one that runs an event loop of its own (a Jupyter cell, a sync helper called from async code):
  that is what a blocking call means, and it is what ``requests`` does in the same place.
- The one call refused is a call from the loop's own thread (a callback calling back): it could
  never finish. It raises `SyncInAsyncContextError` at once instead of deadlocking.
- Ctrl-C (any exception) in the calling thread cancels the coroutine inside the loop and waits
  briefly for it to unwind: nothing goes on in the background.
- After ``os.fork()`` the loop's thread does not exist in the child. A call there raises
  `ForkedProcessError` at once (`JobsClient` catches this case earlier and starts a fresh loop
  in the child); closing there only forgets the parent's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar

import anyio

from .._constants import CANCEL_GRACE
from .._exceptions import ClientClosedError, ForkedProcessError, SyncInAsyncContextError

T = TypeVar("T")
P = ParamSpec("P")


class EventLoopThread:
    """An event loop in its own daemon thread, and blocking calls into it.

    >>> with EventLoopThread() as loop_thread:                       # doctest: +SKIP
    ...     answer = loop_thread.run(some_coroutine_function, arg, key=value)

    Safe to share between threads; calls are serialised onto the one loop. Objects bound to a
    loop (an aiohttp session, an `AsyncJobsClient`) must be created inside it: make them in a
    coroutine passed to `run`.
    """

    def __init__(self, name: str = "unstructured-jobs-loop") -> None:
        # A plain daemon thread running `anyio.run`: no generator or portal object whose
        # finalizer would wait on this thread, which matters in a forked child (the thread is
        # gone there, and such a finalizer would wait for ever).
        ready: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]]
        ready = concurrent.futures.Future()

        async def serve() -> None:
            stop = asyncio.Event()
            ready.set_result((asyncio.get_running_loop(), stop))
            await stop.wait()

        def target() -> None:
            try:
                anyio.run(serve, backend="asyncio")
            except BaseException as exc:  # pragma: no cover - the loop could not start
                if not ready.done():
                    ready.set_exception(exc)

        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()
        self.loop, self._stop = ready.result()
        self.thread_id = self._thread.ident
        self.pid = os.getpid()
        self.closed = False
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()  # calls in flight, touched on the loop only

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running"
        return f"<EventLoopThread {state} thread={self.thread_id}>"

    @property
    def forked(self) -> bool:
        """True in a child process forked after this loop started (the thread is gone there)."""
        return os.getpid() != self.pid

    def run(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` in the loop; block until it ends; return its result.

        Exceptions propagate as they are. A wrong argument raises here, in the caller.
        """
        self._check_caller()
        return self._call(fn(*args, **kwargs))  # fn called here: a wrong argument raises here

    def _call(self, awaitable: Awaitable[T]) -> T:
        """Run `awaitable` in the loop and wait for it (no check of the caller)."""
        # One hop to the loop (a portal's own call costs a second blocking round trip).
        # `done` is settled when the coroutine has finished (a cancellation: when the task has).
        # The task runs in a copy of the caller's context, so ContextVars cross over as with
        # anyio.
        done: _Outcome[T] = _Outcome()
        tasks: list[asyncio.Task[Any]] = []

        def start() -> None:
            try:
                task: asyncio.Task[Any] = self.loop.create_task(_settling(awaitable, done))
            except BaseException as exc:  # never leave the caller waiting for ever
                _close_awaitable(awaitable)
                done.set_exception(exc)
                return
            task.add_done_callback(functools.partial(_settle, done))
            task.add_done_callback(self._tasks.discard)
            self._tasks.add(task)
            tasks.append(task)

        def cancel() -> None:
            # Queued after `start` whenever `start` was queued at all (the loop runs callbacks
            # in order), so no task here means it was never queued, or it failed to start.
            if tasks:
                for task in tasks:
                    task.cancel()
            elif not done.done():
                _close_awaitable(awaitable)
                done.cancel()

        # True before the hop: a Ctrl-C landing just after it must still cancel the task.
        scheduled = True
        try:
            try:
                self.loop.call_soon_threadsafe(start)
            except RuntimeError:  # the loop closed between the check and now
                scheduled = False
                _close_awaitable(awaitable)
                done.cancel()  # settled: the hop has ended
                raise ClientClosedError("this event loop thread is closed") from None
            return done.result()
        except concurrent.futures.CancelledError:
            if self.closed:
                raise ClientClosedError("the client was closed during this call") from None
            raise
        except BaseException as interrupt:
            if scheduled and not done.done():
                # KeyboardInterrupt (or another interruption) reached this thread: cancel the
                # task in the loop and let it unwind, so nothing goes on in the background.
                # (Scheduled after `start`, so the task exists when this runs.)
                with contextlib.suppress(RuntimeError):  # the loop already ended
                    self.loop.call_soon_threadsafe(cancel)
                with contextlib.suppress(BaseException):
                    done.result(timeout=CANCEL_GRACE)
                for note in done.notes:  # e.g. run_job's: which job exists, how to resume
                    interrupt.add_note(note)
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator living in the loop as a blocking iterator."""
        return _SyncIterator(self, agen)

    def close(self, last: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Cancel the calls in flight (from any thread), run `last` in the loop, stop the loop.

        Safe to repeat (only the first call does anything). In a forked child it only marks
        this object closed: the parent's thread is not there to stop.
        """
        if threading.get_ident() == self.thread_id:
            raise SyncInAsyncContextError("a client cannot be closed from its own callbacks")
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if self.forked:
            return
        try:
            self._call(self._cancel_calls())
            if last is not None:
                self._call(last())
        finally:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join()

    def __enter__(self) -> EventLoopThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_caller(self) -> None:
        if self.closed:
            raise ClientClosedError("this client is closed")
        if self.forked:
            raise ForkedProcessError(
                "this client's event loop was made before os.fork() and cannot be used in this "
                "process: create the client after the fork"
            )
        if threading.get_ident() == self.thread_id:
            raise SyncInAsyncContextError(
                "a blocking call was made from the client's own event loop thread (a callback "
                "such as on_upload_progress or on_poll calling the client back); it could "
                "never finish. Call the client from another thread, or use AsyncJobsClient"
            )

    async def _cancel_calls(self) -> None:
        me = asyncio.current_task()
        pending = [task for task in self._tasks if task is not me]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class _Outcome(Generic[T]):
    """How one call ended, handed from the loop's thread to the caller's.

    A lighter `concurrent.futures.Future` for exactly this: settled once, on the loop's thread;
    `result` blocks on a plain lock held until then (a future's condition variable costs a few
    microseconds more on each side of every blocking call).
    """

    __slots__ = ("_lock", "_state", "_value", "notes")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._state = 0  # 0 pending, 1 result, 2 exception, 3 cancelled
        self._value: Any = None
        self.notes: list[str] = []  # what the call noted on its way out when cancelled

    def done(self) -> bool:
        return self._state != 0

    def _settle(self, state: int, value: Any) -> None:
        if self._state == 0:
            self._state, self._value = state, value
            self._lock.release()

    def set_result(self, result: T) -> None:
        self._settle(1, result)

    def set_exception(self, exc: BaseException) -> None:
        self._settle(2, exc)

    def cancel(self) -> None:
        self._settle(3, None)

    def result(self, timeout: float | None = None) -> T:
        """Block until settled (`TimeoutError` after `timeout` seconds); return or raise it.

        Raises `concurrent.futures.CancelledError` for a cancelled call.
        """
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError
        self._lock.release()  # settled for good: any later `result` returns at once
        if self._state == 1:
            return self._value  # type: ignore[no-any-return]
        if self._state == 2:
            raise self._value
        raise concurrent.futures.CancelledError


async def _settling(awaitable: Awaitable[T], done: _Outcome[T]) -> T | None:
    """Await `awaitable` in the loop and hand its outcome to the caller waiting on `done`.

    A result or an `Exception` is handed over at once, as the task's last step: the caller wakes
    a pass of the loop earlier than a done callback would wake it. A cancellation (and any other
    `BaseException`) is left to `_settle`, once the task has really ended.
    """
    try:
        result = await awaitable
    except Exception as exc:
        if not done.done():
            done.set_exception(exc)
        return None  # handed over: the task itself ends quietly (no "never retrieved")
    except asyncio.CancelledError as exc:
        # The notes the call added while it unwound (``run_job``: which job exists) go to the
        # caller's KeyboardInterrupt (`EventLoopThread._call`): a cancelled task hands over a
        # new CancelledError, without them.
        done.notes = list(getattr(exc, "__notes__", ()))
        raise
    if not done.done():
        done.set_result(result)
    return result


def _close_awaitable(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def _settle(done: _Outcome[Any], task: asyncio.Task[Any]) -> None:
    if done.done():  # handed over by `_settling`
        return
    if task.cancelled():
        done.cancel()
    elif (exc := task.exception()) is not None:
        done.set_exception(exc)
    else:
        done.set_result(task.result())


class _SyncIterator(Iterator[T]):
    """Drives an async iterator living in the loop, one item per blocking call."""

    def __init__(self, runner: EventLoopThread, agen: AsyncIterator[T]) -> None:
        self._runner = runner
        self._agen = agen
        self._done = False

    def __iter__(self) -> _SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            item: T = self._runner.run(self._agen.__anext__)
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None
        except BaseException:
            self.close()
            raise
        return item

    def close(self) -> None:
        """Stop the iteration and finalise the async iterator inside the loop."""
        if not self._done:
            self._done = True
            aclose = getattr(self._agen, "aclose", None)
            runner = self._runner
            if aclose is not None and not runner.closed and not runner.forked:
                runner.run(aclose)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # best effort at garbage collection
            self.close()
