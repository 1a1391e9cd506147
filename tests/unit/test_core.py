"""The pure policy: ids, URLs, retry decisions, backoff, Retry-After, status -> error."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from unstructured_jobs import (
    AmbiguousRequestError,
    APIConnectionError,
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
    RateLimitError,
    ResponseValidationError,
    UnprocessableEntityError,
)
from unstructured_jobs._constants import MAX_RETRY_AFTER, MAX_RETRY_DELAY
from unstructured_jobs._core import (
    Failure,
    FailureKind,
    MayHaveCreatedJob,
    Request,
    Safety,
    Verdict,
    ambiguous_error,
    api_path,
    backoff_delay,
    check_server_url,
    decide,
    error_for_status,
    parse_json_answer,
    parse_retry_after,
    resolve_server_url,
    retry_delay,
    validate_id,
)

JOB = "b2c3d4e5-6f7a-8b9c-0d1e-2f3a4b5c6d7e"


@pytest.mark.parametrize("bad", ["", "   ", "../x", "a?b", "a#b", "not-a-uuid", 5, None])
def test_bad_ids_are_rejected_before_sending(bad: object) -> None:
    with pytest.raises(InvalidIdError):
        validate_id(bad, "job_id")


def test_ids_are_canonicalised() -> None:
    assert validate_id(JOB.upper(), "job_id") == JOB
    assert validate_id(uuid.UUID(JOB), "job_id") == JOB


def test_path_segments_are_percent_encoded() -> None:
    assert api_path("jobs", "../x?y#z") == "/api/v1/jobs/..%2Fx%3Fy%23z"
    assert api_path("jobs", "") == "/api/v1/jobs/"


def test_plain_http_only_for_loopback_unless_opted_in() -> None:
    assert check_server_url("http://127.0.0.1:8000/", allow_insecure_http=False) == (
        "http://127.0.0.1:8000"
    )
    assert check_server_url("http://localhost:1", allow_insecure_http=False)
    assert check_server_url("http://[::1]:1", allow_insecure_http=False)
    with pytest.raises(InsecureTransportError):
        check_server_url("http://api.example.com", allow_insecure_http=False)
    assert check_server_url("http://api.example.com", allow_insecure_http=True)
    assert check_server_url("https://api.example.com", allow_insecure_http=False)


@pytest.mark.parametrize(
    "given",
    [
        "https://platform.unstructuredapp.io",
        "https://platform.unstructuredapp.io/",
        "https://platform.unstructuredapp.io/api/v1",  # the REST docs' form
        "https://platform.unstructuredapp.io/api/v1/",
        "  https://platform.unstructuredapp.io/api/v1//  ",
    ],
)
def test_both_documented_url_forms_give_the_same_base(given: str) -> None:
    assert check_server_url(given, allow_insecure_http=False) == (
        "https://platform.unstructuredapp.io"
    )


def test_enterprise_hosts_and_ports_keep_their_netloc() -> None:
    assert check_server_url(
        "https://acme.unstructured.example:8443/api/v1", allow_insecure_http=False
    ) == ("https://acme.unstructured.example:8443")


@pytest.mark.parametrize(
    "given",
    [
        "https://host/api",
        "https://host/api/v2",
        "https://host/api/v1/jobs",
        "https://host/v1",
        "https://host/api/v1?x=1",
        "https://host/#frag",
        "ftp://host",
        "host/api/v1",
        "https://",
        "https://host:notaport",
    ],
)
def test_other_urls_are_refused_naming_the_expected_forms(given: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_server_url(given, allow_insecure_http=False)
    assert "https://HOST/api/v1" in str(info.value) or "not a valid URL" in str(info.value)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidInputError) as info:
        check_server_url("https://me:s3cret@host/api/v1", allow_insecure_http=False)
    assert "s3cret" not in str(info.value)


def test_server_url_resolution_from_argument_environment_and_default() -> None:
    env_name = "UNSTRUCTURED_API_URL"
    assert resolve_server_url("https://a", {env_name: "https://b"}) == "https://a"
    assert resolve_server_url(None, {env_name: "https://b/api/v1"}) == "https://b/api/v1"
    assert resolve_server_url(None, {}) == "https://platform.unstructuredapp.io"
    with pytest.raises(InvalidInputError, match="set but empty"):
        resolve_server_url(None, {env_name: ""})
    with pytest.raises(InvalidInputError, match="set but empty"):
        resolve_server_url(None, {env_name: "  "})
    with pytest.raises(InvalidInputError, match="empty"):
        resolve_server_url("", {})


# ---------------------------------------------------------------- retry decisions

READ, UNSAFE = Safety.IDEMPOTENT, Safety.UNSAFE


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_reads_retry_transient_statuses(status: int) -> None:
    assert decide(READ, Failure(FailureKind.STATUS, status)) is Verdict.RETRY


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_reads_do_not_retry_client_errors(status: int) -> None:
    assert decide(READ, Failure(FailureKind.STATUS, status)) is Verdict.RAISE


ANSWERED = (FailureKind.STATUS, FailureKind.TLS, FailureKind.INVALID_ANSWER)
TRANSPORT_FAILURES = [k for k in FailureKind if k not in ANSWERED]


@pytest.mark.parametrize("kind", TRANSPORT_FAILURES)
def test_reads_retry_every_transport_failure(kind: FailureKind) -> None:
    assert decide(READ, Failure(kind)) is Verdict.RETRY


def test_an_unreadable_success_is_raised_for_a_read_and_ambiguous_for_a_create() -> None:
    # The server said yes to a create: a job may exist, and sending again could make another.
    assert decide(READ, Failure(FailureKind.INVALID_ANSWER)) is Verdict.RAISE
    assert decide(UNSAFE, Failure(FailureKind.INVALID_ANSWER)) is Verdict.AMBIGUOUS


@pytest.mark.parametrize("safety", list(Safety))
def test_a_failed_tls_handshake_is_never_retried(safety: Safety) -> None:
    # The same certificate would fail again (more in tests/unit/test_netconf.py).
    assert decide(safety, Failure(FailureKind.TLS)) is Verdict.RAISE


@pytest.mark.parametrize(
    ("failure", "verdict"),
    [
        (Failure(FailureKind.NOT_SENT), Verdict.RETRY),
        (Failure(FailureKind.CONNECT_TIMEOUT), Verdict.RETRY),
        (Failure(FailureKind.STATUS, 429), Verdict.RETRY),
        (Failure(FailureKind.STATUS, 503), Verdict.RETRY),
        (Failure(FailureKind.STATUS, 500), Verdict.AMBIGUOUS),
        (Failure(FailureKind.STATUS, 502), Verdict.AMBIGUOUS),
        (Failure(FailureKind.STATUS, 504), Verdict.AMBIGUOUS),
        (Failure(FailureKind.LOST), Verdict.AMBIGUOUS),
        (Failure(FailureKind.READ_TIMEOUT), Verdict.AMBIGUOUS),
        (Failure(FailureKind.WRITE_TIMEOUT), Verdict.RAISE),
        (Failure(FailureKind.STATUS, 408), Verdict.RAISE),
        (Failure(FailureKind.STATUS, 422), Verdict.RAISE),
    ],
)
def test_job_creating_requests_retry_only_when_the_server_cannot_have_acted(
    failure: Failure, verdict: Verdict
) -> None:
    assert decide(UNSAFE, failure) is verdict


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(i, rng) for i in range(8)]
    for i, d in enumerate(delays):
        base = min(0.5 * 2**i, MAX_RETRY_DELAY)
        assert 0.75 * base <= d <= base
    assert delays[3] > delays[0]


def test_retry_after_wins_and_is_capped() -> None:
    rng = random.Random(1)
    assert retry_delay(0, Failure(FailureKind.STATUS, 429, 3.0), rng) == 3.0
    assert retry_delay(0, Failure(FailureKind.STATUS, 429, 1e9), rng) == MAX_RETRY_AFTER


def test_parse_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now) == 30.0
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, now) == 0.0
    for junk in (None, "", "soon", "-3", "nan"):
        assert parse_retry_after(junk, now) is None


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
        (418, APIStatusError),
    ],
)
def test_status_maps_to_its_error_family(status: int, cls: type[APIStatusError]) -> None:
    err = error_for_status(
        method="GET", url="https://x/api", status=status, headers={}, body=b'{"detail": "nope"}'
    )
    assert type(err) is cls
    assert (err.status, err.detail, err.body) == (status, "nope", {"detail": "nope"})
    assert "nope" in str(err) and str(status) in str(err)


def test_422_carries_the_parsed_detail_list() -> None:
    body = b'{"detail": [{"loc": ["body", "request_data"], "msg": "Field required", "type": "missing"}]}'
    err = error_for_status(method="POST", url="u", status=422, headers={}, body=body)
    assert isinstance(err, UnprocessableEntityError)
    assert [(e.loc, e.msg, e.type) for e in err.errors] == [
        (("body", "request_data"), "Field required", "missing")
    ]
    assert "body.request_data: Field required" in str(err)


def test_429_carries_retry_after_and_headers_are_redacted() -> None:
    err = error_for_status(
        method="GET",
        url="u",
        status=429,
        headers={"Retry-After": "12", "unstructured-api-key": "secret", "X-Request-ID": "r1"},
        body=b"",
    )
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 12.0
    assert err.request_id == "r1"
    assert err.headers["unstructured-api-key"] == "***"


def test_non_json_error_body_is_kept_as_a_snippet() -> None:
    err = error_for_status(method="GET", url="u", status=502, headers={}, body=b"<html>bad</html>")
    assert err.body == "<html>bad</html>" and err.detail is None


@pytest.mark.parametrize(
    ("content_type", "body", "needle"),
    [
        ("application/json", b"", "empty body"),
        ("text/html", b"<html>hi</html>", "expected JSON"),
        ("application/json", b'{"id": "abc", "trunc', "malformed JSON"),
    ],
)
def test_bad_success_bodies_raise_response_validation_error(
    content_type: str, body: bytes, needle: str
) -> None:
    with pytest.raises(ResponseValidationError) as info:
        parse_json_answer(
            method="GET", url="u", status=200, headers={"Content-Type": content_type}, body=body
        )
    assert needle in str(info.value)
    assert info.value.snippet == body.decode()[:200]


def test_huge_bad_body_snippet_is_short() -> None:
    with pytest.raises(ResponseValidationError) as info:
        parse_json_answer(
            method="GET",
            url="u",
            status=200,
            headers={"Content-Type": "text/html"},
            body=b"x" * 10**6,
        )
    assert len(str(info.value)) < 400


# ---------------------------------------------------------------- what a lost answer means


def test_an_ambiguous_failure_means_what_the_request_says_not_what_its_path_looks_like() -> None:
    url = "https://h/api/v1/jobs/"
    sent = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cause = APIConnectionError(f"POST {url}: Server disconnected", method="POST", url=url)
    plain = ambiguous_error(Request("POST", "/api/v1/jobs/", Safety.UNSAFE), url, cause, sent)
    assert type(plain) is AmbiguousRequestError  # the path alone says nothing
    assert plain.cause is cause and "(Server disconnected)" in str(plain)
    assert "may have been applied" in str(plain)

    creates = Request(
        "POST",
        "/api/v1/anything",
        Safety.UNSAFE,
        on_lost=MayHaveCreatedJob(("a.pdf", "b (2).pdf"), '{"template_id": "t"}'),
    )
    error = ambiguous_error(creates, url, cause, sent)
    assert isinstance(error, JobMayExistError)
    assert error.input_file_names == ["a.pdf", "b (2).pdf"]
    assert error.request_data == '{"template_id": "t"}'
    assert error.sent_at == sent and error.cause is cause
    assert "a job may have been created" in str(error)
