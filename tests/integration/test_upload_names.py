"""The emulator reads part headers and file names exactly as FastAPI does (issue 20, item 9): a
differential test against python-multipart (the parser under Starlette's ``MultiPartParser``,
pinned in the test extra). Odd names go through both: over loopback to the emulator, and
through python-multipart driven the way Starlette drives it; the outcomes must be the same."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from unstructured_jobs.testing import Emulator
from unstructured_jobs.testing._upload import (
    FILE_FIELDS,
    UploadError,
    parse_options,
    parse_part_headers,
    part_names,
)

# aiohttp's multipart reader still glances at each part's Content-Disposition (for RFC 7578's
# _charset_ field) and warns about the odd ones these tests send on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionHeader")

BOUNDARY = b"b0undary-XyZ"
JOBS = "/api/v1/jobs/"


class Refused(Exception):
    """Starlette's MultiPartException: FastAPI answers 400."""


def _decode(raw: bytes, charset: str) -> str:  # Starlette's _user_safe_decode
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return raw.decode("latin-1")


def fastapi_parts(body: bytes, charset: str = "utf-8") -> list[tuple[str, str | None, int]]:
    """(field name, file name or None, size) of each part, as Starlette's MultiPartParser reads
    `body` with python-multipart (starlette/formparsers.py); `Refused` where FastAPI says 400."""
    parts: list[tuple[str, str | None, int]] = []
    header: dict[str, bytes] = {"name": b"", "value": b""}
    current: dict[str, Any] = {}

    def on_part_begin() -> None:
        current.clear()
        current["disposition"] = None
        current["size"] = 0

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        if header["name"].lower() == b"content-disposition":
            current["disposition"] = header["value"]
        header["name"] = header["value"] = b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(current["disposition"])
        if b"name" not in options:
            raise Refused("no name")
        current["name"] = _decode(options[b"name"], charset)
        filename = options.get(b"filename")
        current["filename"] = None if filename is None else _decode(filename, charset)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["size"] += end - start

    def on_part_end() -> None:
        parts.append((current["name"], current["filename"], current["size"]))

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    }
    try:
        parser = MultipartParser(BOUNDARY, callbacks)
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise Refused(str(exc)) from exc
    return parts


def expected_answer(body: bytes) -> tuple[int, list[str]]:
    """What FastAPI's create-job would answer (status, received file names) for `body`."""
    try:
        parts = fastapi_parts(body)
    except Refused:
        return 400, []
    names: list[str] = []
    for name, filename, size in parts:
        if name not in FILE_FIELDS:
            continue
        if filename is None:
            return 422, []  # "Expected UploadFile, received: <class 'str'>"
        if filename == "" and size == 0:
            continue  # FastAPI drops a browser's "no file selected"
        names.append(filename)
    return 200, names


def body_with(*headers: bytes, content: bytes = b"data") -> bytes:
    """A create-job body: request_data, then one part with these raw header lines."""
    return (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="request_data"\r\n\r\n'
        + json.dumps({"template_id": "t"}).encode()
        + b"\r\n--" + BOUNDARY + b"\r\n"
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n" + content + b"\r\n--" + BOUNDARY + b"--\r\n"
    )  # fmt: skip


def disposition(params: bytes) -> bytes:
    return b"Content-Disposition: form-data; " + params


ODD = [
    b'name="input_files"; filename="a.pdf"',
    b'name="input_files"; filename="say \\"hi\\".pdf"',
    b'name="input_files"; filename="a;b.pdf"',
    b'name="input_files"; filename="a; name=x.pdf"',
    b'name="input_files"; filename="a=b.pdf"',
    b'name="input_files"; filename="a\\\\b.pdf"',
    b'name="input_files"; filename="a\\b.pdf"',
    b'name="input_files"; filename="end\\\\"',
    b'name="input_files"; filename="C:\\\\Users\\\\me\\\\x.pdf"',
    b'name="input_files"; filename="C:\\Users\\me\\x.pdf"',
    b'name="input_files"; filename="\\\\\\\\server\\\\share\\\\y.pdf"',
    b'name="input_files"; filename="r%C3%A9sum%C3%A9 100%.pdf"',
    'name="input_files"; filename="résumé € 日本.pdf"'.encode(),
    b'name="input_files"; filename="caf\xe9.pdf"',
    b"name=\"input_files\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
    b'name="input_files"; filename="fallback.pdf"; filename*=UTF-8\'\'real.pdf',
    b'name="input_files"; filename=""',
    b'name="input_files"; filename=',
    b'name="input_files"; filename',
    b'name="input_files"; filename=plain.pdf',
    b'name="input_files"; filename=with space.pdf',
    b'NAME="input_files"; FILENAME="UP.pdf"',
    b'name = "input_files" ; filename = "spaced.pdf" ',
    b'name="input_files"; filename="first.pdf"; filename="second.pdf"',
    b'name="input_files"; filename="unbalanced.pdf',
    b'name="input_files"; filename="a\tb.pdf"',
    b'name="input_files"; filename="a\nb.pdf"',
    b'name="input_files"; filename="a\x01b\x7f.pdf"',
    b"name=\"input_files\"; filename='single.pdf'",
    b'name="input_files"; filename="trailing.pdf";',
    b'name="input_files[]"; filename="sdk.pdf"',
    b'name=input_files; filename="unquoted-name.pdf"',
    b'name="input_files"',
    b'name="other"; filename="ignored.pdf"',
    b'filename="no-name.pdf"',
    b"",
]


@pytest.fixture
async def http() -> AsyncIterator[tuple[Emulator, aiohttp.ClientSession]]:
    async with (
        Emulator() as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as session,
    ):
        yield emu, session


async def emulator_answer(
    emu: Emulator, http: aiohttp.ClientSession, body: bytes
) -> tuple[int, list[str]]:
    before = set(emu.jobs)
    content_type = "multipart/form-data; boundary=" + BOUNDARY.decode()
    async with http.post(JOBS, data=body, headers={"Content-Type": content_type}) as resp:
        status = resp.status
        await resp.read()
    created = [job for key, job in emu.jobs.items() if key not in before]
    assert len(created) == (status == 200)
    return status, [f.filename for job in created for f in job.files]


@pytest.mark.parametrize("params", ODD, ids=lambda p: repr(p)[2:40])
async def test_odd_file_names_are_read_as_fastapi_reads_them(
    http: tuple[Emulator, aiohttp.ClientSession], params: bytes
) -> None:
    emu, session = http
    body = body_with(disposition(params), b"Content-Type: application/pdf")
    assert await emulator_answer(emu, session, body) == expected_answer(body)


HEADER_CASES = {
    "two dispositions, the last wins": [
        disposition(b'name="input_files"; filename="first.pdf"'),
        disposition(b'name="input_files"; filename="second.pdf"'),
    ],
    "8 header lines": [disposition(b'name="input_files"; filename="8.pdf"')]
    + [b"X-Extra-%d: 1" % i for i in range(7)],
    "9 header lines": [disposition(b'name="input_files"; filename="9.pdf"')]
    + [b"X-Extra-%d: 1" % i for i in range(8)],
    "a line of 4224 bytes": [
        disposition(b'name="input_files"; filename="' + b"n" * 4170 + b'"').ljust(4224, b" ")
    ],
    "a line of 4225 bytes": [
        disposition(b'name="input_files"; filename="' + b"n" * 4170 + b'"').ljust(4225, b" ")
    ],
    "a tab after the colon": [b'Content-Disposition:\tform-data; name="input_files"; filename="t"'],
    "no space after the colon": [
        b'content-disposition:form-data; name="input_files"; filename="c"'
    ],
    "a folded line": [
        b'Content-Disposition: form-data; name="input_files";',
        b' filename="folded.pdf"',
    ],
    "a header name with a space": [
        b'Content Disposition: form-data; name="input_files"; filename="s.pdf"'
    ],
    "a header without a colon": [disposition(b'name="input_files"; filename="x"'), b"Broken"],
    "a bare CR in a value": [disposition(b'name="input_files"; filename="a\rb.pdf"')],
    "an empty file with an empty name": [disposition(b'name="input_files"; filename=""')],
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
async def test_part_headers_are_read_as_python_multipart_reads_them(
    http: tuple[Emulator, aiohttp.ClientSession], case: str
) -> None:
    emu, session = http
    content = b"" if case.startswith("an empty file") else b"data"
    body = body_with(*HEADER_CASES[case], content=content)
    assert await emulator_answer(emu, session, body) == expected_answer(body)


def test_the_reference_itself_tells_cases_apart() -> None:
    """The cases above are worth having: python-multipart accepts names aiohttp refused."""
    assert expected_answer(body_with(disposition(ODD[2]))) == (200, ["a;b.pdf"])
    assert expected_answer(body_with(disposition(ODD[1]))) == (200, ['say "hi".pdf'])
    assert expected_answer(body_with(disposition(ODD[14]))) == (422, [])
    assert expected_answer(body_with(*HEADER_CASES["9 header lines"]))[0] == 400


_PARAM_CHARS = st.sampled_from(list("ab;=\"\\*% \t\xe9\xff'=:/"))


@settings(deadline=None, max_examples=300)  # no deadline: a loaded CI machine is slow
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["name", "filename", "FileName", "filename*", "x"]),
            st.text(_PARAM_CHARS, max_size=12),
            st.booleans(),
        ),
        max_size=4,
    ),
    st.text(_PARAM_CHARS, max_size=6),
)
def test_parameters_split_as_python_multipart_splits_them(
    params: list[tuple[str, str, bool]], junk: str
) -> None:
    value = (
        "form-data"
        + "".join(
            f'; {key}="{text}"' if quoted else f"; {key}={text}" for key, text, quoted in params
        )
        + junk
    )
    ctype, options = parse_options(value)
    ref_type, ref_options = parse_options_header(value.encode("latin-1"))
    assert ctype.encode("latin-1") == ref_type
    assert {k.encode("latin-1"): v.encode("latin-1") for k, v in options.items()} == ref_options


_NAME_BYTES = st.binary(max_size=16).map(lambda b: b.replace(b"\r", b"")) | st.lists(
    st.sampled_from([b'"', b"\\", b";", b"=", b"*", b"%", b" ", b"\t", b"\n", b"\xe9", b"a"]),
    max_size=10,
).map(b"".join)


@settings(deadline=None, max_examples=300)
@given(_NAME_BYTES, st.booleans(), st.sampled_from([b"filename", b"filename*", b"FILENAME"]))
def test_random_names_read_as_python_multipart_reads_them(
    raw: bytes, quoted: bool, key: bytes
) -> None:
    value = b'"' + raw + b'"' if quoted else raw
    line = disposition(b'name="input_files"; ' + key + b"=" + value)
    try:
        expected: Any = fastapi_parts(body_with(line))[1][:2]
    except Refused:
        expected = "400"
    try:
        got: Any = part_names(parse_part_headers(line.split(b"\r\n")), "utf-8")
    except UploadError:
        got = "400"
    assert got == expected
