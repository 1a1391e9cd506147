"""Bounded memory and time against any answer: bombs, endless and drip-fed answers, deep JSON."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import pytest

from unstructured_jobs import (
    AnswerTooLargeError,
    APITimeoutError,
    AsyncJobsClient,
    JobMayExistError,
    JobsClient,
    ResponseValidationError,
    Timeout,
)
from unstructured_jobs.testing import Emulator, Fault

JOBS = "/api/v1/jobs/"
MiB = 1024 * 1024
Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A loopback HTTP server that reads one request head, then runs `handler` on the socket."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await handler(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def gzip_bomb(inflated: int) -> bytes:
    """A gzip body of `inflated` zero bytes (about 1/1000 of that on the wire)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MiB)
    parts = [squeeze.compress(block) for _ in range(inflated // MiB)]
    return b"".join(parts) + squeeze.flush()


async def test_a_compression_bomb_stops_at_the_bound() -> None:
    bomb = gzip_bomb(64 * MiB)
    assert len(bomb) < MiB // 8
    async with Emulator() as emu:
        emu.inject(
            Fault.raw(200, bomb, headers={"Content-Encoding": "gzip"}), method="GET", path=JOBS
        )
        async with AsyncJobsClient(emu.api_key, emu.url, max_answer_bytes=4 * MiB) as client:
            with pytest.raises(AnswerTooLargeError, match="max_answer_bytes") as info:
                await client.list_jobs()
    assert info.value.limit == 4 * MiB and info.value.status == 200
    assert isinstance(info.value, ResponseValidationError) and len(str(info.value)) < 400


async def test_a_compressed_answer_within_the_bound_is_read() -> None:
    async with Emulator() as emu, AsyncJobsClient(emu.api_key, emu.url) as client:
        job = await client.create_job(template_id="t")
        listing = (await client.with_raw_response.list_jobs()).content
        emu.inject(
            Fault.raw(200, gzip.compress(listing), headers={"Content-Encoding": "gzip"}),
            method="GET",
            path=JOBS,
        )
        [listed] = await client.list_jobs()
    assert listed.id == job.id


async def test_an_endless_answer_stops_at_the_bound() -> None:
    sent: list[int] = []

    async def endless(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
        while True:  # until the client hangs up
            writer.write(chunk)
            sent.append(len(chunk))
            await writer.drain()

    async with (
        raw_server(endless) as url,
        AsyncJobsClient("k", url, max_answer_bytes=2 * MiB, max_retries=0) as client,
    ):
        with pytest.raises(AnswerTooLargeError):
            await client.list_jobs()
    assert sum(sent) < 64 * MiB  # the client hung up near the bound, not after a flood


async def test_a_drip_fed_answer_meets_the_total_timeout() -> None:
    async def drip(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
        )
        while True:  # one byte at a time: each one resets the read timeout
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.01)

    async with (
        raw_server(drip) as url,
        AsyncJobsClient("k", url, timeout=Timeout(read=5, total=0.3)) as client,
    ):
        with pytest.raises(APITimeoutError, match=r"total timeout of 0\.3s") as info:
            await client.list_jobs()
    assert info.value.phase == "total"


async def test_the_total_timeout_covers_the_waits_between_retries() -> None:
    async with Emulator() as emu, AsyncJobsClient(emu.api_key, emu.url) as client:
        emu.inject(Fault.status(503, retry_after="30"), method="POST", path=JOBS)
        with pytest.raises(APITimeoutError) as info:  # not ambiguous: the 503 created nothing
            await client.create_job(template_id="t", timeout=Timeout(total=0.3))
        assert info.value.phase == "total" and emu.jobs == {}


async def test_a_create_cut_off_by_the_total_timeout_may_exist() -> None:
    async with Emulator() as emu, AsyncJobsClient(emu.api_key, emu.url) as client:
        emu.inject(Fault.delay(3), method="POST", path=JOBS)
        with pytest.raises(JobMayExistError) as info:
            await client.create_job(
                template_id="t", input_files=[("a.txt", b"a")], timeout=Timeout(total=0.3)
            )
    assert info.value.input_file_names == ["a.txt"]
    assert isinstance(info.value.cause, APITimeoutError) and info.value.cause.phase == "total"


@pytest.fixture
def slow_emu(unstructured_emulator_factory: Callable[..., Emulator]) -> Iterator[Emulator]:
    emu = unstructured_emulator_factory()
    emu.inject(Fault.delay(3), method="GET", path="*")
    yield emu


def test_a_sync_caller_can_bound_a_call(slow_emu: Emulator) -> None:
    with JobsClient(slow_emu.api_key, slow_emu.url) as client:
        with pytest.raises(APITimeoutError) as info:
            client.list_jobs(timeout=Timeout(total=0.2))
        assert info.value.phase == "total"
        bounded = client.with_options(timeout=Timeout(total=0.2))
        assert bounded.list_jobs() == []  # the fault fired once; the next answer is prompt


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000 + b"1" + b"}" * 50_000],
    ids=["list", "object"],
)
async def test_deeply_nested_json_is_a_typed_error_with_a_short_message(body: bytes) -> None:
    async with Emulator() as emu, AsyncJobsClient(emu.api_key, emu.url) as client:
        emu.inject(Fault.raw(200, body), method="GET", path=JOBS)
        with pytest.raises(ResponseValidationError, match="nested too deeply") as info:
            await client.list_jobs()
    assert len(str(info.value)) < 1000
