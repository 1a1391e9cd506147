"""The package's log: one line per HTTP attempt, and the ``UNSTRUCTURED_JOBS_LOG`` switch.

Every attempt the transport's retry loop makes is logged once, at INFO, on the
``unstructured_jobs`` logger (by `log_attempt`, called from `_http.transport` where the event hooks
get the same values)::

    GET /api/v1/jobs/?status=FAILED -> 200 (127.0.0.1:8765, attempt 1, 12 ms, request id 4f1c)
    POST /api/v1/jobs/ -> failed: ClientConnectorError: ... (127.0.0.1:8765, attempt 2, 3 ms)

The same values are on the record as ``extra`` fields, for structured handlers (JSON logs):
``http_method``, ``http_host``, ``http_path``, ``http_query``, ``http_status`` (None when no
answer came), ``attempt``, ``elapsed_ms`` and ``request_id`` (None when the server sent none).
Never the API key: no header is logged, and URLs carry no credentials.

Silent by default, as a library should be. ``UNSTRUCTURED_JOBS_LOG=info`` (these lines and the
retry decisions) or ``=debug`` (everything) adds a handler writing to stderr, with no code,
as ``OPENAI_LOG`` does for openai-python; it is read when the client's transport is first
imported. Any other value is ignored with a warning.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urlsplit

from .._constants import LOGGER_NAME

__all__ = ["ENV_LOG", "configure_from_environment", "log_attempt", "without_environment_handler"]

ENV_LOG = "UNSTRUCTURED_JOBS_LOG"
"""The environment variable that turns the log on: ``debug`` or ``info``."""
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

log = logging.getLogger(LOGGER_NAME)


class _EnvironmentHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler ``UNSTRUCTURED_JOBS_LOG`` installs (at most one per process)."""


def configure_from_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """Install the stderr handler when ``UNSTRUCTURED_JOBS_LOG`` asks for it; whether it did.

    Idempotent: a second call (or a second import) adds no second handler.
    """
    value = environ.get(ENV_LOG, "").strip().lower()
    if not value:
        return False
    level = _LEVELS.get(value)
    if level is None:
        warnings.warn(
            f"{ENV_LOG}={value!r} is not a log level this package knows (debug or info): ignored",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    if not any(isinstance(h, _EnvironmentHandler) for h in log.handlers):
        handler = _EnvironmentHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        log.addHandler(handler)
    log.setLevel(level)
    return True


def without_environment_handler() -> None:
    """Remove the handler ``UNSTRUCTURED_JOBS_LOG`` installed (the CLI's ``--debug`` has its
    own, which keeps lines above the progress bars), so that no line is printed twice."""
    log.handlers[:] = [h for h in log.handlers if not isinstance(h, _EnvironmentHandler)]


def log_attempt(
    method: str,
    url: str,
    params: Sequence[tuple[str, str]] | None,
    status: int | None,
    attempt: int,
    elapsed: float,
    request_id: str | None,
    *,
    error: BaseException | None = None,
) -> None:
    """Log one attempt (an answer with `status`, or `error` when none came) at INFO."""
    if not log.isEnabledFor(logging.INFO):
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    query = urlencode(params) if params else ""
    target = f"{parts.path}?{query}" if query else parts.path
    elapsed_ms = round(elapsed * 1000, 1)
    # Never %r of an aiohttp error: its repr can carry the request's headers (the key).
    outcome = str(status) if error is None else f"failed: {type(error).__name__}: {error}"
    rid = f", request id {request_id}" if request_id else ""
    log.info(
        "%s %s -> %s (%s, attempt %d, %.0f ms%s)",
        method,
        target,
        outcome,
        host,
        attempt,
        elapsed_ms,
        rid,
        extra={
            "http_method": method,
            "http_host": host,
            "http_path": parts.path,
            "http_query": query,
            "http_status": status,
            "attempt": attempt,
            "elapsed_ms": elapsed_ms,
            "request_id": request_id,
        },
    )


configure_from_environment()
