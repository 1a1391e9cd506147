"""`JobsClient`: the async client for synchronous code, through one anyio blocking portal.

Every public coroutine method of `AsyncJobsClient` gets a blocking twin, made by `_mirror` from
the async method itself (same name, signature, docstring; async iterators become iterators).
Nothing is written twice: a method added to the async client appears here by itself.

How it runs:
- one portal (an event loop in a daemon thread) per client, for the client's whole life; the
  aiohttp session is created and closed inside that loop;
- calls from any number of threads are safe; they are serialised onto that loop;
- Ctrl-C (or any exception) in the calling thread cancels the request inside the portal;
- callbacks you pass (`on_upload_progress`, `on_poll`) run on the portal's thread: keep them
  quick and do not call the client from them;
- calling from a thread that runs an event loop (an ``async def``, a notebook cell) raises
  `SyncInAsyncContextError` instead of freezing that loop: use `AsyncJobsClient` and ``await``
  there (notebooks support top-level ``await``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._client import AsyncJobsClient
from ._exceptions import InvalidInputError, SyncInAsyncContextError, UnstructuredJobsError

T = TypeVar("T")
_CANCEL_GRACE = 5.0  # seconds to wait for a cancelled request to unwind after Ctrl-C


def _check_not_in_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise SyncInAsyncContextError(
        "JobsClient was called from a running event loop, which it would block; "
        "use AsyncJobsClient with await here (in notebooks: top-level await)"
    )


class _Runner:
    """The portal and the async client living in it; shared by the client and its finalizer."""

    def __init__(self, factory: Callable[[], AsyncJobsClient]) -> None:
        self._cm: AbstractContextManager[BlockingPortal] = start_blocking_portal("asyncio")
        self.portal = self._cm.__enter__()
        self.closed = False
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()  # calls in flight, touched on the loop only
        try:
            self.loop: asyncio.AbstractEventLoop = self.portal.call(asyncio.get_running_loop)
            self.client: AsyncJobsClient = self.portal.call(_construct, factory)
        except BaseException:
            self._cm.__exit__(None, None, None)
            raise

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        _check_not_in_event_loop()
        if self.closed:
            raise UnstructuredJobsError("this JobsClient is closed")
        # One hop to the loop (portal.start_task_soon costs a second blocking round trip).
        # `done` is settled only when the task has finished, cancellation included. The task
        # runs in a copy of the caller's context, so ContextVars cross over as with anyio.
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        tasks: list[asyncio.Task[Any]] = []
        coro = fn(*args, **kwargs)  # here, so that a wrong argument raises in the caller

        def start() -> None:
            try:
                task = self.loop.create_task(coro)
            except BaseException as exc:  # never leave the caller waiting for ever
                coro.close()
                done.set_exception(exc)
                return
            task.add_done_callback(functools.partial(_settle, done))
            task.add_done_callback(self._tasks.discard)
            self._tasks.add(task)
            tasks.append(task)

        self.loop.call_soon_threadsafe(start)
        try:
            return done.result()
        except concurrent.futures.CancelledError:
            if self.closed:
                raise UnstructuredJobsError("the JobsClient was closed during this call") from None
            raise
        except BaseException:
            if not done.done():
                # KeyboardInterrupt (or another interruption) reached this thread: cancel the
                # task in the portal and let it unwind, so nothing goes on in the background.
                self.loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])
                with contextlib.suppress(BaseException):
                    done.result(timeout=_CANCEL_GRACE)
            raise

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        try:
            self.portal.call(self._cancel_calls)  # other threads' calls end, then we close
            self.portal.call(self.client.aclose)
        finally:
            self._cm.__exit__(None, None, None)

    async def _cancel_calls(self) -> None:
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _settle(done: concurrent.futures.Future[Any], task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        done.cancel()
    elif (exc := task.exception()) is not None:
        done.set_exception(exc)
    else:
        done.set_result(task.result())


async def _construct(factory: Callable[[], AsyncJobsClient]) -> AsyncJobsClient:
    return factory()  # inside the portal's loop, so loop-bound resources belong to it


def _blocking(method: Callable[..., Any]) -> Callable[..., Any]:
    """Make the blocking twin of one `AsyncJobsClient` method."""
    name = method.__name__
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        def iterate(self: JobsClient, *args: Any, **kwargs: Any) -> Iterator[Any]:
            agen = getattr(self._runner.client, name)(*args, **kwargs)
            return _SyncIterator(self._runner, agen)

        iterate.__signature__ = _sync_signature(method)  # type: ignore[attr-defined]
        return iterate

    @functools.wraps(method)
    def call(self: JobsClient, *args: Any, **kwargs: Any) -> Any:
        return self._runner.call(getattr(self._runner.client, name), *args, **kwargs)

    call.__signature__ = _sync_signature(method)  # type: ignore[attr-defined]
    return call


def _sync_signature(method: Callable[..., Any]) -> inspect.Signature:
    sig = inspect.signature(method)
    ret = sig.return_annotation
    if isinstance(ret, str) and ret.startswith("AsyncIterator["):
        ret = "Iterator[" + ret[len("AsyncIterator[") :]
    return sig.replace(return_annotation=ret)


def public_async_methods() -> dict[str, Callable[..., Any]]:
    """The `AsyncJobsClient` methods that get a blocking twin (used by the parity test too)."""
    skip = {"aclose"}
    return {
        name: fn
        for name, fn in inspect.getmembers(AsyncJobsClient, inspect.isfunction)
        if not name.startswith("_")
        and name not in skip
        and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn))
    }


class _SyncIterator(Iterator[T]):
    """Drives an async generator living in the portal, one item per blocking call."""

    def __init__(self, runner: _Runner, agen: AsyncIterator[T]) -> None:
        self._runner = runner
        self._agen = agen
        self._done = False

    def __iter__(self) -> _SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            item: T = self._runner.call(self._agen.__anext__)
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None
        except BaseException:
            self.close()
            raise
        return item

    def close(self) -> None:
        """Stop the iteration and finalise the async generator inside the portal."""
        if not self._done:
            self._done = True
            aclose = getattr(self._agen, "aclose", None)
            if aclose is not None and not self._runner.closed:
                self._runner.call(aclose)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # best effort at garbage collection
            self.close()


if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Concatenate, ParamSpec

    P = ParamSpec("P")

    @overload
    def _typed(
        fn: Callable[Concatenate[AsyncJobsClient, P], Coroutine[Any, Any, T]],
    ) -> Callable[Concatenate[Any, P], T]: ...
    @overload
    def _typed(
        fn: Callable[Concatenate[AsyncJobsClient, P], AsyncIterator[T]],
    ) -> Callable[Concatenate[Any, P], Iterator[T]]: ...
    def _typed(fn: Any) -> Any: ...


def _mirror(cls: type[T]) -> type[T]:
    for name, method in public_async_methods().items():
        setattr(cls, name, _blocking(method))
    return cls


@_mirror
class JobsClient:
    """The blocking client: every method of `AsyncJobsClient`, without ``await``.

    Takes the same arguments as `AsyncJobsClient`. Use ``with JobsClient() as client:`` or call
    `close()`; a client that is never closed is closed at garbage collection or interpreter exit,
    best effort. See the module docstring for threads, callbacks and Ctrl-C.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("session") is not None:  # it belongs to another event loop than ours
            raise InvalidInputError(
                "JobsClient cannot use an aiohttp session: a session is bound to the event loop "
                "that made it, and JobsClient runs its own; use ssl= and trust_env= for TLS and "
                "proxies, or session_factory= to build the session inside JobsClient's loop"
            )
        self._runner = _Runner(functools.partial(AsyncJobsClient, *args, **kwargs))
        self._finalizer = weakref.finalize(self, self._runner.close)

    def __repr__(self) -> str:
        return repr(self._runner.client).replace("AsyncJobsClient", "JobsClient", 1)

    @property
    def server_url(self) -> str:
        """The API's base URL."""
        return self._runner.client.server_url

    def close(self) -> None:
        """Close the connections and stop the portal's thread. Safe to call twice."""
        self._finalizer()

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    if TYPE_CHECKING:  # the static view of what `_mirror` adds at import time
        create_job = _typed(AsyncJobsClient.create_job)
        run_workflow = _typed(AsyncJobsClient.run_workflow)
        list_jobs = _typed(AsyncJobsClient.list_jobs)
        get_job = _typed(AsyncJobsClient.get_job)
        get_job_details = _typed(AsyncJobsClient.get_job_details)
        get_job_failed_files = _typed(AsyncJobsClient.get_job_failed_files)
        cancel_job = _typed(AsyncJobsClient.cancel_job)
        download_job_output = _typed(AsyncJobsClient.download_job_output)
        download_job_output_to = _typed(AsyncJobsClient.download_job_output_to)
        wait_for_job = _typed(AsyncJobsClient.wait_for_job)
        watch_job = _typed(AsyncJobsClient.watch_job)
