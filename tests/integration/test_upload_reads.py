"""Where an upload's file reads run (issue 12): cached chunks on the loop's thread, anything that
may wait on the disk in a worker thread, and small files in one hop for many.

A thread hop costs several times the read of a cached 256 KiB chunk, so a large file's chunks are
read on the event loop's thread, but only from the page cache (``preadv(..., RWF_NOWAIT)``, which
answers ``EAGAIN`` instead of waiting on the disk). `_multipart._pread_nowait` is that call; the
tests replace it to play a cached file, a cold one and a file system that does not support it,
and count the calls that reach the loop's executor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import AsyncJobsClient, ServiceLimits
from unstructured_jobs import _multipart as multipart
from unstructured_jobs import _nowait as nowait
from unstructured_jobs._offload import run_calls
from unstructured_jobs.testing import Emulator

CHUNK = 256 * 1024


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, recording what it runs: `jobs` (one per trip to a worker
    thread) and `calls`, the function names of the calls they made (the client batches file
    calls made at the same time into one job: `_offload.run_calls`)."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.jobs = 0
        self.calls: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.jobs += 1
        if fn is run_calls:
            self.calls += [getattr(f, "__name__", repr(f)) for f, _ in args[0]]
        else:
            self.calls.append(getattr(fn, "__name__", repr(fn)))
        return super().submit(fn, *args, **kwargs)

    def count(self, name: str) -> int:
        return self.calls.count(name)


@pytest.fixture
def executor() -> Iterator[CountingExecutor]:
    pool = CountingExecutor()
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
async def emu(executor: CountingExecutor) -> AsyncIterator[Emulator]:
    asyncio.get_running_loop().set_default_executor(executor)
    async with Emulator() as emulator:
        yield emulator


class FakeCache:
    """Stands in for `_multipart._pread_nowait`: reads like the real call on a cached file, or
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
    emu: Emulator, executor: CountingExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every chunk of a cached file is read on the loop's thread: the executor runs the check
    of the inputs and the open, and no read (it ran one read per 256 KiB chunk, and one more to
    see the end of the file)."""
    cache = FakeCache()
    monkeypatch.setattr(multipart, "_pread_nowait", cache)
    path = big_file(tmp_path)
    (received,) = await upload(emu, path)
    assert received.sha256 == sha(path) and received.size == path.stat().st_size
    assert cache.threads == {threading.get_ident()}  # the loop's thread
    assert cache.offsets == [i * CHUNK for i in range(9)] + [8 * CHUNK + 123]  # + end of file
    assert executor.count("_read_at") == 0
    assert executor.calls.count("_open_binary") == 1


async def test_chunks_not_in_the_page_cache_are_read_in_a_worker_thread(
    emu: Emulator, executor: CountingExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk that would wait on the disk (`EAGAIN`) is read in the executor, the next one is
    tried on the loop's thread again: the loop never waits on a cold disk."""
    cache = FakeCache(cold=lambda offset: offset // CHUNK % 2 == 1)
    monkeypatch.setattr(multipart, "_pread_nowait", cache)
    path = big_file(tmp_path)
    (received,) = await upload(emu, path)
    assert received.sha256 == sha(path)
    assert executor.count("_read_at") == 4  # chunks 1, 3, 5 and 7
    assert len(cache.offsets) == 10  # every chunk tried from the cache first


async def test_where_cache_only_reads_are_unsupported_every_chunk_is_read_in_a_thread(
    emu: Emulator, executor: CountingExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not Linux, an old kernel, or a file system that answers ``EOPNOTSUPP``: the first refusal
    sends the rest of the file through the executor, and the upload is the same."""
    cache = FakeCache(unsupported=True)
    monkeypatch.setattr(multipart, "_pread_nowait", cache)
    path = big_file(tmp_path)
    (received,) = await upload(emu, path)
    assert received.sha256 == sha(path)
    assert len(cache.offsets) == 1
    assert executor.count("_read_at") == 10  # 9 chunks and the end of the file


async def test_the_real_call_reads_a_freshly_written_file_from_the_cache(tmp_path: Path) -> None:
    """The real `_pread_nowait` on this machine: a file just written is in the page cache, so
    the call reads it, or the platform has no such call, or the file system says it cannot."""
    path = big_file(tmp_path, 3 * CHUNK)
    data = path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        if multipart._NOWAIT is None:
            return  # not Linux: no cache-only reads, `_copy` uses the executor for every chunk
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
    emu: Emulator, executor: CountingExecutor, tmp_path: Path
) -> None:
    """600 files of 1 KB: the first 256 KiB of them (262 files) are read with the checks, the
    others in one executor hop per 256 KiB, one file open at a time (it was one hop per file)."""
    paths = small_files(tmp_path, 600, 1000)
    received = await upload(emu, *paths)
    assert [f.sha256 for f in received] == [sha(p) for p in paths]
    assert executor.calls == ["path_facts", "_read_many", "_read_many"]  # 262, 262, 76


async def test_a_small_cached_create_makes_no_trip_to_a_worker_thread(
    emu: Emulator, executor: CountingExecutor, tmp_path: Path
) -> None:
    """create_job with a 10 kB file just written (so in the kernel's caches): the file is
    checked and read on the loop's thread, with calls that cannot wait on the disk; no trip
    to a worker thread (there was one per create, which cost more than the whole check)."""
    path = tmp_path / "small.pdf"
    path.write_bytes(os.urandom(10_000))
    for _ in range(3):
        (received,) = await upload(emu, path)
        assert received.sha256 == sha(path)
    fd = nowait.open_path_cached(str(path))
    if fd is not None:
        os.close(fd)
        assert executor.calls == [] and executor.jobs == 0
    else:  # pragma: no cover - no openat2 here (kernel < 5.12, seccomp): the executor checks
        assert executor.calls == ["path_facts"] * 3


@pytest.mark.parametrize("cold", ["lookup", "contents"])
async def test_a_small_create_not_in_the_caches_is_checked_in_one_trip(
    emu: Emulator,
    executor: CountingExecutor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cold: str,
) -> None:
    """The same create when the path's lookup (``openat2`` answering ``EAGAIN``) or the file's
    bytes (``preadv2`` answering ``EAGAIN``) would wait on the disk: nothing waits on the
    loop's thread; the file is checked and read in one executor call."""
    if cold == "lookup":
        monkeypatch.setattr(nowait, "open_path_cached", lambda path: None)
    else:

        def not_cached(*args: Any) -> int:
            raise BlockingIOError(errno.EAGAIN, "not in the page cache")

        monkeypatch.setattr(nowait, "pread_nowait", not_cached)
    path = tmp_path / "small.pdf"
    path.write_bytes(os.urandom(10_000))
    for _ in range(3):
        (received,) = await upload(emu, path)
        assert received.sha256 == sha(path)
    assert executor.calls == ["path_facts"] * 3 and executor.jobs == 3


async def test_more_files_than_a_quick_check_are_checked_in_a_worker_thread(
    emu: Emulator, executor: CountingExecutor, tmp_path: Path
) -> None:
    """33 cached files: checking them is real work, better off the loop; one trip."""
    paths = small_files(tmp_path, 33, 100)
    received = await upload(emu, *paths)
    assert [f.sha256 for f in received] == [sha(p) for p in paths]
    assert executor.calls == ["path_facts"]


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


async def test_a_cached_chunk_the_connection_still_holds_is_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk's buffer is filled again for the next chunk only if nothing else holds it. A
    connection that keeps the chunks it was given (as Python 3.12's transports keep what they
    could not send yet) gets a new buffer each time; one that copies them gets the same one."""
    from unstructured_jobs._inputs import prepare_files

    path = big_file(tmp_path)

    class Keeping:
        def __init__(self) -> None:
            self.chunks: list[Any] = []

        async def write(self, chunk: Any) -> None:
            self.chunks.append(chunk)  # a reference, not a copy

    class Copying(Keeping):
        async def write(self, chunk: Any) -> None:
            self.chunks.append(bytes(chunk))

    for writer_class, distinct in ((Keeping, 9), (Copying, 1)):
        cache = FakeCache()
        monkeypatch.setattr(multipart, "_pread_nowait", cache)
        body = multipart.MultipartBody(prepare_files([path]))
        writer = writer_class()
        await body.new_attempt(None).write(writer)  # type: ignore[arg-type]
        sent = b"".join(bytes(c) for c in writer.chunks)
        assert path.read_bytes() in sent and len(sent) == body.size
        assert len(set(cache.buffers[:9])) == distinct  # the 9 reads of the file's chunks
