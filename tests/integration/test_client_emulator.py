"""The async client against the emulator over loopback: every endpoint, the multipart body as
the server received it, retries under injected faults, and bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import (
    APIConnectionError,
    APITimeoutError,
    AsyncJobsClient,
    AuthenticationError,
    InputFile,
    InputFileError,
    InternalServerError,
    JobMayExistError,
    JobProcessingStatus,
    JobStatus,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServiceLimits,
    Timeout,
    UnprocessableEntityError,
    WaitTimeoutError,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

WF_ID = "f0a1b2c3-4d5e-6f7a-8b9c-0d1e2f3a4b5c"
MISSING = "00000000-0000-4000-8000-000000000000"


def make_client(emu: Emulator, fake: FakeClock | None = None, **options: Any) -> AsyncJobsClient:
    """A client on virtual time (the test's `FakeClock`, else its own): nothing really sleeps."""
    return AsyncJobsClient(
        api_key=emu.api_key, server_url=emu.url, clock=fake or FakeClock(1000.0), **options
    )


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncJobsClient]:
    async with make_client(emu) as c:
        yield c


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- endpoints


async def test_full_job_lifecycle(emu: Emulator, client: AsyncJobsClient, tmp_path: Path) -> None:
    doc = write(tmp_path / "report.pdf", b"%PDF-1.7 " + os.urandom(5000))
    job = await client.create_job(template_id="hi_res", input_files=[doc])
    assert job.status is JobStatus.SCHEDULED and job.input_file_ids == ("report.pdf",)

    done = await client.wait_for_job(job.id)
    assert done.status is JobStatus.COMPLETED and done.output_node_files
    details = await client.get_job_details(job.id)
    assert details.processing_status is JobProcessingStatus.SUCCESS
    assert (await client.get_job_failed_files(job.id)).failed_files == ()

    out = done.output_node_files[0]
    elements = await client.download_job_output(job.id, file_id=out.file_id, node_id=out.node_id)
    assert elements[0]["metadata"]["sha256"] == sha(doc.read_bytes())
    saved = await client.download_job_output_to(
        job.id, tmp_path / "out.json", file_id=out.file_id, node_id=out.node_id
    )
    assert json.loads(saved.read_text()) == elements
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []

    listed = await client.list_jobs(status=JobStatus.COMPLETED)
    assert [j.id for j in listed] == [job.id]
    assert await client.list_jobs(status="FAILED") == []
    assert (await client.cancel_job(job.id)).status is JobStatus.COMPLETED  # already finished


async def test_run_workflow_answers_202_and_cancel_stops(tmp_path: Path) -> None:
    async with Emulator(schedule=Schedule.manual()) as emu, make_client(emu) as client:
        job = await client.run_workflow(WF_ID, input_files=[("a.txt", b"hello")])
        assert job.workflow_id == WF_ID and job.status is JobStatus.SCHEDULED
        result = await client.cancel_job(job.id)
        assert result.status is JobStatus.STOPPED
        assert (await client.get_job(job.id)).status is JobStatus.STOPPED
        # The workflow runs a new job only once its last one ended (see test_workflow_busy).
        bare = await client.run_workflow(WF_ID)
        assert bare.input_file_ids is None
        assert [r.status for r in emu.requests if r.path.endswith("/run")] == [202, 202]
        assert [j.id for j in await client.list_jobs(workflow_id=WF_ID)] == [job.id, bare.id]


async def test_job_nodes_and_request_data_forms(emu: Emulator, client: AsyncJobsClient) -> None:
    nodes = [{"name": "Partitioner", "type": "partition", "subtype": "vlm", "settings": {}}]
    a = await client.create_job(job_nodes=nodes)
    b = await client.create_job(request_data={"template_id": "t1"})
    c = await client.create_job(request_data='{"template_id": "t2"}')
    sent = {j: emu.jobs[j].request_data for j in (a.id, b.id, c.id)}
    assert sent == {
        a.id: {"job_nodes": nodes},
        b.id: {"template_id": "t1"},
        c.id: {"template_id": "t2"},
    }


async def test_template_id_and_job_nodes_together_reach_the_server(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    """The vendor's REST collection sends both; the server decides (the emulator: job_nodes)."""
    nodes = [{"name": "Custom", "type": "partition", "subtype": "vlm", "settings": {}}]
    job = await client.create_job(
        template_id="hi_res_partition", job_nodes=nodes, input_files=[("a.pdf", b"%PDF")]
    )
    assert emu.jobs[job.id].request_data == {"template_id": "hi_res_partition", "job_nodes": nodes}
    details = await client.get_job_details(job.id)
    assert [n.node_name for n in details.node_stats] == ["Custom", "Destination"]
    both = await client.create_job(request_data={"template_id": "t", "job_nodes": nodes})
    assert emu.jobs[both.id].request_data == {"template_id": "t", "job_nodes": nodes}


async def test_errors_from_the_server_are_typed(emu: Emulator) -> None:
    async with (
        Emulator(api_key="right") as strict,
        AsyncJobsClient(api_key="wrong-key-value", server_url=strict.url) as bad,
    ):
        with pytest.raises(AuthenticationError) as info:
            await bad.list_jobs()
        assert "wrong-key-value" not in str(info.value)
    async with make_client(emu) as client:
        with pytest.raises(NotFoundError) as nf:
            await client.get_job(MISSING)
        assert nf.value.detail == "Job not found" and nf.value.status == 404


async def test_422_detail_list_from_the_server(emu: Emulator, client: AsyncJobsClient) -> None:
    emu.inject(
        Fault.raw(
            422,
            b'{"detail": [{"loc": ["body", "request_data"], "msg": "Field required", "type": "missing"}]}',
        ),
        method="POST",
        path="/api/v1/jobs/",
    )
    with pytest.raises(UnprocessableEntityError) as info:
        await client.create_job(template_id="t")
    assert info.value.errors[0].loc == ("body", "request_data")


# ---------------------------------------------------------------- the multipart body


async def test_body_as_received_names_sizes_digests(
    emu: Emulator, client: AsyncJobsClient, tmp_path: Path
) -> None:
    big = write(tmp_path / "big.bin", os.urandom(3 * 1024 * 1024 + 7))
    empty = write(tmp_path / "empty.txt", b"")
    with (tmp_path / "handle.docx").open("wb") as fh:
        fh.write(b"docx-bytes")
    progress: list[int] = []
    with (tmp_path / "handle.docx").open("rb") as handle:
        job = await client.create_job(
            template_id="t",
            input_files=[
                str(big),
                empty,
                handle,
                ("mem.json", b'{"a": 1}'),
                ("typed.dat", b"abc", "text/csv"),
                InputFile(b"xyz", filename="record.md", content_type="text/markdown"),
            ],
            on_upload_progress=progress.append,
        )
        assert not handle.closed  # the caller's file stays the caller's
    received = emu.jobs[job.id].files
    assert [(f.field_name, f.filename, f.size) for f in received] == [
        ("input_files", "big.bin", big.stat().st_size),
        ("input_files", "empty.txt", 0),
        ("input_files", "handle.docx", 10),
        ("input_files", "mem.json", 8),
        ("input_files", "typed.dat", 3),
        ("input_files", "record.md", 3),
    ]
    assert received[0].sha256 == sha(big.read_bytes())
    assert received[3].sha256 == sha(b'{"a": 1}')
    types = [f.content_type for f in received]
    assert types[1] == "text/plain" and types[3] == "application/json"
    assert types[4] == "text/csv" and types[5] == "text/markdown"
    assert sum(progress) == big.stat().st_size + 10 + 8 + 3 + 3


@pytest.mark.parametrize(
    "name",
    ['quote"d.pdf', "semi;colon.pdf", "back\\slash.pdf", "naïve résumé.pdf", "x" * 300 + ".pdf"],
)
async def test_hostile_file_names_round_trip(
    emu: Emulator, client: AsyncJobsClient, name: str
) -> None:
    job = await client.create_job(template_id="t", input_files=[(name, b"1"), ("next.txt", b"2")])
    assert [f.filename for f in emu.jobs[job.id].files] == [name, "next.txt"]


async def test_crlf_in_a_name_cannot_inject_a_header_or_a_part(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    evil = 'a.pdf"\r\nContent-Type: text/html\r\n\r\n--boundary\r\nX: y'
    job = await client.create_job(template_id="t", input_files=[(evil, b"1")])
    (received,) = emu.jobs[job.id].files
    assert "\r" not in received.filename and "\n" not in received.filename
    assert received.filename.startswith('a.pdf"%0D%0AContent-Type: text/html')
    assert received.content_type == "application/octet-stream"  # ours, not the injected one
    assert received.size == 1 and len(emu.jobs[job.id].files) == 1


async def test_2000_files_under_256_descriptors(emu: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(2000):
        (folder / f"f{i:04}.txt").write_bytes(b"x" * 1024)
    script = textwrap.dedent(
        f"""
        import asyncio, pathlib, resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        from unstructured_jobs import AsyncJobsClient, ServiceLimits
        async def main():
            files = sorted(pathlib.Path({str(folder)!r}).iterdir())
            unlimited = ServiceLimits(files_per_job=None)  # 2000 in one job, on purpose
            async with AsyncJobsClient(api_key="k", server_url={emu.url!r}, limits=unlimited) as c:
                job = await c.create_job(template_id="t", input_files=files)
                print(job.id)
        asyncio.run(main())
        """
    )
    proc = await _run(script)
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    assert len(emu.jobs[job_id].files) == 2000
    assert {f.size for f in emu.jobs[job_id].files} == {1024}


async def _run(script: str) -> subprocess.CompletedProcess[str]:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
    )


# ---------------------------------------------------------------- bad local input


async def test_every_bad_path_is_reported_and_nothing_is_sent(
    emu: Emulator, client: AsyncJobsClient, tmp_path: Path
) -> None:
    good = write(tmp_path / "ok.txt", b"ok")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError) as info:
        await client.create_job(
            template_id="t",
            input_files=[good, tmp_path / "missing.pdf", tmp_path, fifo, ("", b"x"), 42],  # type: ignore[list-item]
        )
    reasons = dict(info.value.problems)
    assert reasons[str(tmp_path / "missing.pdf")] == "no such file"
    assert reasons[str(tmp_path)] == "is a directory"
    assert reasons[str(fifo)] == "not a regular file"
    assert len(info.value.problems) == 5
    assert emu.requests == []


async def test_text_mode_file_is_rejected(client: AsyncJobsClient, tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", b"text")
    with path.open("r") as fh, pytest.raises(InputFileError, match="binary mode"):
        await client.create_job(template_id="t", input_files=[fh])  # type: ignore[list-item]


@pytest.mark.parametrize("change", ["shrink", "grow"])
async def test_file_changing_during_upload_fails_and_creates_no_job(
    emu: Emulator, client: AsyncJobsClient, tmp_path: Path, change: str
) -> None:
    path = write(tmp_path / "moving.bin", os.urandom(2 * 1024 * 1024))
    touched = []

    def mutate(_: int) -> None:
        if not touched:
            touched.append(True)
            with path.open("r+b") as fh:
                if change == "shrink":
                    fh.truncate(1024)
                else:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"more" * 1024)

    with pytest.raises(InputFileError, match=r"moving\.bin"):
        await client.create_job(template_id="t", input_files=[path], on_upload_progress=mutate)
    assert emu.jobs == {}


# ---------------------------------------------------------------- faults and retries


async def test_503_with_retry_after_is_retried_and_files_are_reopened(
    emu: Emulator, tmp_path: Path
) -> None:
    fake = FakeClock(1000.0)
    doc = write(tmp_path / "doc.pdf", os.urandom(600_000))
    emu.inject(Fault.status(503, retry_after="3"), method="POST", path="/api/v1/jobs/")
    emu.inject(Fault.status(429, retry_after="1"), method="POST", path="/api/v1/jobs/")
    progress: list[int] = []
    async with make_client(emu, fake) as client:
        job = await client.create_job(
            template_id="t", input_files=[doc], on_upload_progress=progress.append
        )
    assert fake.sleeps == [3.0, 1.0]
    assert list(emu.jobs) == [job.id]  # exactly one job
    assert emu.jobs[job.id].files[0].sha256 == sha(doc.read_bytes())
    assert sum(progress) == doc.stat().st_size  # retried bytes were taken back
    assert [r.status for r in emu.requests] == [503, 429, 200]


async def test_retry_after_http_date(emu: Emulator) -> None:
    fake = FakeClock(1000.0)
    emu.inject(
        Fault.status(503, retry_after="Thu, 01 Jan 2099 00:00:00 GMT"), method="GET", path="*"
    )
    async with make_client(emu, fake) as client:
        assert await client.list_jobs() == []
    assert fake.sleeps == [60.0]  # a far-away date is capped


async def test_lost_answer_after_job_creation_is_never_duplicated(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    emu.inject(Fault.drop_after(), method="POST", path="/api/v1/jobs/")
    with pytest.raises(JobMayExistError) as info:
        await client.create_job(template_id="t", input_files=[("a.pdf", b"1"), ("b.pdf", b"2")])
    assert len(emu.jobs) == 1  # created once, not retried
    assert info.value.input_file_names == ["a.pdf", "b.pdf"]
    assert isinstance(info.value.cause, APIConnectionError)
    (job,) = emu.jobs.values()
    assert [f.filename for f in job.files] == info.value.input_file_names


async def test_drop_before_answer_is_ambiguous_too(emu: Emulator, client: AsyncJobsClient) -> None:
    emu.inject(Fault.drop_before(), method="POST", path="/api/v1/jobs/")
    with pytest.raises(JobMayExistError):
        await client.create_job(template_id="t", input_files=[("a.pdf", b"1")])
    assert emu.jobs == {}
    assert len([r for r in emu.requests if r.method == "POST"]) == 1


async def test_500_on_create_is_ambiguous(emu: Emulator, client: AsyncJobsClient) -> None:
    emu.inject(Fault.status(500), method="POST", path="/api/v1/jobs/")
    with pytest.raises(JobMayExistError) as info:
        await client.create_job(template_id="t")
    assert info.value.status == 500 and isinstance(info.value.cause, InternalServerError)


async def test_reads_survive_drops_and_5xx(emu: Emulator, client: AsyncJobsClient) -> None:
    job = await client.create_job(template_id="t")
    path = f"/api/v1/jobs/{job.id}"
    emu.inject(Fault.drop_before(), method="GET", path=path)
    emu.inject(Fault.status(502), method="GET", path=path)
    emu.inject(Fault.drop_after(), method="GET", path=path)
    assert (await client.get_job(job.id)).id == job.id
    assert [r.status for r in emu.requests if r.path == path] == [None, 502, None, 200]


async def test_non_seekable_stream_is_never_retried(emu: Emulator, client: AsyncJobsClient) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"streamed")
    os.close(write_fd)
    emu.inject(Fault.status(503), method="POST", path="/api/v1/jobs/")
    with os.fdopen(read_fd, "rb") as pipe, pytest.raises(InternalServerError):
        await client.create_job(template_id="t", input_files=[("pipe.txt", pipe)])
    assert len([r for r in emu.requests if r.method == "POST"]) == 1


async def test_non_seekable_stream_is_sent_chunked(emu: Emulator, client: AsyncJobsClient) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"streamed")
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        job = await client.create_job(template_id="t", input_files=[("pipe.txt", pipe)])
    assert emu.jobs[job.id].files[0].sha256 == sha(b"streamed")


async def test_stalled_upload_times_out_instead_of_hanging(emu: Emulator, tmp_path: Path) -> None:
    big = write(tmp_path / "big.bin", os.urandom(48 * 1024 * 1024))
    emu.inject(Fault.stall(30), method="POST", path="/api/v1/jobs/")
    limits = ServiceLimits(bytes_per_file=None)  # 48 MiB is over the published 50 MB
    timeout = Timeout(connect=5, read=30, write=0.5)
    async with make_client(emu, timeout=timeout, limits=limits) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.create_job(template_id="t", input_files=[big])
    assert info.value.phase == "write"
    assert emu.jobs == {}


async def test_slow_answer_hits_the_read_timeout(emu: Emulator) -> None:
    emu.inject(Fault.delay(5), method="GET", path="*", times=None)
    async with make_client(emu, timeout=Timeout(read=0.2), max_retries=1) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.list_jobs()
    assert info.value.phase == "read"


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b'{"id": "abc", "workflow', "application/json", "malformed JSON"),
        (b"<html><body>Gateway</body></html>", "text/html", "expected JSON"),
        (b"", "application/json", "empty body"),
    ],
)
async def test_bad_success_bodies(
    emu: Emulator, client: AsyncJobsClient, body: bytes, content_type: str, needle: str
) -> None:
    emu.inject(Fault.raw(200, body, content_type=content_type), method="GET", path="*")
    with pytest.raises(ResponseValidationError, match=needle):
        await client.list_jobs()


async def test_rate_limited_launches_are_retried(tmp_path: Path) -> None:
    fake = FakeClock(1000.0)
    async with Emulator(launch_rate=1.0, clock=fake) as emu, make_client(emu, fake) as client:
        first = await client.create_job(template_id="t")
        second = await client.create_job(template_id="t")
    assert first.id != second.id and len(emu.jobs) == 2
    assert fake.sleeps and [r.status for r in emu.requests].count(429) == len(fake.sleeps)


async def test_rate_limit_error_surfaces_when_retries_run_out(emu: Emulator) -> None:
    emu.inject(Fault.status(429, retry_after="2"), method="GET", path="*", times=None)
    async with make_client(emu, max_retries=2) as client:
        with pytest.raises(RateLimitError) as info:
            await client.list_jobs()
    assert info.value.retry_after == 2.0 and info.value.detail


# ---------------------------------------------------------------- waiting


async def test_wait_for_job_polls_with_growing_interval() -> None:
    fake = FakeClock(1000.0)
    emulator = Emulator(schedule=Schedule(start_after=2, run_for=10), clock=fake)
    async with emulator as emu, make_client(emu, fake) as client:
        job = await client.create_job(template_id="t")
        seen: list[JobStatus] = []
        done = await client.wait_for_job(
            job.id,
            poll_interval=1,
            max_poll_interval=4,
            on_poll=lambda j: seen.append(j.status),
        )
    assert done.status is JobStatus.COMPLETED
    assert seen[0] is JobStatus.SCHEDULED and JobStatus.IN_PROGRESS in seen
    assert fake.sleeps[:4] == [1, 1.5, 2.25, 3.375] and max(fake.sleeps) == 4


async def test_wait_for_job_timeout_carries_the_last_job() -> None:
    fake = FakeClock(1000.0)
    emulator = Emulator(schedule=Schedule.manual(), clock=fake)
    async with emulator as emu, make_client(emu, fake) as client:
        job = await client.create_job(template_id="t")
        with pytest.raises(WaitTimeoutError) as info:
            await client.wait_for_job(job.id, timeout=30, poll_interval=5)
    assert info.value.last_job is not None and info.value.last_job.id == job.id
    assert info.value.last_job.status is JobStatus.SCHEDULED
    assert sum(fake.sleeps) == pytest.approx(30)


async def test_watch_job_yields_each_change_until_terminal() -> None:
    fake = FakeClock(1000.0)
    emulator = Emulator(schedule=Schedule(start_after=3, run_for=3), clock=fake)
    async with emulator as emu, make_client(emu, fake) as client:
        job = await client.create_job(template_id="t")
        states = [j.status async for j in client.watch_job(job.id, poll_interval=1)]
    assert states == [JobStatus.SCHEDULED, JobStatus.IN_PROGRESS, JobStatus.COMPLETED]


async def test_failed_job_is_returned_with_its_failed_files(tmp_path: Path) -> None:
    async with (
        Emulator(fail_files=lambda n: n.startswith("bad")) as emu,
        make_client(emu) as client,
    ):
        job = await client.create_job(
            template_id="t", input_files=[("bad1.pdf", b"1"), ("good.pdf", b"2")]
        )
        done = await client.wait_for_job(job.id)
        failed = await client.get_job_failed_files(job.id)
        details = await client.get_job_details(job.id)
    assert done.status is JobStatus.COMPLETED
    assert [f.document for f in failed.failed_files] == ["bad1.pdf"]
    assert details.processing_status is JobProcessingStatus.COMPLETED_WITH_ERRORS


async def test_download_before_completion_is_a_conflict(tmp_path: Path) -> None:
    from unstructured_jobs import ConflictError

    async with Emulator(schedule=Schedule.manual()) as emu, make_client(emu) as client:
        job = await client.create_job(template_id="t", input_files=[("a.pdf", b"1")])
        with pytest.raises(ConflictError):
            await client.download_job_output(job.id, file_id="a.pdf")
        with pytest.raises(ConflictError):
            await client.download_job_output_to(job.id, tmp_path / "a.json", file_id="a.pdf")
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


async def test_big_answers_leave_the_garbage_collector_as_it_was(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    """Answers over 1 MiB are parsed with the cyclic GC paused; it is always restored."""
    import gc

    job = {
        "id": MISSING,
        "workflow_id": WF_ID,
        "workflow_name": "w",
        "status": "COMPLETED",
        "created_at": "2026-01-01T00:00:00Z",
    }
    big = json.dumps([job] * 12_000).encode()
    assert len(big) > 1024 * 1024
    emu.inject(Fault.raw(200, big), method="GET", path="*")
    assert len(await client.list_jobs()) == 12_000
    assert gc.isenabled()
    emu.inject(Fault.raw(200, big[:-1] + b', {"id": 1}]'), method="GET", path="*")
    with pytest.raises(ResponseValidationError):
        await client.list_jobs()
    assert gc.isenabled()
    gc.disable()
    try:
        emu.inject(Fault.raw(200, big), method="GET", path="*")
        await client.list_jobs()
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()
