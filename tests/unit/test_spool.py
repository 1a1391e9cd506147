"""`_files.downloads.spool`: what run_job keeps in memory and what it spills, whether or not the answer
declares its length (a chunked answer declares none)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs._files.downloads import WRITE_BATCH, spool


class _Content:
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.read = 0

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        # As aiohttp's: a new iterator goes on where the last one stopped (one stream).
        while self.read < len(self.pieces):
            self.read += 1
            yield self.pieces[self.read - 1], False


class _Answer:
    """The parts of an aiohttp response that `spool` reads."""

    def __init__(self, pieces: list[bytes], *, declared: bool) -> None:
        self.content = _Content(pieces)
        self.content_length = sum(map(len, pieces)) if declared else None
        self.headers: dict[str, str] = {}


BODY = json.dumps([{"text": "x" * 100, "n": n} for n in range(2000)]).encode()
PIECES = [BODY[i : i + 7000] for i in range(0, len(BODY), 7000)]


@pytest.mark.parametrize("declared", [True, False])
async def test_a_small_output_stays_in_memory(declared: bool, tmp_path: Path) -> None:
    def target() -> Path:
        raise AssertionError("nothing is written")

    got = await spool(_Answer(PIECES, declared=declared), len(BODY), target)  # type: ignore[arg-type]
    assert got == BODY


@pytest.mark.parametrize("declared", [True, False])
async def test_a_large_output_goes_whole_to_its_file(declared: bool, tmp_path: Path) -> None:
    answer: Any = _Answer(PIECES * 60, declared=declared)  # ~13 MB: several write batches
    got = await spool(answer, 50_000, lambda: tmp_path / "sub" / "out.json")
    assert got == tmp_path / "sub" / "out.json"
    assert got.read_bytes() == BODY * 60
    assert len(BODY) * 60 > 2 * WRITE_BATCH
    assert [p.name for p in got.parent.iterdir()] == ["out.json"]  # no temporary file left


async def test_a_failed_spill_leaves_no_file(tmp_path: Path) -> None:
    class Broken(_Content):
        async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
            yield BODY, False
            raise ConnectionResetError("cut")

    answer: Any = _Answer([], declared=False)
    answer.content = Broken([])
    with pytest.raises(ConnectionResetError):
        await spool(answer, 10, lambda: tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []
