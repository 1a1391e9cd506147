"""The exception ladder. Every error the package raises derives from `UnstructuredJobsError`::

    UnstructuredJobsError
    ├── InvalidInputError (ValueError)         bad input found before any byte was sent
    │   ├── InvalidIdError                     empty / not a UUID / path-like id
    │   ├── InputFileError                     every bad input file, listed at once
    │   ├── ServiceLimitError                  over a `ServiceLimits` limit (11 files, a big file)
    │   └── UnsafePathError                    a name would land outside the output folder
    ├── LocalFileError                         a local file could not be written (a download)
    ├── InsecureTransportError                 the key would travel over plain http to a remote host
    ├── SyncInAsyncContextError (RuntimeError) a blocking call from the client's own loop thread
    ├── ClientClosedError (RuntimeError)       the client was closed (before or during the call)
    ├── ForkedProcessError (RuntimeError)      a loop thread used in a process forked after it began
    ├── APIError                               talking to the API failed; carries method and url
    │   ├── APIConnectionError                 no HTTP answer (refused, reset, dropped)
    │   │   ├── APITimeoutError (TimeoutError) connect, read-inactivity or upload-stall timeout
    │   │   └── CertificateVerifyError         the server's certificate is not trusted; not retried
    │   ├── AmbiguousRequestError              the request may have been applied; not retried
    │   │   └── JobMayExistError               ... and it was one that creates a job
    │   ├── APIStatusError                     an HTTP error status; carries status, body, headers
    │   │   ├── BadRequestError                400
    │   │   ├── AuthenticationError            401
    │   │   ├── QuotaExceededError             402 (the account's quota is spent)
    │   │   ├── PermissionDeniedError          403
    │   │   ├── NotFoundError                  404
    │   │   ├── ConflictError                  409
    │   │   │   └── WorkflowBusyError          run_workflow: a job of it runs; none was started
    │   │   ├── RequestTooLargeError           413 (with the request's `files`)
    │   │   ├── UnprocessableEntityError       422 (with the parsed `errors` list)
    │   │   ├── RateLimitError                 429 (with `retry_after`)
    │   │   └── InternalServerError            5xx
    │   └── ResponseValidationError            a 2xx answer that is not what the contract says
    │       └── AnswerTooLargeError            ... because it is larger than `max_answer_bytes`
    └── WaitTimeoutError (TimeoutError)        wait_for_job gave up; carries the last job seen

``except APIError`` catches every failure that came from talking to the API, and nothing the
client refused before sending (`InvalidInputError` and its kind never reach the network).

No message, repr or attribute here ever holds the API key: errors are built from the request's
method and URL (the key travels in a header) and from the response, and header mappings are
passed through `redact_headers` first. Text that may quote the key (log lines, tracebacks) goes
through `redact_secrets`.

Every error pickles (process pools, Celery, Dask, Ray): `reduce_error` rebuilds it without
calling ``__init__`` (whose arguments are keyword-only), from its `args` and its attributes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._constants import API_KEY_HEADER

if TYPE_CHECKING:
    from ._models import JobInformation, ValidationErrorDetail

_SENSITIVE_HEADERS = frozenset({API_KEY_HEADER, "authorization", "cookie", "set-cookie"})


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of `headers` with credentials replaced by ``"***"``."""
    return {k: ("***" if k.lower() in _SENSITIVE_HEADERS else v) for k, v in headers.items()}


LONG_SECRET = 12
"""Secrets at least this long are redacted wherever they appear, shorter ones as tokens only."""
_KEY_CHAR = r"[\w-]"


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every occurrence of each secret (an API key) replaced by ``***``.

    The rule: a secret of `LONG_SECRET` (12) characters or more is replaced wherever it
    appears, even inside a longer word (``\\nKEY`` in a repr). A shorter one, typical of tests
    and the emulator (``k``, ``key``, ``test``), is replaced only where it stands as a whole
    token: neither preceded nor followed by a character that can be part of a key, that is a
    letter or digit (any script), ``_`` or ``-``. So with the key ``k``, ``api_key=k``,
    ``'k'`` and ``?api_key=k&x=1`` are redacted while ``Traceback`` and ``unstructured-jobs``
    keep their spelling. Empty secrets are ignored.
    """
    pattern = _secrets_pattern(frozenset(s for s in secrets if s))
    return text if pattern is None else pattern.sub("***", text)


@functools.lru_cache(maxsize=32)
def _secrets_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    if not secrets:
        return None
    # Longest first, so that a secret containing another one is replaced whole.
    ordered = sorted(secrets, key=lambda s: (-len(s), s))
    long = [re.escape(s) for s in ordered if len(s) >= LONG_SECRET]
    short = [re.escape(s) for s in ordered if len(s) < LONG_SECRET]
    if short:
        long.append(f"(?<!{_KEY_CHAR})(?:{'|'.join(short)})(?!{_KEY_CHAR})")
    return re.compile("|".join(long))


def reduce_error(self: BaseException) -> tuple[Any, ...]:
    """``__reduce__`` for errors whose ``__init__`` cannot be called with ``*self.args``.

    Pickle rebuilds an exception as ``cls(*self.args)`` by default, which fails for keyword-only
    constructors: a worker's 404 then broke a ``ProcessPoolExecutor``. This rebuilds it from its
    class, `args` and ``__dict__`` (every attribute) instead, without calling ``__init__``, so
    it also works for subclasses with their own constructor. Like any pickled exception it
    loses ``__traceback__``, ``__cause__`` and ``__context__``; attributes such as `cause` stay.
    """
    return _restore_error, (type(self), self.args), self.__dict__ or None


def _restore_error(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    error = cls.__new__(cls, *args)
    error.args = args  # OSError subclasses with their own __init__ leave it empty in __new__
    return error


class UnstructuredJobsError(Exception):
    """Base class of every error raised by unstructured-jobs.

    Every instance pickles with its type, message, `args` and attributes (see `reduce_error`).
    """

    __reduce__ = reduce_error


class InvalidInputError(UnstructuredJobsError, ValueError):
    """The call's arguments are wrong; nothing was sent."""


class InvalidIdError(InvalidInputError):
    """An id (job, workflow) is empty, not a string or not a UUID; nothing was sent."""


class InputFileError(InvalidInputError):
    """One or more input files cannot be uploaded; nothing was sent.

    `problems` lists every bad input as ``(name, reason)`` pairs, not only the first one.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        lines = "; ".join(f"{name}: {reason}" for name, reason in self.problems)
        super().__init__(f"{len(self.problems)} input file(s) cannot be uploaded: {lines}")


class ServiceLimitError(InvalidInputError):
    """A request breaks one of the client's `ServiceLimits`; nothing was sent.

    `limit` names it (``"files_per_job"``, ``"bytes_per_file"``), `allowed` is its value and
    `found` what the request has. The message says how to lift it.
    """

    def __init__(self, message: str, *, limit: str, allowed: int, found: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.allowed = allowed
        self.found = found


class UnsafePathError(InvalidInputError):
    """A file name (often derived from server data) would land outside the output folder.

    Nothing is written. The batch engine records it on the file instead of raising it.
    """


class LocalFileError(UnstructuredJobsError):
    """A local file could not be written (disk full, a folder in the way, no permission).

    Not retried: it is not the network's fault. `path` is the file; the `OSError` is the cause.
    """

    def __init__(self, message: str, *, path: Any) -> None:
        super().__init__(message)
        self.path = path


class InsecureTransportError(UnstructuredJobsError):
    """The API key would be sent over plain http to a host that is not loopback."""


class SyncInAsyncContextError(UnstructuredJobsError, RuntimeError):
    """A blocking call was made from the client's own event loop thread; it would deadlock.

    This happens when a callback (``on_upload_progress``, ``on_poll``, a batch observer) calls
    the `JobsClient` back. Calls from any other thread work, including one that runs an event
    loop of its own (a notebook cell).
    """


class ClientClosedError(UnstructuredJobsError, RuntimeError):
    """The client was closed, before the call or while it was running."""


class ForkedProcessError(UnstructuredJobsError, RuntimeError):
    """An event loop thread started before ``os.fork()`` was used in the child process.

    `JobsClient` does not raise it (it starts a fresh loop in the child); the package's own
    loop thread does (the emulator's ``running_in_thread``): start it after the fork.
    """


class APIError(UnstructuredJobsError):
    """A failure that came from talking to the API: a status, no answer, or an unusable answer.

    Carries the request's `method` and `url` (never the key), and `request_id` when the server
    sent one (quote it to the vendor's support).
    """

    request_id: str | None = None

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke before an answer arrived."""


class CertificateVerifyError(APIConnectionError):
    """The server's TLS certificate could not be verified; nothing was sent, and no retry made.

    The message gives the reason (self-signed, unknown CA, expired, host name mismatch) and how
    to trust a private CA: ``ssl="/path/to/ca.pem"``, ``$SSL_CERT_FILE`` or
    ``$REQUESTS_CA_BUNDLE``, or ``--ca-bundle`` on the command line.
    """


class APITimeoutError(APIConnectionError, TimeoutError):
    """A timeout fired. `phase` is ``"connect"``, ``"read"`` or ``"write"`` (upload stalled)."""

    def __init__(self, message: str, *, method: str, url: str, phase: str) -> None:
        super().__init__(message, method=method, url=url)
        self.phase = phase


class AmbiguousRequestError(APIError):
    """The request was sent in full, but no usable answer came back.

    The server may or may not have applied it, so the client did not retry (a retry could apply
    it twice). `cause` is the underlying error (a connection error, a timeout, or a 500/502/504
    `APIStatusError`); `status` is its HTTP status when there was one.
    """

    def __init__(
        self, message: str, *, method: str, url: str, cause: UnstructuredJobsError
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.cause = cause
        self.status: int | None = getattr(cause, "status", None)
        self.request_id: str | None = getattr(cause, "request_id", None)


class JobMayExistError(AmbiguousRequestError):
    """A job-creating request (create_job, run_workflow) may have created a job.

    Carries what is known to reconcile it: `input_file_names` (the names sent, in order),
    `request_data` (the JSON sent, for create_job) and `sent_at` (client clock, UTC, just
    before sending). List jobs and match them before submitting again; the batch engine does this.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        cause: UnstructuredJobsError,
        input_file_names: Sequence[str] = (),
        request_data: str | None = None,
        sent_at: Any = None,
    ) -> None:
        super().__init__(message, method=method, url=url, cause=cause)
        self.input_file_names = list(input_file_names)
        self.request_data = request_data
        self.sent_at = sent_at


class APIStatusError(APIError):
    """The server answered with an error status.

    Attributes: `status`, `body` (parsed JSON when it was JSON, else the text), `detail` (the
    FastAPI ``detail`` field when present), `headers` (redacted), `request_id`, `method`, `url`.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int,
        body: Any,
        headers: Mapping[str, str],
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        self.body = body
        self.headers = redact_headers(headers)
        self.request_id = request_id
        self.detail: Any = body.get("detail") if isinstance(body, dict) else None


class BadRequestError(APIStatusError):
    """400: the server rejected the request (for example a service limit)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class QuotaExceededError(APIStatusError):
    """402: the account's API quota is spent ("Insufficient API quota"); not retried.

    A batch stops at once, as for a wrong key: files not sent stay pending, and a run of the
    same batch once the quota is restored sends each of them exactly once.
    """


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such job, file or workflow."""


class ConflictError(APIStatusError):
    """409: the resource is not in a state that allows this."""


class WorkflowBusyError(ConflictError):
    """run_workflow: the workflow already has a job running, so the server started none.

    The service says so with a success status and ``{"detail": "There is a running job in
    progress. No new job run."}`` (a 409 saying it reads the same); `status` is the status it
    used. No job was created: this is not a `JobMayExistError`. `workflow_id` is the workflow
    run, `running_job_id` the running job's id when the server gives it (else None: find it
    with ``list_jobs(workflow_id=...)``). Wait for that job or cancel it, then run again.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int,
        body: Any,
        headers: Mapping[str, str],
        request_id: str | None = None,
        workflow_id: str | None = None,
        running_job_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            method=method,
            url=url,
            status=status,
            body=body,
            headers=headers,
            request_id=request_id,
        )
        self.workflow_id = workflow_id
        self.running_job_id = running_job_id


class RequestTooLargeError(APIStatusError):
    """413: the server (or a proxy before it) refused the request's body as too large.

    `files` names the request's input files (with their sizes) when it was a job-creating
    request. A file over the server's limit is refused again until it is made smaller: lower
    ``ServiceLimits(bytes_per_file=...)`` (a batch: ``max_file_bytes``, command line
    ``--max-file-size``) to the server's limit so that such files are refused before sending.
    """

    files: list[str]

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.files = []


class UnprocessableEntityError(APIStatusError):
    """422: the request failed the server's validation; `errors` holds the parsed detail list."""

    errors: list[ValidationErrorDetail]


class RateLimitError(APIStatusError):
    """429: too many requests; `retry_after` holds the server's hint in seconds, if any."""

    retry_after: float | None = None


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


class ResponseValidationError(APIError):
    """A success answer that does not match the contract (bad JSON, wrong type, missing field).

    `messages` names each offending field (``"required field missing @ $.created_at"``);
    `snippet` is the first characters of the body.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int,
        snippet: str,
        messages: Sequence[str] = (),
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        self.snippet = snippet
        self.messages = list(messages)
        self.request_id = request_id


class AnswerTooLargeError(ResponseValidationError):
    """A success answer grew past the client's `max_answer_bytes` (counted once decompressed).

    Reading stopped there: a compressed "bomb" or an endless answer cannot exhaust memory.
    `limit` is the bound that was passed. Raise it (``max_answer_bytes=``) if a real answer
    of yours is that large. For `download_job_output` the bound is ``max_download_bytes=``
    instead, and the message names the remedy (`download_job_output_to` has no bound).
    """

    limit: int = 0


class WaitTimeoutError(UnstructuredJobsError, TimeoutError):
    """`wait_for_job` ran out of time; `last_job` is the last state seen (None if never read)."""

    def __init__(self, message: str, *, job_id: str, last_job: JobInformation | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.last_job = last_job
