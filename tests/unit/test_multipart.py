"""The streaming multipart body, without a socket."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs._inputs import prepare_files
from unstructured_jobs._multipart import MultipartBody, _quote_param


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
