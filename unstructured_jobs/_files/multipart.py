"""The streaming multipart/form-data body of an upload (create_job, run_workflow).

`MultipartBody` is a body *factory*: each attempt gets a fresh aiohttp payload that opens each
file only when its turn to be written comes, reads it in chunks, closes it right after, and never
holds more than about one chunk in memory. A job with 2,000 files therefore uses one file
descriptor at a time, and a retry re-reads the files from disk (aiohttp closes a body after each
attempt, so a body object can never be sent twice).

No read that may wait on the disk runs on the event loop's thread. Opening a file, reading a run
of small files (one trip for up to a chunk of them) and reading a user's file object run in a
worker thread (``anyio.to_thread``). A large file's chunks are read on the loop's thread only
from the page cache (``preadv`` with ``RWF_NOWAIT`` on Linux, which answers ``EAGAIN`` rather
than wait on the disk); a chunk that is not cached, and every chunk where such reads are not
supported, is read in a worker thread. A thread trip costs several times the read of a cached
chunk, so a cached upload costs about what a hand-written loop of ``os.read`` costs
(benchmarks/README.md).

The files arrive here already checked (`_files.inputs.PreparedFile`); text fields are sent as given.
A file that cannot be read when its turn comes (deleted, made unreadable, a stream that fails)
or that changes size is recorded on the attempt (`AttemptState.error`): the transport raises it
as `InputFileError`, never retried, and the body is cut short, so no job can exist.

A cancellation waits for the worker thread's call in flight to end (it cannot be stopped in its
thread): a file the call opens is closed, never left to the garbage collector, and a cancelled
attempt lets go of its file before the transport returns (`AttemptState.wait_stopped`).

The upload-stall watchdog (`Timeout.write`) counts as progress any byte the server's end of the
connection acknowledged (the kernel's ``TCP_INFO``, on Linux), else any byte handed to the OS, and
any byte the body wrote: a server that reads slowly but steadily is never a stall.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import re
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, TypeVar

import anyio.to_thread
from aiohttp import payload as aiohttp_payload
from aiohttp.abc import AbstractStreamWriter

from .._constants import (
    LOGGER_NAME,
    STALL_CHECKS_PER_TIMEOUT,
    UNWATCHED_BODY,
    UPLOAD_CHUNK_SIZE,
)
from .._exceptions import reduce_error
from .inputs import PreparedFile, reason_for

log = logging.getLogger(LOGGER_NAME)
T = TypeVar("T")

ProgressCallback = Callable[[int], object]
"""Called with the number of file bytes just written to the connection. After a failed attempt
that is retried, it is called once with minus the bytes that attempt had reported, so a running
sum (a progress bar's ``update``) always equals the bytes of the attempt in flight. It runs on the
event loop's thread; an exception it raises is logged and ignored (it cannot abort the upload)."""


_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f]')
# Boundaries need to be unpredictable to the content, not secret: a PRNG seeded from the OS
# once, instead of uuid4() per request (os.urandom costs ~80 us per call on some VMs).
_BOUNDARY_RNG = random.Random()


def _quote_param(value: str) -> str:
    """Escape a Content-Disposition parameter so that it can never break out of its quotes.

    ``\\`` and ``"`` are backslash-escaped (round-trips through aiohttp's and python-multipart's
    parsers); CR, LF and other control characters are percent-encoded as browsers do.
    """
    if _NEEDS_ESCAPE.search(value) is None:
        return '"' + value + '"'
    out = []
    for ch in value:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _part_head(boundary: bytes, name: str, filename: str | None, content_type: str | None) -> bytes:
    disposition = f"form-data; name={_quote_param(name)}"
    if filename is not None:
        disposition += f"; filename={_quote_param(filename)}"
    lines = [f"Content-Disposition: {disposition}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    return b"--" + boundary + b"\r\n" + "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n"


class FileChangedError(Exception):
    """Internal: a file changed between validation and upload (its size, or it cannot be read
    any more: deleted, permissions changed, an I/O error); the transport raises InputFileError."""

    __reduce__ = reduce_error

    def __init__(self, filename: str, message: str) -> None:
        super().__init__(message)
        self.filename = filename


class UploadStalledError(Exception):
    """Internal: no upload progress within the write timeout."""


class AttemptState:
    """What one attempt's body managed to send (read by the transport after a failure)."""

    def __init__(self) -> None:
        self.bytes_sent = 0
        self.started = False
        self.complete = False
        self.error: BaseException | None = None
        self.writer: asyncio.Task[Any] | None = None  # the task writing this attempt's body

    async def wait_stopped(self) -> None:
        """Stop this attempt's body writer if it still runs, and return once it has ended.

        The writer then holds no file: it closes each file before it ends, a cancelled one
        included. A second cancellation of the caller cuts the wait short.
        """
        writer = self.writer
        if writer is None or writer.done() or writer is asyncio.current_task():
            return
        writer.cancel()
        await asyncio.wait([writer])


class MultipartBody:
    """A multipart/form-data body that can be rebuilt for each attempt.

    `fields` are plain text parts (``request_data``); `files` are sent as parts named
    `file_field`, in order.
    """

    def __init__(
        self,
        files: Sequence[PreparedFile],
        *,
        fields: Sequence[tuple[str, str]] = (),
        file_field: str = "input_files",
        chunk_size: int = UPLOAD_CHUNK_SIZE,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.files = list(files)
        self.fields = list(fields)
        self.file_field = file_field
        self.chunk_size = chunk_size
        self.on_progress = on_progress
        self.boundary = f"{_BOUNDARY_RNG.getrandbits(128):032x}".encode()
        self._reported = 0
        self.state = AttemptState()
        self._heads = [_part_head(self.boundary, n, None, None) for n, _ in self.fields]
        self._heads += [
            _part_head(self.boundary, file_field, f.filename, f.content_type) for f in self.files
        ]
        self.size = self._total_size()
        """Total bytes, or None when a part's size is unknown (then it is sent chunked)."""
        # A small body whose every part is in memory is rendered once, written in one piece.
        self._whole: bytes | None = None
        small = self.size is not None and self.size <= chunk_size
        if small and all(f.data is not None for f in self.files):
            self._whole = self._render()

    @property
    def content_type(self) -> str:
        """The request's Content-Type header value."""
        return "multipart/form-data; boundary=" + self.boundary.decode()

    def _total_size(self) -> int | None:
        total = sum(len(h) + 2 for h in self._heads) + len(self.boundary) + 6
        total += sum(len(v.encode()) for _, v in self.fields)
        for f in self.files:
            if f.size is None:
                return None
            total += f.size
        return total

    def _render(self) -> bytes:
        parts: list[bytes] = []
        heads = iter(self._heads)
        for _, value in self.fields:
            parts += (next(heads), value.encode(), b"\r\n")
        for f in self.files:
            assert f.data is not None
            parts += (next(heads), f.data, b"\r\n")
        parts += (b"--", self.boundary, b"--\r\n")
        return b"".join(parts)

    @property
    def file_bytes(self) -> int:
        """The bytes of the files' contents in the body (what progress callbacks count)."""
        return sum(f.size or 0 for f in self.files)

    @property
    def file_names(self) -> list[str]:
        """The file names, in the order they are sent."""
        return [f.filename for f in self.files]

    def can_rebuild(self) -> bool:
        """True if a new attempt can send the same bytes again."""
        if not self.state.started:
            return True
        return all(f.stream is None or f.start is not None for f in self.files)

    def new_attempt(self, write_timeout: float | None) -> aiohttp_payload.Payload:
        """A fresh payload for one attempt; the previous attempt's progress is taken back."""
        if self._reported:
            self._notify(-self._reported)
        self._reported = 0
        self.state = AttemptState()
        return _BodyPayload(self, self.state, write_timeout)

    def _progress(self, n: int) -> None:
        self._reported += n
        if self.on_progress is not None:
            self._notify(n)

    def _notify(self, n: int) -> None:
        # A failing progress callback must not abort an upload: an upload cut short by it would
        # look unsent and be retried, although the server may already have the whole body.
        if self.on_progress is None:
            return
        try:
            self.on_progress(n)
        except Exception:
            log.exception("on_upload_progress raised; the upload goes on")


Probe = Callable[[], object]


class _StallWatchdog:
    """Cancels the writing task when the upload made no progress for `timeout` seconds.

    Progress is a change, checked a few times per timeout, in what `probe` returns (the bytes
    the peer acknowledged, or handed to the OS, and the bytes the body has written). A check
    that runs late (the loop was blocked, the process stopped) restarts the count: a stall is
    time the watchdog watched and saw nothing move, not time it was not running.

    One timer per check, nothing per chunk.
    """

    def __init__(
        self,
        timeout: float,
        probe: Probe,
        *,
        loop: Any = None,
        task: asyncio.Task[Any] | None = None,
    ) -> None:
        self.timeout = timeout
        self.interval = timeout / STALL_CHECKS_PER_TIMEOUT
        self.probe = probe
        self.loop = loop or asyncio.get_running_loop()
        self.task = task or asyncio.current_task()
        self.last_progress = self.loop.time()
        self.fired = False
        self._seen = probe()
        self._due = self.last_progress + self.interval
        self._handle = self.loop.call_later(self.interval, self._check)

    def _check(self) -> None:
        now = self.loop.time()
        seen = self.probe()
        if seen != self._seen or now - self._due > self.interval:
            self._seen = seen
            self.last_progress = max(self.last_progress, now)
        if now - self.last_progress >= self.timeout:
            self.fired = True
            if self.task is not None:
                self.task.cancel()
            return
        self._due = now + self.interval
        self._handle = self.loop.call_later(self.interval, self._check)

    def stop(self) -> None:
        self._handle.cancel()


_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None)
_BYTES_ACKED = slice(120, 128)  # struct tcp_info's tcpi_bytes_acked (Linux >= 4.1)


def _progress_probe(writer: AbstractStreamWriter) -> Probe:
    """What the watchdog watches on `writer`'s connection: a value that changes when bytes move.

    On Linux, the bytes the peer acknowledged (``TCP_INFO``), which grow as soon as the server
    takes any byte; elsewhere (or on a socket without it), the bytes handed to the OS, which
    grow only when the OS wakes the writer (after a third of its buffer drained).
    """
    transport = getattr(writer, "transport", None)
    if transport is None:  # not aiohttp's writer: finished writes are the only progress
        return lambda: None

    def handed_over() -> object:
        return writer.output_size - transport.get_write_buffer_size()

    sock = transport.get_extra_info("socket")
    if _TCP_INFO is None or sock is None:
        return handed_over
    tcp_info = _TCP_INFO

    def acked() -> object:
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 136)
        except (OSError, ValueError):  # not a TCP socket, or closed
            info = b""
        if len(info) < _BYTES_ACKED.stop:
            return handed_over()
        return int.from_bytes(info[_BYTES_ACKED], sys.byteorder)

    return acked


class _BodyPayload(aiohttp_payload.Payload):
    """One attempt's body: writes every part, opening each file only while it is written.

    Small pieces (part headers, small files) are coalesced into writes of about one chunk. A run
    of small files on disk is read in one trip to a worker thread (each opened, read and closed
    in turn); a large file is opened in a worker thread, then read chunk by chunk from the page
    cache on the loop's thread when the chunk is all there, else in a worker thread (see
    `_copy`).
    """

    def __init__(self, body: MultipartBody, state: AttemptState, write_timeout: float | None):
        super().__init__(body, content_type=body.content_type)
        self._body = body
        self._state = state
        self._timeout = write_timeout
        self._size = body.size
        self._pending = bytearray()
        self._progress_pending = 0
        self._watchdog: _StallWatchdog | None = None
        self._reading: asyncio.Future[Any] | None = None  # the thread call in flight, if any

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streaming upload cannot be decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        state = self._state
        state.started = True
        state.writer = asyncio.current_task()
        whole = self._body._whole
        if whole is not None and len(whole) <= UNWATCHED_BODY:
            # Written in one piece that the connection takes without waiting: nothing can stall.
            try:
                await self._write(writer, whole, self._body.file_bytes)
            except BaseException as exc:
                state.error = state.error or exc
                raise
            state.complete = True
            return
        if self._timeout is not None:
            probe = _progress_probe(writer)
            self._watchdog = _StallWatchdog(self._timeout, lambda: (probe(), state.bytes_sent))
        try:
            if whole is not None:
                await self._write(writer, whole, self._body.file_bytes)
            else:
                await self._write_all(writer)
                await self._flush(writer)
        except asyncio.CancelledError:
            if self._watchdog is None or not self._watchdog.fired:
                state.error = state.error or asyncio.CancelledError()
                raise
            # Our own watchdog cancelled the write: turn it into an error aiohttp reports.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            state.error = UploadStalledError(f"no upload progress for {self._timeout:g} s")
            raise state.error from None
        except BaseException as exc:
            state.error = state.error or exc
            raise
        finally:
            if self._watchdog is not None:
                self._watchdog.stop()
        state.complete = True

    async def _send(
        self, writer: AbstractStreamWriter, data: bytes | bytearray, progress: int = 0
    ) -> None:
        if len(data) >= self._body.chunk_size:  # big: no copy into the buffer
            await self._flush(writer)
            await self._write(writer, data, progress)
            return
        self._pending += data
        self._progress_pending += progress
        if len(self._pending) >= self._body.chunk_size:
            await self._flush(writer)

    async def _flush(self, writer: AbstractStreamWriter) -> None:
        if self._pending:
            chunk, self._pending = bytes(self._pending), bytearray()
            progress, self._progress_pending = self._progress_pending, 0
            await self._write(writer, chunk, progress)

    async def _write(
        self, writer: AbstractStreamWriter, chunk: bytes | bytearray, progress: int
    ) -> None:
        await writer.write(chunk)
        self._state.bytes_sent += len(chunk)
        if progress:
            self._body._progress(progress)

    async def _write_all(self, writer: AbstractStreamWriter) -> None:
        body = self._body
        heads = iter(body._heads)
        for _, value in body.fields:
            await self._send(writer, next(heads) + value.encode() + b"\r\n")
        files = body.files
        index = 0
        while index < len(files):
            run = _small_run(files, index, body.chunk_size)
            if not run:
                await self._send(writer, next(heads))
                await self._write_file(writer, files[index])
                await self._send(writer, b"\r\n")
                index += 1
                continue
            # Small files on disk: one trip to a worker thread reads them all (one open at a time).
            results = await self._in_thread(_read_many, run)
            for prepared, result in zip(files[index : index + len(run)], results, strict=False):
                await self._send(writer, next(heads))
                if isinstance(result, BaseException):
                    raise _input_error(prepared, result) from result
                self._check_size(prepared, len(result))
                await self._send(writer, result, len(result))
                await self._send(writer, b"\r\n")
            index += len(run)
        await self._send(writer, b"--" + body.boundary + b"--\r\n")

    async def _write_file(self, writer: AbstractStreamWriter, prepared: PreparedFile) -> None:
        if prepared.data is not None:
            chunk_size = self._body.chunk_size
            view = memoryview(prepared.data)
            for offset in range(0, len(view), chunk_size):
                piece = bytes(view[offset : offset + chunk_size])
                await self._send(writer, piece, len(piece))
            return
        if prepared.path is None:  # a user's file object: read (and rewound) in a worker thread
            stream: Any = prepared.stream
            if prepared.start is not None:
                await self._read_input(prepared, stream.seek, prepared.start)
            await self._copy(writer, prepared, stream, own=False)
            return
        fh: Any = await self._read_input(prepared, _open_binary, prepared.path, close=True)
        try:
            await self._copy(writer, prepared, fh, own=True)
        finally:
            self._close_file(fh)

    async def _copy(
        self, writer: AbstractStreamWriter, prepared: PreparedFile, fh: Any, *, own: bool
    ) -> None:
        """Send `fh`'s bytes in chunks, checked against the size the file had when checked.

        A file we opened (`own`, a plain `io.FileIO`) is read at offsets: each chunk that is
        in the page cache is read on the loop's thread (``preadv`` with ``RWF_NOWAIT``, which
        never waits on the disk: a chunk that is not there is read in a worker thread instead),
        into a buffer filled again for the next chunk once the connection holds none of it
        (`_let_go`). Where such reads are not supported (not Linux, an old kernel, some file
        systems), and for a user's file object, every read runs in a worker thread.
        """
        body = self._body
        state = self._state
        chunk_size = body.chunk_size
        expected = prepared.size
        at = own and type(fh) is io.FileIO  # read at offsets, not from the file's position
        fd = fh.fileno() if at and _NOWAIT is not None else None
        buffer: bytearray | None = None  # free to fill: the connection holds none of it
        sent = 0
        while True:
            # Once the expected bytes are all sent, one more byte is asked for: a file that grew.
            want = chunk_size if expected is None else min(chunk_size, expected - sent) or 1
            data: Any = None
            filled = False  # data is a buffer of ours
            if fd is not None:
                if buffer is None or len(buffer) < want:
                    buffer = bytearray(want)
                try:
                    got = _pread_nowait(fd, buffer, sent, want)
                except BlockingIOError:  # not in the page cache: the disk is read off the loop
                    pass
                except OSError:  # not supported here, or failing: the thread's read says how
                    fd = None
                else:  # fewer bytes: the end of the file, or only part of the chunk is cached
                    if got == len(buffer):
                        data, buffer, filled = buffer, None, True
                    else:
                        data = buffer[:got]  # a copy: the buffer stays free
            if data is None:
                if at:
                    data = await self._read_input(prepared, _read_at, fh, want, sent)
                else:
                    data = await self._read_input(prepared, fh.read, want)
            size = len(data)
            if not size:
                break
            sent += size
            if expected is not None and sent > expected:
                self._check_size(prepared, sent)
            if size < chunk_size or self._pending:
                await self._send(writer, data, size)
            else:
                await writer.write(data)  # a whole chunk: straight to the connection
                state.bytes_sent += size
                body._progress(size)
            if filled and _let_go(writer):
                buffer = data  # the connection holds nothing: no copy of it is needed
        self._check_size(prepared, sent)

    @staticmethod
    def _check_size(prepared: PreparedFile, sent: int) -> None:
        expected = prepared.size
        if expected is None or sent == expected:
            return
        verb = "grew" if sent > expected else "shrank"
        raise FileChangedError(
            prepared.filename,
            f"{verb} while it was being uploaded (expected {expected} bytes)",
        )

    async def _in_thread(self, fn: Callable[..., T], *args: Any, close: bool = False) -> T:
        # A task of its own, shielded below: the caller's cancellation (aiohttp cancels the
        # body's task natively) must not drop the call's result, such as a file it opened.
        future = asyncio.ensure_future(anyio.to_thread.run_sync(fn, *args))
        self._reading = future
        return await _wait_thread(future, close=close)

    async def _read_input(
        self, prepared: PreparedFile, fn: Callable[..., T], *args: Any, close: bool = False
    ) -> T:
        """`_in_thread` for a call on an input file: a failure is the file's, not the network's."""
        try:
            return await self._in_thread(fn, *args, close=close)
        except (OSError, ValueError) as exc:
            raise _input_error(prepared, exc) from exc

    def _close_file(self, fh: Any) -> None:
        """Close a file we opened, at once; or, if a read of it still runs in its thread (the
        wait for it was cut short by a second cancellation), as soon as that read ends."""
        reading = self._reading
        if reading is not None and not reading.done():
            reading.add_done_callback(lambda _: fh.close())
            return
        fh.close()


async def _wait_thread(future: asyncio.Future[T], close: bool = False) -> T:
    """The result of a call in a worker thread.

    If the caller is cancelled, the call cannot be stopped in its thread: wait for it to end
    before the cancellation goes on, so that no file is closed under a running read, and (with
    `close`) close the file it returns instead of leaving it to the garbage collector.
    """
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if close:
            future.add_done_callback(_close_result)
        await asyncio.wait([future])  # a second cancellation ends this wait early
        raise


def _close_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _input_error(prepared: PreparedFile, exc: BaseException) -> FileChangedError:
    if isinstance(exc, FileNotFoundError):
        reason = "no such file (deleted after it was checked)"
    else:
        reason = "could not be read: " + reason_for(exc)
    return FileChangedError(prepared.filename, reason)


def _small_run(files: Sequence[PreparedFile], index: int, budget: int) -> list[tuple[str, int]]:
    """The paths and sizes of the files on disk from `index` on, together at most `budget`."""
    run: list[tuple[str, int]] = []
    for prepared in files[index:]:
        path, size = prepared.path, prepared.size
        if path is None or size is None or size > budget:
            break
        budget -= size
        run.append((path, size))
    return run


def _read_many(items: Sequence[tuple[str, int]]) -> list[bytes | OSError]:
    """Read small files one after the other (each closed before the next is opened); the
    first failure ends the list."""
    results: list[bytes | OSError] = []
    for path, size in items:
        try:
            results.append(_read_small(path, size))
        except OSError as exc:
            results.append(exc)
            break
    return results


def _read_small(path: str, size: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size + 1)  # one byte more, to notice a file that grew


_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None) if hasattr(os, "preadv") else None


def _pread_nowait(fd: int, buffer: bytearray, offset: int, size: int) -> int:
    """Read up to `size` bytes at `offset` into `buffer`, only from the page cache (``preadv2``
    with ``RWF_NOWAIT``, Linux 4.14+); raises `BlockingIOError` if none of them is there (the
    read would wait on the disk). A short count means the end of the file or a chunk only
    partly cached, never that the file changed: the caller reads on to find out."""
    assert _NOWAIT is not None
    view = buffer if size == len(buffer) else memoryview(buffer)[:size]
    return os.preadv(fd, [view], offset, _NOWAIT)


def _let_go(writer: AbstractStreamWriter) -> bool:
    """Whether the connection holds none of the bytes written to it, so that a buffer it was
    given can be filled again: its transport reports an empty write buffer (every byte handed to
    the OS). A transport that kept a chunk it could not send yet (Python 3.12's do, without a
    copy) reports it there; a writer without a transport never lets go."""
    transport = getattr(writer, "transport", None)
    if transport is None:
        return False
    try:
        return bool(transport.get_write_buffer_size() == 0)
    except (AttributeError, NotImplementedError, RuntimeError):
        return False


def _open_binary(path: str) -> BinaryIO:
    return open(path, "rb", buffering=0)


def _read_at(fh: io.FileIO, size: int, offset: int) -> bytes:
    """Up to `size` bytes at `offset` (in a worker thread: this may wait on the disk)."""
    if hasattr(os, "pread"):
        return os.pread(fh.fileno(), size, offset)
    fh.seek(offset)
    return fh.read(size) or b""
