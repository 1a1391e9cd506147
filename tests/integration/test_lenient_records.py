"""One odd record never fails a whole answer (issue 13, item 4).

The official SDK accepts ``"job_type": null`` and a ``runtime`` that is not an ISO 8601
duration; so must we, keeping the raw value in ``record.unparsed``. A required field that is
missing or ill-typed still raises the typed error naming it. A cancel answered with ``null``
(or any other non-object) is a success.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from unstructured_jobs import (
    AsyncJobsClient,
    CancelJobResult,
    JobStatus,
    ResponseValidationError,
    WorkflowJobType,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

JOBS = "/api/v1/jobs/"
JOB_ID = "6d8a3f35-3f65-4c58-9a39-3a44d4e2c3d1"


def job(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": JOB_ID,
        "workflow_id": "f0a1b2c3-4d5e-6f7a-8b9c-0d1e2f3a4b5c",
        "workflow_name": "odd",
        "status": "COMPLETED",
        "created_at": "2026-01-01T00:00:00Z",
        "runtime": "PT2M30S",
        "input_file_ids": ["a.pdf"],
        "output_node_files": None,
        "job_type": "ephemeral",
    }
    base.update(changes)
    return base


def answer(body: object) -> Fault:
    return Fault.raw(200, json.dumps(body).encode())


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(schedule=Schedule.manual()) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncJobsClient]:
    async with AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock(), max_retries=0) as c:
        yield c


async def test_one_odd_job_does_not_fail_list_jobs(emu: Emulator, client: AsyncJobsClient) -> None:
    odd = [
        job(),
        job(id="2", job_type=None),
        job(id="3", runtime="0:02:30"),
        job(id="4", runtime=""),
        job(id="5", input_file_ids="a.pdf", output_node_files=[{"node_id": "n"}]),
    ]
    emu.inject(answer(odd), method="GET", path=JOBS)
    jobs = await client.list_jobs()
    assert [j.id for j in jobs] == [JOB_ID, "2", "3", "4", "5"]
    assert jobs[0].unparsed == {} and jobs[0].job_type is WorkflowJobType.EPHEMERAL
    assert jobs[1].job_type is None and jobs[1].unparsed == {}  # null is the SDK's "not given"
    assert (jobs[2].runtime, dict(jobs[2].unparsed)) == (None, {"runtime": "0:02:30"})
    assert (jobs[3].runtime, dict(jobs[3].unparsed)) == (None, {"runtime": ""})
    assert (jobs[4].input_file_ids, jobs[4].output_node_files) == (None, None)
    assert dict(jobs[4].unparsed) == {
        "input_file_ids": "a.pdf",
        "output_node_files": [{"node_id": "n"}],
    }
    assert all(j.status is JobStatus.COMPLETED for j in jobs)


async def test_get_job_and_wait_for_job_keep_going(emu: Emulator, client: AsyncJobsClient) -> None:
    path = f"{JOBS}{JOB_ID}"
    emu.inject(answer(job(status="IN_PROGRESS", runtime="0:00:01", job_type=None)), path=path)
    emu.inject(answer(job(runtime="0:02:30", job_type=None)), path=path)
    done = await client.wait_for_job(JOB_ID, poll_interval=1)
    assert done.status is JobStatus.COMPLETED and done.unparsed["runtime"] == "0:02:30"
    emu.inject(answer(job(runtime="")), path=path)
    assert (await client.get_job(JOB_ID)).unparsed == {"runtime": ""}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"status": None}, "$[1].status"),
        ({"created_at": "0:02:30"}, "$[1].created_at"),
        ({"id": 5}, "$[1].id"),
        ({"workflow_name": None}, "$[1].workflow_name"),
    ],
)
async def test_required_fields_still_raise_naming_the_field(
    emu: Emulator, client: AsyncJobsClient, changes: dict[str, Any], named: str
) -> None:
    emu.inject(answer([job(), job(runtime="odd", **changes)]), method="GET", path=JOBS)
    with pytest.raises(ResponseValidationError) as info:
        await client.list_jobs()
    assert any(named in m for m in info.value.messages), info.value.messages
    assert not any("runtime" in m for m in info.value.messages)  # the odd optional is no error


@pytest.mark.parametrize("body", [b"null", b'"Job cancelled"', b"true", b"[]"])
async def test_a_cancel_answered_with_a_non_object_is_a_success(
    emu: Emulator, client: AsyncJobsClient, body: bytes
) -> None:
    emu.inject(Fault.raw(200, body), method="POST", path=f"{JOBS}{JOB_ID}/cancel")
    result = await client.cancel_job(JOB_ID)
    assert isinstance(result, CancelJobResult)
    assert (result.id, result.status) == (None, None)
    assert result.raw == {}
    assert result.unparsed == {"answer": json.loads(body)}
