"""What a new job is made from: its ``request_data`` form field and its input files.

Both are the user's arguments to create_job (and run_batch), checked and normalised before any
request is made; `_files.multipart` then sends them without knowing what they mean.

`prepare_files` turns whatever the user passed into `PreparedFile` records, checking every local
path (exists, regular file, readable) and reporting every problem at once, before any request.
It does blocking `stat` calls (and reads small files), so the client runs it in a worker thread.

`request_data_json` builds the ``request_data`` JSON text from ``template_id`` and/or
``job_nodes``, or from a ready-made ``request_data``.
"""

from __future__ import annotations

import errno
import io
import json
import mimetypes
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, TypeAlias

import attrs

from .._constants import DEFAULT_CONTENT_TYPE
from .._exceptions import InputFileError


@attrs.frozen
class InputFile:
    """One file to upload, with an explicit name and content type.

    `content` is a local path, bytes, or an open binary file object (which the client reads but
    does not close; it is rewound for a retry when it is seekable, and never retried otherwise).
    """

    content: str | os.PathLike[str] | bytes | IO[bytes]
    filename: str | None = None
    content_type: str | None = None


InputFileLike: TypeAlias = (
    str
    | os.PathLike[str]
    | IO[bytes]
    | InputFile
    | tuple[str, bytes | IO[bytes]]
    | tuple[str, bytes | IO[bytes], str]
)
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


def prepare_files(items: Iterable[object], read_ahead: int = 0) -> list[PreparedFile]:
    """Validate and describe every input; raise one `InputFileError` listing all problems.

    With `read_ahead` (bytes), small files on disk are read too, in order, until one does not
    fit in what is left of it: they become `data` (what they held when checked is what is sent,
    on every attempt), so that the upload needs no other trip to a worker thread for them. A
    file that changes while it is read is a problem like the others.

    Blocking when a path is among the inputs (``stat``, reads): the client then runs it in a
    worker thread, one trip for all the files of a create.
    """
    prepared: list[PreparedFile] = []
    problems: list[tuple[str, str]] = []
    budget = read_ahead
    for index, item in enumerate(items):
        label = f"input #{index}"
        try:
            spec = _normalise(item)
            label = spec.filename or _label(spec.content) or label
            if isinstance(spec.content, (str, os.PathLike)):
                one, budget = _prepare_path(spec, budget)
            else:
                one = _prepare_one(spec)
            prepared.append(one)
        except (OSError, TypeError, ValueError) as exc:
            problems.append((label, reason_for(exc)))
    if problems:
        raise InputFileError(problems)
    return prepared


def _prepare_path(spec: InputFile, budget: int) -> tuple[PreparedFile, int]:
    """A local path, checked (exists, regular file, readable); read if it fits in `budget`.
    Returns the file and what is left of the budget (nothing once a file did not fit: the files
    after it are read when the upload reaches them)."""
    path = os.fspath(spec.content)  # type: ignore[arg-type]
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", path)
    if not os.access(path, os.R_OK):
        raise PermissionError(errno.EACCES, "permission denied", path)
    filename = _nonempty(_clean_name(spec.filename or os.path.basename(path)))
    content_type = _check_content_type(spec.content_type, filename)
    size = st.st_size
    if size > budget:
        return PreparedFile(filename, content_type, size, path=path), 0
    data = _read_whole(path, size)
    return PreparedFile(filename, content_type, size, data=data), budget - size


def _read_whole(path: str, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)  # one byte more, to notice a file that grew
    finally:
        os.close(fd)
    if len(data) != size:
        raise OSError("changed while it was being checked")
    return data


_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _label(content: object) -> str | None:
    if isinstance(content, (str, os.PathLike)):
        return os.fsdecode(content)
    name = getattr(content, "name", None)
    return name if isinstance(name, str) else None


def reason_for(exc: BaseException) -> str:
    """A short reason for a failure to use an input file (``no such file``, ...)."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


def _check_content_type(value: str | None, filename: str) -> str:
    content_type = value or _guess_type(filename)
    if _CONTROL_CHARACTER.search(content_type) is not None:
        raise ValueError("content type contains control characters")
    return content_type


def _prepare_one(spec: InputFile) -> PreparedFile:
    """An input that is not a path: bytes, or a user's file object (sized by seeking it)."""
    content = spec.content
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
    assert not isinstance(content, (str, os.PathLike)), "paths go through _prepare_path"
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


def _nonempty(filename: str) -> str:
    if not filename or "\x00" in filename:
        raise ValueError("empty file name or NUL in it")
    return filename


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def request_data_json(
    *, template_id: str | None, job_nodes: Sequence[Any] | None, request_data: Any
) -> str:
    """Build create_job's ``request_data`` JSON string: `template_id` and/or `job_nodes` (both
    together are sent as given: the vendor's REST collection does so and the server decides),
    or a ready-made `request_data` alone."""
    if request_data is not None and (template_id is not None or job_nodes is not None):
        raise ValueError("pass template_id and/or job_nodes, or request_data alone")
    if template_id is None and job_nodes is None and request_data is None:
        raise ValueError("pass template_id, job_nodes or request_data")
    if template_id is not None or job_nodes is not None:
        data: dict[str, Any] = {}
        if template_id is not None:
            if not isinstance(template_id, str) or not template_id.strip():
                raise ValueError("template_id must be a non-empty string")
            data["template_id"] = template_id
        if job_nodes is not None:
            if isinstance(job_nodes, (str, bytes)) or not list(job_nodes):
                raise ValueError("job_nodes must be a non-empty list of node objects")
            data["job_nodes"] = list(job_nodes)
        if job_nodes is None:  # json.dumps(data) to the byte, without the encoder's set-up
            return '{"template_id": ' + _json_string(data["template_id"]) + "}"
        return json.dumps(data)
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
