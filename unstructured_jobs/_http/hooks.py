"""Event hooks (``event_hooks=`` of both clients): what each attempt sends, gets and retries.

As in httpx, hooks are lists of callables per event, sync or async::

    def count(event: RetryEvent) -> None: ...

    AsyncJobsClient(event_hooks={"request": [...], "response": [...], "retry": [count]})

They are called by the transport's one retry loop, for every attempt of every request:

- ``"request"``: a `RequestEvent` just before an attempt is sent. Its `headers` are the
  headers the client sets (not the API key: a hook never sees it); a hook may add or change
  headers there, and they are sent with that attempt. The key's header cannot be set.
- ``"response"``: a `ResponseEvent` once an answer's status and headers arrived (errors
  included), before its body is read.
- ``"retry"``: a `RetryEvent` when a failed attempt is about to be retried, before the wait.

An async hook is awaited. Hooks run on the event loop's thread (for `JobsClient`, the thread
running its loop, usually the caller's): keep them quick, and never call the client from one.
An exception a hook raises ends the request and reaches the caller as it is (not retried).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import TypedDict, TypeVar

import attrs

from .._exceptions import InvalidInputError

__all__ = ["EventHooks", "Hooks", "RequestEvent", "ResponseEvent", "RetryEvent", "fire"]

E = TypeVar("E")


@attrs.frozen
class RequestEvent:
    """An attempt about to be sent (the ``"request"`` hook's argument)."""

    method: str
    """``GET``, ``POST``, ..."""
    url: str
    """The whole URL, query included."""
    headers: MutableMapping[str, str]
    """The headers the client sets, without the API key; changes made here are sent."""
    attempt: int
    """1 for the first attempt of the request, 2 for its first retry, ..."""


@attrs.frozen
class ResponseEvent:
    """An answer's status and headers (the ``"response"`` hook's argument)."""

    method: str
    url: str
    """The whole URL, query included."""
    status: int
    headers: Mapping[str, str]
    """The answer's headers (read-only)."""
    request_id: str | None
    """The server's request id (``x-request-id`` and similar), when it sent one."""
    attempt: int
    """1 for the first attempt of the request, 2 for its first retry, ..."""
    elapsed: float
    """Seconds from the start of the attempt to the answer's headers."""


@attrs.frozen
class RetryEvent:
    """A failed attempt that will be retried (the ``"retry"`` hook's argument)."""

    method: str
    url: str
    """The whole URL, query included."""
    attempt: int
    """The attempt that failed: 1 for the first."""
    max_attempts: int
    """The attempts the request may make in all (``max_retries + 1``)."""
    delay: float
    """Seconds the client waits before the next attempt (the server's ``Retry-After`` when
    it gave one)."""
    reason: str
    """Why, for people: ``HTTP 429``, ``HTTP 503``, ``could not connect``, ``connection
    lost``, ``connect timeout``, ``read timeout``, ``upload stalled``, ``invalid answer``."""
    status: int | None
    """The HTTP status that caused the retry, or None when no answer arrived."""
    kind: str
    """Why, for programs: ``status`` (see `status`), ``not_sent``, ``connect_timeout``,
    ``lost``, ``read_timeout``, ``write_timeout`` or ``invalid_answer``."""


RequestHook = Callable[[RequestEvent], object]
ResponseHook = Callable[[ResponseEvent], object]
RetryHook = Callable[[RetryEvent], object]


class EventHooks(TypedDict, total=False):
    """The ``event_hooks=`` argument: a list of hooks per event (each may be left out)."""

    request: Sequence[RequestHook]
    response: Sequence[ResponseHook]
    retry: Sequence[RetryHook]


@attrs.frozen
class Hooks:
    """The hooks of one client, checked."""

    request: tuple[RequestHook, ...] = ()
    response: tuple[ResponseHook, ...] = ()
    retry: tuple[RetryHook, ...] = ()

    @classmethod
    def of(cls, given: EventHooks | Mapping[str, Iterable[object]] | None) -> Hooks:
        """Check `given` (a mapping of event names to lists of callables)."""
        if given is None:
            return NO_HOOKS
        if not isinstance(given, Mapping):
            raise InvalidInputError(
                f"event_hooks must be a dict of lists of callables, not {type(given).__name__}"
            )
        lists: dict[str, tuple[object, ...]] = {}
        for name, hooks in given.items():
            if name not in ("request", "response", "retry"):
                raise InvalidInputError(
                    f"event_hooks: unknown event {name!r} (request, response or retry)"
                )
            if callable(hooks) or isinstance(hooks, str | bytes) or not isinstance(hooks, Iterable):
                raise InvalidInputError(f"event_hooks[{name!r}] must be a list of callables")
            lists[name] = tuple(hooks)
            for hook in lists[name]:
                if not callable(hook):
                    raise InvalidInputError(
                        f"event_hooks[{name!r}] holds {type(hook).__name__}, not a callable"
                    )
        return cls(**lists)  # type: ignore[arg-type]  # checked callables


NO_HOOKS = Hooks()


async def fire(hooks: Sequence[Callable[[E], object]], event: E) -> None:
    """Call each hook with `event`, awaiting what an async one returns."""
    for hook in hooks:
        result = hook(event)
        if inspect.isawaitable(result):
            await result
