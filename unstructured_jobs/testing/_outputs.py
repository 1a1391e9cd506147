"""Realistic download bodies: many elements per file, with embeddings, streamed.

A long PDF chunked with 1,536-dimension embeddings gives about 16,000 elements, 323 MB of JSON.
`OutputShape` makes outputs of that kind: deterministic (the same job, file and shape give the
same bytes), of a size known before the first byte (so the answer has a ``Content-Length``),
and produced chunk by chunk so the emulator never holds more than one chunk of them.

Each element is shaped like the platform's: ``type``, ``element_id``, ``text``, ``metadata``
and, with ``embedding_dim`` > 0, ``embeddings`` (a list of floats written with 8 decimals, as
an embedder's output serialises to about 12.5 bytes a number). The vectors come from a small
pool computed once per dimension, so making the body costs little more than copying it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["GeneratedOutput", "OutputShape"]

CHUNK_BYTES = 256 * 1024
"""The emulator writes a generated output in pieces of about this size."""
_POOL = 61  # distinct vectors per dimension (a prime: element n uses vector n % 61)
_TYPES = ("Title", "NarrativeText", "NarrativeText", "ListItem", "NarrativeText", "Table")
_PROSE = (
    "the agreement shall remain in force until terminated by either party with written notice "
    "revenue for the quarter increased compared with the same period of the previous year while "
    "operating costs were held flat as a result of the measures described in section four the "
    "committee reviewed the findings and recommended further analysis of the underlying data"
)
_WORDS = _PROSE.split()


@functools.lru_cache(maxsize=8)
def _vectors(dim: int) -> tuple[bytes, ...]:
    """`_POOL` JSON arrays of `dim` floats (normal, sigma 0.03: the range of real embeddings)."""
    pool = []
    for k in range(_POOL):
        rng = random.Random(f"embeddings/{dim}/{k}")
        pool.append(
            ("[" + ", ".join(f"{rng.gauss(0.0, 0.03):.8f}" for _ in range(dim)) + "]").encode()
        )
    return tuple(pool)


@functools.lru_cache(maxsize=1)
def _texts() -> tuple[str, ...]:
    """A pool of paragraphs of 40-120 words."""
    rng = random.Random("texts")
    return tuple(
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 120))).capitalize() + "."
        for _ in range(_POOL + 2)
    )


@dataclass(frozen=True)
class OutputShape:
    """What each download of the emulator holds: `elements` elements per file, each with an
    embedding of `embedding_dim` floats (0: no ``embeddings`` key)."""

    elements: int = 2
    embedding_dim: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.elements, int) or self.elements < 0:
            raise ValueError("output_elements must be an int >= 0")
        if not isinstance(self.embedding_dim, int) or self.embedding_dim < 0:
            raise ValueError("embedding_dim must be an int >= 0")

    def output(self, job_id: str, filename: str, content_type: str | None) -> GeneratedOutput:
        """The download body of one file of one job."""
        return GeneratedOutput(self, job_id, filename, content_type)


class GeneratedOutput:
    """One generated download body: its `size` in bytes, and its bytes by `chunks`."""

    def __init__(
        self, shape: OutputShape, job_id: str, filename: str, content_type: str | None
    ) -> None:
        self.shape = shape
        self.job_id = job_id
        self.filename = filename
        self.content_type = content_type
        self._vectors = _vectors(shape.embedding_dim) if shape.embedding_dim else ()
        self.size = 2 + sum(
            len(head) + len(vector) + 1 + (2 if n else 0) for n, (head, vector) in self._parts()
        )

    def _parts(self) -> Iterator[tuple[int, tuple[bytes, bytes]]]:
        texts = _texts()
        prefix = f"{self.job_id}/{self.filename}/".encode()
        meta_tail = json.dumps(
            {"filename": self.filename, "filetype": self.content_type, "languages": ["eng"]}
        )[1:-1]
        for n in range(self.shape.elements):
            element_id = hashlib.sha256(prefix + str(n).encode()).hexdigest()[:32]
            parent = hashlib.sha256(prefix + str(n - n % 7).encode()).hexdigest()[:32]
            kind = _TYPES[n % len(_TYPES)]
            text = texts[n % len(texts)]
            x0, y0 = 72.0 + n % 40 * 3.5, 90.0 + n % 20 * 104.5
            x1, y1 = x0 + 1456.5, y0 + 88.25
            box = f"[[{x0}, {y0}], [{x0}, {y1}], [{x1}, {y1}], [{x1}, {y0}]]"
            head = (
                f'{{"type": "{kind}", "element_id": "{element_id}", "text": {json.dumps(text)}, '
                f'"metadata": {{{meta_tail}, "page_number": {n // 20 + 1}, '
                f'"parent_id": "{parent}", "last_modified": "2026-04-29T10:00:00", '
                f'"coordinates": {{"points": {box}, "system": "PixelSpace", '
                f'"layout_width": 1700, "layout_height": 2200}}}}'
            )
            if self._vectors:
                yield n, ((head + ', "embeddings": ').encode(), self._vectors[n % _POOL])
            else:
                yield n, (head.encode(), b"")

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The body, in pieces of about `chunk_bytes` (the last one ends the JSON list)."""
        parts: list[bytes] = [b"["]
        held = 1
        for n, (head, vector) in self._parts():
            if n:
                parts.append(b", ")
            parts += (head, vector, b"}")
            held += len(head) + len(vector) + 3
            if held >= chunk_bytes:
                yield b"".join(parts)
                parts, held = [], 0
        parts.append(b"]")
        yield b"".join(parts)

    def read(self) -> bytes:
        """The whole body at once (for small shapes and tests)."""
        return b"".join(self.chunks())
