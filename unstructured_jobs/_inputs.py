"""What a new job is made from: its ``request_data`` form field and its input files.

Both are the user's arguments to create_job (and run_batch), checked and normalised before any
request is made; `_multipart` then sends them without knowing what they mean.

`prepare_files` turns whatever the user passed into `PreparedFile` records, checking every local
path (exists, regular file, readable) and reporting every problem at once, before any request.
It does blocking `stat` calls, so the client runs it in a worker thread.

`request_data_json` builds the ``request_data`` JSON text from ``template_id`` and/or
``job_nodes``, or from a ready-made ``request_data``.
"""

from __future__ import annotations

import io
import json
import mimetypes
import os
import stat
from collections.abc import Iterable, Sequence
from typing import IO, Any, TypeAlias

import attrs

from ._constants import DEFAULT_CONTENT_TYPE
from ._exceptions import InputFileError


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
            problems.append((label, reason_for(exc)))
    if problems:
        raise InputFileError(problems)
    return prepared


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
