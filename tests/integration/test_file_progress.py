"""Per-file progress where users wait (issue 22, item 2), against the emulator over loopback:
``on_files`` of `wait_for_job`, `watch_job` and `run_job` gets the files' states within the
service's 12 calls a minute per job (the emulator enforces it: ``file_status_limit=12``), on a
FakeClock; the command line's ``wait`` and ``create -o`` show the files done, running and failed
on their status lines."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import KEY, Cli, Result, env_for, poll_until

from unstructured_jobs import AsyncJobsClient, JobFileStatus, JobsClient
from unstructured_jobs._bars import file_counts
from unstructured_jobs._client import FILE_STATUS_EVERY
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

FILES = [("a.pdf", b"%PDF a"), ("bad.pdf", b"%PDF b"), ("c.txt", b"c")]


def calls(emu: Emulator) -> list[int | None]:
    """The answers to file-status requests, in order."""
    return [r.status for r in emu.requests if r.path.endswith("/file-status")]


async def test_wait_for_job_hands_the_files_states_to_on_files_at_most_every_5_s() -> None:
    clock = FakeClock(0.0)
    schedule = Schedule(start_after=5, run_for=60)

    def fail(name: str) -> bool:  # the emulator's failure marker
        return "bad" in name

    async with (
        Emulator(clock=clock, schedule=schedule, file_status_limit=12, fail_files=fail) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client,
    ):
        job = await client.create_job(template_id="t", input_files=FILES)
        seen: list[tuple[float, tuple[int, int, int, int]]] = []

        def on_files(status: JobFileStatus) -> None:
            assert status.id == job.id
            seen.append((clock.now(), file_counts(status)))

        done = await client.wait_for_job(
            job.id, poll_interval=1, max_poll_interval=1, on_files=on_files
        )
        assert done.status == "COMPLETED"
        counts = [c for _, c in seen]
        assert counts[0] == (0, 0, 0, 3)  # READY while scheduled
        assert (0, 3, 0, 3) in counts  # running
        assert counts[-1] == (2, 0, 1, 3)  # the final counts: 2 done, 1 failed
        times = [t for t, _ in seen]
        # While the job runs: one read every 5 s at most (12 a minute), and one at the end.
        assert all(b - a >= FILE_STATUS_EVERY for a, b in itertools.pairwise(times[:-1]))
        assert 65 / FILE_STATUS_EVERY - 2 <= len(seen) <= 65 / FILE_STATUS_EVERY + 2
        assert calls(emu) == [200] * len(seen)  # never refused by the limit of 12 a minute


async def test_watch_job_reports_files_too_and_nothing_unless_asked() -> None:
    clock = FakeClock(0.0)
    async with (
        Emulator(clock=clock, schedule=Schedule(start_after=2, run_for=20)) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client,
    ):
        job = await client.create_job(template_id="t", input_files=FILES[:2])
        statuses = [j.status async for j in client.watch_job(job.id, poll_interval=1)]
        assert statuses == ["SCHEDULED", "IN_PROGRESS", "COMPLETED"]
        assert calls(emu) == []  # no option, no file-status call

        job = await client.create_job(template_id="t", input_files=FILES[:2])
        seen: list[tuple[int, int, int, int]] = []
        statuses = [
            j.status
            async for j in client.watch_job(
                job.id,
                poll_interval=1,
                max_poll_interval=1,
                on_files=lambda s: seen.append(file_counts(s)),
            )
        ]
        assert statuses == ["SCHEDULED", "IN_PROGRESS", "COMPLETED"]
        assert seen[0] == (0, 0, 0, 2) and (0, 2, 0, 2) in seen and seen[-1] == (2, 0, 0, 2)
        assert 22 / FILE_STATUS_EVERY - 1 <= len(seen) <= 22 / FILE_STATUS_EVERY + 2
        assert len(calls(emu)) == len(seen)


async def test_a_file_status_that_cannot_be_read_does_not_fail_the_wait() -> None:
    clock = FakeClock(0.0)
    async with (
        Emulator(clock=clock, schedule=Schedule(start_after=0, run_for=12)) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=clock, max_retries=0) as client,
    ):
        job = await client.create_job(template_id="t", input_files=FILES[:1])
        emu.inject(Fault.status(500), path=f"/api/v1/jobs/{job.id}/file-status")
        seen: list[JobFileStatus] = []
        done = await client.wait_for_job(job.id, poll_interval=1, on_files=seen.append)
        assert done.status == "COMPLETED"
        assert calls(emu)[0] == 500 and seen and seen[-1].count("SUCCESS") == 1


def test_the_sync_client_takes_on_files_for_wait_watch_and_run(manual: Emulator) -> None:
    emu = manual
    with JobsClient(api_key=KEY, server_url=emu.url) as client:
        job = client.create_job(template_id="t", input_files=FILES[:1])
        emu.set_status(job.id, "IN_PROGRESS")
        seen: list[tuple[int, int, int, int]] = []
        watch = client.watch_job(
            job.id, poll_interval=0.01, on_files=lambda s: seen.append(file_counts(s))
        )
        states = iter(watch)
        assert next(states).status == "IN_PROGRESS"
        assert seen == [(0, 1, 0, 1)]
        emu.set_status(job.id, "COMPLETED")
        assert [j.status for j in states] == ["COMPLETED"]
        assert seen[-1] == (1, 0, 0, 1)  # the final counts, once more at the end
        got: list[JobFileStatus] = []
        run = client.run_job(job_id=job.id, on_files=got.append)
        assert run.outcomes() == {"in memory": 1}
        assert [file_counts(s) for s in got] == []  # finished at the first poll: nothing to show
        assert client.wait_for_job(job.id, on_files=got.append).status == "COMPLETED"
        assert got == []


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def manual(unstructured_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return unstructured_emulator_factory(api_key=KEY, schedule=Schedule.manual())


def _in_thread(run: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_prints_the_files_done_running_and_failed(cli: Cli, manual: Emulator) -> None:
    with JobsClient(api_key=KEY, server_url=manual.url) as client:
        job = client.create_job(template_id="t", input_files=FILES[:2])
    manual.set_status(job.id, "IN_PROGRESS")
    results: list[Result] = []
    thread = _in_thread(
        lambda: results.append(cli("wait", job.id, "--poll-interval", "0.01", env=env_for(manual)))
    )
    poll_until(lambda: len(calls(manual)) >= 1, "a file-status call")
    manual.set_status(job.id, "COMPLETED")
    thread.join()
    (r,) = results
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == f"job {job.id}: IN_PROGRESS (files: 0/2 done, 2 running, 0 failed)"
    assert lines[-1] == f"job {job.id}: COMPLETED (files: 2/2 done, 0 running, 0 failed)"
    assert all(line.startswith(f"job {job.id}: still IN_PROGRESS") for line in lines[1:-1])
    assert len(calls(manual)) >= 2 and set(calls(manual)) == {200}


def test_create_to_outputs_prints_the_files_states(
    cli: Cli, manual: Emulator, tmp_path: Path
) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    results: list[Result] = []
    thread = _in_thread(
        lambda: results.append(
            cli(
                "create",
                "--template-id",
                "t",
                "a.txt",
                "b.txt",
                "-o",
                "out",
                "--poll-interval",
                "0.01",
                env=env_for(manual),
                cwd=tmp_path,
            )
        )
    )
    poll_until(lambda: len(calls(manual)) >= 1, "a file-status call")
    (job_id,) = manual.jobs
    manual.set_status(job_id, "COMPLETED")
    thread.join()
    (r,) = results
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert f"job {job_id}: SCHEDULED (files: 0/2 done, 0 running, 0 failed)" in lines
    assert f"job {job_id}: COMPLETED (files: 2/2 done, 0 running, 0 failed)" in lines
    assert len(list((tmp_path / "out").iterdir())) == 2  # and the outputs were fetched


def test_quiet_wait_reads_no_file_status(cli: Cli, manual: Emulator) -> None:
    with JobsClient(api_key=KEY, server_url=manual.url) as client:
        job = client.create_job(template_id="t", input_files=FILES[:1])
    manual.set_status(job.id, "IN_PROGRESS")
    results: list[Result] = []
    thread = _in_thread(
        lambda: results.append(
            cli("wait", job.id, "--quiet", "--poll-interval", "0.01", env=env_for(manual))
        )
    )
    polls = f"/api/v1/jobs/{job.id}"
    poll_until(lambda: sum(r.path == polls for r in manual.requests) >= 3, "three polls")
    manual.set_status(job.id, "COMPLETED")
    thread.join()
    (r,) = results
    assert r.returncode == 0 and r.stderr == ""
    assert calls(manual) == []
