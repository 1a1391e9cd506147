"""The batch at the service's limits, against the emulator enforcing them strictly.

The client and the emulator share one virtual clock: the launch interval, ``Retry-After`` waits
and job run times all pass in virtual time, so nothing really sleeps and nothing depends on
the machine's speed. Its sleeps first let every task run until it waits (`SettledClock`): the
emulator has then seen every byte already sent, as it would have during a real sleep.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from unstructured_jobs import AsyncJobsClient, QuotaExceededError, ServiceLimits
from unstructured_jobs.batch import BatchObserver, FileState, submit_batch
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule


class SettledClock(FakeClock):
    """A `FakeClock` whose time moves only once every task waits (for the network, a timer).

    With a bare `FakeClock`, a sleep moves the time before the emulator has read what the
    client just sent: the emulator would see a launch arrive a second "late".
    """

    async def sleep(self, seconds: float) -> None:
        await anyio.wait_all_tasks_blocked()
        await super().sleep(seconds)


def make_files(folder: Path, count: int, size: int = 20) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"doc{i:03d}.txt"
        path.write_bytes(b"x" * size)
        paths.append(path)
    return paths


class Paced(BatchObserver):
    def __init__(self) -> None:
        self.paced: list[tuple[str, float]] = []

    def on_paced(self, reason: str, delay: float) -> None:
        self.paced.append((reason, delay))


def sent_names(emu: Emulator) -> Counter[str]:
    """How many jobs each file name was sent in."""
    return Counter(f.filename for job in emu.jobs.values() for f in job.files)


def strict(clock: FakeClock, **limits: Any) -> Emulator:
    options: dict[str, Any] = {"launch_interval": 1.0, "max_running": 5}
    options.update(limits)
    return Emulator(clock=clock, schedule=Schedule(run_for=4.0), **options)


async def test_a_batch_paced_by_the_limits_is_never_refused(tmp_path: Path) -> None:
    clock = SettledClock()
    paths = make_files(tmp_path / "in", 95)
    seen = Paced()
    async with (
        strict(clock, max_files_per_job=10) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        report = await submit_batch(
            client, [tmp_path / "in"], template_id="t", observer=seen, poll_interval=0.5
        )
    assert report.ok and len(report.files) == 95
    assert emu.refusals["launch_interval"] == 0 and report.refusals == 0 and seen.paced == []
    assert len(emu.jobs) == 10  # the client's limit of 10 files per job
    assert sent_names(emu) == Counter({p.name: 1 for p in paths})
    # The watcher: one get_job per job (when it is no longer listed), never one per poll.
    gets = [
        r
        for r in emu.requests
        if r.method == "GET" and r.path.count("/") == 4 and not r.path.endswith("/jobs/")
    ]
    assert len(gets) == len(emu.jobs)


async def test_a_refused_launch_waits_its_retry_after_and_takes_its_turn(tmp_path: Path) -> None:
    clock = SettledClock(100.0)
    paths = make_files(tmp_path / "in", 30)
    seen = Paced()
    async with (
        strict(clock) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        # Another program of the same account launched a job just now: the batch's first
        # launch is refused (429, Retry-After: 1) and every launch waits for it.
        await client.create_job(template_id="t", input_files=[paths[0]])
        report = await submit_batch(client, [tmp_path / "in"], template_id="t", observer=seen)
    assert report.ok
    assert emu.refusals["launch_interval"] == 1 == report.refusals  # never a second collision
    assert seen.paced == [("HTTP 429", 1.0)] and report.paced_seconds == 1.0
    names = sent_names(emu)
    names[paths[0].name] -= 1  # the other program's job
    assert names == Counter({p.name: 1 for p in paths})  # each file sent once
    assert len(emu.jobs) == 4


async def test_a_file_too_large_for_the_server_fails_alone(tmp_path: Path) -> None:
    """A size limit wrongly set above the server's costs one upload of one file."""
    clock = SettledClock()
    paths = make_files(tmp_path / "in", 6)
    paths[2].write_bytes(b"y" * 500)  # over the server's 100 bytes
    manifest = tmp_path / "m.sqlite"
    async with (
        strict(clock, max_file_size=100) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        report = await submit_batch(client, [tmp_path / "in"], template_id="t", manifest=manifest)
    assert report.counts() == {"done": 5, "failed": 1}
    [bad] = [f for f in report.files if not f.ok]
    assert bad.path == str(paths[2])
    assert "too large (413" in (bad.error or "") and "max_file_bytes" in (bad.error or "")
    [advice] = report.next_steps()
    assert "--max-file-size" in advice and "--retry-failed" not in advice
    assert sent_names(emu) == Counter({p.name: 1 for p in paths if p != paths[2]})
    posts = [r for r in emu.requests if r.method == "POST"]
    # The group (413), the large file alone (413), the five others in two halves.
    assert [r.status for r in posts].count(413) == 2 and len(posts) == 4
    # Sending it again does not help: it stays failed on a plain run.
    async with (
        strict(clock, max_file_size=100) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        again = await submit_batch(client, [tmp_path / "in"], template_id="t", manifest=manifest)
    assert again.counts() == {"done": 5, "failed": 1} and emu.requests == []


async def test_a_group_the_server_refuses_is_split_until_it_is_accepted(tmp_path: Path) -> None:
    clock = SettledClock()
    paths = make_files(tmp_path / "in", 8)
    async with (
        strict(clock, max_files_per_job=3) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        report = await submit_batch(client, [tmp_path / "in"], template_id="t", files_per_job=4)
    assert report.ok
    assert emu.refusals["max_files_per_job"] == 2  # each group of 4, once
    assert sent_names(emu) == Counter({p.name: 1 for p in paths})
    assert sorted(len(j.files) for j in emu.jobs.values()) == [2, 2, 2, 2]


async def test_402_stops_the_batch_and_a_run_after_the_quota_sends_each_file_once(
    tmp_path: Path,
) -> None:
    clock = SettledClock()
    paths = make_files(tmp_path / "in", 12)
    manifest = tmp_path / "m.sqlite"
    options: dict[str, Any] = {"template_id": "t", "manifest": manifest, "files_per_job": 3}
    async with (
        strict(clock, quota_files=6) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        with pytest.raises(QuotaExceededError, match="Insufficient API quota"):
            await submit_batch(client, [tmp_path / "in"], **options)
        assert len(emu.jobs) == 2 and emu.refusals["quota"] >= 1
        with sqlite3.connect(manifest) as db:
            states = Counter(state for (state,) in db.execute("SELECT state FROM files"))
        assert states[FileState.PENDING] == 6 and states[FileState.FAILED] == 0, states
        emu.set_quota(None)  # the quota is restored
        report = await submit_batch(client, [tmp_path / "in"], **options)
    assert report.ok and len(emu.jobs) == 4
    assert sent_names(emu) == Counter({p.name: 1 for p in paths})


async def test_exclude_takes_a_file_out_of_a_batch_that_holds_it(tmp_path: Path) -> None:
    clock = SettledClock()
    make_files(tmp_path / "in", 3)
    (tmp_path / "in" / "huge.bin").write_bytes(b"z" * 300)
    manifest = tmp_path / "m.sqlite"
    options: dict[str, Any] = {"template_id": "t", "manifest": manifest}
    limits = ServiceLimits(bytes_per_file=100)
    async with (
        strict(clock) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock, limits=limits) as c,
    ):
        first = await submit_batch(c, [tmp_path / "in"], **options)
        assert first.counts() == {"done": 3, "failed": 1}
        assert "over the size limit" in first.next_steps()[0]
        second = await submit_batch(c, [tmp_path / "in"], exclude=["*.bin"], **options)
    assert second.ok and sorted(Path(f.path).name for f in second.files) == [
        "doc000.txt",
        "doc001.txt",
        "doc002.txt",
    ]
    assert len(emu.jobs) == 1


async def test_files_as_large_as_one_the_server_refused_are_not_sent_again(
    tmp_path: Path,
) -> None:
    clock = SettledClock()
    paths = make_files(tmp_path / "in", 4)  # grouped by two: [0, 1], [2, 3]
    paths[1].write_bytes(b"y" * 500)
    paths[3].write_bytes(b"y" * 600)
    async with (
        strict(clock, max_file_size=100) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        report = await submit_batch(client, [tmp_path / "in"], template_id="t", files_per_job=2)
    failed = {Path(f.path).name: f.error or "" for f in report.files if not f.ok}
    assert sorted(failed) == ["doc001.txt", "doc003.txt"]
    assert "refused by the server as too large (413" in failed["doc001.txt"]
    assert failed["doc003.txt"].startswith("not sent: the server refused a file of 500 bytes")
    assert sent_names(emu) == Counter({"doc000.txt": 1, "doc002.txt": 1})
    posts = [r.status for r in emu.requests if r.method == "POST"]
    assert posts.count(413) == 3 and len(posts) == 5  # doc003.txt was sent once, in its group


async def test_a_request_refused_for_every_file_stops_splitting_soon(tmp_path: Path) -> None:
    """A wrong template refuses every group: a few sends find that out, not one per file."""
    clock = SettledClock()
    make_files(tmp_path / "in", 40)
    async with (
        strict(clock) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        emu.inject(
            Fault.status(422, detail="Unknown template"), method="POST", path="*", times=None
        )
        report = await submit_batch(client, [tmp_path / "in"], template_id="t")
    assert report.counts() == {"failed": 40} and emu.jobs == {}
    assert all("Unknown template" in (f.error or "") for f in report.files)
    posts = [r for r in emu.requests if r.method == "POST"]
    # Split to the end, the 4 groups would take 76 sends (19 each); three files refused
    # alone with no job created stop the splitting. How many parts were already queued or in
    # flight when that happened depends on scheduling (21-26 sends seen): fewer sends than
    # files is the point.
    assert len(posts) < 40


async def test_a_503_is_sent_again_through_the_launch_slots_after_its_retry_after(
    tmp_path: Path,
) -> None:
    clock = SettledClock()
    paths = make_files(tmp_path / "in", 20)
    created_at: list[float] = []

    class Seen(Paced):
        def on_job_submitted(self, job_id: str, files: int) -> None:
            created_at.append(clock.now())

    seen = Seen()
    async with (
        strict(clock) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock) as client,
    ):
        emu.inject(Fault.status(503, retry_after="3"), method="POST", path="*", times=1)
        report = await submit_batch(client, [tmp_path / "in"], template_id="t", observer=seen)
    assert report.ok and len(emu.jobs) == 2
    assert sent_names(emu) == Counter({p.name: 1 for p in paths})
    assert report.refusals == 0 and seen.paced == []  # an error retried, not pacing
    assert emu.refusals["launch_interval"] == 0  # its retry never collided with a launch
    posts = [r.status for r in emu.requests if r.method == "POST"]
    assert posts == [503, 200, 200]
    assert min(created_at) >= 3.0  # no launch before the 503's Retry-After was over


async def test_the_batchs_own_options_override_the_clients_limits(tmp_path: Path) -> None:
    """``--max-file-size 1000`` for a server known to take it: the client's 100 does not refuse."""
    clock = SettledClock()
    paths = make_files(tmp_path / "in", 12, size=300)
    limits = ServiceLimits(bytes_per_file=100, files_per_job=10)
    async with (
        strict(clock, max_files_per_job=None) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=clock, limits=limits) as c,
    ):
        report = await submit_batch(
            c, [tmp_path / "in"], template_id="t", max_file_bytes=1000, files_per_job=12
        )
        assert c.limits == limits  # the client itself is unchanged
    assert report.ok and len(emu.jobs) == 1
    assert sent_names(emu) == Counter({p.name: 1 for p in paths})
