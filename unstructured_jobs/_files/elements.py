"""Going through the elements of a saved output one at a time, without loading it whole.

An output of a long document with embeddings is hundreds of MB of JSON, and several times that
once parsed into Python objects. `iter_elements` parses it incrementally with ijson (its C
backend, yajl2_c, when the platform has a wheel for it; the pure-Python one otherwise) and
holds one element at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

from .._exceptions import InvalidInputError

__all__ = ["iter_elements"]

READ_BYTES = 64 * 1024
"""Bytes read from the file at a time (ijson parses a read whole before it yields its
elements: a larger buffer holds more of them at once, for no measurable speed)."""


def iter_elements(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Any]:
    """Each element of a saved output, in order, one at a time (numbers as `float`/`int`).

    `source` is the path of an output file (from `download_job_output_to`, ``run_job(
    output_dir=...)`` or `JobRun.to_dir`) or a binary file object open on one. The output must
    be a JSON list (of element dicts, as the platform writes them); anything else raises
    `InvalidInputError`, as does JSON cut short or broken (after the elements before the
    break were yielded). Memory stays at one element plus a read buffer whatever the file's
    size. Blocking: from async code, run it in a thread. A path is opened here and closed when
    the iteration ends (or the iterator is closed or collected).
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(name, "rb") as fh:
            yield from _items(fh, name)
    elif hasattr(source, "read"):
        yield from _items(source, getattr(source, "name", "the output"))
    else:
        raise InvalidInputError(
            f"iter_elements takes a path or a binary file, got {type(source).__name__}"
        )


def _items(fh: IO[bytes], name: object) -> Iterator[Any]:
    import ijson  # here: importing the package must stay quick

    head = fh.read(1)
    while head[:1].isspace():
        head = fh.read(1)
    if isinstance(head, str):
        raise InvalidInputError(f"{name}: open the file in binary mode ('rb')")
    if head != b"[":
        what = "empty" if not head else "not a JSON list"
        raise InvalidInputError(f"{name}: the output is {what}; iter_elements reads lists")
    parser = ijson.items(_Prefixed(b"[", fh), "item", use_float=True, buf_size=READ_BYTES)
    try:
        yield from parser
    except ijson.JSONError as exc:
        raise InvalidInputError(f"{name}: not valid JSON ({exc})") from None


class _Prefixed:
    """`fh` with `head` (already read from it) put back in front."""

    def __init__(self, head: bytes, fh: IO[bytes]) -> None:
        self._head = head
        self._fh = fh

    def read(self, size: int = -1) -> bytes:
        if self._head and size != 0:  # ijson reads 0 bytes to learn the file's type
            head, self._head = self._head, b""
            return head + self._fh.read(max(size - len(head), 0) if size >= 0 else -1)
        return self._fh.read(size)
