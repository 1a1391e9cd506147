"""A busy workflow (issue 22, item 5; official SDK issue #286): run_workflow while a job of the
workflow is active starts no job, and the service says so with a success status. The client
raises `WorkflowBusyError` (never `JobMayExistError`), a 409 saying the same reads the same way,
and the emulator models it. Over loopback."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cli_support import KEY, Cli, env_for

from unstructured_jobs import (
    AsyncJobsClient,
    ConflictError,
    JobMayExistError,
    JobsClient,
    JobStatus,
    WorkflowBusyError,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

WF = "f0a1b2c3-4d5e-4f7a-8b9c-0d1e2f3a4b5c"
OTHER_WF = "0b5f1e1c-2a3b-4c4d-8e5f-6a7b8c9d0e1f"
RUNNING = "7d1c9a2e-3b4f-4a5b-9c6d-7e8f9a0b1c2d"
BUSY = {"detail": "There is a running job in progress. No new job run."}
RUN_PATH = f"/api/v1/workflows/{WF}/run"


async def test_a_second_run_while_the_first_job_is_active_starts_nothing() -> None:
    async with (
        Emulator(schedule=Schedule.manual()) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as client,
    ):
        first = await client.run_workflow(WF, input_files=[("a.txt", b"a")])
        with pytest.raises(WorkflowBusyError) as info:
            await client.run_workflow(WF, input_files=[("b.txt", b"b")])
        error = info.value
        assert not isinstance(error, JobMayExistError) and isinstance(error, ConflictError)
        assert (error.status, error.workflow_id, error.running_job_id) == (202, WF, None)
        assert error.detail == BUSY["detail"] and error.method == "POST"
        message = str(error)
        assert f"workflow {WF} already has a job running" in message
        assert "no new job was started" in message and BUSY["detail"] in message
        assert list(emu.jobs) == [first.id]  # nothing was created, and nothing was retried
        assert [r.status for r in emu.requests if r.path == RUN_PATH] == [202, 202]

        other = await client.run_workflow(OTHER_WF)  # another workflow is not busy
        emu.advance(first.id)  # IN_PROGRESS: still busy
        with pytest.raises(WorkflowBusyError):
            await client.run_workflow(WF)
        emu.advance(first.id)  # COMPLETED: free again
        again = await client.run_workflow(WF)
        assert again.status is JobStatus.SCHEDULED and again.id not in (first.id, other.id)
        await client.cancel_job(again.id)  # a stopped job frees the workflow too
        assert (await client.run_workflow(WF)).workflow_id == WF


async def test_create_job_is_never_busy() -> None:
    async with (
        Emulator(schedule=Schedule.manual()) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as client,
    ):
        a = await client.create_job(template_id="hi_res_partition")
        b = await client.create_job(template_id="hi_res_partition")
        assert a.id != b.id and len(emu.jobs) == 2  # on-demand jobs run side by side


@pytest.mark.parametrize("status", [200, 202, 409])
async def test_the_answer_reads_the_same_with_any_status_and_names_the_job_given(
    status: int,
) -> None:
    async with (
        Emulator() as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as client,
    ):
        body = {**BUSY, "job_id": RUNNING}
        emu.inject(Fault.raw(status, json.dumps(body).encode()), path=RUN_PATH)
        with pytest.raises(WorkflowBusyError) as info:
            await client.run_workflow(WF)
        assert (info.value.status, info.value.running_job_id) == (status, RUNNING)
        assert f"already has job {RUNNING} running" in str(info.value)
        # The id in the text is read too, when the body gives no field for it.
        text = {"detail": f"Job {RUNNING} is running for this workflow: no new job run."}
        emu.inject(Fault.raw(status, json.dumps(text).encode()), path=RUN_PATH)
        with pytest.raises(WorkflowBusyError) as info:
            await client.run_workflow(WF, input_files=[("a.txt", b"a")])
        assert info.value.running_job_id == RUNNING
        assert emu.jobs == {}


async def test_other_odd_answers_keep_their_meaning() -> None:
    async with (
        Emulator() as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as client,
    ):
        # A success answer that is not a job and says nothing of a running job: a job may
        # exist (the server said yes), as before.
        emu.inject(Fault.raw(202, b'{"detail": "Accepted"}'), path=RUN_PATH)
        with pytest.raises(JobMayExistError):
            await client.run_workflow(WF)
        # Another 409 stays a plain ConflictError.
        emu.inject(Fault.raw(409, b'{"detail": "Workflow is inactive"}'), path=RUN_PATH)
        with pytest.raises(ConflictError) as info:
            await client.run_workflow(WF)
        assert type(info.value) is ConflictError


def test_the_sync_client_and_raw_responses() -> None:
    with (
        Emulator(schedule=Schedule.manual()).running_in_thread() as emu,
        JobsClient(emu.api_key, emu.url) as client,
    ):
        client.run_workflow(WF)
        with pytest.raises(WorkflowBusyError):
            client.run_workflow(WF)
        raw = client.with_raw_response.run_workflow(WF)  # the answer as it came
        assert raw.status == 202 and json.loads(raw.content) == BUSY
        with pytest.raises(WorkflowBusyError):
            raw.parse()
        assert len(emu.jobs) == 1


def test_the_cli_says_no_job_was_started(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator]
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY, schedule=Schedule.manual())
    env = env_for(emu)
    assert cli("run", WF, env=env).returncode == 0
    r = cli("run", WF, env=env)
    assert r.returncode == 3 and r.stdout == ""
    assert "already has a job running, so no new job was started" in r.stderr
    assert len(emu.jobs) == 1
