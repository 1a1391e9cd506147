"""The batch against hostile file trees, clocks and disks (issue 11), over loopback.

Each test here failed on the code before its fix: control characters and non-UTF-8 bytes in file
names, a symlink loop under a ``**`` glob, a local clock an hour ahead of the server's, a full
disk, a damaged manifest page, ``.part`` files left by a killed run, and a job gone after some
of its files were done.
"""

from __future__ import annotations

import email.utils
import errno
import gc
import os
import sqlite3
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import (
    APIConnectionError,
    AsyncJobsClient,
    InvalidInputError,
    LocalFileError,
)
from unstructured_jobs._batch.paths import collect_files
from unstructured_jobs.batch import submit_batch
from unstructured_jobs.testing import Emulator, FakeClock, Fault

FAST: dict[str, Any] = {"launch_rate": None, "poll_interval": 0.01, "reconcile_grace": 0}
CREATE = {"method": "POST", "path": "/api/v1/jobs/"}


def received(emu: Emulator) -> Counter[str]:
    return Counter(f.filename for f in emu.received_files())


# -- 1. control characters in names --------------------------------------------------------------


async def test_control_characters_in_names_are_reconciled_on_the_name_as_sent(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    folder = tmp_path / "in"
    folder.mkdir()
    names = ["line\nfeed.txt", "carriage\rreturn.txt", "tab\there.txt", "esc\x1b[31mred.txt"]
    for name in names:
        (folder / name).write_text(name)
    manifest = tmp_path / "m.sqlite"
    emu.inject(Fault.drop_after(), **CREATE, times=1)  # the job is created, its answer lost
    report = await submit_batch(
        client, [folder], template_id="t", manifest=manifest, output_dir=tmp_path / "out", **FAST
    )
    assert report.ok, report.files
    assert len(emu.jobs) == 1  # found after the lost answer, never sent again
    sent = ["carriage%0Dreturn.txt", "esc%1B[31mred.txt", "line%0Afeed.txt", "tab%09here.txt"]
    assert received(emu) == dict.fromkeys(sent, 1)
    # The manifest knows each file by the name the server stores, and its output by it too.
    assert sorted(f.upload_name or "" for f in report.files) == sent
    outputs = sorted(Path(f.output_path or "").name for f in report.files)
    assert outputs == [name + ".json" for name in sent]
    again = await submit_batch(
        client, [folder], template_id="t", manifest=manifest, output_dir=tmp_path / "out", **FAST
    )
    assert again.ok and len(emu.jobs) == 1


# -- 2. names that are not UTF-8 -----------------------------------------------------------------


async def test_a_non_utf8_file_name_is_stored_and_sent_like_any_other(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    folder = tmp_path / "in"
    folder.mkdir()
    latin1 = os.fsencode(folder) + b"/caf\xe9.txt"  # from an old archive or share
    other = os.fsencode(folder) + b"/caf\xe8.txt"  # sent as the same name: renamed
    for raw in (latin1, other):
        with open(raw, "wb") as f:
            f.write(raw)
    (folder / "plain.txt").write_text("plain")
    manifest = tmp_path / "m.sqlite"
    options: dict[str, Any] = {**FAST, "manifest": manifest, "output_dir": tmp_path / "out"}
    report = await submit_batch(client, [folder], template_id="t", **options)
    assert report.ok, report.files
    assert {f.path for f in report.files} == {
        os.fsdecode(latin1),
        os.fsdecode(other),
        str(folder / "plain.txt"),
    }
    assert received(emu) == {"caf\ufffd.txt": 1, "caf\ufffd (2).txt": 1, "plain.txt": 1}
    for f in report.files:
        assert f.output_path is not None and Path(f.output_path).is_file()
    # The exact bytes of the name survive the manifest: a second run finds the files done.
    again = await submit_batch(client, [folder], template_id="t", **options)
    assert again.ok and len(emu.jobs) == 1
    assert {f.path for f in again.files} == {f.path for f in report.files}


# -- 3. symlink loops ----------------------------------------------------------------------------


def loop_tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / "sub" / "deeper" / "c.txt").write_text("c")
    (root / "sub" / "deeper" / "up").symlink_to(root)  # a link to an ancestor: a loop
    (root / "sub" / "again").symlink_to(root / "sub")  # another way into the same folder
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "d.txt").write_text("d")
    (root / "linked").symlink_to(outside)  # a link out of the tree: followed, once
    (root / "alias.txt").symlink_to(root / "a.txt")  # the same file under two names
    return root


def test_a_glob_through_a_symlink_loop_takes_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = loop_tree(tmp_path)
    # `sub/**` follows sub/deeper/up into the root once, like any other link to a folder.
    for pattern in ("**/*.txt", "**", "sub/**/*.txt", "sub/**"):
        files, problems = collect_files([str(root / pattern)])
        assert problems == []
        real = [os.path.realpath(p) for p, _size in files]
        assert len(real) == len(set(real)), pattern
        assert sorted(Path(p).name for p in real) == ["a.txt", "b.txt", "c.txt", "d.txt"]
    # A relative pattern, as typed in a shell, gives the same files.
    monkeypatch.chdir(root)
    for relative in ("**/*.txt", "**", "*/**/*.txt"):
        files, _problems = collect_files([relative])
        assert all(os.path.isabs(p) for p, _size in files)
        names = sorted(Path(os.path.realpath(p)).name for p, _size in files)
        assert names == ["a.txt", "b.txt", "c.txt", "d.txt"], relative  # a.txt: through `up`
    files, _problems = collect_files(["**/*.txt"])
    assert str(root / "a.txt") in [p for p, _size in files]  # by the first path found


async def test_a_batch_over_a_symlink_loop_sends_each_file_once(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    root = loop_tree(tmp_path)
    report = await submit_batch(client, [str(root / "**" / "*.txt"), root], template_id="t", **FAST)
    assert report.ok
    assert received(emu) == {"a.txt": 1, "b.txt": 1, "c.txt": 1, "d.txt": 1}


# -- 4. clock skew -------------------------------------------------------------------------------


@pytest.fixture
async def behind(
    unstructured_emulator_factory: Callable[..., Emulator],
) -> AsyncIterator[tuple[Emulator, AsyncJobsClient]]:
    """A server whose clock is two hours behind ours (its ``created_at`` and ``Date`` say so)."""
    emu = unstructured_emulator_factory(max_running=None, clock_offset=-2 * 3600)
    async with AsyncJobsClient(
        api_key=emu.api_key, server_url=emu.url, max_retries=6, clock=FakeClock()
    ) as client:
        yield emu, client


async def test_the_emulator_clock_offset_shifts_created_at_and_date(
    behind: tuple[Emulator, AsyncJobsClient],
) -> None:
    _, client = behind
    job = await client.create_job(template_id="t", input_files=[("a.txt", b"a")])
    raw = await client.with_raw_response.list_jobs()
    served = email.utils.parsedate_to_datetime(raw.headers["Date"])
    now = datetime.now(UTC)
    assert timedelta(hours=1.9) < now - served < timedelta(hours=2.1)
    assert timedelta(hours=1.9) < now - job.created_at < timedelta(hours=2.1)


async def test_a_local_clock_hours_ahead_still_finds_the_lost_job(
    behind: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = behind
    for i in range(3):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"doc{i}.txt").write_text(str(i))
    emu.inject(Fault.drop_after(), **CREATE, times=1)
    report = await submit_batch(client, [tmp_path / "in"], template_id="t", **FAST)
    assert report.ok, report.files
    assert len(emu.jobs) == 1  # adopted, not sent a second time
    assert received(emu) == {"doc0.txt": 1, "doc1.txt": 1, "doc2.txt": 1}


async def test_a_crashed_run_is_reconciled_with_the_clock_skew_measured_then(
    behind: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = behind
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    manifest = tmp_path / "m.sqlite"
    real_create = client.create_job

    async def create_then_crash(**kwargs: Any) -> Any:
        await real_create(**kwargs)  # the job exists, but we "die" before recording it
        raise RuntimeError("simulated crash")

    client.create_job = create_then_crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="crash"):
        await submit_batch(client, [tmp_path / "in"], template_id="t", manifest=manifest, **FAST)
    client.create_job = real_create  # type: ignore[method-assign]
    report = await submit_batch(
        client, [tmp_path / "in"], template_id="t", manifest=manifest, **FAST
    )
    assert report.ok and len(emu.jobs) == 1


# -- 7. a full disk, a damaged manifest ----------------------------------------------------------


def make_inputs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"f{i:02d}.txt").write_text(f"file {i}")


class _FullDisk:
    """A file object whose writes fail as on a full disk (the lowest write of a download)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def close(self) -> None:
        self._handle.close()


async def test_a_full_disk_during_downloads_is_one_typed_error_and_the_run_resumes(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unstructured_jobs._files import downloads as _downloads

    emu, client = emu_client
    make_inputs(tmp_path / "in", 8)
    out = tmp_path / "out"  # the manifest in its default place, inside it
    real_fdopen = os.fdopen
    monkeypatch.setattr(_downloads.os, "fdopen", lambda fd, mode: _FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(LocalFileError) as info:
        await submit_batch(
            client, [tmp_path / "in"], template_id="t", output_dir=out, files_per_job=2, **FAST
        )
    message = str(info.value)
    assert "is full" in message and "No space left on device" in message
    assert "run the same batch again" in message
    assert str(out.resolve()) in message  # which folder, and which file system (its mount)
    assert isinstance(info.value.__cause__, OSError)
    assert not list(out.glob(".*.part"))
    monkeypatch.undo()  # space was freed
    report = await submit_batch(
        client, [tmp_path / "in"], template_id="t", output_dir=out, files_per_job=2, **FAST
    )
    assert report.ok and len(emu.jobs) == 4  # resumed: nothing sent twice
    assert received(emu) == {f"f{i:02d}.txt": 1 for i in range(8)}


async def test_a_full_disk_under_the_manifest_is_one_typed_error(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unstructured_jobs._batch import manifest as _manifest

    emu, client = emu_client
    make_inputs(tmp_path / "in", 40)
    out = tmp_path / "out"
    real_created = _manifest.Manifest.group_created

    def then_full(self: _manifest.Manifest, *args: Any) -> None:
        # From the first created job on, SQLite may not grow the file: its real SQLITE_FULL,
        # "database or disk is full", in every task that writes next.
        # The connection is shared by the batch's worker threads: hold the manifest's lock.
        with self._lock:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count = {pages}")
        real_created(self, *args)

    monkeypatch.setattr(_manifest.Manifest, "group_created", then_full)
    long_names = {"output_dir": out, "files_per_job": 1, "max_concurrent_uploads": 8}
    with pytest.raises(LocalFileError) as info:
        await submit_batch(client, [tmp_path / "in"], template_id="t", **long_names, **FAST)
    message = str(info.value)
    assert "manifest" in message and str(out / ".unstructured-jobs.sqlite") in message
    assert "is full" in message and "run the same batch again" in message
    del info  # the error's frames held the run: nothing of it may be left to the GC
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    monkeypatch.undo()
    report = await submit_batch(client, [tmp_path / "in"], template_id="t", **long_names, **FAST)
    assert report.ok
    assert received(emu) == {f"f{i:02d}.txt": 1 for i in range(40)}


def damage_a_page(manifest: Path) -> None:
    """Overwrite the files table's first page with garbage (a real damaged page)."""
    with sqlite3.connect(manifest) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        [root] = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'files'").fetchone()
    db.close()
    with open(manifest, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)


async def test_a_damaged_manifest_page_names_the_manifest(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_inputs(tmp_path / "in", 3)
    manifest = tmp_path / "m.sqlite"
    await submit_batch(client, [tmp_path / "in"], template_id="t", manifest=manifest, **FAST)
    damage_a_page(manifest)
    before = len(emu.requests)
    with pytest.raises(InvalidInputError) as info:
        await submit_batch(client, [tmp_path / "in"], template_id="t", manifest=manifest, **FAST)
    assert str(manifest) in str(info.value) and "damaged" in str(info.value)
    assert len(emu.requests) == before  # nothing sent


# -- 8. .part files left by a killed run ---------------------------------------------------------


async def test_part_files_left_by_a_killed_download_are_removed_by_the_next_run(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    real_download = client.download_job_output_to

    async def killed_midway(job_id: str, target: Any, **kwargs: Any) -> Any:
        # What SIGKILL leaves: the temporary file, never renamed nor removed.
        Path(target).parent.joinpath(f".{Path(target).name}.0123456789ab.part").write_bytes(b"{")
        raise RuntimeError("simulated kill")  # the process is gone: no cleanup runs

    client.download_job_output_to = killed_midway  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="simulated kill"):
        await submit_batch(client, [tmp_path / "in"], template_id="t", output_dir=out, **FAST)
    client.download_job_output_to = real_download  # type: ignore[method-assign]
    parts = sorted(p.name for p in out.glob(".*.part"))
    assert parts == [".f00.txt.json.0123456789ab.part"]
    # A user's own hidden files that look alike but are not ours stay.
    mine = [".foo.part", ".notes.json.0123456789ab.part", ".f00.txt.json.part",
            ".f00.txt.json.xyz.part"]  # fmt: skip
    for name in mine:
        (out / name).write_text("user data")
    report = await submit_batch(client, [tmp_path / "in"], template_id="t", output_dir=out, **FAST)
    assert report.ok and len(emu.jobs) == 1
    assert sorted(p.name for p in out.glob(".*.part")) == sorted(mine)
    assert sorted(p.name for p in out.glob("*.json")) == ["f00.txt.json", "f01.txt.json"]


# -- a job gone while some of its files were done ------------------------------------------------


async def test_a_job_gone_keeps_its_done_files_and_fails_the_rest(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path
) -> None:
    emu, client = emu_client
    make_inputs(tmp_path / "in", 3)
    out = tmp_path / "out"
    options: dict[str, Any] = {**FAST, "output_dir": out, "template_id": "t"}
    [job_id] = (await submit_batch(client, [tmp_path / "in"], wait=False, **options)).job_ids
    real_download = client.download_job_output_to

    async def one_fails(job: str, target: Any, *, file_id: str, **kwargs: Any) -> Any:
        if file_id == "f01.txt":
            raise APIConnectionError("connection reset", method="GET", url="/download")
        return await real_download(job, target, file_id=file_id, **kwargs)

    client.download_job_output_to = one_fails  # type: ignore[method-assign]
    first = await submit_batch(client, [tmp_path / "in"], **options)
    client.download_job_output_to = real_download  # type: ignore[method-assign]
    states = {Path(f.path).name: f.state for f in first.files}
    assert states == {"f00.txt": "done", "f01.txt": "submitted", "f02.txt": "done"}, first.files
    emu.inject(Fault.status(404, detail="Job not found"), method="GET",
               path=f"/api/v1/jobs/{job_id}")  # fmt: skip
    gone = await submit_batch(client, [tmp_path / "in"], **options)
    by_name = {Path(f.path).name: f for f in gone.files}
    assert by_name["f00.txt"].state == "done" and by_name["f02.txt"].state == "done"
    assert by_name["f00.txt"].output_path and Path(by_name["f00.txt"].output_path).is_file()
    assert by_name["f01.txt"].state == "failed"
    assert f"job {job_id} no longer exists" in (by_name["f01.txt"].error or "")
    retried = await submit_batch(client, [tmp_path / "in"], retry_failed=True, **options)
    assert retried.ok and len(emu.jobs) == 2
    assert received(emu) == {"f00.txt": 1, "f01.txt": 2, "f02.txt": 1}  # only f01 sent again
