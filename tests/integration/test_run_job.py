"""`run_job`: from files to their elements in one call (issue 13, item 3), against the emulator
over loopback, on virtual time."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import (
    AsyncJobsClient,
    FileOutput,
    InvalidInputError,
    JobInformation,
    JobRun,
    JobsClient,
    JobStatus,
    NotFoundError,
    WaitTimeoutError,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[Emulator]:
    options: dict[str, Any] = {"fail_files": lambda name: name.startswith("bad")}
    async with Emulator(schedule=Schedule(start_after=5, run_for=30), clock=clock, **options) as e:
        yield e


@pytest.fixture
async def client(emu: Emulator, clock: FakeClock) -> AsyncIterator[AsyncJobsClient]:
    async with AsyncJobsClient(emu.api_key, emu.url, clock=clock) as c:
        yield c


def titles(elements: Any) -> list[str]:
    return [e["text"] for e in elements if e["type"] == "Title"]


async def test_files_to_elements_in_one_call(
    emu: Emulator, client: AsyncJobsClient, tmp_path: Path
) -> None:
    doc = tmp_path / "report.pdf"
    doc.write_bytes(b"%PDF report")
    polls: list[JobStatus] = []
    sent: list[int] = []
    run = await client.run_job(
        template_id="hi_res_partition",
        input_files=[doc, ("slides.pptx", b"pptx"), ("notes.txt", b"notes")],
        on_poll=lambda job: polls.append(job.status),
        on_upload_progress=sent.append,
        poll_interval=2,
    )
    assert isinstance(run, JobRun) and run.ok and run.failed == ()
    assert run.job.status is JobStatus.COMPLETED and run.job.id in emu.jobs
    assert [f.file_id for f in run.files] == ["report.pdf", "slides.pptx", "notes.txt"]
    assert [titles(f.elements) for f in run.files] == [
        ["report.pdf"],
        ["slides.pptx"],
        ["notes.txt"],
    ]
    assert all(f.path is None and f.error is None for f in run.files)
    assert polls[0] is JobStatus.SCHEDULED and polls[-1] is JobStatus.COMPLETED
    assert sum(sent) > 0
    # Built from the existing calls: one create, polls, the failed files, one download each.
    paths = [r.path.rsplit("/", 1)[-1] for r in emu.requests]
    assert paths[0] == "" and paths.count("failed-files") == 1 and paths.count("download") == 3


async def test_to_dir_writes_safe_unique_names(client: AsyncJobsClient, tmp_path: Path) -> None:
    run = await client.run_job(
        template_id="t",
        input_files=[("../../evil.pdf", b"x"), ("a.pdf", b"1"), ("a.pdf", b"2"), ("bad.pdf", b"")],
    )
    out = tmp_path / "out"
    written = run.to_dir(out)
    assert [p.name for p in written] == ["evil.pdf.json", "a.pdf.json", "a.pdf (2).json"]
    assert sorted(os.listdir(out)) == ["a.pdf (2).json", "a.pdf.json", "evil.pdf.json"]
    assert all(p.parent == out.resolve() for p in written)
    assert json.loads(written[0].read_text()) == run.files[0].elements
    assert run.to_dir(out) == written  # again: the same files, replaced
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError):
        run.to_dir(tmp_path / "file")


async def test_failed_files_come_with_their_errors(client: AsyncJobsClient) -> None:
    run = await client.run_job(template_id="t", input_files=[("good.pdf", b"1"), ("bad.pdf", b"2")])
    assert run.job.status is JobStatus.COMPLETED and not run.ok
    good, bad = run.files
    assert good.ok and titles(good.elements) == ["good.pdf"]
    assert not bad.ok and bad.elements is None and "unable to process" in (bad.error or "")
    assert run.failed == (bad,)
    with pytest.raises(InvalidInputError, match=r"bad\.pdf has no output"):
        bad.read_elements()


async def test_a_failed_job_gives_every_file_and_its_error(client: AsyncJobsClient) -> None:
    run = await client.run_job(template_id="t", input_files=[("bad1.pdf", b"1"), ("bad2.pdf", b"")])
    assert run.job.status is JobStatus.FAILED and not run.ok
    assert [f.file_id for f in run.failed] == ["bad1.pdf", "bad2.pdf"]
    assert all("unable to process" in (f.error or "") for f in run.failed)


async def test_a_stopped_job_gives_every_file_and_why(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    def stop(job: JobInformation) -> None:
        if job.status is JobStatus.SCHEDULED:
            emu.set_status(job.id, "STOPPED")  # someone cancelled it meanwhile

    run = await client.run_job(template_id="t", input_files=[("a.pdf", b"1")], on_poll=stop)
    assert run.job.status is JobStatus.STOPPED
    (only,) = run.files
    assert only.error == "the job ended STOPPED" and run.failed == (only,)
    assert not any(r.path.endswith("/download") for r in emu.requests)


async def test_a_failed_download_is_that_files_error(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    def break_one_download(job: JobInformation) -> None:
        if job.status is JobStatus.COMPLETED:
            emu.inject(Fault.status(404, detail="gone"), path=f"/api/v1/jobs/{job.id}/download")

    run = await client.run_job(
        template_id="t",
        input_files=[("a.pdf", b"1"), ("b.pdf", b"2")],
        on_poll=break_one_download,
    )
    (lost,) = run.failed
    assert isinstance(lost.exception, NotFoundError) and "gone" in (lost.error or "")
    (kept,) = [f for f in run.files if f.ok]
    assert titles(kept.elements) == [kept.file_id]


async def test_output_dir_streams_each_output_to_disk(
    client: AsyncJobsClient, tmp_path: Path
) -> None:
    out = tmp_path / "deep" / "out"
    run = await client.run_job(
        template_id="t", input_files=[("a.pdf", b"1"), ("bad.pdf", b"2")], output_dir=out
    )
    ok, failed = run.files
    assert ok.elements is None and ok.path == out.resolve() / "a.pdf.json"
    assert titles(ok.read_elements()) == ["a.pdf"]
    assert failed.path is None and sorted(os.listdir(out)) == ["a.pdf.json"]
    copy = run.to_dir(tmp_path / "copy")
    assert json.loads(copy[0].read_text()) == ok.read_elements()


async def test_an_output_dir_that_is_a_file_is_refused_before_anything_is_sent(
    emu: Emulator, client: AsyncJobsClient, tmp_path: Path
) -> None:
    (tmp_path / "taken").write_text("x")
    with pytest.raises(InvalidInputError, match="not a folder"):
        await client.run_job(template_id="t", output_dir=tmp_path / "taken")
    with pytest.raises(InvalidInputError):
        await client.run_job(template_id="t", request_data={"template_id": "t"})
    assert emu.requests == []


async def test_a_wait_timeout_names_the_job_that_exists(
    emu: Emulator, client: AsyncJobsClient, clock: FakeClock
) -> None:
    with pytest.raises(WaitTimeoutError) as info:
        await client.run_job(template_id="t", timeout=10)
    (job_id,) = emu.jobs
    assert info.value.job_id == job_id
    assert any(job_id in note for note in getattr(info.value, "__notes__", []))
    assert emu.jobs[job_id].status == "IN_PROGRESS"  # not cancelled: it is the user's
    assert clock.now() >= 10


def test_the_blocking_twin(tmp_path: Path) -> None:
    with Emulator().running_in_thread() as emu, JobsClient(emu.api_key, emu.url) as client:
        run = client.run_job(job_nodes=[{"name": "P", "type": "partition", "subtype": "vlm"}],
                             input_files=[("a.txt", b"hello")], output_dir=tmp_path)  # fmt: skip
    assert run.ok and isinstance(run.files[0], FileOutput)
    assert titles(json.loads((tmp_path / "a.txt.json").read_text())) == ["a.txt"]
