"""`JobsClient`: the async client for synchronous code, through one `CallerDrivenLoop`.

Every public coroutine method of `AsyncJobsClient` gets a blocking twin, made by `_mirror` from
the async method itself (same name, signature, docstring; async iterators become iterators).
Nothing is written twice: a method added to the async client appears here by itself.

How it runs:
- one event loop per client, for the client's whole life; the aiohttp session is created and
  closed inside that loop;
- a call from a thread that runs no event loop runs the client's loop right there, in the
  calling thread, until the call ends: no hop to another thread (which cost more than a small
  request); a single-threaded script starts no thread to run it;
- calls from any number of threads are safe: a call made while another thread runs the loop is
  handed to that thread; if a call is still in flight when no caller runs the loop any more, a
  helper thread runs it until no call is left;
- calls from a thread that runs an event loop of its own (a Jupyter cell, a sync function
  called from async code) work and block that thread for the call, as ``requests`` does (the
  helper thread runs the loop for them); only a call from inside the client's own loop (a
  callback calling back) raises `SyncInAsyncContextError`;
- Ctrl-C during a call cancels the request inside the loop, and `KeyboardInterrupt` is raised
  once it has unwound; a main thread whose SIGINT handler is not Python's default always hands
  its calls to the helper thread, so that handler never runs inside the loop;
- callbacks you pass (`on_upload_progress`, `on_poll`) run in the thread that runs the loop
  (usually the caller's): keep them quick and do not call the client from them;
- after ``os.fork()`` (gunicorn ``--preload``, Celery prefork, multiprocessing's fork start
  method) the child's first call starts a fresh loop and session of its own; the parent's are
  left alone.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast, overload

from ._client import RAW_METHODS, AsyncJobsClient
from ._clock import Clock
from ._constants import (
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BUDGET,
)
from ._exceptions import InvalidInputError
from ._loop_thread import CallerDrivenLoop, EventLoopThread
from ._options import ServiceLimits, Timeout
from ._response import RawResponse
from ._secret import Secret
from ._tls import SSLOption
from ._transport import SessionFactory

T = TypeVar("T")
P = ParamSpec("P")
_ORPHANS: list[_Runner] = []  # in a forked child, the parent's runners (left untouched)


class _Runner:
    """One event loop and the async client living in it (for one process)."""

    def __init__(self, factory: Callable[[], AsyncJobsClient]) -> None:
        self.thread: EventLoopThread = CallerDrivenLoop()
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


def _blocking(method: Callable[..., Any]) -> Callable[..., Any]:
    """Make the blocking twin of one `AsyncJobsClient` method."""
    name = method.__name__
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        def iterate(self: JobsClient, *args: Any, **kwargs: Any) -> Iterator[Any]:
            runner = self._current()
            return runner.thread.iterate(getattr(runner.client, name)(*args, **kwargs))

        iterate.__signature__ = _sync_signature(method)  # type: ignore[attr-defined]
        return iterate

    @functools.wraps(method)
    def call(self: JobsClient, *args: Any, **kwargs: Any) -> Any:
        runner = self._current()
        return runner.thread.run(getattr(runner.client, name), *args, **kwargs)

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


if TYPE_CHECKING:
    from collections.abc import Coroutine

    @overload
    def _typed(
        fn: Callable[Concatenate[AsyncJobsClient, P], Coroutine[Any, Any, T]],
    ) -> Callable[Concatenate[Any, P], T]: ...
    @overload
    def _typed(
        fn: Callable[Concatenate[AsyncJobsClient, P], AsyncIterator[T]],
    ) -> Callable[Concatenate[Any, P], Iterator[T]]: ...
    def _typed(fn: Any) -> Any: ...
    def _typed_raw(
        fn: Callable[Concatenate[AsyncJobsClient, P], Coroutine[Any, Any, T]],
    ) -> Callable[Concatenate[Any, P], RawResponse[T]]: ...


def _mirror(cls: type[T]) -> type[T]:
    for name, method in public_async_methods().items():
        setattr(cls, name, _blocking(method))
    return cls


@_mirror
class JobsClient:
    """The blocking client: every method of `AsyncJobsClient`, without ``await``.

    Takes the same arguments as `AsyncJobsClient` (see its docstring), except that `session`
    must stay None: an aiohttp session belongs to one event loop, and this client's loop lives
    in its own thread (`session_factory` builds one inside it).
    Use ``with JobsClient() as client:`` or call `close()`; a client that is never closed is
    closed at garbage collection or interpreter exit, best effort. See the module docstring for
    threads, notebooks, callbacks, Ctrl-C and forks.
    """

    def __init__(
        self,
        api_key: str | None = None,
        server_url: str | None = None,
        *,
        timeout: Timeout | float = Timeout(),  # noqa: B008 - immutable value object
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        session: None = None,
        allow_insecure_http: bool = False,
        trust_env: bool = True,
        ssl: SSLOption = True,
        session_factory: SessionFactory | None = None,
        clock: Clock | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        limits: ServiceLimits = ServiceLimits(),  # noqa: B008 - immutable value object
    ) -> None:
        secret = Secret.of(api_key)  # never a plain local that a traceback could show
        del api_key
        if session is not None:  # it belongs to another event loop than ours
            raise InvalidInputError(
                "JobsClient cannot use an aiohttp session: a session is bound to the event loop "
                "that made it, and JobsClient runs its own; use ssl= and trust_env= for TLS and "
                "proxies, or session_factory= to build the session inside JobsClient's loop"
            )
        self._factory = functools.partial(
            AsyncJobsClient,
            cast("str | None", secret),  # AsyncJobsClient takes a Secret as well
            server_url,
            timeout=timeout,
            max_retries=max_retries,
            retry_budget=retry_budget,
            max_connections=max_connections,
            allow_insecure_http=allow_insecure_http,
            trust_env=trust_env,
            ssl=ssl,
            session_factory=session_factory,
            clock=clock,
            max_answer_bytes=max_answer_bytes,
            limits=limits,
        )
        self._lock = threading.Lock()
        self._runner = _Runner(self._factory)
        self._finalizer = weakref.finalize(self, self._runner.close)
        self._root = self
        self._derive: Callable[[AsyncJobsClient], AsyncJobsClient] | None = None
        self._derived: tuple[_Runner, _Runner] | None = None

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

    def with_options(
        self,
        *,
        api_key: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
        retry_budget: float | None = None,
    ) -> JobsClient:
        """A copy with other settings, sharing this client's thread and connection pool.

        Same arguments as `AsyncJobsClient.with_options`; closing either closes both.
        """
        secret = Secret.of(api_key)
        del api_key
        options: dict[str, Any] = {
            "api_key": secret,
            "timeout": timeout,
            "max_retries": max_retries,
            "retry_budget": retry_budget,
        }
        parent = self._derive

        def derive(client: AsyncJobsClient) -> AsyncJobsClient:
            return (parent(client) if parent is not None else client).with_options(**options)

        derive(self._current().client)  # bad options fail here, in the caller's thread
        copy = object.__new__(JobsClient)
        copy._root = self._root  # keeps the root (and so its thread) alive
        copy._derive = derive
        copy._derived = None
        return copy

    @property
    def with_raw_response(self) -> RawResponses:
        """Each request method, returning a `RawResponse` instead of the record.

        >>> raw = client.with_raw_response.get_job(job_id)   # doctest: +SKIP
        >>> raw.status, raw.headers["content-type"], raw.parse().status   # doctest: +SKIP
        """
        return RawResponses(self)

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
        """Close the connections and the event loop (and its helper thread, if it started).
        Safe to call twice.

        Calls still running in other threads end with `ClientClosedError`. Closing a copy
        made by `with_options` closes the client it was made from, and every other copy.
        """
        self._root._finalizer()

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    _root: JobsClient
    _derive: Callable[[AsyncJobsClient], AsyncJobsClient] | None
    _derived: tuple[_Runner, _Runner] | None

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
        list_templates = _typed(AsyncJobsClient.list_templates)
        get_template = _typed(AsyncJobsClient.get_template)
        list_workflows = _typed(AsyncJobsClient.list_workflows)
        get_workflow = _typed(AsyncJobsClient.get_workflow)
        run_job = _typed(AsyncJobsClient.run_job)
        wait_for_job = _typed(AsyncJobsClient.wait_for_job)
        watch_job = _typed(AsyncJobsClient.watch_job)


def _blocking_raw(name: str) -> Callable[..., Any]:
    def call(self: RawResponses, *args: Any, **kwargs: Any) -> Any:
        runner = self._client._current()
        method = getattr(runner.client.with_raw_response, name)
        return runner.thread.run(method, *args, **kwargs)

    method = getattr(AsyncJobsClient, name)
    call.__name__ = name
    call.__qualname__ = f"RawResponses.{name}"
    call.__doc__ = f"`JobsClient.{name}`, returning a `RawResponse` of its result."
    call.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return call


class RawResponses:
    """`JobsClient.with_raw_response`: each request method, returning a `RawResponse`."""

    def __init__(self, client: JobsClient) -> None:
        self._client = client

    if TYPE_CHECKING:
        create_job = _typed_raw(AsyncJobsClient.create_job)
        run_workflow = _typed_raw(AsyncJobsClient.run_workflow)
        list_jobs = _typed_raw(AsyncJobsClient.list_jobs)
        get_job = _typed_raw(AsyncJobsClient.get_job)
        get_job_details = _typed_raw(AsyncJobsClient.get_job_details)
        get_job_failed_files = _typed_raw(AsyncJobsClient.get_job_failed_files)
        cancel_job = _typed_raw(AsyncJobsClient.cancel_job)
        download_job_output = _typed_raw(AsyncJobsClient.download_job_output)
        download_job_output_to = _typed_raw(AsyncJobsClient.download_job_output_to)
        list_templates = _typed_raw(AsyncJobsClient.list_templates)
        get_template = _typed_raw(AsyncJobsClient.get_template)
        list_workflows = _typed_raw(AsyncJobsClient.list_workflows)
        get_workflow = _typed_raw(AsyncJobsClient.get_workflow)


for _name in RAW_METHODS:
    setattr(RawResponses, _name, _blocking_raw(_name))
