"""Pure policy, no I/O: which URL to call, whether to retry, how long to wait, which error to raise.

Everything here takes and returns plain values, so it is unit-tested without a socket; the
aiohttp shell in `_http.transport` only carries out what these functions decide.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import json
import random
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import unescape
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import attrs

from ._constants import (
    API_PREFIX,
    DEFAULT_SERVER_URL,
    ENV_SERVER_URL,
    ERROR_JSON_DEPTH,
    ERROR_MESSAGE_CHARS,
    ERROR_SNIPPET_CHARS,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
)
from ._converter import ShapeError, structure
from ._exceptions import (
    AmbiguousRequestError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsecureTransportError,
    InternalServerError,
    InvalidIdError,
    InvalidInputError,
    JobMayExistError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RequestTooLargeError,
    ResponseValidationError,
    UnprocessableEntityError,
    UnstructuredJobsError,
    WorkflowBusyError,
)
from ._models import ValidationErrorDetail, WorkflowState
from ._version import __version__

USER_AGENT = f"unstructured-jobs/{__version__}"

# --------------------------------------------------------------------------- ids and URLs


def validate_id(value: object, what: str) -> str:
    """Return the canonical form of a UUID id, or raise `InvalidIdError` before sending.

    The contract types job and workflow ids as UUIDs and the server answers 422 otherwise, so
    a bad id (empty, ``../x``, ``a?b``) is rejected here, without a request.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value) is not None:
        return value  # already what str(uuid.UUID(value)) gives
    if not isinstance(value, str) or not value.strip():
        raise InvalidIdError(f"{what} must be a non-empty UUID string, got {value!r:.60}")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise InvalidIdError(f"{what} is not a UUID: {value!r:.60}") from None


def validate_name_id(value: object, what: str) -> str:
    """Return an id that is a name, not a UUID (a template's ``hi_res_partition``), or raise
    `InvalidIdError` before sending.

    Any non-blank string is sent as given, percent-encoded as one path segment; ``.`` and
    ``..`` are refused, since a URL resolver would turn them into another path.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidIdError(f"{what} must be a non-empty string, got {value!r:.60}")
    if value in (".", ".."):
        raise InvalidIdError(f"{what} cannot be {value!r}: it would change the path")
    return value


def api_path(*segments: str) -> str:
    """Join path segments under ``/api/v1``, percent-encoding each (``/`` included)."""
    path = API_PREFIX
    for segment in segments:
        if _UNRESERVED.fullmatch(segment) is None:
            segment = quote(segment, safe="")
        path += "/" + segment
    return path


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote() leaves as it is


def workflow_filters(
    *,
    page: int | None,
    page_size: int | None,
    status: WorkflowState | str | None,
    name: str | None,
    source_id: str | None,
    destination_id: str | None,
    created_since: datetime | None,
    created_before: datetime | None,
    sort_by: str | None,
    sort_direction: str | None,
    show_only_soft_deleted: bool | None,
    show_recommender_workflows: bool | None,
    dag_node_configuration_id: str | None,
) -> tuple[tuple[str, str], ...]:
    """list_workflows' query, checked before anything is sent (`InvalidInputError`)."""
    params: list[tuple[str, str]] = []
    for key, number in (("page", page), ("page_size", page_size)):
        if number is not None:
            if type(number) is not int or number < 1:
                raise InvalidInputError(f"{key} must be an integer >= 1, got {number!r:.40}")
            params.append((key, str(number)))
    if status is not None:
        if not isinstance(status, str) or not status:
            raise InvalidInputError(f"status must be a WorkflowState or its value, got {status!r}")
        params.append(("status", str(WorkflowState(status).value)))
    for key, text in (("name", name), ("sort_by", sort_by)):
        if text is not None:
            if not isinstance(text, str) or not text:
                raise InvalidInputError(f"{key} must be a non-empty string, got {text!r:.40}")
            params.append((key, text))
    if sort_direction is not None:
        if sort_direction not in ("asc", "desc"):
            raise InvalidInputError(
                f"sort_direction must be 'asc' or 'desc', got {sort_direction!r}"
            )
        params.append(("sort_direction", sort_direction))
    for key, connector in (("source_id", source_id), ("destination_id", destination_id)):
        if connector is not None:
            params.append((key, validate_id(connector, key)))
    for key, when in (("created_since", created_since), ("created_before", created_before)):
        if when is not None:
            if not isinstance(when, datetime):
                raise InvalidInputError(f"{key} must be a datetime, got {when!r:.40}")
            aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
            params.append((key, aware.isoformat().replace("+00:00", "Z")))
    for key, flag in (
        ("show_only_soft_deleted", show_only_soft_deleted),
        ("show_recommender_workflows", show_recommender_workflows),
    ):
        if flag is not None:
            if not isinstance(flag, bool):
                raise InvalidInputError(f"{key} must be True, False or None, got {flag!r:.40}")
            params.append((key, "true" if flag else "false"))
    if dag_node_configuration_id is not None:
        text = dag_node_configuration_id
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(
                f"dag_node_configuration_id must be a non-empty string, got {text!r:.40}"
            )
        params.append(("dag_node_configuration_id", text))
    return tuple(params)


URL_FORMS = "https://HOST or https://HOST/api/v1 (a trailing slash is fine)"


def resolve_server_url(server_url: str | None, environ: Mapping[str, str]) -> str:
    """The base URL to use: `server_url`, else ``$UNSTRUCTURED_API_URL``, else the public service.

    An empty value is refused rather than taken as unset: an ``UNSTRUCTURED_API_URL=`` left
    empty by a script must not quietly send the key to the production service.
    """
    if server_url is not None:
        if not server_url.strip():
            raise InvalidInputError(f"server_url is empty; expected {URL_FORMS}")
        return server_url
    value = environ.get(ENV_SERVER_URL)
    if value is None:
        return DEFAULT_SERVER_URL
    if not value.strip():
        raise InvalidInputError(
            f"{ENV_SERVER_URL} is set but empty: unset it to use the public service "
            f"({DEFAULT_SERVER_URL}), or set it to {URL_FORMS}"
        )
    return value


def check_server_url(url: str, *, allow_insecure_http: bool) -> str:
    """Validate a base URL and return its canonical form, ``scheme://host[:port]``.

    Both forms the vendor documents are accepted: the bare host (SDK docs) and the host with
    ``/api/v1`` (REST docs, enterprise accounts), with or without a trailing slash. Any other
    path, a query or a fragment is an error naming the expected forms. Plain http is only for
    loopback unless explicitly allowed.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidInputError(f"server_url is not a valid URL: {url!r:.80}") from None
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(  # never echo it: it holds a password
            "server_url must not hold credentials (user:password@); the API key is sent in a header"
        )
    if parts.scheme not in ("http", "https") or not hostname:
        raise InvalidInputError(f"server_url must be {URL_FORMS}, got {url!r:.80}")
    path = parts.path.rstrip("/")
    if path not in ("", API_PREFIX) or parts.query or parts.fragment:
        raise InvalidInputError(
            f"server_url must be {URL_FORMS}, got {url!r:.80} (the path {parts.path!r} is not "
            f"one the API serves)"
        )
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(hostname):
        raise InsecureTransportError(
            f"refusing to send the API key over plain http to {hostname}; use https, "
            "or pass allow_insecure_http=True if this network is trusted"
        )
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: ``localhost``, ``127.0.0.0/8`` or ``::1``."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- retry policy


class Safety(enum.Enum):
    """Whether repeating a request is harmless."""

    IDEMPOTENT = "idempotent"  # reads: GET
    UNSAFE = "unsafe"  # create_job, run_workflow, cancel_job


class FailureKind(enum.Enum):
    """What went wrong with one attempt, as far as the client can tell."""

    STATUS = "status"  # an HTTP error status arrived
    NOT_SENT = "not_sent"  # the request cannot have been processed (no connection, partial body)
    CONNECT_TIMEOUT = "connect_timeout"
    LOST = "lost"  # sent in full, then the connection broke before a full answer
    READ_TIMEOUT = "read_timeout"
    WRITE_TIMEOUT = "write_timeout"  # the upload stalled; the body was not sent in full
    TLS = "tls"  # the TLS handshake failed (certificate not verified, ...): nothing was sent
    INVALID_ANSWER = "invalid_answer"  # a 2xx whose body is not what the contract says


class Verdict(enum.Enum):
    """What to do after a failed attempt."""

    RETRY = "retry"
    RAISE = "raise"  # raise the error as it is
    AMBIGUOUS = "ambiguous"  # raise AmbiguousRequestError: the server may have acted


RETRYABLE_READ_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
RETRYABLE_UNSAFE_STATUSES = frozenset({429, 503})
AMBIGUOUS_UNSAFE_STATUSES = frozenset({500, 502, 504})


@attrs.frozen
class Failure:
    """One failed attempt."""

    kind: FailureKind
    status: int | None = None
    retry_after: float | None = None


def decide(safety: Safety, failure: Failure) -> Verdict:
    """Decide whether a failed attempt may be retried.

    Reads retry on any transport failure and on 408/429/500/502/503/504. Job-creating requests
    retry only where the server cannot have acted (nothing or only part of the body sent, a
    connect timeout, 429, 503); a full send followed by a lost answer or a 500/502/504 is
    ambiguous and is never retried. A failed TLS handshake (an unverified certificate) is
    raised at once for every request: trying again meets the same certificate.

    A success status whose body is not what the contract says (`INVALID_ANSWER`) is raised as
    it is for a read; for a job-creating request it is ambiguous: the server said yes, so a
    job may well exist, and sending again could make a second one.
    """
    kind = failure.kind
    if kind is FailureKind.TLS:
        return Verdict.RAISE
    if kind is FailureKind.INVALID_ANSWER:
        return Verdict.RAISE if safety is Safety.IDEMPOTENT else Verdict.AMBIGUOUS
    if safety is Safety.IDEMPOTENT:
        if kind is FailureKind.STATUS:
            return Verdict.RETRY if failure.status in RETRYABLE_READ_STATUSES else Verdict.RAISE
        return Verdict.RETRY
    if kind in (FailureKind.NOT_SENT, FailureKind.CONNECT_TIMEOUT):
        return Verdict.RETRY
    if kind is FailureKind.WRITE_TIMEOUT:
        return Verdict.RAISE  # body incomplete: no job; but a stalled server is not worth retrying
    if kind is FailureKind.STATUS:
        if failure.status in RETRYABLE_UNSAFE_STATUSES:
            return Verdict.RETRY
        if failure.status in AMBIGUOUS_UNSAFE_STATUSES:
            return Verdict.AMBIGUOUS
        return Verdict.RAISE
    return Verdict.AMBIGUOUS  # LOST, READ_TIMEOUT


def backoff_delay(retry_index: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: about 0.5, 1, 2, 4, 8, 8 ... seconds, minus up to 25 %."""
    base = min(INITIAL_RETRY_DELAY * (2.0**retry_index), MAX_RETRY_DELAY)
    return base * (1.0 - 0.25 * rng.random())


def retry_delay(retry_index: int, failure: Failure, rng: random.Random) -> float:
    """The wait before the next attempt: the server's Retry-After (capped) when it gave one."""
    if failure.retry_after is not None:
        return min(max(failure.retry_after, 0.0), MAX_RETRY_AFTER)
    return backoff_delay(retry_index, rng)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP date. None if absent or garbage."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds else None  # rejects NaN
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max((when - now).total_seconds(), 0.0)


# --------------------------------------------------------------------------- answers


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The server's request id, if it sent one."""
    for name in ("x-request-id", "x-amzn-requestid", "request-id", "x-trace-id"):
        value = _header(headers, name)
        if value is not None:
            return value
    return None


def snippet(body: bytes) -> str:
    """A short, printable start of a body for error messages."""
    text = body[:ERROR_SNIPPET_CHARS].decode("utf-8", "replace")
    return text + ("..." if len(body) > ERROR_SNIPPET_CHARS else "")


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: QuotaExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: RequestTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_for_status(
    *, method: str, url: str, status: int, headers: Mapping[str, str], body: bytes
) -> APIStatusError:
    """Build the typed error for an error answer (any status >= 400), whatever its body.

    The message is one line of about `ERROR_MESSAGE_CHARS` at most: a JSON ``detail`` as the
    API sends it, else the status with its reason phrase and the page's title or a short plain
    text (a gateway's HTML page, never its markup). `body` keeps the whole answer read: the
    parsed JSON, or the text when it is not JSON (or JSON too deep or odd to keep as data).
    """
    parsed = _error_body(body)
    cls = _STATUS_ERRORS.get(status) or (InternalServerError if status >= 500 else APIStatusError)
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    if isinstance(detail, str):
        reason = detail
    elif isinstance(detail, list):
        reason = "; ".join(_describe_validation_item(item) for item in detail[:5])
    else:
        reason = ""
    location = _header(headers, "location")
    if 300 <= status < 400 and location:
        reason = (
            f"redirected to {location[:200]} (redirects are not followed, so that the API key "
            f"never goes elsewhere: check server_url)"
        )
    error = cls(
        _status_line(method, url, status, headers, (body, parsed), reason),
        method=method,
        url=url,
        status=status,
        body=parsed,
        headers=headers,
        request_id=request_id_of(headers),
    )
    if status == 409:  # a busy workflow reads the same whatever status it came with
        busy = workflow_busy_error(method=method, url=url, status=status, headers=headers,
                                   body=parsed)  # fmt: skip
        if busy is not None:
            return busy
    if isinstance(parsed, str) and body[:1] in (b"{", b"["):  # JSON too deep to keep as data
        error.detail = one_line(parsed, ERROR_MESSAGE_CHARS)
    if isinstance(error, UnprocessableEntityError):
        error.errors = _parse_validation_items(detail)
    if isinstance(error, RateLimitError):
        error.retry_after = parse_retry_after(_header(headers, "retry-after"))
    return error


def _error_body(body: bytes) -> Any:
    """An error answer's body: its JSON, else its text (invalid UTF-8 replaced). JSON nested
    deeper than `ERROR_JSON_DEPTH` stays text: it could not be printed, pickled or compared
    without running out of stack."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")
    return parsed if _depth_within(parsed, ERROR_JSON_DEPTH) else body.decode("utf-8", "replace")


def _depth_within(value: Any, limit: int) -> bool:
    """Whether JSON data nests at most `limit` levels (iteratively: no recursion to run out)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth >= limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


# The reason phrases of RFC 9110 as gateways print them: Python 3.13 renamed 413 and 422.
_PHRASES = {413: "Request Entity Too Large", 422: "Unprocessable Entity"}
_TAG = re.compile(rb"<[^<>]*>")  # never scans past the next "<": linear on any page
# Blocks whose text is not the page's: comments, scripts, styles, the head (searched with
# find, forward only: a page of unclosed tags costs one pass, not one per tag).
_INVISIBLE = ((b"<!--", b"-->"), (b"<script", b"</script"), (b"<style", b"</style"),
              (b"<head", b"</head"))  # fmt: skip
_PAGE_SCAN = 64 * 1024  # bytes of an error page searched for its title or text


def reason_phrase(status: int) -> str:
    """The standard reason phrase of `status` (``"Bad Gateway"``), or ``""`` if it has none."""
    phrase = _PHRASES.get(status)
    if phrase is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
    return phrase


def _status_line(
    method: str,
    url: str,
    status: int,
    headers: Mapping[str, str],
    answer: tuple[bytes, Any],
    reason: str,
) -> str:
    """One line, about `ERROR_MESSAGE_CHARS` long at most, for an error answer (its body, raw
    and as `_error_body` read it); `reason` is the API's own detail, if any."""
    body, parsed = answer
    if reason:  # the API's own words (a JSON detail): as before, after the status
        head = f"{method} {url} -> {status}"
    else:
        head = f"{method} {url} -> {status} {reason_phrase(status)}".rstrip()
        reason = _gateway_message(parsed) or (
            _page_text(body, status, headers) if body else "no body"
        )
    room = max(ERROR_MESSAGE_CHARS - len(head) - 2, 60)
    return f"{head}: {one_line(reason, room)}" if reason else head


def _gateway_message(parsed: Any) -> str:
    """A cloud gateway's JSON error (``{"message": "Endpoint request timed out"}``): its
    ``message`` (or ``error``) string, said after the status line as the API's detail is."""
    said = parsed.get("message", parsed.get("error")) if isinstance(parsed, dict) else None
    return said if isinstance(said, str) else ""


def _page_text(body: bytes, status: int, headers: Mapping[str, str]) -> str:
    """What a non-JSON error page says, in plain words: an HTML page's title (else its text
    without markup), or the start of a text body; ``""`` when it only repeats the status."""
    head = body[:_PAGE_SCAN]
    content_type = (_header(headers, "content-type") or "").lower()
    html = "html" in content_type or head.lstrip()[:1] == b"<"
    if html:
        raw = _title(head)
        if raw is None:
            raw = _TAG.sub(b" ", _without_blocks(head))
        text = unescape(raw.translate(None, b"<>").decode("utf-8", "replace"))
    else:
        text = head.decode("utf-8", "replace")
    text = one_line(text, ERROR_MESSAGE_CHARS)
    if _letters(text) in (
        _letters(f"{status} {reason_phrase(status)}"),
        _letters(reason_phrase(status)),
    ):
        text = ""  # nginx's <title>504 Gateway Time-out</title> says nothing the status does not
    server = one_line(_header(headers, "server") or "", 40)
    if html:
        page = f"HTML page from {server}" if server else "HTML page"
        return f"{text} ({page})" if text else page
    return text


def _title(page: bytes) -> bytes | None:
    """The text of an HTML page's ``<title>``, if it has one."""
    lower = page.lower()
    start = lower.find(b"<title")
    opened = lower.find(b">", start) if start >= 0 else -1
    end = lower.find(b"</title", opened) if opened >= 0 else -1
    return page[opened + 1 : end] if end >= 0 else None


def _without_blocks(page: bytes) -> bytes:
    """`page` without its comments, scripts, styles and head (an unclosed one: to the end)."""
    for opening, closing in _INVISIBLE:
        lower = page.lower()
        kept: list[bytes] = []
        pos = 0
        while (start := lower.find(opening, pos)) >= 0:
            kept.append(page[pos:start])
            end = lower.find(closing, start + len(opening))
            if end < 0:
                pos = len(page)
                break
            after = lower.find(b">", end)
            pos = len(page) if after < 0 else after + 1
        kept.append(page[pos:])
        page = b" ".join(kept)
    return page


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def one_line(text: str, limit: int) -> str:
    """`text` on one line (whitespace and control characters collapsed), cut to `limit`
    characters with ``...``."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


def failure_for_status(status: int, headers: Mapping[str, str]) -> Failure:
    """The retry-policy view of an error answer."""
    return Failure(FailureKind.STATUS, status, parse_retry_after(_header(headers, "retry-after")))


def _describe_validation_item(item: object) -> str:
    if isinstance(item, dict):
        loc = ".".join(str(p) for p in item.get("loc", []) or [])
        return f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", ""))
    return str(item)


def _parse_validation_items(detail: object) -> list[ValidationErrorDetail]:
    if not isinstance(detail, list):
        return []
    items = []
    for raw in detail:
        try:
            items.append(structure(raw, ValidationErrorDetail))
        except ShapeError:
            continue  # keep what parses; the raw body stays on the error
    return items


@functools.lru_cache(maxsize=64)  # a server sends one or two spellings
def is_json_type(content_type: str | None) -> bool:
    """Whether a success answer's Content-Type allows JSON (none at all does)."""
    if not content_type:
        return True
    value = content_type.split(";", 1)[0].strip().lower()
    return not value or value == "application/json" or value.endswith("+json")


def parse_json_answer(
    *, method: str, url: str, status: int, headers: Mapping[str, str], body: bytes
) -> Any:
    """Decode a success body as JSON, or raise `ResponseValidationError` with a snippet."""
    content_type = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    problem = None
    if not body:
        problem = "empty body"
    elif not is_json_type(content_type):
        problem = f"expected JSON, got content type {content_type!r}"
    if problem is None:
        try:
            return json.loads(body)
        except ValueError as exc:
            problem = f"malformed JSON ({exc})"
        except RecursionError:
            problem = "JSON nested too deeply to read"
    raise _invalid_answer(
        f"{problem}: {snippet(body)!r}", (), method=method, url=url, status=status,
        headers=headers, body=body,
    )  # fmt: skip


def shape_error(
    exc: ShapeError, *, method: str, url: str, status: int, headers: Mapping[str, str], body: bytes
) -> ResponseValidationError:
    """Wrap a structuring failure in the public error, naming each bad field."""
    return _invalid_answer(
        f"answer does not match the contract: {exc}", exc.messages, method=method, url=url,
        status=status, headers=headers, body=body,
    )  # fmt: skip


def _invalid_answer(
    problem: str,
    messages: list[str] | tuple[str, ...],
    *,
    method: str,
    url: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> ResponseValidationError:
    return ResponseValidationError(
        f"{method} {url} -> {status}: {problem}",
        method=method,
        url=url,
        status=status,
        snippet=snippet(body),
        messages=messages,
        request_id=request_id_of(headers),
    )


# --------------------------------------------------------------------------- what to send


class AttemptProgress(Protocol):
    """How far the body's latest attempt got (read by the transport after a failure)."""

    @property
    def complete(self) -> bool:
        """Whether every byte of the body was written."""
        ...

    @property
    def error(self) -> BaseException | None:
        """Why the body itself stopped (a file that changed, an upload stall), if it did."""
        ...

    async def wait_stopped(self) -> None:
        """Stop the body's writer if it still runs; return once it has let go of every file."""
        ...


class RequestBody(Protocol):
    """A request body that can be sent once per attempt (`MultipartBody` is the one we have)."""

    @property
    def state(self) -> AttemptProgress:
        """The progress of the latest attempt."""
        ...

    def can_rebuild(self) -> bool:
        """Whether another attempt can send the body again from its start."""
        ...

    def new_attempt(self, write_timeout: float | None) -> Any:
        """The aiohttp payload for one more attempt (the body is re-read from its start)."""
        ...


class LostAnswer(Protocol):
    """What a request reports when it was sent in full but its answer was lost."""

    def error(
        self, *, method: str, url: str, reason: str, cause: UnstructuredJobsError, sent_at: datetime
    ) -> AmbiguousRequestError:
        """The error to raise instead of retrying (which could apply the request twice)."""
        ...


@attrs.frozen
class MayHaveApplied:
    """A request that may have been applied: say so, and that it was not retried."""

    def error(
        self, *, method: str, url: str, reason: str, cause: UnstructuredJobsError, sent_at: datetime
    ) -> AmbiguousRequestError:
        """An `AmbiguousRequestError`."""
        return AmbiguousRequestError(
            f"{method} {url}: the request was sent but no usable answer came back ({reason}); "
            "it may have been applied",
            method=method,
            url=url,
            cause=cause,
        )


@attrs.frozen
class MayHaveCreatedJob:
    """A job-creating request: report what is needed to find the job it may have created."""

    input_file_names: tuple[str, ...] = ()
    request_data: str | None = None

    def error(
        self, *, method: str, url: str, reason: str, cause: UnstructuredJobsError, sent_at: datetime
    ) -> AmbiguousRequestError:
        """A `JobMayExistError` carrying the names and data sent, and the send time."""
        return JobMayExistError(
            f"{method} {url}: the request was sent but no usable answer came back ({reason}); "
            "a job may have been created: list jobs before submitting again",
            method=method,
            url=url,
            cause=cause,
            input_file_names=self.input_file_names,
            request_data=self.request_data,
            sent_at=sent_at,
        )


@attrs.frozen
class Request:
    """Everything the transport needs to send one logical request (all attempts of it).

    Built by the client, which alone knows the endpoint: `safety` decides the retry policy,
    `body` is rebuilt per attempt, and `on_lost` says what an ambiguous failure (sent in full,
    answer lost or unreadable) means for this request. Every 2xx is a success to be read.
    """

    method: str
    path: str
    safety: Safety
    params: tuple[tuple[str, str], ...] = ()
    body: RequestBody | None = None
    on_lost: LostAnswer = MayHaveApplied()


def ambiguous_error(
    request: Request, url: str, cause: UnstructuredJobsError, sent_at: datetime
) -> AmbiguousRequestError:
    """The error for a request whose answer was lost, as the request itself describes it."""
    method = request.method
    reason = str(cause).removeprefix(f"{method} {url}: ").removeprefix(f"{method} {url} -> ")
    reason = one_line(reason, ERROR_MESSAGE_CHARS // 2)  # the whole of it is on `cause`
    return request.on_lost.error(
        method=method, url=url, reason=reason, cause=cause, sent_at=sent_at
    )


# --------------------------------------------------------------------------- a busy workflow

_RUN_PATH = re.compile(r"/workflows/([^/?#]+)/run/?$")
_BUSY_DETAIL = re.compile(r"running job|no new job|already (?:has a job )?running", re.IGNORECASE)
_UUID_IN_TEXT = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
)
_RUNNING_JOB_KEYS = ("running_job_id", "active_job_id", "job_id")


def workflow_busy_error(
    *, method: str, url: str, status: int, headers: Mapping[str, str], body: Any
) -> WorkflowBusyError | None:
    """The error for an answer to run-workflow saying a job of the workflow is running and no
    new one was started (``{"detail": "There is a running job in progress. No new job run."}``,
    official SDK issue #286), whatever its status; None for any other answer.

    The running job's id is taken from the body (``running_job_id``, ``active_job_id``,
    ``job_id``) or from a UUID in the detail text, when the server gives one.
    """
    path = urlsplit(url).path
    found = _RUN_PATH.search(path)
    if method != "POST" or found is None or not isinstance(body, dict):
        return None
    detail = body.get("detail")
    if not isinstance(detail, str) or _BUSY_DETAIL.search(detail) is None:
        return None
    if "id" in body and "status" in body:
        return None  # a job after all: read it as one
    running = next((body[k] for k in _RUNNING_JOB_KEYS if isinstance(body.get(k), str)), None)
    if running is None:
        in_text = _UUID_IN_TEXT.search(detail)
        running = in_text.group(0) if in_text is not None else None
    workflow_id = unquote(found.group(1))
    which = f"job {running}" if running else "a job"
    return WorkflowBusyError(
        f"{method} {url} -> {status}: workflow {workflow_id} already has {which} running, so "
        f"no new job was started (server: {detail[:200]!r}); wait for that job or cancel it "
        "(list_jobs(workflow_id=...) finds it), then run the workflow again",
        method=method,
        url=url,
        status=status,
        body=body,
        headers=headers,
        request_id=request_id_of(headers),
        workflow_id=workflow_id,
        running_job_id=running,
    )
