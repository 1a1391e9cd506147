"""Input files and the streaming multipart body.

`prepare_files` turns whatever the user passed into `PreparedFile` records, checking every local
path (exists, regular file, readable) and reporting every problem at once, before any request.
It does blocking `stat` calls, so the client runs it in a worker thread.

`MultipartBody` is a body *factory*: each attempt gets a fresh aiohttp payload that opens each
file only when its turn to be written comes, reads it in chunks in a worker thread, closes it
right after, and never holds more than one chunk in memory. A job with 2,000 files therefore uses
one file descriptor at a time, and a retry re-reads the files from disk (aiohttp closes a body
after each attempt, so a body object can never be sent twice).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import mimetypes
import os
import random
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, BinaryIO, Union

import attrs
from aiohttp import payload as aiohttp_payload
from aiohttp.abc import AbstractStreamWriter

from ._constants import DEFAULT_CONTENT_TYPE, LOGGER_NAME, UPLOAD_CHUNK_SIZE
from ._exceptions import InputFileError, reduce_error

log = logging.getLogger(LOGGER_NAME)

ProgressCallback = Callable[[int], object]
"""Called with the number of file bytes just written to the connection. After a failed attempt
that is retried, it is called once with minus the bytes that attempt had reported, so a running
sum (a progress bar's ``update``) always equals the bytes of the attempt in flight. It runs on the
event loop's thread; an exception it raises is logged and ignored (it cannot abort the upload)."""


@attrs.frozen
class InputFile:
    """One file to upload, with an explicit name and content type.

    `content` is a local path, bytes, or an open binary file object (which the client reads but
    does not close; it is rewound for a retry when it is seekable, and never retried otherwise).
    """

    content: str | os.PathLike[str] | bytes | IO[bytes]
    filename: str | None = None
    content_type: str | None = None


InputFileLike = Union[
    str,
    "os.PathLike[str]",
    IO[bytes],
    InputFile,
    tuple[str, bytes | IO[bytes]],
    tuple[str, bytes | IO[bytes], str],
]
"""Anything `input_files` accepts: a path, an open binary file, ``(name, bytes_or_file)``,
``(name, bytes_or_file, content_type)``, or an `InputFile`."""


@attrs.frozen
class PreparedFile:
    """A validated input file. Exactly one of `path`, `data`, `stream` is set."""

    filename: str
    content_type: str
    size: int | None
    path: str | None = None
    data: bytes | None = None
    stream: IO[bytes] | None = attrs.field(default=None, eq=False)
    start: int | None = None  # stream position to rewind to; None when not seekable


def _clean_name(name: str) -> str:
    # Names from non-UTF-8 file systems arrive with lone surrogates: keep what is valid UTF-8.
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename, strict=False)[0] or DEFAULT_CONTENT_TYPE


def _normalise(item: object) -> InputFile:
    if isinstance(item, InputFile):
        return item
    if isinstance(item, tuple):
        if len(item) not in (2, 3) or not isinstance(item[0], str):
            raise TypeError("a tuple input must be (filename, bytes_or_file[, content_type])")
        return InputFile(item[1], item[0], item[2] if len(item) == 3 else None)
    if isinstance(item, (str, os.PathLike, bytes)) or hasattr(item, "read"):
        return InputFile(item)  # type: ignore[arg-type]
    raise TypeError(f"unsupported input file: {type(item).__name__}")


def prepare_files(items: Iterable[object]) -> list[PreparedFile]:
    """Validate and describe every input; raise one `InputFileError` listing all problems."""
    prepared: list[PreparedFile] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        label = f"input #{index}"
        try:
            spec = _normalise(item)
            label = spec.filename or _label(spec.content) or label
            prepared.append(_prepare_one(spec))
        except (OSError, TypeError, ValueError) as exc:
            problems.append((label, _reason(exc)))
    if problems:
        raise InputFileError(problems)
    return prepared


def _label(content: object) -> str | None:
    if isinstance(content, (str, os.PathLike)):
        return os.fsdecode(content)
    name = getattr(content, "name", None)
    return name if isinstance(name, str) else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _check_content_type(value: str | None, filename: str) -> str:
    content_type = value or _guess_type(filename)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in content_type):
        raise ValueError("content type contains control characters")
    return content_type


def _prepare_one(spec: InputFile) -> PreparedFile:
    content = spec.content
    if isinstance(content, (str, os.PathLike)):
        path = os.fspath(content)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if not os.access(path, os.R_OK):
            raise PermissionError(path)
        filename = _clean_name(spec.filename or os.path.basename(path))
        return PreparedFile(
            _nonempty(filename),
            _check_content_type(spec.content_type, filename),
            st.st_size,
            path=path,
        )
    if isinstance(content, (bytes, bytearray, memoryview)):
        if not spec.filename:
            raise ValueError("bytes need a filename: pass (filename, data)")
        filename = _clean_name(spec.filename)
        data = bytes(content)
        return PreparedFile(
            _nonempty(filename),
            _check_content_type(spec.content_type, filename),
            len(data),
            data=data,
        )
    if isinstance(content, io.TextIOBase):
        raise TypeError("file objects must be opened in binary mode ('rb')")
    stream: IO[bytes] = content
    name = spec.filename or _label(stream)
    if not name:
        raise ValueError("this file object has no name: pass (filename, file)")
    filename = _clean_name(os.path.basename(name) if not spec.filename else name)
    start = size = None
    if _seekable(stream):
        start = stream.tell()
        size = stream.seek(0, os.SEEK_END) - start
        stream.seek(start)
    return PreparedFile(
        _nonempty(filename),
        _check_content_type(spec.content_type, filename),
        size,
        stream=stream,
        start=start,
    )


def _open_binary(path: str) -> BinaryIO:
    return open(path, "rb")


def _nonempty(filename: str) -> str:
    if not filename or "\x00" in filename:
        raise ValueError("empty file name or NUL in it")
    return filename


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


# --------------------------------------------------------------------------- multipart


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
    """Internal: a file's size changed between validation and upload."""

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

    @property
    def content_type(self) -> str:
        """The request's Content-Type header value."""
        return "multipart/form-data; boundary=" + self.boundary.decode()

    @property
    def size(self) -> int | None:
        """Total bytes, or None when a part's size is unknown (then it is sent chunked)."""
        total = sum(len(h) + 2 for h in self._heads) + len(self.boundary) + 6
        total += sum(len(v.encode()) for _, v in self.fields)
        for f in self.files:
            if f.size is None:
                return None
            total += f.size
        return total

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


class _StallWatchdog:
    """Cancels the writing task when no bytes went out for `timeout` seconds.

    One timer per attempt, re-armed only when it fires: the per-chunk cost is one float store
    (a `wait_for` per chunk would create a task per chunk).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.last_progress = self.loop.time()
        self.fired = False
        self._handle = self.loop.call_later(timeout, self._check)

    def _check(self) -> None:
        idle = self.loop.time() - self.last_progress
        if idle >= self.timeout:
            self.fired = True
            if self.task is not None:
                self.task.cancel()
        else:
            self._handle = self.loop.call_later(self.timeout - idle, self._check)

    def stop(self) -> None:
        self._handle.cancel()


class _BodyPayload(aiohttp_payload.Payload):
    """One attempt's body: writes every part, opening each file only while it is written.

    Small pieces (part headers, small files) are coalesced into writes of about one chunk;
    file reads run in the loop's default executor, one chunk per hop (a whole small file, open
    to close, in a single hop).
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

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streaming upload cannot be decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        state = self._state
        state.started = True
        if self._timeout is not None:
            self._watchdog = _StallWatchdog(self._timeout)
        try:
            await self._write_all(writer)
            await self._flush(writer)
        except asyncio.CancelledError:
            if self._watchdog is None or not self._watchdog.fired:
                state.error = state.error or asyncio.CancelledError()
                raise
            # Our own watchdog cancelled the write: turn it into an error aiohttp reports.
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
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

    async def _send(self, writer: AbstractStreamWriter, data: bytes, progress: int = 0) -> None:
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

    async def _write(self, writer: AbstractStreamWriter, chunk: bytes, progress: int) -> None:
        await writer.write(chunk)
        self._state.bytes_sent += len(chunk)
        if self._watchdog is not None:
            self._watchdog.last_progress = self._watchdog.loop.time()
        if progress:
            self._body._progress(progress)

    async def _write_all(self, writer: AbstractStreamWriter) -> None:
        body = self._body
        heads = iter(body._heads)
        for _, value in body.fields:
            await self._send(writer, next(heads) + value.encode() + b"\r\n")
        for prepared in body.files:
            await self._send(writer, next(heads))
            await self._write_file(writer, prepared)
            await self._send(writer, b"\r\n")
        await self._send(writer, b"--" + body.boundary + b"--\r\n")

    async def _write_file(self, writer: AbstractStreamWriter, prepared: PreparedFile) -> None:
        chunk_size = self._body.chunk_size
        if prepared.data is not None:
            view = memoryview(prepared.data)
            for offset in range(0, len(view), chunk_size):
                piece = bytes(view[offset : offset + chunk_size])
                await self._send(writer, piece, len(piece))
            return
        loop = asyncio.get_running_loop()
        if prepared.path is not None and prepared.size is not None and prepared.size <= chunk_size:
            data = await loop.run_in_executor(None, _read_small, prepared.path, prepared.size)
            self._check_size(prepared, len(data))
            await self._send(writer, data, len(data))
            return
        if prepared.path is not None:
            stream: Any = await loop.run_in_executor(None, _open_binary, prepared.path)
        else:
            stream = prepared.stream
            if prepared.start is not None:
                await loop.run_in_executor(None, stream.seek, prepared.start)
        try:
            sent = 0
            while True:
                data = await loop.run_in_executor(None, stream.read, chunk_size)
                if not data:
                    break
                sent += len(data)
                if prepared.size is not None and sent > prepared.size:
                    self._check_size(prepared, sent)
                await self._send(writer, data, len(data))
            self._check_size(prepared, sent)
        finally:
            if prepared.path is not None:
                await loop.run_in_executor(None, stream.close)

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


def _read_small(path: str, size: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size + 1)  # one byte more, to notice a file that grew


def request_data_json(
    *, template_id: str | None, job_nodes: Sequence[Any] | None, request_data: Any
) -> str:
    """Build create_job's ``request_data`` JSON string from exactly one of the three forms."""
    given = [x is not None for x in (template_id, job_nodes, request_data)]
    if sum(given) != 1:
        raise ValueError("pass exactly one of template_id, job_nodes or request_data")
    if template_id is not None:
        if not isinstance(template_id, str) or not template_id.strip():
            raise ValueError("template_id must be a non-empty string")
        return json.dumps({"template_id": template_id})
    if job_nodes is not None:
        if isinstance(job_nodes, (str, bytes)) or not list(job_nodes):
            raise ValueError("job_nodes must be a non-empty list of node objects")
        return json.dumps({"job_nodes": list(job_nodes)})
    if isinstance(request_data, str):
        try:
            parsed = json.loads(request_data)
        except ValueError as exc:
            raise ValueError(f"request_data is not valid JSON: {exc}") from None
    else:
        parsed = request_data
    if not isinstance(parsed, dict) or not ({"template_id", "job_nodes"} & parsed.keys()):
        raise ValueError("request_data must be a JSON object with template_id or job_nodes")
    return request_data if isinstance(request_data, str) else json.dumps(request_data)
