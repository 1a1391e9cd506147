"""Outputs of any size (issue 25): realistic outputs from the emulator, downloads with their own
bound, run_job spilling large outputs to disk, and elements read one at a time. Over loopback;
memory is checked with tracemalloc peaks on outputs of a few MB, never with wall-clock limits."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import pickle
import signal
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cli_support import READY_LIMIT, Start

from unstructured_jobs import (
    AnswerTooLargeError,
    AsyncJobsClient,
    InvalidInputError,
    JobsClient,
    NotFoundError,
    iter_elements,
)
from unstructured_jobs.testing import Emulator
from unstructured_jobs.testing._outputs import OutputShape

MIB = 1024 * 1024
ELEMENTS, DIM = 300, 1536  # about 6 MB: a few hundred KB per 15 elements
BIG = 1500  # about 30 MB: parsed, about 75 MB
BOUND = 8 * MIB
"""The memory a stream may trace, whatever its size: the server's piece (the emulator runs in
the test's process), the socket's buffer, and a write batch (1 MiB) per download."""


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(output_elements=ELEMENTS, embedding_dim=DIM) as e:
        yield e


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncJobsClient]:
    async with AsyncJobsClient(emu.api_key, emu.url) as c:
        yield c


async def _job(client: AsyncJobsClient, *names: str) -> str:
    job = await client.create_job(
        template_id="hi_res_partition", input_files=[(n, b"%PDF-1.7 doc") for n in names]
    )
    return job.id


def _peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    """`fn()` and the peak of memory traced while it ran, above what was traced before."""
    OutputShape(1, DIM).output("warm", "up", None)  # the emulator's vectors: made once, kept
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


async def _apeak(coro: Any) -> tuple[Any, int]:
    OutputShape(1, DIM).output("warm", "up", None)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = await coro
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------- the emulator's outputs


async def test_the_emulator_serves_realistic_outputs(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    job_id = await _job(client, "long.pdf")
    data = await client.download_job_output(job_id, file_id="long.pdf")
    assert isinstance(data, list) and len(data) == ELEMENTS
    first = data[0]
    assert {"type", "element_id", "text", "metadata", "embeddings"} <= set(first)
    assert all(len(e["embeddings"]) == DIM for e in data)
    assert all(isinstance(x, float) and -1 < x < 1 for x in first["embeddings"])
    assert first["metadata"]["filename"] == "long.pdf"
    assert len({e["element_id"] for e in data}) == ELEMENTS
    assert data == await client.download_job_output(job_id, file_id="long.pdf")  # determined
    # Sent with its length known up front, as a file download is.
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{emu.url}/api/v1/jobs/{job_id}/download",
            params={"file_id": "long.pdf"},
            headers={"unstructured-api-key": emu.api_key},
        ) as answer,
    ):
        body = await answer.read()
        assert answer.content_length == len(body)
        assert "chunked" not in answer.headers.get("Transfer-Encoding", "")
    assert json.loads(body) == data


def test_output_shape_sizes_are_exact_and_checked() -> None:
    for shape in (OutputShape(0, 0), OutputShape(1, 0), OutputShape(7, 3), OutputShape(40, 64)):
        out = shape.output("job", "a.pdf", "application/pdf")
        body = b"".join(out.chunks(chunk_bytes=1000))
        assert len(body) == out.size and len(json.loads(body)) == shape.elements
    with pytest.raises(ValueError, match="output_elements"):
        OutputShape(-1)
    with pytest.raises(ValueError, match="not both"):
        Emulator(output_elements=3, output_for=lambda f: b"[]")


def test_the_serve_command_takes_output_flags(start: Start, tmp_path: Path) -> None:
    proc = start("serve", "--port", "0", "--output-elements", "5", "--embedding-dim", "8",
                 env={}, cwd=tmp_path)  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        with JobsClient("key", url) as c:
            run = c.run_job(template_id="hi_res_partition", input_files=[("a.pdf", b"x")])
        (f,) = run.files
        assert len(f.elements) == 5 and all(len(e["embeddings"]) == 8 for e in f.elements)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=READY_LIMIT) == 0


# ----------------------------------------------------------------------- downloads' own bound


async def test_an_endless_output_stops_at_max_download_bytes() -> None:
    sent: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Transfer-Encoding: chunked\r\n\r\n")  # no length to refuse early
            chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
            while True:  # until the client hangs up
                writer.write(chunk)
                sent.append(len(chunk))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    job = "00000000-0000-4000-8000-000000000001"
    try:
        async with AsyncJobsClient("k", url, max_download_bytes=2 * MIB, max_retries=0) as c:
            with pytest.raises(AnswerTooLargeError, match="download_job_output_to") as caught:
                await c.download_job_output(job, file_id="a.pdf")
    finally:
        server.close()
    assert caught.value.limit == 2 * MIB
    assert sum(sent) < 64 * MIB  # the client hung up near the bound, not after a flood


async def test_downloads_are_not_bounded_by_max_answer_bytes(emu: Emulator) -> None:
    async with AsyncJobsClient(emu.api_key, emu.url, max_answer_bytes=10_000) as c:
        job_id = await _job(c, "a.pdf")
        assert len(await c.download_job_output(job_id, file_id="a.pdf")) == ELEMENTS
        raw = await c.with_raw_response.download_job_output(job_id, file_id="a.pdf")
        assert len(raw.parse()) == ELEMENTS


async def test_an_output_past_max_download_bytes_names_the_remedy(
    emu: Emulator, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="max_download_bytes"):
        AsyncJobsClient(emu.api_key, emu.url, max_download_bytes=0)
    async with AsyncJobsClient(emu.api_key, emu.url, max_download_bytes=100_000) as c:
        job_id = await _job(c, "a.pdf")
        with pytest.raises(AnswerTooLargeError) as caught:
            await c.download_job_output(job_id, file_id="a.pdf")
        message = str(caught.value)
        assert caught.value.limit == 100_000
        assert "download_job_output_to" in message and "max_download_bytes" in message
        # The remedy works: to disk there is no bound, and the bytes are the output.
        path = await c.download_job_output_to(job_id, tmp_path / "a.json", file_id="a.pdf")
        assert len(json.loads(path.read_bytes())) == ELEMENTS
    async with AsyncJobsClient(emu.api_key, emu.url, max_download_bytes=None) as c:
        assert len(await c.download_job_output(job_id, file_id="a.pdf")) == ELEMENTS


async def test_streaming_to_disk_holds_little_memory(tmp_path: Path) -> None:
    async with (
        Emulator(output_elements=BIG, embedding_dim=DIM) as emu,
        AsyncJobsClient(emu.api_key, emu.url) as client,
    ):
        job_id = await _job(client, "a.pdf")
        path, peak = await _apeak(
            client.download_job_output_to(job_id, tmp_path / "a.json", file_id="a.pdf")
        )
    size = path.stat().st_size
    assert size > 25 * MIB
    assert peak < BOUND, f"{peak:,} bytes traced to stream {size:,}"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left


# ------------------------------------------------------------------------ run_job's spilling


async def test_run_job_spills_large_outputs_and_reads_them_on_demand(
    emu: Emulator, tmp_path: Path
) -> None:
    async with AsyncJobsClient(emu.api_key, emu.url) as c:
        run = await c.run_job(
            template_id="hi_res_partition",
            input_files=[("big.pdf", b"x"), ("big2.pdf", b"y")],
            spill_bytes=256 * 1024,
        )
        assert run.ok
        big, big2 = run.files
        assert big.spilled is not None and big.path is None and big.spilled.exists()
        assert (os.stat(big.spilled.parent).st_mode & 0o777) == 0o700  # private to the user
        expected = await c.download_job_output(run.job.id, file_id="big.pdf")
    assert list(big.iter_elements()) == expected  # one at a time, not kept
    assert big._elements is None
    assert big.elements == expected and big.read_elements() == expected  # loaded, and kept
    written = run.to_dir(tmp_path / "out")
    assert [json.loads(p.read_bytes()) == expected for p in written[:1]] == [True]
    copy = pickle.loads(pickle.dumps(run))  # to another process: the paths, not the files
    assert copy == run and copy.files[0].spilled == big.spilled
    del copy
    gc.collect()
    assert big.spilled.exists()  # the copy owned nothing
    folder = big.spilled.parent
    with run:
        pass  # leaving the block closes the run: its temporary files go
    assert not folder.exists()
    assert big.elements == expected  # already read: still there
    with pytest.raises(InvalidInputError, match="closed"):
        big2.iter_elements()
    with pytest.raises(InvalidInputError, match="closed"):
        _ = big2.elements


async def test_small_outputs_stay_in_memory_and_spill_folders_go_with_the_run(
    emu: Emulator,
) -> None:
    async with AsyncJobsClient(emu.api_key, emu.url) as c:
        run = await c.run_job(template_id="t", input_files=[("a.pdf", b"x")])
        (f,) = run.files
        assert f.spilled is None and len(f.elements) == ELEMENTS  # 6 MB < 16 MiB: in memory
        assert list(f.iter_elements()) == f.elements
        run = await c.run_job(template_id="t", input_files=[("a.pdf", b"x")], spill_bytes=0)
        folder = run.files[0].spilled.parent  # type: ignore[union-attr]
        assert folder.exists()
        del run, f
        gc.collect()
        assert not folder.exists()  # nothing refers to the run or its files any more
        with pytest.raises(InvalidInputError, match="spill_bytes"):
            await c.run_job(template_id="t", input_files=[("a.pdf", b"x")], spill_bytes=-1)


async def test_run_job_holds_little_of_a_spilled_output() -> None:
    async with (
        Emulator(output_elements=BIG, embedding_dim=DIM) as emu,
        AsyncJobsClient(emu.api_key, emu.url) as c,
    ):
        run, peak = await _apeak(
            c.run_job(template_id="t", input_files=[("a.pdf", b"x")], spill_bytes=MIB)
        )
        with run:
            (f,) = run.files
            assert f.spilled is not None
            size = f.spilled.stat().st_size
    assert size > 25 * MIB
    assert peak < BOUND, f"{peak:,} bytes traced for an output of {size:,}"


def test_the_sync_client_spills_too() -> None:
    with (
        Emulator(output_elements=ELEMENTS, embedding_dim=DIM).running_in_thread() as emu,
        JobsClient(emu.api_key, emu.url) as c,
    ):
        run = c.run_job(template_id="t", input_files=[("a.pdf", b"x")], spill_bytes=1)
        with run:
            (f,) = run.files
            assert f.spilled is not None
            assert sum(1 for _ in f.iter_elements()) == ELEMENTS


async def test_a_chunked_output_spills_whole(tmp_path: Path) -> None:
    body = OutputShape(ELEMENTS, DIM).output("job", "a.pdf", None).read()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Transfer-Encoding: chunked\r\n\r\n")  # no length declared
            for i in range(0, len(body), 50_000):
                piece = body[i : i + 50_000]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    job = "00000000-0000-4000-8000-000000000001"
    try:
        async with AsyncJobsClient("k", url, max_retries=0) as c:
            data, path = await c._download_spooled(job, "a.pdf", MIB, lambda: tmp_path / "a.json")
    finally:
        server.close()
    assert data is None and path == tmp_path / "a.json"
    assert path.read_bytes() == body  # what was held before the spill, then the rest


# ---------------------------------------------------------------------------- iter_job_output


async def test_iter_job_output_yields_elements_and_leaves_nothing(
    client: AsyncJobsClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its temporary file goes
    job_id = await _job(client, "a.pdf")
    expected = await client.download_job_output(job_id, file_id="a.pdf")
    got = [e async for e in client.iter_job_output(job_id, file_id="a.pdf")]
    assert got == expected and list(tmp_path.iterdir()) == []
    elements = client.iter_job_output(job_id, file_id="a.pdf")
    async for element in elements:  # type: ignore[attr-defined]
        assert element == expected[0]
        break
    await elements.aclose()  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == []  # a break removes the file too
    with pytest.raises(NotFoundError):
        async for _ in client.iter_job_output(job_id, file_id="nope.pdf"):
            pass
    assert list(tmp_path.iterdir()) == []


async def test_iter_job_output_holds_little_memory() -> None:
    async with (
        Emulator(output_elements=BIG, embedding_dim=DIM) as emu,
        AsyncJobsClient(emu.api_key, emu.url) as client,
    ):
        job_id = await _job(client, "a.pdf")

        async def count() -> int:
            return sum([1 async for _ in client.iter_job_output(job_id, file_id="a.pdf")])

        n, peak = await _apeak(count())
    assert n == BIG
    assert peak < BOUND, f"{peak:,} bytes traced over an output of {BIG} elements"


def test_the_sync_client_iterates_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with (
        Emulator(output_elements=ELEMENTS, embedding_dim=DIM).running_in_thread() as emu,
        JobsClient(emu.api_key, emu.url) as c,
    ):
        job = c.create_job(template_id="t", input_files=[("a.pdf", b"x")])
        assert sum(1 for _ in c.iter_job_output(job.id, file_id="a.pdf")) == ELEMENTS
        for _ in c.iter_job_output(job.id, file_id="a.pdf"):
            break  # the generator is closed in the client's loop, its file removed
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- iter_elements


@pytest.fixture
def saved(tmp_path: Path) -> Iterator[Path]:
    out = OutputShape(ELEMENTS, DIM).output("job", "a.pdf", "application/pdf")
    path = tmp_path / "a.json"
    with open(path, "wb") as fh:
        for chunk in out.chunks():
            fh.write(chunk)
    yield path


def test_iter_elements_holds_one_element_at_a_time(saved: Path) -> None:
    def count() -> int:
        n = 0
        for element in iter_elements(saved):
            assert len(element["embeddings"]) == DIM
            n += 1
        return n

    n, peak = _peak(count)
    assert n == ELEMENTS
    assert peak < 1.5 * MIB, f"{peak:,} bytes traced over {saved.stat().st_size:,}"
    with open(saved, "rb") as fh:  # a file object works too, and gives what json gives
        assert list(iter_elements(fh)) == json.loads(saved.read_bytes())


def test_iter_elements_refuses_what_is_not_a_list(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(' {"detail": "x"}')
    with pytest.raises(InvalidInputError, match="not a JSON list"):
        list(iter_elements(bad))
    bad.write_text("")
    with pytest.raises(InvalidInputError, match="empty"):
        list(iter_elements(bad))
    cut = tmp_path / "cut.json"
    cut.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    got: list[Any] = []
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        got.extend(iter_elements(cut))
    assert 0 < len(got) < ELEMENTS  # the whole elements before the cut were given
    with pytest.raises(InvalidInputError, match="binary"):
        list(iter_elements(io.StringIO("[1]")))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="a path or a binary file"):
        list(iter_elements(42))  # type: ignore[arg-type]
