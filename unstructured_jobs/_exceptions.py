"""The exception ladder. Every error the package raises derives from `UnstructuredJobsError`::

    UnstructuredJobsError
    ├── InvalidInputError (ValueError)         bad input found before any byte was sent
    │   ├── InvalidIdError                     empty / not a UUID / path-like id
    │   └── InputFileError                     every bad input file, listed at once
    ├── LocalFileError                         a local file could not be written (a download)
    ├── InsecureTransportError                 the key would travel over plain http to a remote host
    ├── SyncInAsyncContextError (RuntimeError) JobsClient called from a running event loop
    ├── APIConnectionError                     no HTTP answer (refused, reset, dropped)
    │   ├── APITimeoutError (TimeoutError)     connect, read-inactivity or upload-stall timeout
    │   └── CertificateVerifyError             the server's certificate is not trusted; not retried
    ├── AmbiguousRequestError                  the request may have been applied; not retried
    │   └── JobMayExistError                   ... and it was one that creates a job
    ├── APIStatusError                         an HTTP error status; carries status, body, headers
    │   ├── BadRequestError                    400
    │   ├── AuthenticationError                401
    │   ├── PermissionDeniedError              403
    │   ├── NotFoundError                      404
    │   ├── ConflictError                      409
    │   ├── UnprocessableEntityError           422 (with the parsed `errors` list)
    │   ├── RateLimitError                     429 (with `retry_after`)
    │   └── InternalServerError                5xx
    ├── ResponseValidationError                a 2xx answer that is not what the contract says
    └── WaitTimeoutError (TimeoutError)        wait_for_job gave up; carries the last job seen

No message, repr or attribute here ever holds the API key: errors are built from the request's
method and URL (the key travels in a header) and from the response, and header mappings are
passed through `redact_headers` first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._constants import API_KEY_HEADER

if TYPE_CHECKING:
    from ._models import JobInformation, ValidationErrorDetail

_SENSITIVE_HEADERS = frozenset({API_KEY_HEADER, "authorization", "cookie", "set-cookie"})


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of `headers` with credentials replaced by ``"***"``."""
    return {k: ("***" if k.lower() in _SENSITIVE_HEADERS else v) for k, v in headers.items()}


class UnstructuredJobsError(Exception):
    """Base class of every error raised by unstructured-jobs."""


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
    """`JobsClient` was called from a thread that runs an event loop; use `AsyncJobsClient`."""


class _RequestError(UnstructuredJobsError):
    """An error tied to one HTTP request: carries its method and URL (never the key)."""

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url


class APIConnectionError(_RequestError):
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


class AmbiguousRequestError(_RequestError):
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


class APIStatusError(_RequestError):
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


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such job, file or workflow."""


class ConflictError(APIStatusError):
    """409: the resource is not in a state that allows this."""


class UnprocessableEntityError(APIStatusError):
    """422: the request failed the server's validation; `errors` holds the parsed detail list."""

    errors: list[ValidationErrorDetail]


class RateLimitError(APIStatusError):
    """429: too many requests; `retry_after` holds the server's hint in seconds, if any."""

    retry_after: float | None = None


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


class ResponseValidationError(UnstructuredJobsError):
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
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.snippet = snippet
        self.messages = list(messages)
        self.request_id = request_id


class WaitTimeoutError(UnstructuredJobsError, TimeoutError):
    """`wait_for_job` ran out of time; `last_job` is the last state seen (None if never read)."""

    def __init__(self, message: str, *, job_id: str, last_job: JobInformation | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.last_job = last_job
