"""Where an upload's file reads run (issue 12): cached chunks on the loop's thread, anything that
may wait on the disk in a worker thread, and small files in one trip for many.

A thread trip costs several times the read of a cached 256 KiB chunk, so a large file's chunks
are read on the event loop's thread, but only from the page cache (``preadv(..., RWF_NOWAIT)``,
which answers ``EAGAIN`` instead of waiting on the disk). `_files.multipart._pread_nowait` is that call;
the tests replace it to play a cached file, a cold one and a file system that does not support
it, and count the calls that go to a worker thread (``anyio.to_thread.run_sync``).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from unstructured_jobs import AsyncJobsClient, ServiceLimits
from unstructured_jobs._files import multipart as multipart
from unstructured_jobs.testing import Emulator

CHUNK = 256 * 1024


class Trips:
    """Every call the client sends to a worker thread (``anyio.to_thread.run_sync``, patched),
    by function name, one per trip."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def count(self, name: str) -> int:
        return self.calls.count(name)


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Trips:
    recorded = Trips()
    real = anyio.to_thread.run_sync

    async def counting(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        recorded.calls.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return recorded


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


class FakeCache:
    """Stands in for `_files.multipart._pread_nowait`: reads like the real call on a cached file, or
    raises what the kernel raises for a chunk not in the page cache (`cold`) or where such reads
    are not supported (`unsupported`). Records the thread and offset of each call."""

    def __init__(
        self,
        cold: Callable[[int], bool] = lambda offset: False,
        unsupported: bool = False,
    ) -> None:
        self.cold = cold
        self.unsupported = unsupported
        self.offsets: list[int] = []
        self.threads: set[int] = set()
        self.buffers: list[int] = []

    def __call__(self, fd: int, buffer: bytearray, offset: int, size: int) -> int:
        self.offsets.append(offset)
        self.threads.add(threading.get_ident())
        self.buffers.append(id(buffer))
        if self.unsupported:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        if self.cold(offset):
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return os.preadv(fd, [memoryview(buffer)[:size]], offset)


def big_file(tmp_path: Path, size: int = 8 * CHUNK + 123) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(size))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def upload(emu: Emulator, *files: Path) -> list[Any]:
    # Many files in one job: over the published 10 per job, lifted on purpose.
    unlimited = ServiceLimits(files_per_job=None, bytes_per_file=None)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, limits=unlimited) as client:
        job = await client.create_job(template_id="t", input_files=list(files))
    return list(emu.jobs[job.id].files)


async def test_a_cached_file_is_read_on_the_loops_thread_without_a_hop_per_chunk(
    emu: Emulator, trips: Trips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every chunk of a cached file is read on the loop's thread: a worker thread runs the check
    of the inputs and the open, and no read (it ran one read per 256 KiB chunk, and one more to
    see the end of the file)."""
    cache = FakeCache()
    monkeypatch.setattr(multipart, "_pread_nowait", cache)
    path = big_file(tmp_path)
    (received,) = await upload(emu, path)
    assert received.sha256 == sha(path) and received.size == path.stat().st_size
    assert cache.threads == {threading.get_ident()}  # the loop's thread
    assert cache.offsets == [i * CHUNK for i in range(9)] + [8 * CHUNK + 123]  # + end of file
    assert trips.count("_read_at") == 0
    assert trips.calls.count("_open_binary") == 1


async def test_chunks_not_in_the_page_cache_are_read_in_a_worker_thread(
    emu: Emulator, trips: Trips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk that would wait on the disk (`EAGAIN`) is read in a worker thread, the next one is
    tried on the loop's thread again: the loop never waits on a cold disk."""
    cache = FakeCache(cold=lambda offset: offset // CHUNK % 2 == 1)
    monkeypatch.setattr(multipart, "_pread_nowait", cache)
    path = big_file(tmp_path)
    (received,) = await upload(emu, path)
    assert received.sha256 == sha(path)
    assert trips.count("_read_at") == 4  # chunks 1, 3, 5 and 7
    assert len(cache.offsets) == 10  # every chunk tried from the cache first


async def test_where_cache_only_reads_are_unsupported_every_chunk_is_read_in_a_thread(
    emu: Emulator, trips: Trips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not Linux, an old kernel, or a file system that answers ``EOPNOTSUPP``: the first refusal
    sends the rest of the file through a worker thread, and the upload is the same."""
    cache = FakeCache(unsupported=True)
    monkeypatch.setattr(multipart, "_pread_nowait", cache)
    path = big_file(tmp_path)
    (received,) = await upload(emu, path)
    assert received.sha256 == sha(path)
    assert len(cache.offsets) == 1
    assert trips.count("_read_at") == 10  # 9 chunks and the end of the file


async def test_the_real_call_reads_a_freshly_written_file_from_the_cache(tmp_path: Path) -> None:
    """The real `_pread_nowait` on this machine: a file just written is in the page cache, so
    the call reads it, or the platform has no such call, or the file system says it cannot."""
    path = big_file(tmp_path, 3 * CHUNK)
    data = path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        if multipart._NOWAIT is None:
            return  # not Linux: no cache-only reads, `_copy` uses a thread for every chunk
        buffer = bytearray(CHUNK)
        try:
            got = multipart._pread_nowait(fd, buffer, CHUNK, CHUNK)
        except BlockingIOError:  # pragma: no cover - evicted between the write and the read
            return
        except OSError as exc:  # pragma: no cover - a file system without RWF_NOWAIT
            assert exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)
            return
        assert got == CHUNK and bytes(buffer) == data[CHUNK : 2 * CHUNK]
        tail = bytearray(10)
        assert multipart._pread_nowait(fd, tail, 3 * CHUNK, 10) == 0  # the end of the file
    finally:
        os.close(fd)


def small_files(folder: Path, count: int, size: int) -> list[Path]:
    """`count` files of `size` random bytes, named in order."""
    paths = []
    for i in range(count):
        path = folder / f"f{i:03}.txt"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


async def test_a_run_of_small_files_is_read_in_one_hop_per_chunk(
    emu: Emulator, trips: Trips, tmp_path: Path
) -> None:
    """600 files of 1 KB: the first 256 KiB of them (262 files) are read with the checks, the
    others in one worker-thread trip per 256 KiB, one file open at a time (it was one trip per
    file)."""
    paths = small_files(tmp_path, 600, 1000)
    received = await upload(emu, *paths)
    assert [f.sha256 for f in received] == [sha(p) for p in paths]
    assert trips.calls == ["prepare_files", "_read_many", "_read_many"]  # 262, 262, 76


async def test_a_small_create_is_checked_and_read_in_one_trip(
    emu: Emulator, trips: Trips, tmp_path: Path
) -> None:
    """create_job with a 10 kB file: the file is checked and read in one call in a worker
    thread (never on the loop's thread, where a cold disk would stall every other request), and
    the upload needs no other trip."""
    path = tmp_path / "small.pdf"
    path.write_bytes(os.urandom(10_000))
    for _ in range(3):
        (received,) = await upload(emu, path)
        assert received.sha256 == sha(path)
    assert trips.calls == ["prepare_files"] * 3


async def test_many_files_are_checked_in_one_trip(
    emu: Emulator, trips: Trips, tmp_path: Path
) -> None:
    """33 small files: one trip checks them all and reads them (they fit in one chunk)."""
    paths = small_files(tmp_path, 33, 100)
    received = await upload(emu, *paths)
    assert [f.sha256 for f in received] == [sha(p) for p in paths]
    assert trips.calls == ["prepare_files"]


async def test_a_cancel_while_a_cached_chunk_is_written_has_closed_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while the body writer waits for the server to take a chunk read on the loop's
    thread: the file is closed when the `CancelledError` reaches the caller."""
    opened: list[Any] = []
    real_open = multipart._open_binary

    def opener(path: str) -> Any:
        opened.append(real_open(path))
        return opened[-1]

    monkeypatch.setattr(multipart, "_open_binary", opener)
    monkeypatch.setattr(multipart, "_pread_nowait", FakeCache())
    stalled = asyncio.Event()

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path = big_file(tmp_path, 64 * CHUNK)  # 16 MiB: more than the socket buffers take
    sent = [0]

    def progress(n: int) -> None:
        sent[0] += n
        if sent[0] >= 2 * CHUNK:
            stalled.set()

    try:
        async with AsyncJobsClient(api_key="k", server_url=f"http://127.0.0.1:{port}") as c:
            task = asyncio.ensure_future(
                c.create_job(template_id="t", input_files=[path], on_upload_progress=progress)
            )
            await stalled.wait()
            assert not opened[0].closed
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert opened[0].closed  # at the very moment the cancel arrived
    finally:
        server.close()


class Connection:
    """A stream writer and its transport. One that `keeps` holds on to every chunk it is given,
    unsent and uncopied (as Python 3.12's transports keep what the socket could not take yet),
    and reports those bytes as its write buffer; the other hands every byte to the OS (copies
    it) at once and reports an empty buffer. Without `transport`, a writer that says nothing of
    what it holds."""

    def __init__(self, *, keeps: bool, transport: bool = True) -> None:
        self.keeps = keeps
        self.chunks: list[Any] = []
        if transport:
            self.transport = self

    async def write(self, chunk: Any) -> None:
        self.chunks.append(chunk if self.keeps else bytes(chunk))

    def get_write_buffer_size(self) -> int:
        return sum(len(c) for c in self.chunks) if self.keeps else 0


async def test_a_cached_chunk_the_connection_still_holds_is_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk's buffer is filled again for the next chunk only once the connection's transport
    reports that it holds none of it (an empty write buffer): a connection that keeps the chunks
    it was given, or that does not say, gets a new buffer each time, and every byte it sends is
    the file's; one that sent them gets the same buffer again."""
    from unstructured_jobs._files.inputs import prepare_files

    path = big_file(tmp_path)
    cases = (
        (Connection(keeps=True), 9),
        (Connection(keeps=True, transport=False), 9),
        (Connection(keeps=False), 1),
    )
    for writer, distinct in cases:
        cache = FakeCache()
        monkeypatch.setattr(multipart, "_pread_nowait", cache)
        body = multipart.MultipartBody(prepare_files([path]))
        await body.new_attempt(None).write(writer)  # type: ignore[arg-type]
        sent = b"".join(bytes(c) for c in writer.chunks)  # what the kept chunks hold now
        assert path.read_bytes() in sent and len(sent) == body.size
        assert len(set(cache.buffers[:9])) == distinct  # the 9 reads of the file's chunks


async def test_a_large_upload_through_a_real_connection_arrives_intact(
    emu: Emulator, tmp_path: Path
) -> None:
    """16 MiB through a real transport, faster than the server reads it: the transport keeps
    chunks it cannot send yet (Python 3.12's without a copy), and none of them is overwritten
    by the next read (filling the buffer again regardless corrupted this upload on 3.12)."""
    path = big_file(tmp_path, 64 * CHUNK)
    (received,) = await upload(emu, path)
    assert received.size == 64 * CHUNK and received.sha256 == sha(path)
