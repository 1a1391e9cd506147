"""Every error the package defines survives pickle (process pools, Celery, Dask, Ray)."""

from __future__ import annotations

import copy
import importlib
import pickle
import pkgutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import unstructured_jobs
from unstructured_jobs import (
    AmbiguousRequestError,
    AnswerTooLargeError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CertificateVerifyError,
    ClientClosedError,
    ConflictError,
    ForkedProcessError,
    InputFileError,
    InsecureTransportError,
    InternalServerError,
    InvalidIdError,
    InvalidInputError,
    JobInformation,
    JobMayExistError,
    JobStatus,
    LocalFileError,
    NodeFileMetadata,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RequestTooLargeError,
    ResponseValidationError,
    ServiceLimitError,
    SyncInAsyncContextError,
    UnprocessableEntityError,
    UnstructuredJobsError,
    ValidationErrorDetail,
    WaitTimeoutError,
    WorkflowBusyError,
    WorkflowJobType,
)
from unstructured_jobs._converter import ShapeError, structure
from unstructured_jobs._core import error_for_status, workflow_busy_error
from unstructured_jobs._files.multipart import FileChangedError, UploadStalledError
from unstructured_jobs.batch import UnsafePathError

KEY = "sk-unit-pickle-0123456789abcdefABCDEF"
JOB = "b2c3d4e5-6f7a-4b9c-8d1e-2f3a4b5c6d7e"
BASE = "https://platform.unstructuredapp.io/api/v1"
URL = f"{BASE}/jobs/{JOB}"
SENT_AT = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
PROTOCOLS = sorted({2, pickle.HIGHEST_PROTOCOL})


def answer(status: int, body: bytes, **extra: str) -> APIStatusError:
    """The error the client builds for an answer sent to a request that carried the key."""
    headers = {
        "content-type": "application/json",
        "x-request-id": f"req-{status}",
        "unstructured-api-key": KEY,  # echoed back by a careless proxy; must be redacted
        **extra,
    }
    return error_for_status(method="GET", url=URL, status=status, headers=headers, body=body)


def workflow_busy() -> WorkflowBusyError:
    """run_workflow answered 202 with the service's busy text (official SDK issue #286)."""
    error = workflow_busy_error(
        method="POST",
        url=f"{BASE}/workflows/{JOB}/run",
        status=202,
        headers={"x-request-id": "req-busy", "unstructured-api-key": KEY},
        body={"detail": "There is a running job in progress. No new job run.", "job_id": JOB},
    )
    assert error is not None
    return error


def too_large() -> AnswerTooLargeError:
    error = AnswerTooLargeError(
        f"GET {BASE}/jobs/ -> 200: the answer is larger than max_answer_bytes",
        method="GET",
        url=f"{BASE}/jobs/",
        status=200,
        snippet="[{",
        request_id="req-big",
    )
    error.limit = 4096
    return error


def last_job() -> JobInformation:
    """A job as read from the server, with a status and a job type this release does not know."""
    return JobInformation(
        id=JOB,
        workflow_id="9d5a3c1e-1111-4222-8333-444455556666",
        workflow_name="template nightly",
        status=JobStatus("QUARANTINED"),
        created_at=SENT_AT,
        runtime=timedelta(seconds=12.5),
        input_file_ids=("a.pdf", "b.pdf"),
        output_node_files=(NodeFileMetadata("node-1", "a.pdf.json", "destination", "local"),),
        job_type=WorkflowJobType("adhoc"),
    )


def timeout_error() -> APITimeoutError:
    return APITimeoutError(
        f"POST {BASE}/jobs/: no answer for 60s", method="POST", url=f"{BASE}/jobs/", phase="read"
    )


# Every UnstructuredJobsError subclass in the package, built as the client builds it.
CASES: dict[type[UnstructuredJobsError], Callable[[], UnstructuredJobsError]] = {
    UnstructuredJobsError: lambda: UnstructuredJobsError("something went wrong"),
    InvalidInputError: lambda: InvalidInputError("poll_interval must be > 0, got 0"),
    InvalidIdError: lambda: InvalidIdError("job_id is not a UUID: '../etc'"),
    InputFileError: lambda: InputFileError([("a.pdf", "no such file"), ("dir", "a folder")]),
    ServiceLimitError: lambda: ServiceLimitError(
        "11 input files, over the limit of 10 files per job (ServiceLimits.files_per_job)",
        limit="files_per_job",
        allowed=10,
        found=11,
    ),
    UnsafePathError: lambda: UnsafePathError(
        "refusing to write '../x': it is not a plain name inside out"
    ),
    LocalFileError: lambda: LocalFileError(
        "cannot write out/a.json: No space left on device", path=Path("out/a.json")
    ),
    InsecureTransportError: lambda: InsecureTransportError(
        "refusing to send the API key over plain http to example.com"
    ),
    SyncInAsyncContextError: lambda: SyncInAsyncContextError(
        "a blocking call was made from the client's own event loop thread"
    ),
    CertificateVerifyError: lambda: CertificateVerifyError(
        f"GET {URL}: the server's TLS certificate could not be verified", method="GET", url=URL
    ),
    ClientClosedError: lambda: ClientClosedError("the client was closed during this call"),
    ForkedProcessError: lambda: ForkedProcessError("create the client after the fork"),
    APIError: lambda: APIError(f"GET {URL}: failed", method="GET", url=URL),
    APIConnectionError: lambda: APIConnectionError(
        f"GET {URL}: ClientConnectorError: Cannot connect to host", method="GET", url=URL
    ),
    APITimeoutError: timeout_error,
    AmbiguousRequestError: lambda: AmbiguousRequestError(
        f"POST {URL}/cancel: the request was sent but its answer was lost (HTTP 502)",
        method="POST",
        url=f"{URL}/cancel",
        cause=answer(502, b'{"detail": "Bad Gateway"}'),
    ),
    JobMayExistError: lambda: JobMayExistError(
        f"POST {BASE}/jobs/: the request was sent but its answer was lost; a job may exist",
        method="POST",
        url=f"{BASE}/jobs/",
        cause=timeout_error(),
        input_file_names=["a.pdf", "b.pdf"],
        request_data='{"template_id": "hi_res_and_enrichment"}',
        sent_at=SENT_AT,
    ),
    APIStatusError: lambda: answer(418, b"I'm a teapot", **{"content-type": "text/plain"}),
    BadRequestError: lambda: answer(400, b'{"detail": "Too many files"}'),
    AuthenticationError: lambda: answer(401, b'{"detail": "Invalid API key"}'),
    PermissionDeniedError: lambda: answer(403, b'{"detail": "Forbidden"}'),
    QuotaExceededError: lambda: answer(402, b'{"detail": "Insufficient API quota"}'),
    RequestTooLargeError: lambda: answer(413, b"<html><title>413 Request Entity Too Large"),
    NotFoundError: lambda: answer(404, b'{"detail": "Job not found"}'),
    ConflictError: lambda: answer(409, b'{"detail": "Job output is not ready"}'),
    WorkflowBusyError: workflow_busy,
    UnprocessableEntityError: lambda: answer(
        422,
        b'{"detail": [{"type": "missing", "loc": ["body", "request_data"], "msg": "Field '
        b'required", "input": null}, {"type": "x", "loc": ["body", 0], "msg": "bad"}]}',
    ),
    RateLimitError: lambda: answer(
        429, b'{"detail": "Rate limit exceeded"}', **{"retry-after": "7"}
    ),
    InternalServerError: lambda: answer(503, b"<html>Service Unavailable</html>"),
    ResponseValidationError: lambda: ResponseValidationError(
        f"GET {URL} -> 200: answer does not match the contract",
        method="GET",
        url=URL,
        status=200,
        snippet='{"id": 5}',
        messages=["required field missing @ $.created_at"],
        request_id="req-200",
    ),
    AnswerTooLargeError: lambda: too_large(),
    WaitTimeoutError: lambda: WaitTimeoutError(
        f"job {JOB} is still QUARANTINED after 30s", job_id=JOB, last_job=last_job()
    ),
}


def _all_subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def package_error_classes() -> set[type]:
    """Every subclass of UnstructuredJobsError defined in the package, after importing it all."""
    importlib.import_module("unstructured_jobs.batch")
    importlib.import_module("unstructured_jobs.testing")
    for module in pkgutil.walk_packages(unstructured_jobs.__path__, "unstructured_jobs."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found = {UnstructuredJobsError, *_all_subclasses(UnstructuredJobsError)}
    # Subclasses that other test modules define are not the package's.
    return {c for c in found if c.__module__.split(".")[0] == "unstructured_jobs"}


def comparable(value: Any) -> Any:
    """A value that compares equal for equal errors (exceptions have identity equality)."""
    if isinstance(value, BaseException):
        return (type(value), str(value), comparable(value.args), comparable(vars(value)))
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(comparable(v) for v in value)
    return value


def assert_same_error(restored: BaseException, original: BaseException) -> None:
    assert type(restored) is type(original)
    assert str(restored) == str(original)
    assert restored.args == original.args
    assert comparable(vars(restored)) == comparable(vars(original))


def test_the_table_covers_every_error_class_of_the_package() -> None:
    found = package_error_classes()
    missing = sorted(c.__qualname__ for c in found - CASES.keys())
    assert not missing, f"add these to CASES so that their pickling is tested: {missing}"
    stale = sorted(c.__qualname__ for c in CASES.keys() - found)
    assert not stale, f"CASES lists classes that no longer exist: {stale}"


# The errors that come from talking to the API; everything else was decided locally.
FROM_THE_API = {
    APIError,
    APIConnectionError,
    APITimeoutError,
    CertificateVerifyError,
    AmbiguousRequestError,
    JobMayExistError,
    APIStatusError,
    BadRequestError,
    AuthenticationError,
    QuotaExceededError,
    PermissionDeniedError,
    NotFoundError,
    ConflictError,
    RequestTooLargeError,
    UnprocessableEntityError,
    RateLimitError,
    InternalServerError,
    ResponseValidationError,
    AnswerTooLargeError,
    WorkflowBusyError,
}


@pytest.mark.parametrize("cls", sorted(CASES, key=lambda c: c.__qualname__), ids=str)
def test_api_error_catches_what_came_from_the_api_and_nothing_else(cls: type) -> None:
    error = CASES[cls]()
    if cls in FROM_THE_API:
        assert isinstance(error, APIError)
        assert error.method == "GET" or error.method == "POST"
        assert error.url.startswith("https://")
        assert hasattr(error, "request_id")
    else:
        assert not isinstance(error, APIError), f"{cls.__qualname__} never reached the API"


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__qualname__)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_error_round_trips_through_pickle(
    cls: type[UnstructuredJobsError], protocol: int
) -> None:
    original = CASES[cls]()
    assert type(original) is cls
    data = pickle.dumps(original, protocol=protocol)
    assert KEY.encode() not in data
    restored = pickle.loads(data)
    assert_same_error(restored, original)
    assert isinstance(restored, UnstructuredJobsError)
    assert restored.__traceback__ is None  # like any unpickled exception
    # The copy module goes through the same reduction.
    assert_same_error(copy.copy(original), original)
    assert_same_error(copy.deepcopy(original), original)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_attributes_survive_in_detail(protocol: int) -> None:
    def round_trip(exc: BaseException) -> Any:
        return pickle.loads(pickle.dumps(exc, protocol=protocol))

    e422 = round_trip(CASES[UnprocessableEntityError]())
    assert e422.status == 422 and e422.request_id == "req-422"
    assert e422.errors == [
        ValidationErrorDetail(loc=("body", "request_data"), msg="Field required", type="missing"),
        ValidationErrorDetail(loc=("body", 0), msg="bad", type="x"),
    ]
    assert e422.detail[0]["loc"] == ["body", "request_data"]
    assert e422.headers["unstructured-api-key"] == "***"

    e429 = round_trip(CASES[RateLimitError]())
    assert (e429.retry_after, e429.method, e429.url) == (7.0, "GET", URL)

    maybe = round_trip(CASES[JobMayExistError]())
    assert isinstance(maybe.cause, APITimeoutError) and maybe.cause.phase == "read"
    assert maybe.sent_at == SENT_AT and maybe.input_file_names == ["a.pdf", "b.pdf"]
    assert isinstance(maybe, TimeoutError) is False and isinstance(maybe.cause, TimeoutError)

    ambiguous = round_trip(CASES[AmbiguousRequestError]())
    assert isinstance(ambiguous.cause, InternalServerError)
    assert (ambiguous.status, ambiguous.request_id) == (502, "req-502")
    assert ambiguous.cause.headers["unstructured-api-key"] == "***"

    waited = round_trip(CASES[WaitTimeoutError]())
    assert waited.last_job == last_job()
    assert waited.last_job.status.value == "QUARANTINED"
    assert waited.last_job.status.is_known is False
    assert waited.last_job.job_type == "adhoc"
    assert waited.job_id == JOB and isinstance(waited, TimeoutError)

    files = round_trip(CASES[InputFileError]())
    assert files.problems == [("a.pdf", "no such file"), ("dir", "a folder")]
    assert isinstance(files, ValueError)

    local = round_trip(CASES[LocalFileError]())
    assert local.path == Path("out/a.json")

    busy = round_trip(CASES[WorkflowBusyError]())
    assert (busy.status, busy.workflow_id, busy.running_job_id) == (202, JOB, JOB)
    assert busy.request_id == "req-busy" and busy.headers["unstructured-api-key"] == "***"


def test_errors_subclassed_by_users_pickle_too() -> None:
    restored = pickle.loads(pickle.dumps(MyError("boom", extra=3)))
    assert (type(restored), restored.args, restored.extra) == (MyError, ("boom",), 3)


class MyError(NotFoundError):
    """A user's own subclass with another keyword-only constructor."""

    def __init__(self, message: str, *, extra: int) -> None:
        UnstructuredJobsError.__init__(self, message)
        self.extra = extra


def _shape_error() -> ShapeError:
    with pytest.raises(ShapeError) as info:
        structure({"id": 5}, JobInformation)
    return info.value


@pytest.mark.parametrize(
    "make",
    [
        lambda: FileChangedError("a.pdf", "grew while it was being uploaded (expected 3 bytes)"),
        lambda: UploadStalledError("no upload progress for 30 s"),
        _shape_error,
    ],
    ids=["FileChangedError", "UploadStalledError", "ShapeError"],
)
def test_the_other_exceptions_the_package_defines_pickle(make: Callable[[], Exception]) -> None:
    original = make()
    for protocol in PROTOCOLS:
        assert_same_error(pickle.loads(pickle.dumps(original, protocol=protocol)), original)
