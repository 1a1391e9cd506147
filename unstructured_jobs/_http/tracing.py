"""OpenTelemetry: one span per operation, made around the transport's one retry loop.

When OpenTelemetry's trace API is in use (``pip install 'unstructured-jobs[otel]'``, or any
``opentelemetry-api``) and a tracer provider is set, every request the clients send (a call
such as `AsyncJobsClient.get_job`, with all its retries) is one span of kind CLIENT, named
``unstructured_jobs.<operation>`` (``unstructured_jobs.get_job``, ``...create_job``; the
operation is told by the request's method and path, so every download method's span is
``...download_job_output``), with:

- ``http.request.method``, ``server.address``, ``server.port``, ``url.full`` (query included;
  never a header, so never the API key, which travels in one), and the last answer's
  ``http.response.status_code``;
- ``http.request.resend_count``: the retries made (0 when the first attempt was answered);
- ``unstructured_jobs.job_id`` where there is one (in the path, or the job `create_job` and
  `run_workflow` made), and ``unstructured_jobs.request_id``, the server's id of the last
  answer;
- each attempt as a span event ``unstructured_jobs.attempt`` (its number, status or
  ``error.type``, elapsed ms, request id) and each decision to retry as an event
  ``unstructured_jobs.retry`` (the delay and the reason): events, not child spans, so that a
  trace shows one span per call, as a user thinks of it;
- on failure, status ``ERROR`` and ``error.type`` (the exception's class, e.g.
  ``unstructured_jobs.NotFoundError``) and an ``exception`` event with the type and message
  only (no stack trace; no frame's locals). A cancellation (a wait that gave up) sets
  ``error.type`` but leaves the status unset.

Spans nest under whatever span is current where the call is made; for `JobsClient` too, as
the loop thread runs each call in a copy of the caller's context. Multi-request helpers
(`wait_for_job`, `run_job`, a batch) make no span of their own: wrap them in yours.

Without OpenTelemetry this is a no-op costing a dictionary lookup per request: the API is never
imported here. It is used only once the application has imported ``opentelemetry.trace``
(setting a provider requires it), and a check of the global provider per request (a few
microseconds) skips everything until one is set.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

from .._constants import API_PREFIX, LOGGER_NAME
from .._core import Request
from .._models import JobInformation
from .._version import __version__

__all__ = ["note_attempt", "note_retry", "operation_of", "traced"]

T = TypeVar("T")

_TRACE_MODULE = "opentelemetry.trace"
_current: ContextVar[Any] = ContextVar("unstructured_jobs_span", default=None)
_tracers: dict[int, tuple[Any, Any]] = {}  # id(provider) -> (provider, its tracer)

# (method, path shape) -> operation; "{id}" stands for any one segment.
_OPERATIONS: dict[tuple[str, str], str] = {
    ("POST", "jobs/"): "create_job",
    ("GET", "jobs/"): "list_jobs",
    ("GET", "jobs/{id}"): "get_job",
    ("GET", "jobs/{id}/details"): "get_job_details",
    ("GET", "jobs/{id}/failed-files"): "get_job_failed_files",
    ("GET", "jobs/{id}/file-status"): "get_job_file_status",
    ("POST", "jobs/{id}/cancel"): "cancel_job",
    ("GET", "jobs/{id}/download"): "download_job_output",
    ("GET", "templates/"): "list_templates",
    ("GET", "templates/{id}"): "get_template",
    ("GET", "workflows/"): "list_workflows",
    ("GET", "workflows/{id}"): "get_workflow",
    ("POST", "workflows/{id}/run"): "run_workflow",
    ("POST", "notifications/channels"): "create_notification_channel",
    ("GET", "notifications/channels"): "list_notification_channels",
    ("GET", "notifications/channels/{id}"): "get_notification_channel",
    ("PATCH", "notifications/channels/{id}"): "update_notification_channel",
    ("DELETE", "notifications/channels/{id}"): "delete_notification_channel",
    ("POST", "notifications/channels/{id}/verify"): "verify_notification_channel",
    ("GET", "notifications"): "list_notifications",
    ("GET", "notifications/unread-count"): "get_unread_notification_count",
    ("POST", "notifications/mark-read"): "mark_notifications_read",
    ("GET", "notifications/{id}"): "get_notification",
}
_FIXED = {"details", "failed-files", "file-status", "cancel", "download", "run", "channels"}
_FIXED |= {"verify", "unread-count", "mark-read", "notifications", ""}


def operation_of(method: str, path: str) -> tuple[str, str | None]:
    """The client operation a request is (``get_job``), and the job id in its path if any."""
    segments = path.removeprefix(API_PREFIX + "/").split("/")
    if len(segments) > 3 and segments[0] == "workflows" and segments[2] == "notifications":
        segments = segments[2:]  # a workflow's channels: the same operations
    shape = "/".join(s if i == 0 or s in _FIXED else "{id}" for i, s in enumerate(segments))
    name = _OPERATIONS.get((method, shape), "request")
    job_id = unquote(segments[1]) if segments[0] == "jobs" and len(segments) > 1 else None
    return name, job_id or None


def _tracer() -> Any:
    """The tracer of the global provider, or None: no OpenTelemetry, or no provider set."""
    trace = sys.modules.get(_TRACE_MODULE)
    if trace is None:  # never imported (or blocked): nothing can be listening
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    known = _tracers.get(id(provider))
    if known is None or known[0] is not provider:
        known = (provider, provider.get_tracer(LOGGER_NAME, __version__))
        _tracers[id(provider)] = known
    return known[1]


def traced(base_url: str, request: Request, call: Awaitable[T]) -> Awaitable[T]:
    """`call` (all attempts of `request`) inside its operation's span; `call` itself when no
    tracer provider is set."""
    tracer = _tracer()
    if tracer is None:
        return call
    return _in_span(tracer, base_url, request, call)


async def _in_span(tracer: Any, base_url: str, request: Request, call: Awaitable[T]) -> T:
    trace = sys.modules[_TRACE_MODULE]
    name, job_id = operation_of(request.method, request.path)
    url = base_url + request.path
    if request.params:
        url += "?" + urlencode(request.params)
    parts = urlsplit(base_url)
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "server.address": parts.hostname or "",
        "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        "url.full": url,
    }
    if job_id is not None:
        attributes["unstructured_jobs.job_id"] = job_id
    span = tracer.start_span(
        f"{LOGGER_NAME}.{name}", kind=trace.SpanKind.CLIENT, attributes=attributes
    )
    state = _State(span)
    token = _current.set(state)
    try:
        with trace.use_span(
            span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            result = await call
    except BaseException as exc:
        kind = _error_type(exc)
        span.set_attribute("error.type", kind)
        if isinstance(exc, Exception):
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{kind}: {exc}"))
            # Type and message only: a formatted stack (and its chain) is not ours to vouch for.
            span.add_event("exception", {"exception.type": kind, "exception.message": str(exc)})
        raise
    else:
        if isinstance(result, JobInformation) and job_id is None:
            span.set_attribute("unstructured_jobs.job_id", result.id)
        return result
    finally:
        _current.reset(token)
        span.set_attribute("http.request.resend_count", max(state.attempts - 1, 0))
        span.end()


class _State:
    """The span of the operation under way, and how many attempts it made."""

    __slots__ = ("attempts", "span")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.attempts = 0


def note_attempt(
    attempt: int,
    status: int | None,
    elapsed: float,
    request_id: str | None,
    error: BaseException | None = None,
) -> None:
    """Record one attempt on the current operation's span (nothing when there is none)."""
    state = _current.get()
    if state is None:
        return
    state.attempts = attempt
    span = state.span
    event: dict[str, Any] = {
        "unstructured_jobs.attempt": attempt,
        "unstructured_jobs.elapsed_ms": round(elapsed * 1000, 1),
    }
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        event["http.response.status_code"] = status
    if error is not None:
        event["error.type"] = _error_type(error)
    if request_id:
        span.set_attribute("unstructured_jobs.request_id", request_id)
        event["unstructured_jobs.request_id"] = request_id
    span.add_event("unstructured_jobs.attempt", event)


def note_retry(attempt: int, delay: float, reason: str) -> None:
    """Record, on the current operation's span, that attempt `attempt` failed and is retried."""
    state = _current.get()
    if state is None:
        return
    state.span.add_event(
        "unstructured_jobs.retry",
        {
            "unstructured_jobs.attempt": attempt,
            "unstructured_jobs.retry_delay_s": delay,
            "unstructured_jobs.retry_reason": reason,
        },
    )


def _error_type(exc: BaseException) -> str:
    """The class of `exc`, fully qualified (ours by their public name)."""
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    if module.startswith(LOGGER_NAME + "."):
        module = LOGGER_NAME
    return f"{module}.{cls.__qualname__}"
