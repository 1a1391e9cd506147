"""The batch engine against the emulator over loopback: grouping, faults, resume, safe names."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import AsyncJobsClient, JobsClient
from unstructured_jobs.batch import (
    BatchObserver,
    FileState,
    UnsafePathError,
    output_path_inside,
    run_batch,
    safe_output_name,
    submit_batch,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault, FaultRates

FAST: dict[str, Any] = {"launch_rate": None, "poll_interval": 0.01, "reconcile_grace": 0}


def make_files(folder: Path, count: int, prefix: str = "doc") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{prefix}{i:03d}.txt"
        path.write_text(f"document {i}\n" * (i % 7 + 1))
        paths.append(path)
    return paths


def manifest_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT path, upload_name, state, job_id FROM files").fetchall()


async def test_groups_limits_and_outputs(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_files(tmp_path / "in" / "a", 12)
    make_files(tmp_path / "in" / "b", 3)  # same names as in a/: renamed "doc000 (2).txt"
    (tmp_path / "in" / ".hidden").write_text("skipped")
    (tmp_path / "in" / ".git").mkdir()
    (tmp_path / "in" / ".git" / "config").write_text("skipped too")
    (tmp_path / "in" / "big.bin").write_bytes(b"x" * 5000)
    out = tmp_path / "out"
    report = await submit_batch(
        client,
        [tmp_path / "in", str(tmp_path / "nothing-*.pdf")],
        template_id="tpl",
        output_dir=out,
        files_per_job=4,
        max_file_bytes=1000,
        **FAST,
    )
    counts = report.counts()
    assert counts == {"done": 15, "failed": 2}
    failed = {Path(f.path).name: f.error for f in report.files if not f.ok}
    assert "over the limit" in (failed["big.bin"] or "")
    assert "no file matches" in (failed["nothing-*.pdf"] or "")
    assert all(len(j.files) <= 4 for j in emu.jobs.values())
    names = [f.filename for j in emu.jobs.values() for f in j.files]
    assert len(names) == 15 == len(set(names))
    assert "doc000 (2).txt" in names and "big.bin" not in names
    for f in report.files:
        if f.ok:
            assert f.output_path and Path(f.output_path).parent == out.resolve()
            assert Path(f.output_path).is_file()
    # Re-running changes nothing: everything is done already.
    again = await submit_batch(
        client, [tmp_path / "in"], template_id="tpl", output_dir=out, max_file_bytes=1000, **FAST
    )
    assert len(emu.jobs) == len({f.job_id for f in report.files if f.job_id})
    assert again.counts()["done"] == 15


async def test_500_files_under_faults_exactly_once(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_files(tmp_path / "in", 500)
    emu.fault_rates = FaultRates(
        status_429=0.04, status_503=0.04, drop_before=0.03, drop_after=0.04, seed=1234
    )
    manifest = tmp_path / "batch.sqlite"
    report = await submit_batch(
        client,
        [tmp_path / "in"],
        template_id="tpl",
        manifest=manifest,
        max_submit_attempts=20,
        max_concurrent_uploads=8,
        **FAST,
    )
    emu.fault_rates = None
    assert report.counts() == {"done": 500}, [f for f in report.files if not f.ok][:3]
    faults = Counter(r.fault for r in emu.requests if r.fault)
    assert faults["drop_after"] and faults["drop_before"] and faults["status"]
    received = Counter(f.filename for j in emu.jobs.values() for f in j.files)
    assert len(received) == 500 and set(received.values()) == {1}
    job_of = {f.filename: job_id for job_id, j in emu.jobs.items() for f in j.files}
    rows = manifest_rows(manifest)
    assert len(rows) == 500
    for _path, upload_name, state, job_id in rows:
        assert state == "done" and job_of[upload_name] == job_id


async def test_lost_answer_is_reconciled_not_resent(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_files(tmp_path / "in", 6)
    emu.inject(Fault.drop_after(), method="POST", path="/api/v1/jobs/", times=2)
    report = await submit_batch(
        client, [tmp_path / "in"], template_id="tpl", files_per_job=3, **FAST
    )
    assert report.ok
    assert len(emu.jobs) == 2
    assert Counter(f.filename for f in emu.received_files()) == {
        f"doc{i:03d}.txt": 1 for i in range(6)
    }


async def test_a_job_listed_only_after_the_grace_wait_is_adopted_not_resent(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_files(tmp_path / "in", 3)
    assert isinstance(client.clock, FakeClock)  # the engine's grace wait costs no time
    # The job is created but its answer is lost; the first listing does not show it yet (a
    # listing that lags behind creation), the one after the grace wait does.
    emu.inject(Fault.drop_after(), method="POST", path="/api/v1/jobs/", times=1)
    emu.inject(Fault.raw(200, b"[]"), method="GET", path="/api/v1/jobs/", times=1)
    options: dict[str, Any] = {**FAST, "reconcile_grace": 7.5}
    report = await submit_batch(
        client, [tmp_path / "in"], template_id="tpl", files_per_job=3, **options
    )
    assert report.ok, report.files
    assert len(emu.jobs) == 1  # adopted, never sent a second time
    assert client.clock.sleeps.count(7.5) == 1  # one grace wait, on the client's clock
    # The listings that look for the job (the batch's watcher lists by status: not these).
    listings = [
        r
        for r in emu.requests
        if r.method == "GET" and r.path == "/api/v1/jobs/" and "status" not in r.query
    ]
    assert [r.fault for r in listings] == ["raw", None]
    assert Counter(f.filename for f in emu.received_files()) == {
        f"doc{i:03d}.txt": 1 for i in range(3)
    }
    assert report.job_ids == list(emu.jobs)


async def test_crash_while_submitting_is_reconciled(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_files(tmp_path / "in", 4)
    manifest = tmp_path / "m.sqlite"
    real_create = client.create_job

    async def create_then_crash(**kwargs: Any) -> Any:
        await real_create(**kwargs)  # the job exists, but we "die" before recording it
        raise RuntimeError("simulated crash")

    client.create_job = create_then_crash  # type: ignore[method-assign]
    with pytest.raises(BaseException, match="crash"):
        await submit_batch(
            client, [tmp_path / "in"], template_id="tpl", manifest=manifest, files_per_job=4,
            **FAST,
        )  # fmt: skip
    assert {r[2] for r in manifest_rows(manifest)} == {"submitting"}
    client.create_job = real_create  # type: ignore[method-assign]
    report = await submit_batch(
        client, [tmp_path / "in"], template_id="tpl", manifest=manifest, **FAST
    )
    assert report.ok and len(emu.jobs) == 1
    assert report.job_ids == list(emu.jobs)


def test_run_batch_sync_with_jobs_client(unstructured_emulator: Emulator, tmp_path: Path) -> None:
    make_files(tmp_path / "in", 5)
    emu = unstructured_emulator
    with JobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        report = run_batch([tmp_path / "in"], client=client, template_id="tpl", **FAST)
    assert report.ok and len(emu.jobs) == 1
    plain = run_batch(
        [tmp_path / "in"], api_key=emu.api_key, server_url=emu.url, template_id="other",
        manifest=tmp_path / "other.sqlite", **FAST,
    )  # fmt: skip
    assert plain.ok and len(emu.jobs) == 2


async def test_failed_files_are_reported(
    unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(fail_files=lambda name: name.endswith("1.txt"))
    make_files(tmp_path / "in", 4)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        report = await submit_batch(
            client, [tmp_path / "in"], template_id="t", output_dir=tmp_path / "out", **FAST
        )
    states = {Path(f.path).name: f.state for f in report.files}
    assert states == {"doc000.txt": "done", "doc001.txt": "failed", "doc002.txt": "done",
                      "doc003.txt": "done"}  # fmt: skip
    assert not report.ok


@pytest.mark.parametrize(
    "file_id",
    ["../../etc/passwd", "/etc/passwd", "C:\\Windows\\system.ini", "a\x00b", "..", "", ".env",
     "dir/../../x", "\\\\server\\share\\f", "CON", "x" * 400],
)  # fmt: skip
def test_output_names_never_escape(tmp_path: Path, file_id: str) -> None:
    name = safe_output_name(file_id)
    assert "/" not in name and "\\" not in name and "\x00" not in name and ":" not in name
    assert not name.startswith(".") and len(name.encode()) <= 200
    target = output_path_inside(tmp_path, name + ".json")
    assert target.parent == tmp_path.resolve()


@pytest.mark.parametrize("name", ["../x.json", "/abs.json", "a/b.json", "..", "C:x", "a\x00b"])
def test_output_path_inside_refuses_unsafe(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        output_path_inside(tmp_path, name)


async def test_a_single_path_is_refused_not_split_into_characters(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    from unstructured_jobs import InvalidInputError

    emu, client = emu_client
    with pytest.raises(InvalidInputError, match="not one path"):
        await submit_batch(client, str(tmp_path), template_id="t", **FAST)  # type: ignore[arg-type]
    assert emu.requests == []


async def test_the_manifest_and_its_side_files_are_never_uploaded(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, client = emu_client
    make_files(tmp_path, 3)
    monkeypatch.chdir(tmp_path)
    report = await submit_batch(
        client, ["."], template_id="t", manifest="unstructured-jobs-batch.sqlite", **FAST
    )
    sent = sorted(f.filename for f in emu.received_files())
    assert sent == ["doc000.txt", "doc001.txt", "doc002.txt"]
    assert report.ok


def test_a_lost_answer_adopts_the_job_closest_to_the_send() -> None:
    from datetime import datetime, timedelta

    from unstructured_jobs import JobInformation, JobStatus
    from unstructured_jobs._batch.grouping import match_job

    sent = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def job(job_id: str, seconds: float) -> JobInformation:
        return JobInformation(
            job_id, "w", "n", JobStatus.SCHEDULED, sent + timedelta(seconds=seconds), None, ("a",)
        )

    jobs = [job("other-run", -240), job("ours", 1), job("later", 50)]
    found = match_job(["a"], sent, jobs, set(), timedelta(seconds=300))
    assert found is not None and found.id == "ours"
    found = match_job(["a"], sent, [job("other-run", -240)], set(), timedelta(seconds=300))
    assert found is not None and found.id == "other-run"  # only candidate: clock skew allowed
    assert match_job(["a"], sent, jobs, {"ours", "later", "other-run"}, timedelta(300)) is None


async def test_a_timed_out_answer_is_left_for_the_next_run_not_resent(
    unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    from unstructured_jobs import Timeout

    emu = unstructured_emulator_factory(max_running=None)
    make_files(tmp_path / "in", 2)
    manifest = tmp_path / "m.sqlite"
    options: dict[str, Any] = {**FAST, "manifest": manifest, "template_id": "t"}
    emu.inject(Fault.delay(1.0), method="POST", path="/api/v1/jobs/")
    async with AsyncJobsClient(
        api_key=emu.api_key, server_url=emu.url, timeout=Timeout(connect=5, read=0.2, write=5)
    ) as client:
        first = await submit_batch(client, [tmp_path / "in"], **options)
    assert first.counts() == {"submitting": 2}  # unknown whether its job exists: not resent
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        second = await submit_batch(client, [tmp_path / "in"], **options)
    assert second.ok
    names = Counter(f.filename for job in emu.jobs.values() for f in job.files)
    assert names == {"doc000.txt": 1, "doc001.txt": 1}


class Recorder(BatchObserver):
    """Remembers the last state told for each file (by name)."""

    def __init__(self, on_start: Callable[[], None] | None = None) -> None:
        self.states: dict[str, str] = {}
        self._on_start = on_start

    def on_start(self, *, jobs: int, files: int, upload_bytes: int) -> None:
        if self._on_start is not None:
            self._on_start()

    def on_file(self, path: str, state: FileState) -> None:
        self.states[Path(path).name] = state


def group_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT state, job_id, job_status, error FROM groups").fetchall()


async def test_a_group_refused_for_good_fails_its_files(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_files(tmp_path / "in", 2)
    manifest = tmp_path / "m.sqlite"
    # Every launch refused: the group is split to find the file, and each is refused alone.
    emu.inject(
        Fault.status(400, detail="Too many files"), method="POST", path="/api/v1/jobs/", times=3
    )
    seen = Recorder()
    options: dict[str, Any] = {**FAST, "manifest": manifest, "template_id": "t"}
    report = await submit_batch(client, [tmp_path / "in"], observer=seen, **options)
    assert report.counts() == {"failed": 2} and emu.jobs == {}
    assert all(
        "refused by the server (400: Too many files)" in (f.error or "") for f in report.files
    )
    assert seen.states == {"doc000.txt": "failed", "doc001.txt": "failed"}
    rows = group_rows(manifest)
    assert [(state, job_id) for state, job_id, _, _ in rows] == [("refused", None)] * 2
    assert all("Too many files" in error for *_, error in rows)
    assert (
        report.next_steps()[0].startswith("2 file(s) failed")
        and "--retry-failed" in (report.next_steps()[0])
    )
    emu.clear_faults()
    again = await submit_batch(client, [tmp_path / "in"], **options)
    assert again.counts() == {"failed": 2} and emu.jobs == {}  # not sent again on its own
    retried = await submit_batch(client, [tmp_path / "in"], retry_failed=True, **options)
    assert retried.ok and len(emu.jobs) == 1


async def test_a_file_gone_before_sending_leaves_its_group_the_rest_is_sent(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    paths = make_files(tmp_path / "in", 3)
    manifest = tmp_path / "m.sqlite"
    seen = Recorder(on_start=paths[1].unlink)  # grouped already, then deleted
    report = await submit_batch(
        client, [tmp_path / "in"], template_id="t", manifest=manifest, observer=seen, **FAST
    )
    states = {Path(f.path).name: (f.state, f.error) for f in report.files}
    assert states == {
        "doc000.txt": ("done", None),
        "doc001.txt": ("failed", "no such file"),
        "doc002.txt": ("done", None),
    }
    assert seen.states == {name: state for name, (state, _error) in states.items()}
    [job] = emu.jobs.values()
    assert [f.filename for f in job.files] == ["doc000.txt", "doc002.txt"]
    with sqlite3.connect(manifest) as db:
        rows = db.execute("SELECT upload_name, group_id FROM files ORDER BY path").fetchall()
    assert rows[1] == ("doc001.txt", None)  # out of its group: checked again on the next run
    assert rows[0][1] is not None and rows[0][1] == rows[2][1]


async def test_a_job_gone_while_waiting_fails_its_files(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_files(tmp_path / "in", 2)
    manifest = tmp_path / "m.sqlite"
    options: dict[str, Any] = {**FAST, "manifest": manifest, "template_id": "t"}
    sent = await submit_batch(client, [tmp_path / "in"], wait=False, **options)
    assert sent.counts() == {"submitted": 2}
    [job_id] = sent.job_ids
    emu.inject(Fault.status(404, detail="Job not found"), method="GET",
               path=f"/api/v1/jobs/{job_id}")  # fmt: skip
    seen = Recorder()
    report = await submit_batch(client, [tmp_path / "in"], observer=seen, **options)
    assert {(f.state, f.job_status) for f in report.files} == {("failed", "UNKNOWN")}
    for f in report.files:
        assert f"job {job_id} no longer exists on the server (404)" in (f.error or "")
        assert "--retry-failed" in (f.error or "")
    assert seen.states == {"doc000.txt": "failed", "doc001.txt": "failed"}
    assert group_rows(manifest) == [("finished", job_id, "UNKNOWN", None)]


async def test_jobs_that_cannot_be_listed_leave_a_crashed_group_submitting(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_files(tmp_path / "in", 2)
    manifest = tmp_path / "m.sqlite"
    options: dict[str, Any] = {**FAST, "manifest": manifest, "template_id": "t"}
    real_create = client.create_job

    async def create_then_crash(**kwargs: Any) -> Any:
        await real_create(**kwargs)
        raise RuntimeError("simulated crash")

    client.create_job = create_then_crash  # type: ignore[method-assign]
    with pytest.raises(BaseException, match="crash"):
        await submit_batch(client, [tmp_path / "in"], **options)
    client.create_job = real_create  # type: ignore[method-assign]
    emu.inject(Fault.status(400, detail="listing is down"), method="GET", path="/api/v1/jobs/")
    stuck = await submit_batch(client, [tmp_path / "in"], **options)
    assert stuck.counts() == {"submitting": 2} and len(emu.jobs) == 1  # never resent blindly
    assert all("cannot check whether its job exists" in (f.error or "") for f in stuck.files)
    [(state, _job, _status, error)] = group_rows(manifest)
    assert state == "submitting" and "listing is down" in error
    emu.clear_faults()
    report = await submit_batch(client, [tmp_path / "in"], **options)
    assert report.ok and len(emu.jobs) == 1
