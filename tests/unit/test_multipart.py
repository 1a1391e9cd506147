"""The streaming multipart body, without a socket."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs._files.inputs import prepare_files
from unstructured_jobs._files.multipart import (
    MultipartBody,
    _progress_probe,
    _quote_param,
    _StallWatchdog,
)


class RecordingWriter:
    """Stands in for aiohttp's stream writer."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    async def write(self, chunk: bytes) -> None:
        self.data += chunk
        self.writes += 1


async def render(body: MultipartBody, timeout: float | None = None) -> bytes:
    writer = RecordingWriter()
    await body.new_attempt(timeout).write(writer)  # type: ignore[arg-type]
    return bytes(writer.data)


def test_quoting_cannot_break_out_of_the_parameter() -> None:
    assert _quote_param('a"b') == '"a\\"b"'
    assert _quote_param("a\\b") == '"a\\\\b"'
    assert _quote_param("a\r\nb") == '"a%0D%0Ab"'
    assert _quote_param("naïve;=.pdf") == '"naïve;=.pdf"'


async def test_size_matches_the_bytes_written_so_content_length_is_right(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * 700_000)
    files = prepare_files([big, ("small.txt", b"tiny"), ('q"uote.pdf', b""), ("é.txt", b"u")])
    body = MultipartBody(files, fields=[("request_data", '{"template_id": "t"}')])
    data = await render(body)
    assert body.size == len(data)
    assert data.startswith(b"--" + body.boundary + b"\r\nContent-Disposition: form-data; ")
    assert data.endswith(b"--" + body.boundary + b"--\r\n")
    assert data.count(b'name="input_files"') == 4
    assert body.content_type == "multipart/form-data; boundary=" + body.boundary.decode()


async def test_unknown_size_makes_the_body_chunked() -> None:
    class Pipe(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b: Any) -> int:
            return 0

    files = prepare_files([("p.txt", io.BufferedReader(Pipe()))])
    body = MultipartBody(files)
    assert body.size is None
    await render(body)
    assert not body.can_rebuild()


async def test_small_pieces_are_coalesced_into_few_writes() -> None:
    files = prepare_files([(f"f{i}.txt", b"x" * 100) for i in range(50)])
    body = MultipartBody(files, fields=[("request_data", "{}")])
    writer = RecordingWriter()
    await body.new_attempt(None).write(writer)  # type: ignore[arg-type]
    assert writer.writes == 1  # ~12 KB in one write, not 150 tiny ones


async def test_progress_is_taken_back_for_a_new_attempt(tmp_path: Path) -> None:
    events: list[int] = []
    body = MultipartBody(prepare_files([("a.bin", b"a" * 1000)]), on_progress=events.append)
    await render(body)
    await render(body)
    assert events == [1000, -1000, 1000]
    assert sum(events) == 1000


# ---------------------------------------------------------------- the upload-stall watchdog


class FakeTimers:
    """The two things the watchdog asks of its loop, on a time that only the test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], None], asyncio.Handle]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.Handle:
        handle = asyncio.Handle(callback, (), asyncio.get_running_loop())
        self.timers.append((self.now + delay, callback, handle))
        return handle

    def advance(self, seconds: float, *, blocked: bool = False) -> None:
        """Move time on, running each timer when due (or, `blocked`, all at the end, late)."""
        end = self.now + seconds
        while True:
            due = [t for t in self.timers if t[0] <= end and not t[2].cancelled()]
            if not due:
                break
            when, callback, handle = min(due, key=lambda t: t[0])
            self.timers.remove((when, callback, handle))
            self.now = end if blocked else when
            callback()
        self.now = end


class FakeTask:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def watchdog(timeout: float, probe: Callable[[], object]) -> tuple[FakeTimers, FakeTask]:
    timers, task = FakeTimers(), FakeTask()
    _StallWatchdog(timeout, probe, loop=timers, task=task)  # type: ignore[arg-type]
    return timers, task


async def test_a_stall_is_no_progress_for_the_timeout() -> None:
    timers, task = watchdog(4.0, lambda: 0)  # nothing ever moves
    timers.advance(3.9)
    assert not task.cancelled
    timers.advance(0.2)
    assert task.cancelled


async def test_any_byte_acknowledged_between_checks_is_progress() -> None:
    acked = [0]
    timers, task = watchdog(4.0, lambda: acked[0])
    for _ in range(100):  # one byte a second, for far longer than the timeout
        timers.advance(1.0)
        acked[0] += 1
    assert not task.cancelled
    timers.advance(5.1)  # then nothing
    assert task.cancelled


async def test_time_the_watchdog_was_not_running_is_not_a_stall() -> None:
    timers, task = watchdog(4.0, lambda: 0)
    timers.advance(3.0)
    timers.advance(30.0, blocked=True)  # the loop was blocked (or the process stopped)
    assert not task.cancelled
    timers.advance(3.9)
    assert not task.cancelled
    timers.advance(1.1)  # a full timeout watched with nothing moving
    assert task.cancelled


async def test_the_probe_reads_the_bytes_the_peer_acknowledged() -> None:
    """On Linux, the watchdog sees bytes the server took, long before the OS would wake the
    writer; elsewhere it falls back to the bytes handed to the OS."""
    received = bytearray()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.extend(await reader.readexactly(100_000))
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])

        class Writer:  # what the probe reads of aiohttp's writer
            output_size = 0
            transport = writer.transport

        probe = _progress_probe(Writer())  # type: ignore[arg-type]
        before = probe()
        writer.write(bytes(100_000))
        Writer.output_size = 100_000
        await writer.drain()
        await reader.read()  # the server read everything and closed
        assert len(received) == 100_000
        after = probe()
        writer.close()
    assert after != before
    if hasattr(socket, "TCP_INFO"):
        assert isinstance(after, int) and isinstance(before, int)
        assert after - before >= 100_000  # acknowledged by the peer (the request bytes at least)


async def test_a_writer_without_a_transport_counts_finished_writes_only() -> None:
    class Bare:
        pass

    probe = _progress_probe(Bare())  # type: ignore[arg-type]
    assert probe() == probe()


@pytest.mark.parametrize("size", [10, 600_000])
async def test_a_missing_file_is_recorded_as_the_attempts_input_error(
    tmp_path: Path, size: int
) -> None:
    path = tmp_path / "gone.bin"
    path.write_bytes(bytes(size))
    body = MultipartBody(prepare_files([path]))
    path.unlink()
    payload = body.new_attempt(None)
    with pytest.raises(Exception) as info:
        await payload.write(RecordingWriter())  # type: ignore[arg-type]
    assert body.state.error is info.value
    assert str(info.value) == "no such file (deleted after it was checked)"
    assert isinstance(info.value.__cause__, FileNotFoundError)
