"""Streaming reader of the create-job / run-workflow request bodies."""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ._records import ReceivedFile

__all__ = ["FILE_FIELDS", "Form", "UploadError", "drain", "read_form"]

#: Field names accepted for uploads: the docs' form and the official SDK's form.
FILE_FIELDS = ("input_files", "input_files[]")
CHUNK = 256 * 1024
MAX_FIELD = 16 * 1024 * 1024


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
        charset = request.charset or "utf-8"  # Starlette: the form's, never the part's
        file_index = 0
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise UploadError("nested multipart bodies are not supported")
            if part.name is None:
                # Starlette: 'The Content-Disposition header field "name" must be provided.'
                raise UploadError("a part without a name")
            name = part.name
            if name in FILE_FIELDS:
                if part.filename is None:
                    if form.nameless_file_at is None:
                        form.nameless_file_at = file_index
                    await _skip(part)
                else:
                    received = await _read_file(part, name, max_file_size)
                    target = form.files if received.sha256 else form.oversized
                    target.append(received)
                file_index += 1
            elif part.filename is not None:
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


async def _read_file(part: BodyPartReader, name: str, max_size: int | None) -> ReceivedFile:
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
        filename=part.filename or "",
        content_type=part.headers.get("Content-Type"),
        size=size,
        sha256="" if too_big else digest.hexdigest(),
    )
