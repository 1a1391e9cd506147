"""Hostile input and faults, end to end against the emulator: nothing lost, nothing duplicated,
nothing leaked. Each case here is listed, with what the user gets, in docs/hostile-cases.md."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unstructured_jobs import (
    APIConnectionError,
    APIStatusError,
    AsyncJobsClient,
    InputFileError,
    InsecureTransportError,
    InternalServerError,
    InvalidIdError,
    JobMayExistError,
    ResponseValidationError,
    UnstructuredJobsError,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault

SECRET = "sk-live-0123456789abcdef-SECRET"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=SECRET) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncJobsClient]:
    async with AsyncJobsClient(
        api_key=SECRET, server_url=emu.url, max_retries=2, clock=FakeClock()
    ) as c:
        yield c


async def test_the_key_never_leaks_through_faults(
    emu: Emulator, client: AsyncJobsClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, DEBUG: aiohttp's too
    errors: list[BaseException] = []
    faults = [
        Fault.status(503, retry_after="0"),
        Fault.status(500),
        Fault.drop_before(),
        Fault.drop_after(),
        Fault.raw(200, b"<html>oops</html>", content_type="text/html"),
        Fault.raw(401, b'{"detail": "Invalid API key"}'),
    ]
    for fault in faults:
        emu.inject(fault, method="POST", path="/api/v1/jobs/", times=3)
        try:
            await client.create_job(template_id="t", input_files=[("a.pdf", b"1")])
        except UnstructuredJobsError as exc:
            errors.append(exc)
        emu.clear_faults()
    assert len(errors) == len(faults)  # every fault ended in an error the user sees
    for exc in errors:
        seen = [str(exc), repr(exc), repr(vars(exc))]
        cause = getattr(exc, "cause", None)
        seen += [str(cause), repr(cause)]
        assert all(SECRET not in text for text in seen), type(exc)
    assert caplog.records
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in repr(client) and SECRET not in repr(client._transport)


async def test_plain_http_to_a_remote_host_needs_an_opt_in() -> None:
    with pytest.raises(InsecureTransportError):
        AsyncJobsClient(api_key=SECRET, server_url="http://api.example.com")
    client = AsyncJobsClient(
        api_key=SECRET, server_url="http://api.example.com", allow_insecure_http=True
    )
    assert client.server_url == "http://api.example.com"
    await client.aclose()


async def test_huge_bodies_give_short_errors(emu: Emulator, client: AsyncJobsClient) -> None:
    huge_html = b"<html>" + b"x" * (8 * 1024 * 1024) + b"</html>"
    emu.inject(Fault.raw(200, huge_html, content_type="text/html"), method="GET", path="*")
    with pytest.raises(ResponseValidationError) as ok_html:
        await client.list_jobs()
    emu.inject(Fault.raw(502, huge_html, content_type="text/html"), method="GET", path="*", times=3)
    with pytest.raises(InternalServerError) as bad_gateway:
        await client.list_jobs()
    assert len(str(ok_html.value)) < 500 and len(str(bad_gateway.value)) < 500


async def test_huge_wrong_shape_success_names_the_problem(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    body = b"[" + b",".join([b'{"id": 1}'] * 100_000) + b"]"
    emu.inject(Fault.raw(200, body), method="GET", path="*")
    with pytest.raises(ResponseValidationError) as info:
        await client.list_jobs()
    assert "$[0].id" in str(info.value) and len(info.value.snippet) <= 203
    # Ten bad records named, then reading stops: a short message, not one line per record.
    assert "reading stopped after 10 bad records (of 100000 records) @ $[10]" in str(info.value)
    assert "$[9].id" in str(info.value) and "$[11]" not in str(info.value)
    assert len(str(info.value)) < 5000 and len(info.value.messages) < 100


async def test_truncated_answer_of_a_create_is_ambiguous(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    emu.inject(Fault.raw(200, b'{"id": "x", "status": "SCHED'), method="POST", path="*")
    with pytest.raises(JobMayExistError) as info:  # the server said yes: a job may exist
        await client.create_job(template_id="t")
    assert isinstance(info.value.cause, ResponseValidationError)
    assert "malformed JSON" in str(info.value) and info.value.input_file_names == []
    assert emu.jobs == {}  # the fault answered instead of the server; nothing was retried
    assert len([r for r in emu.requests if r.method == "POST"]) == 1


@pytest.mark.parametrize("status", [200, 201, 202])
async def test_any_2xx_whose_body_is_a_job_is_a_created_job(
    emu: Emulator, client: AsyncJobsClient, status: int
) -> None:
    body = {
        "id": "b2c3d4e5-6f7a-4b9c-8d1e-2f3a4b5c6d7e",
        "workflow_id": "9d5a3c1e-1111-4222-8333-444455556666",
        "workflow_name": "template t",
        "status": "SCHEDULED",
        "created_at": "2026-11-24T07:00:00.000Z",
    }
    emu.inject(Fault.raw(status, json.dumps(body).encode()), method="POST", path="*")
    job = await client.create_job(template_id="t", input_files=[("a.txt", b"a")])
    assert job.id == body["id"]


@pytest.mark.parametrize("status", [201, 202, 204])
async def test_a_2xx_without_a_job_on_create_is_ambiguous_never_refused(
    emu: Emulator, client: AsyncJobsClient, status: int
) -> None:
    emu.inject(Fault.raw(status, b""), method="POST", path="*")
    with pytest.raises(JobMayExistError) as info:
        await client.create_job(template_id="t", input_files=[("a.txt", b"a")])
    assert info.value.input_file_names == ["a.txt"]
    assert len([r for r in emu.requests if r.method == "POST"]) == 1  # never resent


async def test_a_redirect_names_where_it_pointed_and_is_not_followed(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    where = "https://elsewhere.example/api/v1/jobs/"
    emu.inject(Fault.raw(301, b"", headers={"Location": where}), method="GET", path="*")
    with pytest.raises(APIStatusError) as info:
        await client.list_jobs()
    assert (
        info.value.status == 301 and where in str(info.value) and "not followed" in str(info.value)
    )
    assert len(emu.requests) == 1


async def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI runs as root, which can read any file, so the permission check is faked here."""
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(b"x")
    secret.chmod(0)
    real_access, real_secret = os.access, os.path.realpath(secret)
    monkeypatch.setattr(
        "os.access",  # the path, or the /proc/self/fd link to it of the check on the loop
        lambda p, mode: False if os.path.realpath(p) == real_secret else real_access(p, mode),
    )
    async with AsyncJobsClient(api_key=SECRET, server_url="http://127.0.0.1:9") as client:
        with pytest.raises(InputFileError) as info:
            await client.create_job(template_id="t", input_files=[secret])
    assert info.value.problems == [(str(secret), "permission denied")]


async def test_non_utf8_file_name_is_sent_with_replacement_characters(
    emu: Emulator, client: AsyncJobsClient, tmp_path: Path
) -> None:
    raw_name = os.fsencode(tmp_path) + b"/caf\xe9-\xff.pdf"
    with open(raw_name, "wb") as fh:
        fh.write(b"latin-1 name")
    path = os.fsdecode(raw_name)
    job = await client.create_job(template_id="t", input_files=[path])
    (received,) = emu.jobs[job.id].files
    assert received.filename == "caf\ufffd-\ufffd.pdf" and received.size == 12


@pytest.mark.parametrize("name", ["a/b.pdf", "../../etc/passwd", "C:\\x\\y.pdf", "a;b=c.pdf"])
async def test_explicit_names_with_slashes_travel_as_given(
    emu: Emulator, client: AsyncJobsClient, name: str
) -> None:
    job = await client.create_job(template_id="t", input_files=[(name, b"1")])
    # FastAPI's form parser (python-multipart), which the emulator follows, keeps only the last
    # component of an IE-style full path: the name is sent as given, the server reads "y.pdf".
    server_reads = "y.pdf" if name == "C:\\x\\y.pdf" else name
    assert [f.filename for f in emu.jobs[job.id].files] == [server_reads]


@pytest.mark.parametrize("bad", ["", "../x", "a?b=1", "a#frag", "x/../../y", "%2e%2e"])
async def test_bad_ids_never_reach_the_server(
    emu: Emulator, client: AsyncJobsClient, bad: str
) -> None:
    for call in (
        client.get_job(bad),
        client.get_job_details(bad),
        client.get_job_failed_files(bad),
        client.cancel_job(bad),
        client.download_job_output(bad, file_id="f"),
        client.run_workflow(bad),
    ):
        with pytest.raises(InvalidIdError):
            await call
    assert emu.requests == []


async def test_many_drops_after_creation_never_duplicate(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    emu.inject(Fault.drop_after(), method="POST", path="/api/v1/jobs/", times=20)
    outcomes = {"ok": 0, "ambiguous": 0}
    for i in range(25):
        try:
            await client.create_job(template_id="t", input_files=[(f"f{i}.pdf", b"1")])
            outcomes["ok"] += 1
        except JobMayExistError:
            outcomes["ambiguous"] += 1
    assert outcomes == {"ok": 5, "ambiguous": 20}
    names = [f.filename for j in emu.jobs.values() for f in j.files]
    assert sorted(names) == sorted(f"f{i}.pdf" for i in range(25))  # each exactly once


async def test_connection_refused_is_a_connection_error() -> None:
    async with AsyncJobsClient(
        api_key=SECRET, server_url="http://127.0.0.1:9", clock=FakeClock()
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.create_job(template_id="t", input_files=[("a.pdf", b"1")])
    assert not isinstance(info.value, JobMayExistError)  # nothing reached a server
    assert SECRET not in str(info.value)


async def test_a_failing_progress_callback_never_duplicates_a_job(
    emu: Emulator, client: AsyncJobsClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: int) -> None:
        raise ValueError("bug in the caller's progress bar")

    job = await client.create_job(
        template_id="t", input_files=[("a.pdf", b"x" * 300_000)], on_upload_progress=broken
    )
    assert list(emu.jobs) == [job.id]  # uploaded once, not retried
    assert len([r for r in emu.requests if r.method == "POST"]) == 1
    assert "on_upload_progress raised" in caplog.text


async def test_debug_logs_of_a_broken_answer_hold_no_key(caplog: pytest.LogCaptureFixture) -> None:
    """aiohttp's exception reprs carry the request headers; our logs never use them."""
    import asyncio

    async def broken_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(broken_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    caplog.set_level(logging.DEBUG)
    try:
        async with AsyncJobsClient(
            api_key=SECRET, server_url=f"http://127.0.0.1:{port}", max_retries=0
        ) as c:
            with pytest.raises(UnstructuredJobsError) as info:
                await c.list_jobs()
    finally:
        server.close()
        await server.wait_closed()
    assert caplog.records
    assert SECRET not in caplog.text
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


async def test_a_local_disk_error_is_not_retried_as_a_network_error(
    emu: Emulator, client: AsyncJobsClient, tmp_path: Path
) -> None:
    from unstructured_jobs import LocalFileError

    job = await client.create_job(template_id="t", input_files=[("a.pdf", b"1")])
    await client.wait_for_job(job.id)
    (tmp_path / "a-file").write_text("in the way")
    with pytest.raises(LocalFileError) as info:
        await client.download_job_output_to(
            job.id, tmp_path / "a-file" / "out.json", file_id="a.pdf"
        )
    assert isinstance(info.value.__cause__, OSError)
    assert len([r for r in emu.requests if "/download" in r.path]) == 1


async def test_wait_timeout_bounds_the_whole_wait(emu: Emulator, client: AsyncJobsClient) -> None:
    from unstructured_jobs import WaitTimeoutError

    job = await client.create_job(template_id="t")
    emu.inject(Fault.delay(5), method="GET", path="*", times=None)
    with pytest.raises(WaitTimeoutError) as info:
        await client.wait_for_job(job.id, timeout=0.3)  # a poll alone would take 5 s
    assert info.value.last_job is None


async def test_wrong_values_raise_typed_errors(emu: Emulator, client: AsyncJobsClient) -> None:
    from unstructured_jobs import InvalidInputError, Timeout

    with pytest.raises(InvalidInputError):
        await client.list_jobs(status=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        await client.list_jobs(timeout=-1)
    with pytest.raises(InvalidInputError):
        Timeout(connect=0)
    with pytest.raises(InvalidInputError):
        AsyncJobsClient(api_key=SECRET, server_url=emu.url, max_retries=-1)
    assert emu.requests == []
