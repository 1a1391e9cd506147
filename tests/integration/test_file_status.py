"""Per-file status (issue 22, item 1) against the emulator over loopback: the states follow the
job, a failing file says why, the client keeps to the published 12 calls per minute per job by
waiting its turn (on a FakeClock: nothing really sleeps), and the emulator enforces that limit
only when asked to."""

from __future__ import annotations

import json
from datetime import datetime

import aiohttp
import anyio
import pytest

from unstructured_jobs import (
    AsyncJobsClient,
    FileProcessingStatus,
    InvalidIdError,
    JobFileStatus,
    JobsClient,
    JobStatus,
    NotFoundError,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

MISSING = "00000000-0000-4000-8000-000000000000"
FILES = [("a.pdf", b"%PDF a"), ("bad.pdf", b"%PDF b"), ("c.txt", b"c")]


def status_path(job_id: str) -> str:
    return f"/api/v1/jobs/{job_id}/file-status"


def states(answer: JobFileStatus) -> dict[str, FileProcessingStatus]:
    return {f.document: f.status for f in answer.files}


async def test_file_states_follow_the_job_and_a_failing_file_says_why() -> None:
    clock = FakeClock(100.0)
    schedule = Schedule(start_after=5, run_for=10)

    def fail(name: str) -> bool:  # the emulator's failure marker
        return "bad" in name

    async with (
        Emulator(clock=clock, schedule=schedule, fail_files=fail) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client,
    ):
        job = await client.create_job(template_id="hi_res_partition", input_files=FILES)

        ready = await client.get_job_file_status(job.id)
        assert ready.id == job.id and not ready.truncated and ready.index_finished is True
        assert isinstance(ready.generated_at, datetime) and ready.generated_at.tzinfo
        assert states(ready) == dict.fromkeys(["a.pdf", "bad.pdf", "c.txt"], "READY")
        assert all(f.current_node is None and f.error is None for f in ready.files)
        assert len({f.record_id for f in ready.files}) == 3

        clock.advance(7)  # started 2 s ago
        running = await client.get_job_file_status(job.id)
        assert set(states(running).values()) == {FileProcessingStatus.IN_PROGRESS}
        node = running.files[0].current_node
        assert node is not None and node.status is FileProcessingStatus.IN_PROGRESS
        assert (node.tries, node.time_elapsed) == (1, 2.0)
        assert running.files[0].time_elapsed is None  # not done yet
        assert [f.record_id for f in running.files] == [f.record_id for f in ready.files]

        clock.advance(10)
        assert (await client.get_job(job.id)).status is JobStatus.COMPLETED
        done = await client.get_job_file_status(job.id)
        assert states(done) == {"a.pdf": "SUCCESS", "bad.pdf": "FAILURE", "c.txt": "SUCCESS"}
        bad = done.files[1]
        assert bad.error is not None and "unable to process" in bad.error
        assert bad.status.is_terminal and bad.time_elapsed == 10.0
        assert done.files[0].error is None and done.count("SUCCESS") == 2
        failed = await client.get_job_failed_files(job.id)  # the same story both ways
        assert [(f.document, f.error) for f in failed.failed_files] == [("bad.pdf", bad.error)]

        details = await client.get_job_details(job.id)
        assert details.summary is not None
        assert (
            details.summary.total_docs,
            details.summary.total_docs_succeeded,
            details.summary.total_docs_failed,
        ) == (3, 2, 1)


async def test_a_stopped_job_leaves_unstarted_files_ready_and_fails_running_ones() -> None:
    async with (
        Emulator(schedule=Schedule.manual()) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as client,
    ):
        waiting = await client.create_job(template_id="t", input_files=FILES[:1])
        running = await client.create_job(template_id="t", input_files=FILES[:2])
        emu.advance(running.id)
        await client.cancel_job(waiting.id)
        await client.cancel_job(running.id)
        assert states(await client.get_job_file_status(waiting.id)) == {"a.pdf": "READY"}
        stopped = await client.get_job_file_status(running.id)
        assert set(states(stopped).values()) == {FileProcessingStatus.FAILURE}
        assert all("stopped" in (f.error or "") for f in stopped.files)
        summary = (await client.get_job_details(running.id)).summary
        assert summary is not None and summary.total_docs_failed == 2


async def test_the_thirteenth_call_within_a_minute_waits_its_turn_and_is_never_refused() -> None:
    clock = FakeClock(0.0)
    async with (
        Emulator(clock=clock, schedule=Schedule.manual(), file_status_limit=12) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client,
    ):
        job = await client.create_job(template_id="t", input_files=FILES[:1])
        other = await client.create_job(template_id="t", input_files=FILES[:1])
        for _ in range(12):
            await client.get_job_file_status(job.id)
        assert clock.sleeps == []  # twelve calls: no wait at all
        await client.get_job_file_status(other.id)  # another job has its own twelve
        assert clock.sleeps == []
        await client.get_job_file_status(job.id)
        assert clock.sleeps == [60.5]  # the oldest call a minute old, and half a second more
        calls = [r for r in emu.requests if r.path.endswith("/file-status")]
        assert [r.status for r in calls] == [200] * 14  # the server never had to refuse one

        # Concurrent callers (a copy made by with_options too) share the turns, in call order.
        quick = client.with_options(timeout=5)
        async with anyio.create_task_group() as tg:
            for c in [client, quick] * 6:
                tg.start_soon(c.get_job_file_status, job.id)
        # At 60.5 s only the last call is within the minute: eleven turns are free at once,
        # the twelfth waits until that call is a minute (and half a second) old.
        assert clock.sleeps == [60.5, 60.5]
        calls = [r for r in emu.requests if r.path.endswith("/file-status")]
        assert [r.status for r in calls] == [200] * 26


async def test_a_429_that_comes_anyway_is_retried_after_retry_after() -> None:
    clock = FakeClock(0.0)
    async with (
        Emulator(clock=clock, schedule=Schedule.manual(), file_status_limit=12) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client,
        AsyncJobsClient(emu.api_key, emu.url, clock=clock) as elsewhere,
    ):
        job = await client.create_job(template_id="t", input_files=FILES[:1])
        for _ in range(12):  # another process polling the same job with the same key
            await elsewhere.get_job_file_status(job.id)
        clock.advance(20)
        answer = await client.get_job_file_status(job.id)
        assert answer.id == job.id
        calls = [r.status for r in emu.requests if r.path.endswith("/file-status")]
        assert calls == [200] * 12 + [429, 200]
        assert clock.sleeps == [40.0]  # the server's Retry-After, honoured


async def test_the_emulator_limit_is_opt_in_per_job_and_key() -> None:
    clock = FakeClock(0.0)
    async with Emulator(clock=clock, schedule=Schedule.manual()) as emu:
        async with AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client:
            job = await client.create_job(template_id="t", input_files=FILES[:1])
        async with aiohttp.ClientSession(emu.url, headers=emu.headers) as http:
            for _ in range(20):  # no limit unless asked for
                async with http.get(status_path(job.id)) as resp:
                    assert resp.status == 200
    async with Emulator(clock=clock, schedule=Schedule.manual(), file_status_limit=2) as emu:
        async with AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client:
            job = await client.create_job(template_id="t", input_files=FILES[:1])
        async with aiohttp.ClientSession(emu.url) as http:
            seen = []
            for key in ["k1", "k1", "k1", "k2", "k1"]:
                async with http.get(
                    status_path(job.id), headers={"unstructured-api-key": key}
                ) as resp:
                    seen.append((resp.status, resp.headers.get("Retry-After")))
                    if resp.status == 429:
                        assert await resp.json() == {"detail": "Rate limit exceeded"}
                clock.advance(1)
            # k1's third call is refused; k2 has its own count; a refusal is not counted.
            assert seen == [(200, None), (200, None), (429, "58"), (200, None), (429, "56")]
            clock.advance(56)
            async with http.get(status_path(job.id), headers={"unstructured-api-key": "k1"}) as r:
                assert r.status == 200
            async with http.get(status_path(MISSING), headers=emu.headers) as r:
                assert (r.status, await r.json()) == (404, {"detail": "Job not found"})
            async with http.get(status_path("not-a-uuid"), headers=emu.headers) as r:
                assert r.status == 422
    with pytest.raises(ValueError, match="file_status_limit"):
        Emulator(file_status_limit=0)


async def test_bad_ids_are_refused_before_sending_and_unknown_jobs_are_404() -> None:
    async with (
        Emulator() as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as client,
    ):
        with pytest.raises(InvalidIdError):
            await client.get_job_file_status("../x")
        with pytest.raises(NotFoundError):
            await client.get_job_file_status(MISSING)
        assert [r.path for r in emu.requests] == [status_path(MISSING)]


async def test_new_statuses_and_odd_values_do_not_break_the_answer() -> None:
    answer = {
        "id": MISSING,
        "files": [
            {"record_id": "r1", "document": "s3://b/a.pdf", "status": "PAUSED", "new": 1,
             "current_node": {"id": "n1", "status": "RETRYING", "tries": 3, "time_elapsed": 2},
             "discovered_by_node_id": "src"},
            {"record_id": "r2", "document": "b.pdf", "status": "SUCCESS",
             "time_elapsed": "3s", "current_node": "n2"},
        ],
        "truncated": True,
        "generated_at": "2026-01-01T00:02:30Z",
        "cursor": "next",
    }  # fmt: skip
    async with (
        Emulator() as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as client,
    ):
        emu.inject(Fault.raw(200, json.dumps(answer).encode()), path=status_path(MISSING))
        got = await client.get_job_file_status(MISSING)
    first, second = got.files
    assert first.status == "PAUSED" and not first.status.is_known
    assert not first.status.is_terminal
    assert first.current_node is not None and first.current_node.status == "RETRYING"
    assert first.current_node.time_elapsed == 2.0 and first.discovered_by_node_id == "src"
    assert (second.time_elapsed, second.current_node) == (None, None)
    assert second.unparsed == {"time_elapsed": "3s", "current_node": "n2"}
    assert got.truncated and got.index_finished is None


def test_the_sync_client_and_raw_responses_have_it_too() -> None:
    with (
        Emulator(schedule=Schedule.manual()).running_in_thread() as emu,
        JobsClient(emu.api_key, emu.url) as client,
    ):
        job = client.create_job(template_id="t", input_files=FILES[:2])
        got = client.get_job_file_status(job.id)
        assert [f.document for f in got.files] == ["a.pdf", "bad.pdf"]
        raw = client.with_raw_response.get_job_file_status(job.id)
        assert raw.status == 200 and raw.url.endswith(status_path(job.id))
        assert raw.parse().files == got.files  # the same records (stable record ids)
