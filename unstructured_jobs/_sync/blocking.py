"""What every `JobsClient` method goes through: the client's event loop thread.

`JobsClient` itself (``_sync.py``) is written by ``scripts/generate_sync.py`` from
`AsyncJobsClient`: one blocking method per async one, each a call of `BlockingClient._call`.

- One `EventLoopThread` per client, for the client's whole life; the async client (and its
  aiohttp session) is created and closed inside that loop.
- After ``os.fork()`` (gunicorn ``--preload``, Celery prefork, multiprocessing's fork start
  method) the child's first call starts a fresh loop and async client of its own; the
  parent's are left alone.
- An `UnstructuredJobsError` raised by a call loses the frames inside the loop (the transport's
  internals, the loop thread's hand-over): the traceback shows the user's call and the error.
  With the ``unstructured_jobs`` logger enabled for DEBUG, every frame is kept.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar, cast

from .._client import AsyncJobsClient
from .._clock import Clock
from .._constants import LOGGER_NAME
from .._exceptions import InvalidInputError, UnstructuredJobsError
from .._secret import Secret
from .loop_thread import EventLoopThread

if TYPE_CHECKING:
    from .._client import AsyncRawResponses

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger(LOGGER_NAME)
_ORPHANS: list[_Runner] = []  # in a forked child, the parent's runners (left untouched)


class _Runner:
    """One event loop thread and the async client living in it (for one process)."""

    def __init__(self, factory: Callable[[], AsyncJobsClient]) -> None:
        self.thread = EventLoopThread()
        try:
            self.client: AsyncJobsClient = self.thread.run(_construct, factory)
        except BaseException:
            self.thread.close()
            raise

    @classmethod
    def view(cls, thread: EventLoopThread, client: AsyncJobsClient) -> _Runner:
        """Another async client (a `with_options` copy) in an existing runner's thread."""
        runner = object.__new__(cls)
        runner.thread = thread
        runner.client = client
        return runner

    def close(self) -> None:
        self.thread.close(self.client.aclose)


async def _construct(factory: Callable[[], AsyncJobsClient]) -> AsyncJobsClient:
    return factory()  # inside the loop, so loop-bound resources belong to it


class BlockingClient:
    """The machinery of `JobsClient` (its methods are generated: see ``_sync/client.py``)."""

    _root: BlockingClient
    _derive: Callable[[AsyncJobsClient], AsyncJobsClient] | None
    _derived: tuple[_Runner, _Runner] | None

    def _start(self, key: Secret | None, *args: Any, session: None, **options: Any) -> None:
        """`__init__`: the async client's arguments, the key already a `Secret`."""
        if session is not None:  # it belongs to another event loop than ours
            raise InvalidInputError(
                "JobsClient cannot use an aiohttp session: a session is bound to the event loop "
                "that made it, and JobsClient runs its own; use ssl= and trust_env= for TLS and "
                "proxies, or session_factory= to build the session inside JobsClient's loop"
            )
        # AsyncJobsClient takes a Secret as well as a str.
        factory = functools.partial(AsyncJobsClient, cast("str | None", key), *args, **options)
        self._factory = factory
        self._lock = threading.Lock()
        self._runner = _Runner(factory)
        self._finalizer = weakref.finalize(self, self._runner.close)
        self._root = self
        self._derive = None
        self._derived = None

    def _current(self) -> _Runner:
        """This process's runner: a fresh one (lazily) in a child forked after it started.

        A copy made by `with_options` runs in its root client's thread, with the root's async
        client re-derived after a fork.
        """
        if self._derive is not None:
            base = self._root._current()
            derived = self._derived
            if derived is None or derived[0] is not base:
                view = _Runner.view(base.thread, self._derive(base.client))
                derived = self._derived = (base, view)
            return derived[1]
        runner = self._runner
        if runner.thread.forked and not runner.thread.closed:
            with self._lock:
                runner = self._runner
                if runner.thread.forked:
                    self._finalizer.detach()  # the parent's thread is not ours to stop
                    _ORPHANS.append(runner)  # nor its session: never finalised in this process
                    runner = self._runner = _Runner(self._factory)
                    self._finalizer = weakref.finalize(self, runner.close)
        return runner

    def _call(
        self,
        fn: Callable[Concatenate[AsyncJobsClient, P], Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``await fn(async_client, ...)`` in the loop, for a generated method."""
        runner = self._current()
        try:
            return runner.thread.run(fn, runner.client, *args, **kwargs)
        except UnstructuredJobsError as exc:
            if not log.isEnabledFor(logging.DEBUG):
                # The frames inside the loop are ours, not the caller's: a bare raise of an
                # exception without a traceback adds none of this frame either.
                exc.with_traceback(None)
            raise

    def _call_raw(
        self,
        fn: Callable[Concatenate[AsyncRawResponses, P], Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``await fn(async_client.with_raw_response, ...)`` in the loop (`RawResponses`)."""
        runner = self._current()
        try:
            return runner.thread.run(fn, runner.client.with_raw_response, *args, **kwargs)
        except UnstructuredJobsError as exc:
            if not log.isEnabledFor(logging.DEBUG):
                exc.with_traceback(None)
            raise

    def _iterate(
        self,
        fn: Callable[Concatenate[AsyncJobsClient, P], AsyncIterator[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Iterator[T]:
        runner = self._current()
        return runner.thread.iterate(fn(runner.client, *args, **kwargs))

    def _with_options(self, *, api_key: Secret | None, **options: Any) -> Self:
        """`with_options`: a copy sharing this client's thread (and so its connections)."""
        parent = self._derive

        def derive(client: AsyncJobsClient) -> AsyncJobsClient:
            base = parent(client) if parent is not None else client
            return base.with_options(api_key=cast("str | None", api_key), **options)

        derive(self._current().client)  # bad options fail here, in the caller's thread
        copy = object.__new__(type(self))
        copy._root = self._root  # keeps the root (and so its thread) alive
        copy._derive = derive
        copy._derived = None
        return copy

    def __repr__(self) -> str:
        try:
            return repr(self._root._runner.client).replace("AsyncJobsClient", "JobsClient", 1)
        except AttributeError:  # half-built (a refused argument): error reporters repr locals
            return "JobsClient(api_key='***')"

    @property
    def server_url(self) -> str:
        """The API's base URL."""
        return self._root._runner.client.server_url

    @property
    def clock(self) -> Clock:
        """The client's `Clock`."""
        return self._root._runner.client.clock

    def call_async(
        self,
        fn: Callable[Concatenate[AsyncJobsClient, P], Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``await fn(async_client, *args, **kwargs)`` in this client's event loop.

        `async_client` is the `AsyncJobsClient` this client wraps; the call blocks like any
        other method (Ctrl-C cancels it). Use it to run async helpers from sync code, e.g.
        ``client.call_async(submit_batch, ["docs/"], template_id="...")``.
        """
        runner = self._current()
        return runner.thread.run(fn, runner.client, *args, **kwargs)

    def close(self) -> None:
        """Close the connections and stop the client's event loop thread. Safe to call twice.

        Calls still running in other threads end with `ClientClosedError`. Closing a copy
        made by `with_options` closes the client it was made from, and every other copy.
        """
        self._root._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
