"""Uploads under local and network faults, over real loopback sockets and real files (issue 11):
a file deleted after it was checked, slow but steady servers against stalled ones, what a stall
means once the whole body is handed over, and what a cancelled upload leaves behind.

The raw servers here run in the test's own event loop and pace their reading by ticks of that
loop: when the machine is loaded, the server and the client's stall watchdog slow down together,
and the watchdog does not count time it was not running. No assertion is on wall-clock time.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import os
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from unstructured_jobs import (
    APITimeoutError,
    AsyncJobsClient,
    InputFileError,
    JobMayExistError,
    Timeout,
)
from unstructured_jobs._files import multipart as multipart
from unstructured_jobs.testing import Emulator, FakeClock

MiB = 1024 * 1024
JOB_ID = "b2c3d4e5-6f7a-8b9c-0d1e-2f3a4b5c6d7e"
JOB = {
    "id": JOB_ID,
    "workflow_id": "f0a1b2c3-4d5e-6f7a-8b9c-0d1e2f3a4b5c",
    "workflow_name": "w",
    "status": "SCHEDULED",
    "created_at": "2026-01-01T00:00:00Z",
}
BodyReader = Callable[[asyncio.StreamReader, int], Awaitable[bool]]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


def posts(emu: Emulator) -> int:
    return len([r for r in emu.requests if r.method == "POST"])


# ---------------------------------------------------------------- a file deleted after validation


@pytest.mark.parametrize("size", [1000, 600_000], ids=["small", "large"])
async def test_a_file_deleted_after_validation_is_an_input_error_at_once(
    emu: Emulator, tmp_path: Path, size: int
) -> None:
    """Deleted between create_job's check and its upload: `InputFileError` naming the file,
    raised at once (no retry, the other files are not sent again), and no job."""
    first = tmp_path / "first.bin"
    first.write_bytes(os.urandom(600_000))  # more than a chunk: progress is reported mid-body
    doomed = tmp_path / "doomed.bin"
    doomed.write_bytes(os.urandom(size))

    def delete_doomed(_: int) -> None:
        doomed.unlink(missing_ok=True)  # validated already; the body has not reached it yet

    fake = FakeClock(1000.0)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=fake) as client:
        with pytest.raises(InputFileError) as info:
            await client.create_job(
                template_id="t", input_files=[first, doomed], on_upload_progress=delete_doomed
            )
    assert [name for name, _ in info.value.problems] == ["doomed.bin"]
    assert "no such file" in str(info.value) and "deleted" in str(info.value)
    assert fake.sleeps == []  # not retried
    assert posts(emu) <= 1  # one attempt (the emulator may not even record the cut-short body)
    assert emu.jobs == {}


async def test_a_file_object_that_fails_to_read_is_an_input_error(
    emu: Emulator, tmp_path: Path
) -> None:
    """The same through a user's file object that fails when read: an input problem, not a
    network one (it was retried four times as `APIConnectionError`)."""

    class Failing:
        name = "failing.bin"

        def seekable(self) -> bool:
            return True

        def tell(self) -> int:
            return 0

        def seek(self, offset: int, whence: int = 0) -> int:
            return 10 * MiB if whence == os.SEEK_END else offset

        def read(self, n: int = -1) -> bytes:
            raise OSError(5, "Input/output error")

    fake = FakeClock(1000.0)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, clock=fake) as client:
        with pytest.raises(InputFileError) as info:
            await client.create_job(
                template_id="t",
                input_files=[("ok.txt", b"fine"), Failing()],  # type: ignore[list-item]
            )
    assert info.value.problems == [("failing.bin", "could not be read: Input/output error")]
    assert fake.sleeps == [] and emu.jobs == {}


# ---------------------------------------------------------------- slow, stalled and small uploads


@asynccontextmanager
async def upload_server(read_body: BodyReader) -> AsyncIterator[str]:
    """A loopback HTTP server: reads a request head, lets `read_body` consume the body (given
    the reader and the Content-Length), then answers 200 with a job if it returned True."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if await read_body(reader, length):
                body = json.dumps(JOB).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server's close: end quietly (a cancelled handler is logged as an error)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def slow_then_fast(per_tick: int, ticks: int) -> BodyReader:
    """Read `per_tick` bytes per tick of the loop (10 ms) for `ticks` ticks, then the rest."""

    async def read_body(reader: asyncio.StreamReader, length: int) -> bool:
        done = 0
        for _ in range(ticks):
            done += len(await reader.readexactly(min(per_tick, length - done)))
            await asyncio.sleep(0.01)
        await reader.readexactly(length - done)
        return True

    return read_body


async def never_read(reader: asyncio.StreamReader, length: int) -> bool:
    await asyncio.Event().wait()  # stop reading; never answer (cancelled at the server's close)
    return False


async def create(url: str, data: bytes, timeout: Timeout) -> Any:
    async with AsyncJobsClient(
        api_key="k", server_url=url, timeout=timeout, max_retries=0, clock=FakeClock()
    ) as client:
        return await client.create_job(template_id="t", input_files=[("big.bin", data)])


async def test_a_slow_but_steady_upload_is_not_a_stall() -> None:
    """The server reads 16 KiB every tick (about 1.6 MB/s) for 1.2 seconds: progress is any byte
    the server takes, however slowly. Counting only finished chunk writes, the client saw no
    progress for about a second at a time (the OS wakes a writer when a third of its socket
    buffer is free) and gave up with `APITimeoutError(phase="write")` after 0.5 s."""
    async with upload_server(slow_then_fast(16 * 1024, 120)) as url:
        job = await create(url, bytes(12 * MiB), Timeout(connect=5, read=30, write=0.5))
    assert job.id == JOB_ID


async def test_a_server_that_stops_reading_trips_the_write_timeout() -> None:
    """The contrast: a server that takes no byte at all. The body was not all handed over, so
    no job can exist: `APITimeoutError(phase="write")`, not `JobMayExistError`."""
    async with upload_server(never_read) as url:
        with pytest.raises(APITimeoutError) as info:
            await create(url, bytes(24 * MiB), Timeout(connect=5, read=30, write=0.5))
    assert info.value.phase == "write"
    assert "upload stalled" in str(info.value)


async def test_a_stalled_small_upload_may_have_created_a_job() -> None:
    """A body small enough for the socket buffers is handed over whole before the server stops
    reading: the server may have it all, so the silence that follows is `JobMayExistError` (its
    cause a read timeout), never a write timeout that would say "no job"."""
    async with upload_server(never_read) as url:
        with pytest.raises(JobMayExistError) as info:
            await create(url, bytes(1000), Timeout(connect=5, read=0.3, write=0.3))
    assert isinstance(info.value.cause, APITimeoutError)
    assert info.value.cause.phase == "read"
    assert info.value.input_file_names == ["big.bin"]


# ---------------------------------------------------------------- cancelled uploads


class OpenFiles:
    """Records every file the body writer opens (`_files.multipart._open_binary`, patched), with none
    of its bytes in the page cache: `_files.multipart._pread_nowait` answers `BlockingIOError`, as the
    kernel does for a cold file, so every chunk is read in a worker thread (`_files.multipart._read_at`,
    patched). The open itself waits for `gate` (`gate_open`), or else every read after the first
    does. `closed_under_read` tells whether a gated read found its file closed when it went on."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, gate: threading.Event, *, gate_open: bool
    ) -> None:
        self.files: list[BinaryIO] = []
        self.entered = asyncio.Event()  # the gated open or read has started
        self.closed_under_read = False
        self.reads = 0
        loop = asyncio.get_running_loop()
        real_open, real_read = multipart._open_binary, multipart._read_at

        def entered() -> None:
            loop.call_soon_threadsafe(self.entered.set)

        def opener(path: str) -> BinaryIO:
            if gate_open:
                entered()
                gate.wait()
            fh = real_open(path)
            self.files.append(fh)
            return fh

        def cold(fd: int, buffer: bytearray, offset: int, size: int) -> int:
            raise BlockingIOError(errno.EAGAIN, "not in the page cache")

        def read_at(fh: Any, size: int, offset: int) -> bytes:
            assert threading.current_thread() is not threading.main_thread()
            self.reads += 1
            if not gate_open and self.reads > 1:
                entered()
                gate.wait()
                self.closed_under_read = self.closed_under_read or fh.closed
            return real_read(fh, size, offset)

        monkeypatch.setattr(multipart, "_open_binary", opener)
        monkeypatch.setattr(multipart, "_pread_nowait", cold)
        monkeypatch.setattr(multipart, "_read_at", read_at)


async def cancel_while_gated(task: asyncio.Future[Any], gate: threading.Event) -> None:
    """Cancel `task` while a call of its body writer waits in a worker thread, and open the
    gate once the cancel has gone as far as it goes without that call: the task is done by then
    if it does not wait for its writer, else it is still waiting."""
    task.cancel()
    try:
        for _ in range(200):
            if task.done():
                break
            await asyncio.sleep(0)
    finally:
        gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancelled_upload_has_closed_its_file_when_the_cancel_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while a chunk of the file is being read: the `CancelledError` reaches the
    caller only once the body writer has stopped and closed the file (it was closed 1-5 ms
    later, by a writer still running in the background)."""
    gate = threading.Event()
    opened = OpenFiles(monkeypatch, gate, gate_open=False)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * MiB))

    server = upload_server(never_read)
    async with server as url, AsyncJobsClient(api_key="k", server_url=url, clock=FakeClock()) as c:
        task = asyncio.ensure_future(c.create_job(template_id="t", input_files=[big]))
        try:
            await opened.entered.wait()  # the second chunk's read has started
            assert not opened.files[0].closed
            await cancel_while_gated(task, gate)
        finally:
            gate.set()
        assert opened.files[0].closed  # at the very moment the cancel arrived
    assert not opened.closed_under_read


async def test_a_cancel_during_the_open_leaves_no_file_to_the_gc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open runs in a worker thread and cannot be stopped there: the file it opens after the
    cancel is closed by the writer, not left to the garbage collector (`ResourceWarning`)."""
    gate = threading.Event()
    opened = OpenFiles(monkeypatch, gate, gate_open=True)
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(600_000))

    server = upload_server(never_read)
    async with server as url, AsyncJobsClient(api_key="k", server_url=url, clock=FakeClock()) as c:
        task = asyncio.ensure_future(c.create_job(template_id="t", input_files=[doc]))
        try:
            await opened.entered.wait()  # the open of doc.bin has started in its thread
            await cancel_while_gated(task, gate)
        finally:
            gate.set()
        assert len(opened.files) == 1 and opened.files[0].closed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opened.files.clear()
        gc.collect()
    # Only this file's warning counts: other tests' garbage may be collected here too.
    assert not [w for w in caught if str(doc) in str(w.message)]


async def test_a_total_timeout_mid_upload_has_closed_the_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Timeout(total=...)` cancels the attempt from inside an anyio cancel scope, which cancels
    every await again: the wait for the body writer is shielded from it."""
    gate = threading.Event()
    opened = OpenFiles(monkeypatch, gate, gate_open=False)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * MiB))
    writer: list[asyncio.Task[Any]] = []

    def on_progress(_: int) -> None:  # runs in the body writer's task
        writer.append(asyncio.current_task())  # type: ignore[arg-type]

    server = upload_server(never_read)
    timeout = Timeout(total=0.2)
    async with server as url, AsyncJobsClient(api_key="k", server_url=url, timeout=timeout) as c:
        task = asyncio.ensure_future(
            c.create_job(template_id="t", input_files=[big], on_upload_progress=on_progress)
        )
        try:
            await opened.entered.wait()  # the second chunk's read has started
            while not writer[0].cancelling():  # the total timeout has fired
                await asyncio.sleep(0.01)
            for _ in range(200):  # as far as the cancel goes without the gated read
                if task.done():
                    break
                await asyncio.sleep(0)
        finally:
            gate.set()
        with pytest.raises(APITimeoutError) as info:
            await task
        assert info.value.phase == "total"
        assert opened.files[0].closed
    assert not opened.closed_under_read
