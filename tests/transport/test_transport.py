"""The aiohttp shell under aioresponses: what is sent, how answers map to records and errors,
and which failures are retried. (Uploads, timeouts and drops are tested against the emulator:
aioresponses never reads a request body.)"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from helpers import API_KEY, API_URL, CompatAioresponses
from yarl import URL

from unstructured_jobs import (
    AmbiguousRequestError,
    APIConnectionError,
    AsyncJobsClient,
    AuthenticationError,
    InternalServerError,
    InvalidIdError,
    InvalidInputError,
    JobMayExistError,
    JobStatus,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    UnprocessableEntityError,
    UnstructuredJobsError,
    __version__,
)
from unstructured_jobs.testing import FakeClock

JOB_ID = "b2c3d4e5-6f7a-8b9c-0d1e-2f3a4b5c6d7e"
WF_ID = "f0a1b2c3-4d5e-6f7a-8b9c-0d1e2f3a4b5c"
JOB = {
    "id": JOB_ID,
    "workflow_id": WF_ID,
    "workflow_name": "w",
    "status": "SCHEDULED",
    "created_at": "2026-01-01T00:00:00Z",
}
JOBS_URL = f"{API_URL}/api/v1/jobs/"
JOB_URL = f"{API_URL}/api/v1/jobs/{JOB_ID}"


def calls(mock: CompatAioresponses, method: str, url: str) -> list[Any]:
    return mock.requests.get((method, URL(url)), [])


async def test_get_job_sends_key_and_user_agent(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOB_URL, payload=JOB)
    job = await mocked_client.get_job(JOB_ID)
    assert job.id == JOB_ID and job.status is JobStatus.SCHEDULED
    (call,) = calls(mock_api, "GET", JOB_URL)
    assert call.kwargs["headers"]["unstructured-api-key"] == API_KEY
    assert call.kwargs["headers"]["User-Agent"] == f"unstructured-jobs/{__version__}"
    timeout = call.kwargs["timeout"]
    assert timeout.total is None and timeout.sock_connect == 10.0 and timeout.sock_read == 120.0


async def test_every_endpoint_parses_its_record(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOBS_URL + f"?status=COMPLETED&workflow_id={WF_ID}", payload=[JOB, JOB])
    mock_api.get(
        JOB_URL + "/details",
        payload={"id": JOB_ID, "processing_status": "IN_PROGRESS", "node_stats": []},
    )
    mock_api.get(
        JOB_URL + "/failed-files", payload={"failed_files": [{"document": "a", "error": "e"}]}
    )
    mock_api.post(JOB_URL + "/cancel", payload={"id": JOB_ID, "status": "STOPPED", "message": "m"})
    mock_api.post(f"{API_URL}/api/v1/workflows/{WF_ID}/run", status=202, payload=JOB)
    mock_api.get(JOB_URL + "/download?file_id=a.pdf.json&node_id=n1", payload=[{"type": "Title"}])

    jobs = await mocked_client.list_jobs(workflow_id=WF_ID, status=JobStatus.COMPLETED)
    assert [j.id for j in jobs] == [JOB_ID, JOB_ID]
    details = await mocked_client.get_job_details(JOB_ID)
    assert details.processing_status == "IN_PROGRESS"
    failed = await mocked_client.get_job_failed_files(JOB_ID)
    assert failed.failed_files[0].document == "a"
    cancelled = await mocked_client.cancel_job(JOB_ID)
    assert cancelled.status is JobStatus.STOPPED and cancelled.message == "m"
    run = await mocked_client.run_workflow(WF_ID)
    assert run.workflow_id == WF_ID
    output = await mocked_client.download_job_output(JOB_ID, file_id="a.pdf.json", node_id="n1")
    assert output == [{"type": "Title"}]


async def test_query_values_are_encoded(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOB_URL + "/download?file_id=a%26b%3Dc%23d.json", payload=[])
    assert await mocked_client.download_job_output(JOB_ID, file_id="a&b=c#d.json") == []


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, {"detail": "API key is missing"}, AuthenticationError),
        (404, {"detail": "Job not found"}, NotFoundError),
        (
            422,
            {"detail": [{"loc": ["path", "job_id"], "msg": "bad", "type": "uuid"}]},
            UnprocessableEntityError,
        ),
    ],
)
async def test_client_errors_are_typed_and_not_retried(
    mock_api: CompatAioresponses,
    mocked_client: AsyncJobsClient,
    status: int,
    body: dict[str, Any],
    cls: type[Exception],
) -> None:
    mock_api.get(JOB_URL, status=status, payload=body, repeat=True)
    with pytest.raises(cls) as info:
        await mocked_client.get_job(JOB_ID)
    assert len(calls(mock_api, "GET", JOB_URL)) == 1
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)
    assert info.value.method == "GET" and info.value.url == JOB_URL  # type: ignore[attr-defined]


async def test_reads_retry_5xx_with_backoff_then_succeed(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOB_URL, status=502, body="bad gateway")
    mock_api.get(JOB_URL, status=503, payload={"detail": "busy"}, headers={"Retry-After": "2"})
    mock_api.get(JOB_URL, payload=JOB)
    job = await mocked_client.get_job(JOB_ID)
    assert job.id == JOB_ID
    slept = mocked_client.slept  # type: ignore[attr-defined]
    assert len(slept) == 2 and 0.375 <= slept[0] <= 0.5 and slept[1] == 2.0


async def test_reads_give_up_after_max_retries(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOB_URL, status=500, payload={"detail": "boom"}, repeat=True)
    with pytest.raises(InternalServerError):
        await mocked_client.get_job(JOB_ID)
    assert len(calls(mock_api, "GET", JOB_URL)) == 4  # 1 + max_retries=3


async def test_per_call_max_retries(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOB_URL, status=500, payload={"detail": "boom"}, repeat=True)
    with pytest.raises(InternalServerError):
        await mocked_client.get_job(JOB_ID, max_retries=0)
    assert len(calls(mock_api, "GET", JOB_URL)) == 1


async def test_retry_budget_stops_long_waits(mock_api: CompatAioresponses) -> None:
    clock = FakeClock()
    client = AsyncJobsClient(api_key=API_KEY, server_url=API_URL, retry_budget=5, clock=clock)
    slept = clock.sleeps
    mock_api.get(JOB_URL, status=429, headers={"Retry-After": "4"}, payload={}, repeat=True)
    with pytest.raises(RateLimitError) as info:
        await client.get_job(JOB_ID)
    assert slept == [4.0] and info.value.retry_after == 4.0
    await client.aclose()


async def test_reads_retry_connection_errors(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOB_URL, exception=aiohttp.ServerDisconnectedError())
    mock_api.get(JOB_URL, payload=JOB)
    assert (await mocked_client.get_job(JOB_ID)).id == JOB_ID


async def test_connection_error_after_retries_is_typed(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOB_URL, exception=aiohttp.ServerDisconnectedError(), repeat=True)
    with pytest.raises(APIConnectionError):
        await mocked_client.get_job(JOB_ID)
    assert len(calls(mock_api, "GET", JOB_URL)) == 4


async def test_create_job_retries_429_and_503_only(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.post(
        JOBS_URL, status=429, payload={"detail": "slow down"}, headers={"Retry-After": "1"}
    )
    mock_api.post(JOBS_URL, status=503, payload={"detail": "busy"})
    mock_api.post(JOBS_URL, payload=JOB)
    job = await mocked_client.create_job(template_id="t", input_files=[("a.pdf", b"%PDF")])
    assert job.id == JOB_ID and len(calls(mock_api, "POST", JOBS_URL)) == 3


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_create_job_5xx_is_ambiguous_and_not_retried(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient, status: int
) -> None:
    mock_api.post(JOBS_URL, status=status, payload={"detail": "oops"}, repeat=True)
    with pytest.raises(JobMayExistError) as info:
        await mocked_client.create_job(
            template_id="t", input_files=[("a.pdf", b"x"), ("b.txt", b"y")]
        )
    err = info.value
    assert len(calls(mock_api, "POST", JOBS_URL)) == 1
    assert err.status == status and isinstance(err.cause, InternalServerError)
    assert err.input_file_names == ["a.pdf", "b.txt"]
    assert err.request_data == '{"template_id": "t"}'
    assert err.sent_at is not None


async def test_cancel_lost_answer_is_ambiguous(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.post(JOB_URL + "/cancel", exception=aiohttp.ServerDisconnectedError(), repeat=True)
    with pytest.raises(AmbiguousRequestError) as info:
        await mocked_client.cancel_job(JOB_ID)
    assert not isinstance(info.value, JobMayExistError)
    assert len(calls(mock_api, "POST", JOB_URL + "/cancel")) == 1


async def test_create_job_connect_failure_is_retried(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
        OSError(111, "refused"),
    )
    mock_api.post(JOBS_URL, exception=refused)
    mock_api.post(JOBS_URL, payload=JOB)
    job = await mocked_client.create_job(template_id="t")
    assert job.id == JOB_ID and len(calls(mock_api, "POST", JOBS_URL)) == 2


async def test_malformed_success_body_raises_response_validation_error(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    mock_api.get(JOB_URL, payload={**JOB, "created_at": 12})
    with pytest.raises(ResponseValidationError) as info:
        await mocked_client.get_job(JOB_ID)
    assert "$.created_at" in str(info.value)
    assert info.value.messages and info.value.status == 200


async def test_bad_arguments_fail_before_any_request(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    with pytest.raises(InvalidIdError):
        await mocked_client.get_job("../../etc/passwd")
    with pytest.raises(InvalidIdError):
        await mocked_client.run_workflow("")
    with pytest.raises(InvalidInputError):
        await mocked_client.create_job(template_id="t", request_data={"template_id": "t"})
    with pytest.raises(InvalidInputError):
        await mocked_client.create_job(request_data='{"nope": 1}')
    with pytest.raises(InvalidInputError):
        await mocked_client.create_job(template_id="t", input_files="a.pdf")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await mocked_client.download_job_output(JOB_ID, file_id="")
    assert mock_api.requests == {}


async def test_key_never_logged(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="unstructured_jobs")
    mock_api.get(JOB_URL, status=503, payload={"detail": "busy"})
    mock_api.get(JOB_URL, payload=JOB)
    await mocked_client.get_job(JOB_ID)
    assert caplog.records, "expected debug/info lines"
    assert all(API_KEY not in r.getMessage() for r in caplog.records)
    assert API_KEY not in repr(mocked_client) and "***" in repr(mocked_client)
    assert API_KEY not in repr(mocked_client._transport)


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSTRUCTURED_API_KEY", raising=False)
    with pytest.raises(InvalidInputError, match="UNSTRUCTURED_API_KEY"):
        AsyncJobsClient()


def test_env_vars_configure_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSTRUCTURED_API_KEY", "k")
    monkeypatch.setenv("UNSTRUCTURED_API_URL", "https://example.test/")
    assert AsyncJobsClient().server_url == "https://example.test"


async def test_per_call_retry_config_sets_the_budget_too(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient
) -> None:
    from unstructured_jobs import RetryConfig

    mock_api.get(JOB_URL, status=503, headers={"Retry-After": "5"}, payload={}, repeat=True)
    with pytest.raises(InternalServerError):
        await mocked_client.get_job(JOB_ID, max_retries=RetryConfig(max_retries=10, budget=12))
    assert mocked_client.slept == [5.0, 5.0]  # type: ignore[attr-defined]


async def test_a_session_passed_in_is_used_and_left_open(mock_api: CompatAioresponses) -> None:
    async with aiohttp.ClientSession(headers={"X-Team": "ingest"}) as session:
        client = AsyncJobsClient(api_key=API_KEY, server_url=API_URL, session=session)
        mock_api.get(JOB_URL, payload=JOB)
        assert (await client.get_job(JOB_ID)).id == JOB_ID
        (call,) = calls(mock_api, "GET", JOB_URL)
        assert call.kwargs["headers"]["User-Agent"].startswith("unstructured-jobs/")
        assert client._transport.session() is session
        await client.aclose()
        assert not session.closed  # the caller's session is the caller's to close
        with pytest.raises(UnstructuredJobsError, match="closed"):
            await client.get_job(JOB_ID)  # but this client is done


async def test_connection_limit_is_configurable() -> None:
    client = AsyncJobsClient(api_key=API_KEY, server_url=API_URL, max_connections=3)
    connector = client._transport.session().connector
    assert connector is not None and connector.limit == 3
    await client.aclose()
    with pytest.raises(InvalidInputError):
        AsyncJobsClient(api_key=API_KEY, server_url=API_URL, max_connections=0)


@pytest.mark.parametrize(
    "encoded",
    [
        json.dumps(JOB).encode("utf-8-sig"),  # a BOM
        json.dumps(JOB).encode("utf-16"),
        json.dumps({**JOB, "workflow_name": "naïve ✓"}).encode(),
    ],
    ids=["utf-8 BOM", "utf-16", "utf-8"],
)
async def test_json_in_any_encoding_json_allows_is_read(
    mock_api: CompatAioresponses, mocked_client: AsyncJobsClient, encoded: bytes
) -> None:
    """Answers are decoded as UTF-8 first (what servers send); a BOM or UTF-16 falls back to
    `json.loads` of the bytes, which detects the encoding, as before."""
    mock_api.get(JOB_URL, body=encoded, content_type="application/json")
    job = await mocked_client.get_job(JOB_ID)
    assert job.id == JOB_ID and job.workflow_name == json.loads(encoded)["workflow_name"]
