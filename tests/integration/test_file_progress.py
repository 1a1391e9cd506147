"""Per-file progress where users wait (issue 22, item 2), against the emulator over loopback:
``on_files`` of `wait_for_job`, `watch_job` and `run_job` gets the files' states within the
service's 12 calls a minute per job (the emulator enforces it: ``file_status_limit=12``), on a
FakeClock; the command line's ``wait`` and ``create -o`` show the files done, running and failed
on their status lines."""

from __future__ import annotations

import io
import itertools
import re
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from cli_support import KEY, Cli, Result, env_for, poll_until

from unstructured_jobs import AsyncJobsClient, JobFileStatus, JobsClient
from unstructured_jobs._bars import BatchProgress, Lines, Mode, file_counts
from unstructured_jobs._client import FILE_STATUS_EVERY
from unstructured_jobs.batch import BatchObserver, submit_batch
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


# -- the batch: the files of its running jobs, on a budget -------------------------------------


class SettledClock(FakeClock):
    """A `FakeClock` whose time moves only once every task waits (as in test_batch_limits)."""

    async def sleep(self, seconds: float) -> None:
        await anyio.wait_all_tasks_blocked()
        await super().sleep(seconds)


class FilesSeen(BatchObserver):
    def __init__(self, every: float | None, clock: FakeClock) -> None:
        self.file_status_every = every
        self.clock = clock
        self.seen: list[tuple[float, str, tuple[int, int, int, int]]] = []
        self.finished: set[str] = set()

    def on_job_finished(self, job_id: str, status: str) -> None:
        self.finished.add(job_id)

    def on_job_files(self, job_id: str, status: JobFileStatus) -> None:
        assert job_id == status.id and job_id not in self.finished  # running jobs only
        self.seen.append((self.clock.now(), job_id, file_counts(status)))


Reads = list[tuple[float, str]]


async def batch_with(
    tmp_path: Path, observer: BatchObserver, clock: FakeClock
) -> tuple[Emulator, Reads]:
    """The batch of 30 files in 10 jobs, and when each file-status read started (virtual s)."""
    folder = tmp_path / "in"
    folder.mkdir(parents=True)
    for i in range(30):
        (folder / f"doc{i:02d}.txt").write_text(f"doc {i}")
    limits = {"launch_interval": 1.0, "max_running": 5, "file_status_limit": 12}
    async with (
        Emulator(clock=clock, schedule=Schedule(run_for=60.0), **limits) as emu,  # type: ignore[arg-type]
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        reads: Reads = []
        read = client.get_job_file_status

        async def get_job_file_status(job_id: str) -> JobFileStatus:
            reads.append((clock.now(), job_id))
            return await read(job_id)

        client.get_job_file_status = get_job_file_status  # type: ignore[method-assign,assignment]
        report = await submit_batch(
            client, [folder], template_id="t", files_per_job=3, observer=observer,
            manifest=tmp_path / f"m{id(observer)}.db", poll_interval=1.0,
        )  # fmt: skip
    assert report.ok and report.counts() == {"done": 30}
    assert len(reads) == len(calls(emu))
    return emu, reads


def per_job(reads: Reads) -> list[list[float]]:
    by_job: dict[str, list[float]] = {}
    for t, job_id in reads:
        by_job.setdefault(job_id, []).append(t)
    return list(by_job.values())


async def test_a_batch_reads_running_jobs_files_within_its_budget(tmp_path: Path) -> None:
    clock = SettledClock()
    seen = FilesSeen(30.0, clock)
    emu, reads = await batch_with(tmp_path, seen, clock)
    assert calls(emu) == [200] * len(reads)  # never past the service's 12 a minute
    assert len(seen.seen) >= 10  # each of the 10 jobs, while it ran
    assert {c for _, _, c in seen.seen} == {(0, 3, 0, 3)}  # 3 files running in each
    times = [t for t, _ in reads]
    assert all(b - a >= 1.0 - 1e-6 for a, b in itertools.pairwise(times))  # one a second
    jobs = per_job(reads)
    assert len(jobs) == 10
    for job_times in jobs:  # each job at most every 30 s: 2 a minute of its 12
        assert all(b - a >= 30.0 - 1e-6 for a, b in itertools.pairwise(job_times))


async def test_a_batch_reads_no_files_unless_asked_and_never_under_5_s(tmp_path: Path) -> None:
    for observer in (BatchObserver(), BatchProgress(Mode.OFF)):  # none asked, nothing shown
        emu, _ = await batch_with(tmp_path / str(id(observer)), observer, SettledClock())
        assert calls(emu) == []

    clock = SettledClock()
    eager = FilesSeen(0.5, clock)  # asks too often: held to 5 s per job
    emu, reads = await batch_with(tmp_path / "b", eager, clock)
    assert calls(emu) == [200] * len(reads) and len(reads) >= 5 * 10
    for job_times in per_job(reads):
        assert all(b - a >= 5.0 - 1e-6 for a, b in itertools.pairwise(job_times))
        assert all(len([t for t in job_times if s <= t < s + 60]) <= 12 for s in job_times)


async def test_batch_progress_shows_the_files_of_running_jobs(tmp_path: Path) -> None:
    clock = SettledClock()
    out = io.StringIO()
    progress = BatchProgress(Mode.LINES, lines=Lines(interval=0.0, clock=clock.now, stream=out))
    await batch_with(tmp_path, progress, clock)
    progress.close()
    lines = out.getvalue().splitlines()
    running = [
        int(m.group(1))
        for line in lines
        if (m := re.search(r", in running jobs: 0 files done, (\d+) running, 0 failed$", line))
    ]
    assert running and all(n % 3 == 0 and 3 <= n <= 15 for n in running), lines  # 1 to 5 jobs
    assert lines[-1] == (
        "batch: 30 files uploaded (170 B of 170 B), 10/10 jobs finished, 30/30 files done"
    )
