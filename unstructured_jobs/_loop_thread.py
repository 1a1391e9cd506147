"""The one mechanism that runs async code for synchronous callers, in two forms.

- `EventLoopThread`: an event loop in a daemon thread (run by ``anyio.run``), and blocking
  calls into it. The emulator's thread mode uses it: its server must serve while the test's
  thread does something else.
- `CallerDrivenLoop`: the same blocking calls, but the calling thread runs the loop itself
  when it can (no hop between threads, which costs more than a small request), and a helper
  thread only when it cannot. `JobsClient` (and so `run_batch`) uses it.

For both:
- A call blocks the calling thread until the coroutine has finished, from any thread, including
  one that runs an event loop of its own (a Jupyter cell, a sync helper called from async code):
  that is what a blocking call means, and it is what ``requests`` does in the same place.
- The one call refused is a call from inside the loop (a callback calling back): it could never
  finish. It raises `SyncInAsyncContextError` at once instead of deadlocking.
- Ctrl-C (any exception) in the calling thread cancels the coroutine inside the loop and waits
  briefly for it to unwind: nothing goes on in the background.
- After ``os.fork()`` the loop (and any thread running it) belongs to the parent. A call there
  raises `ForkedProcessError` at once (`JobsClient` catches this case earlier and starts a
  fresh loop in the child); closing there only forgets the parent's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar

import anyio

from ._constants import CANCEL_GRACE, LOGGER_NAME
from ._exceptions import ClientClosedError, ForkedProcessError, SyncInAsyncContextError

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger(LOGGER_NAME)

# The C functions under `signal`'s wrappers, at a tenth of the cost (no enum conversions): two
# calls per blocking call made from the main thread.
_signals: Any = signal
with contextlib.suppress(ImportError):
    _signals = importlib.import_module("_signal")


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
        return self._run(fn(*args, **kwargs))  # fn called here: a wrong argument raises here

    def _run(self, awaitable: Awaitable[T]) -> T:
        """Run `awaitable` in the loop and wait for it (no check of the caller)."""
        return self._call(awaitable)

    def _call(self, awaitable: Awaitable[T]) -> T:
        # One hop to the loop (a portal's own call costs a second blocking round trip).
        # `done` is settled when the coroutine has finished (a cancellation: when the task has).
        # The task runs in a copy of the caller's context, so ContextVars cross over as with
        # anyio.
        done: _Outcome[T] = _Outcome(self._hop_begins())
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
        except BaseException:
            if scheduled and not done.done():
                # KeyboardInterrupt (or another interruption) reached this thread: cancel the
                # task in the loop and let it unwind, so nothing goes on in the background.
                # (Scheduled after `start`, so the task exists when this runs.)
                with contextlib.suppress(RuntimeError):  # the loop already ended
                    self.loop.call_soon_threadsafe(cancel)
                with contextlib.suppress(BaseException):
                    done.result(timeout=CANCEL_GRACE)
            raise

    def _hop_begins(self) -> Callable[[], None] | None:
        """Called before a call is handed to the loop; returns what to call once it has ended
        (`CallerDrivenLoop` makes sure that some thread runs the loop meanwhile)."""
        return None

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator living in the loop as a blocking iterator."""
        return _SyncIterator(self, agen)

    def close(self, last: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Cancel the calls in flight (from any thread), run `last` in the loop, stop the loop.

        Safe to repeat (only the first call does anything). In a forked child it only marks
        this object closed: the parent's thread is not there to stop.
        """
        if self._inside():
            raise SyncInAsyncContextError("a client cannot be closed from its own callbacks")
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if self.forked:
            return
        try:
            self._run(self._cancel_calls())
            if last is not None:
                self._run(last())
        finally:
            self._end()

    def _end(self) -> None:
        """Stop running the loop for good (after `close` has run its last calls)."""
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

    def _inside(self) -> bool:
        """Whether the caller is the loop itself (a callback calling back)."""
        return threading.get_ident() == self.thread_id

    def _check_caller(self) -> None:
        if self.closed:
            raise ClientClosedError("this client is closed")
        if self.forked:
            raise ForkedProcessError(
                "this client's event loop was made before os.fork() and cannot be used in this "
                "process: create the client after the fork"
            )
        if self._inside():
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


class CallerDrivenLoop(EventLoopThread):
    """An event loop run by the threads that call into it; a thread of its own only when needed.

    A blocking call from a thread that runs no event loop runs the loop right there, in the
    calling thread, until the call has finished (as ``asyncio.run`` would, without making a new
    loop): no hop to another thread and back, which costs more than a small request does. The
    loop, and everything bound to it (the aiohttp session and its connections), stays the same
    from call to call.

    The other calls hop, as with `EventLoopThread`: a call made while another thread runs the
    loop is handed to it, and a call from a thread that runs an event loop of its own (a
    Jupyter cell) cannot run ours there. Whenever a call that hopped is in flight and no caller
    runs the loop, a helper thread (started on first need) runs it until no call is left.

    - A call first lets the loop look at what happened while nobody ran it (a server that closed
      an idle connection): that connection is dropped, never used for the call.
    - Ctrl-C in the main thread while it runs the loop cancels the call there and raises
      `KeyboardInterrupt` once the call has unwound (a second Ctrl-C interrupts at once), as
      ``asyncio.run`` does. A main thread whose SIGINT handler is not Python's default always
      hops, so that its handler never runs inside the loop.
    - Callbacks (`on_upload_progress`, `on_poll`) run in the thread that runs the loop: usually
      the caller's own. A blocking call from inside them raises `SyncInAsyncContextError`.
    """

    def __init__(self, name: str = "unstructured-jobs-loop") -> None:
        self._name = name
        self.loop = asyncio.new_event_loop()
        self.thread_id = None  # no thread of its own: `_inside` looks at the running loop
        self.pid = os.getpid()
        self.closed = False
        self._lock = threading.Lock()
        self._tasks = set()
        self._cond = threading.Condition(threading.Lock())  # guards the three below
        self._driver: object = None  # who runs the loop: a caller's thread id, or _HELPER
        self._hops = 0  # calls handed to the loop and not ended
        self._helper: threading.Thread | None = None
        self._stopping = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<CallerDrivenLoop {state}>"

    def _run(self, awaitable: Awaitable[T]) -> T:
        """In the calling thread when it can run the loop, else in the thread that does."""
        if self._can_run_loop_here():
            with self._cond:
                mine = self._driver is None
                if mine:
                    self._driver = threading.get_ident()
            if mine:
                return self._drive(awaitable)
        return self._call(awaitable)

    def _inside(self) -> bool:
        return asyncio._get_running_loop() is self.loop

    @staticmethod
    def _can_run_loop_here() -> bool:
        if asyncio._get_running_loop() is not None:
            return False  # this thread runs another event loop (a notebook cell)
        if threading.current_thread() is threading.main_thread():
            return _signals.getsignal(signal.SIGINT) is signal.default_int_handler
        return True

    def _drive(self, awaitable: Awaitable[T]) -> T:
        """Run the loop in this thread until `awaitable` has finished (this thread is the
        driver: `_driver` was set to it)."""
        loop = self.loop
        # (A call that hops needs no such pass: its task is made by a callback, so the loop has
        # read the pending I/O once before the task's first step.)
        coro = _await(_AfterPendingIO(awaitable))
        try:
            task = loop.create_task(coro)
        except BaseException:
            coro.close()
            _close_awaitable(awaitable)
            self._release()
            raise
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        interrupted: list[bool] = []
        try:
            with _ctrl_c_cancels(loop, task, interrupted):
                try:
                    return loop.run_until_complete(task)
                except BaseException:
                    if not task.done():  # an exception raised inside the loop (a signal's)
                        task.cancel()
                        with contextlib.suppress(BaseException):
                            loop.run_until_complete(asyncio.wait([task], timeout=CANCEL_GRACE))
                    raise
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            if self.closed:
                raise ClientClosedError("the client was closed during this call") from None
            raise
        finally:
            self._release()

    def _release(self) -> None:
        """This thread stops running the loop; the helper takes over if calls are in flight."""
        with self._cond:
            self._driver = None
            if self._hops:
                self._hand_to_helper()

    def _hop_begins(self) -> Callable[[], None] | None:
        with self._cond:
            self._hops += 1
            if self._driver is None:
                self._hand_to_helper()
        return self._hop_ended

    def _hop_ended(self) -> None:
        with self._cond:
            self._hops -= 1
            helper = self._helper
            if (
                self._hops == 0
                and self._driver is _HELPER
                and helper is not None
                and helper.ident == threading.get_ident()
            ):
                # In the helper's thread, so inside its `run_forever`: it returns after this pass
                # of the loop. (A hop that could not be made ends in its caller's thread.)
                self.loop.stop()

    def _hand_to_helper(self) -> None:
        """Make the helper thread run the loop (`_cond` held)."""
        self._driver = _HELPER
        if self._helper is None:
            self._helper = threading.Thread(target=self._helper_main, name=self._name, daemon=True)
            self._helper.start()
        self._cond.notify_all()

    def _helper_main(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while self._driver is not _HELPER:
                    if self._stopping:
                        return
                    cond.wait()
            try:
                self.loop.run_forever()
            except BaseException:  # pragma: no cover - nothing raises out of run_forever here
                log.exception("the event loop's helper thread failed")
            with cond:
                if self._hops == 0 or self._stopping:
                    self._driver = None
                    cond.notify_all()

    def _end(self) -> None:
        """Shut the loop down as ``asyncio.run`` does, stop the helper thread, close the loop."""
        try:
            self._run(_shut_down(self.loop))
        finally:
            with self._cond:
                self._stopping = True
                helper = self._helper
                if self._driver is _HELPER:
                    with contextlib.suppress(RuntimeError):
                        self.loop.call_soon_threadsafe(self.loop.stop)
                self._cond.notify_all()
            if helper is not None:
                helper.join()
            with contextlib.suppress(RuntimeError):  # still run by a call that raced close()
                self.loop.close()


_HELPER = object()  # `CallerDrivenLoop._driver` when the helper thread runs the loop


class _AfterPendingIO(Generic[T]):
    """`awaitable`, once the loop has handled the I/O that came while nobody ran it.

    One pass of the loop reads what idle connections received: a server that closed one (its
    keep-alive timeout) is seen closing, and aiohttp does not pick that connection for the call.
    `close` closes the awaitable, so that one never started is not reported as never awaited.
    """

    __slots__ = ("_awaitable",)

    def __init__(self, awaitable: Awaitable[T]) -> None:
        self._awaitable = awaitable

    def __await__(self) -> Generator[Any, None, T]:
        yield from asyncio.sleep(0).__await__()
        return (yield from self._awaitable.__await__())

    def close(self) -> None:
        _close_awaitable(self._awaitable)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _shut_down(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does before closing its loop: async generators, then executors."""
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


@contextlib.contextmanager
def _ctrl_c_cancels(
    loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], interrupted: list[bool]
) -> Iterator[None]:
    """In the main thread, while it runs the loop: the first Ctrl-C cancels `task` (recorded in
    `interrupted`), the next one raises `KeyboardInterrupt` where it lands (``asyncio.run``'s
    rule). Other threads never receive signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        if interrupted or task.done():
            raise KeyboardInterrupt
        interrupted.append(True)
        task.cancel()
        loop.call_soon_threadsafe(lambda: None)  # wake the loop if it waits in select()

    previous = _signals.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        _signals.signal(signal.SIGINT, previous)


class _Outcome(Generic[T]):
    """How one call ended, handed from the loop's thread to the caller's.

    A lighter `concurrent.futures.Future` for exactly this: settled once, on the loop's thread;
    `result` blocks on a plain lock held until then (a future's condition variable costs a few
    microseconds more on each side of every blocking call).
    """

    __slots__ = ("_ended", "_lock", "_state", "_value")

    def __init__(self, ended: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._state = 0  # 0 pending, 1 result, 2 exception, 3 cancelled
        self._value: Any = None
        self._ended = ended  # called once, when settled

    def done(self) -> bool:
        return self._state != 0

    def _settle(self, state: int, value: Any) -> None:
        if self._state == 0:
            self._state, self._value = state, value
            ended = self._ended
            if ended is not None:
                ended()
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
