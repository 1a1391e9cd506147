"""Streaming reader of the create-job / run-workflow request bodies.

The body is split into parts by aiohttp, but each part's headers, its field name and its file
name are read exactly as FastAPI does (Starlette's ``MultiPartParser`` over python-multipart
0.0.34): header lines end at CRLF only (a bare LF stays in the value), at most 8 header lines
of at most 4224 bytes each, the last ``Content-Disposition`` wins, its parameters are split on
semicolons outside double quotes, a quoted value loses its quotes and its ``\\`` and ``\"``
escapes, RFC 2231/5987 ``filename*`` is ignored (RFC 7578 forbids it), an IE-style full path
(``C:\\dir\\a.pdf``) keeps its last component, percent signs are kept as sent, and the bytes are
decoded with the form's charset (UTF-8 by default), else as Latin-1. A file part with an empty
name and no content is what a browser sends for "no file selected": FastAPI drops it, and so does
the emulator. ``tests/integration/test_upload_names.py`` checks all this against python-multipart.
"""

from __future__ import annotations

import codecs
import hashlib
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy

from ._records import ReceivedFile

__all__ = [
    "FILE_FIELDS",
    "Form",
    "UploadError",
    "drain",
    "parse_options",
    "parse_part_headers",
    "part_names",
    "read_form",
]

#: Field names accepted for uploads: the docs' form and the official SDK's form.
FILE_FIELDS = ("input_files", "input_files[]")
CHUNK = 256 * 1024
MAX_FIELD = 16 * 1024 * 1024
MAX_PART_HEADERS = 8  # python-multipart's DEFAULT_MAX_HEADER_COUNT
MAX_PART_HEADER_LINE = 4096 + 128  # python-multipart's DEFAULT_MAX_HEADER_SIZE, CRLF excluded
_TOKEN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"


@dataclass
class Form:
    """What a request body held: plain fields (last value wins) and the files, in order."""

    fields: dict[str, str] = field(default_factory=dict)
    file_fields: set[str] = field(default_factory=set)
    """Names of fields that came as file parts although a string was expected."""
    files: list[ReceivedFile] = field(default_factory=list)
    oversized: list[ReceivedFile] = field(default_factory=list)
    nameless_file_at: int | None = None
    """Index of the first ``input_files`` part sent without a filename."""


class UploadError(Exception):
    """The body could not be parsed (answered 400 like FastAPI)."""


async def drain(request: web.BaseRequest) -> None:
    """Read and discard what is left of the request body."""
    content = request.content
    while await content.read(CHUNK):
        pass


async def read_form(request: web.BaseRequest, max_file_size: int | None = None) -> Form:
    """Read a multipart or urlencoded body part by part, hashing files without keeping them.

    Any other content type (or no body) is an empty form, like Starlette's ``request.form()``.
    """
    form = Form()
    ctype = request.content_type
    if ctype == "application/x-www-form-urlencoded":
        for key, value in _parse_urlencoded(await request.read()):
            if key in FILE_FIELDS:
                form.nameless_file_at = 0
                break
            form.fields[key] = value
        return form
    if ctype != "multipart/form-data":
        return form
    try:
        reader = await request.multipart()
        reader.__class__ = _FormReader  # part headers read as python-multipart does
        charset = form_charset(request.headers.get("Content-Type"))
        file_index = 0
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise UploadError("nested multipart bodies are not supported")
            name, filename = part_names(part.headers, charset)
            if name in FILE_FIELDS:
                if filename is None:
                    if form.nameless_file_at is None:
                        form.nameless_file_at = file_index
                    await _skip(part)
                else:
                    received = await _read_file(part, name, filename, max_file_size)
                    if filename == "" and received.size == 0:
                        continue  # FastAPI drops a browser's "no file selected"
                    target = form.files if received.sha256 else form.oversized
                    target.append(received)
                file_index += 1
            elif filename is not None:
                form.file_fields.add(name)
                await _skip(part)
            else:
                form.fields[name] = await _read_field(part, charset)
    except (ValueError, RuntimeError, LookupError, UnicodeDecodeError) as exc:
        raise UploadError(str(exc)) from exc
    except HttpProcessingError as exc:
        # aiohttp's own limits on a part's headers (a line over 8190 bytes, such as a
        # 10,000-character file name; more than 128 header lines): a body this reader cannot
        # parse, answered 400 like any other, not a 500.
        raise UploadError(exc.message) from exc
    return form


def _parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """Starlette's reading of a urlencoded form: the bytes as Latin-1 (so any byte is accepted
    and a ``charset`` parameter is ignored), then percent-decoding as UTF-8 with U+FFFD for
    invalid sequences. aiohttp's ``request.post()`` honours the charset and raised on a bogus
    one or on raw non-UTF-8 bytes (a 500 where FastAPI reads the form)."""
    return urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True, errors="replace")


async def _skip(part: BodyPartReader) -> None:
    while await part.read_chunk(CHUNK):
        pass


async def _read_field(part: BodyPartReader, charset: str) -> str:
    chunks: list[bytes] = []
    total = 0
    while chunk := await part.read_chunk(CHUNK):
        total += len(chunk)
        if total > MAX_FIELD:
            await _skip(part)
            raise UploadError(f"form field {part.name!r} is larger than {MAX_FIELD} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")  # Starlette's _user_safe_decode: never a parse error


async def _read_file(
    part: BodyPartReader, name: str, filename: str, max_size: int | None
) -> ReceivedFile:
    """Hash and count one file part; an oversized one comes back with an empty sha256."""
    digest = hashlib.sha256()
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if max_size is None or size <= max_size:
            digest.update(chunk)
    too_big = max_size is not None and size > max_size
    return ReceivedFile(
        field_name=name,
        filename=filename,
        content_type=part.headers.get("Content-Type"),
        size=size,
        sha256="" if too_big else digest.hexdigest(),
    )


# -- part headers and names, as FastAPI (Starlette over python-multipart) reads them ---------


class _FormReader(MultipartReader):
    """aiohttp's multipart reader with the part headers read as python-multipart reads them."""

    async def _read_headers(self) -> CIMultiDictProxy[str]:
        lines: list[bytes] = []
        pending = b""
        while True:
            chunk = await self._content.readline(max_line_length=self._max_field_size)
            if not chunk:
                raise UploadError("the body ended inside a part's headers")
            pending += chunk
            if not pending.endswith(b"\r\n"):  # a bare LF belongs to the value
                if len(pending) > MAX_PART_HEADER_LINE:
                    raise UploadError("a part header line is too long")
                continue
            line, pending = pending[:-2], b""
            if not line:
                return parse_part_headers(lines)
            lines.append(line)
            if len(lines) > MAX_PART_HEADERS:
                raise UploadError("too many part header lines")


def parse_part_headers(lines: list[bytes]) -> CIMultiDictProxy[str]:
    """A part's header lines (without their CRLF) as python-multipart reads them: names are
    tokens, a value starts after the spaces (not tabs) that follow the colon and ends at the
    line's end (trailing spaces kept), values are Latin-1 (so every byte comes back)."""
    if len(lines) > MAX_PART_HEADERS:
        raise UploadError("too many part header lines")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines:
        if len(line) > MAX_PART_HEADER_LINE:
            raise UploadError("a part header line is too long")
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TOKEN) or b"\r" in value:
            raise UploadError("a malformed part header")
        headers.add(name.decode("ascii"), value.lstrip(b" ").decode("latin-1"))
    return CIMultiDictProxy(headers)


def _split_params(text: str) -> list[str]:
    """Split a header value on semicolons outside double quotes (python-multipart's
    ``_parseparam``, the standard library's ``email.message._parseparam`` without RFC 2231)."""
    s = ";" + text
    out: list[str] = []
    start = 0
    while s.find(";", start) == start:
        start += 1
        end = s.find(";", start)
        ind, diff = start, 0
        while end > 0:
            diff += s.count('"', ind, end) - s.count('\\"', ind, end)
            if diff % 2 == 0:
                break
            end, ind = ind, s.find(";", end + 1)
        if end < 0:
            end = len(s)
        i = s.find("=", start, end)
        if i == -1:
            item = s[start:end]
        else:
            item = s[start:i].rstrip(" \t").lower() + "=" + s[i + 1 : end].lstrip(" \t")
        out.append(item.strip(" \t"))
        start = end
    return out


def parse_options(value: str | None) -> tuple[str, dict[str, str]]:
    """A header value and its parameters, as python-multipart's ``parse_options_header`` gives
    them (as Latin-1 text): ``filename*`` and other starred names ignored, quotes and their
    escapes removed, an IE-style full path cut to its last component."""
    if not value:
        return "", {}
    if ";" not in value:
        return value.lower().strip(" \t"), {}
    ctype, *segments = _split_params(value)
    options: dict[str, str] = {}
    for segment in segments:
        key, _, val = segment.partition("=")
        if "*" in key:
            continue
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1].replace("\\\\", "\\").replace('\\"', '"')
        if key == "filename" and (val[1:3] == ":\\" or val[:2] == "\\\\"):
            val = val.split("\\")[-1]
        options[key] = val
    return ctype.lower(), options


def _decode(latin1: str, charset: str) -> str:
    """Starlette's ``_user_safe_decode`` of the bytes behind `latin1`."""
    raw = latin1.encode("latin-1")
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return raw.decode("latin-1")


def form_charset(content_type: str | None) -> str:
    """The charset Starlette decodes names and fields with: the form's ``charset`` parameter
    (default UTF-8), Latin-1 when Python does not know it."""
    charset: Any = parse_options(content_type)[1].get("charset", "utf-8")
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return "latin-1"


def part_names(headers: Any, charset: str = "utf-8") -> tuple[str, str | None]:
    """A part's field name and file name (None: not a file) as FastAPI reads them from its
    last ``Content-Disposition``; `UploadError` (a 400) when it has no ``name``."""
    values = headers.getall("Content-Disposition", [])
    _, options = parse_options(values[-1] if values else None)
    if "name" not in options:
        # Starlette: 'The Content-Disposition header field "name" must be provided.'
        raise UploadError("a part without a name")
    filename = options.get("filename")
    return _decode(options["name"], charset), None if filename is None else _decode(
        filename, charset
    )
