"""Streaming one job output to disk: a temporary file beside the target, renamed when complete."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import anyio.to_thread

from .. import _core
from .._constants import ERROR_SNIPPET_CHARS
from .._core import Request
from .._exceptions import AnswerTooLargeError, LocalFileError

_PART_RANDOM_BYTES = 6
# ".<target name>.<12 hex digits>.part": the temporary file of one download (see part_name).
_PART = re.compile(rf"^\.(?P<target>.+)\.[0-9a-f]{{{2 * _PART_RANDOM_BYTES}}}\.part$")


def part_name(target: Path) -> Path:
    """A fresh temporary name beside `target`: ``.<name>.<random hex>.part``."""
    return target.parent / f".{target.name}.{secrets.token_hex(_PART_RANDOM_BYTES)}.part"


def remove_stale_parts(folder: str | os.PathLike[str], targets: Iterable[str]) -> list[str]:
    """Remove the temporary files that killed downloads of `targets` left in `folder`.

    Only names of exactly the form `part_name` gives, for a target name in `targets`, are
    touched: a user's ``.notes.part``, or a ``.part`` file of a name we do not own, stays.
    Call it before any download into `folder` starts. Returns the names removed. Blocking.
    """
    owned = set(targets)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        match = _PART.match(name)
        if match is None or match["target"] not in owned:
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:  # gone already, or not ours to remove after all: leave it
            continue
        removed.append(name)
    return removed


WRITE_BATCH = 1024 * 1024
"""Bytes gathered from the socket before one trip to a worker thread writes them: a trip costs
160-280 us of CPU (pitfalls N1), so one per 64 KiB chunk cost half again the floor's CPU."""


def _open_part(target: Path) -> tuple[int, str]:
    # Not mkstemp: it creates 0600 files. A download is the user's output and gets the
    # mode their umask gives (0644 with the usual 022), like any file their tools write.
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = str(part_name(target))
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


class _PartFile:
    """The temporary file of one download: written in batches off the loop, then renamed."""

    def __init__(self, target: Path | Callable[[], Path]) -> None:
        self._target = target
        self.target: Path | None = target if isinstance(target, Path) else None
        self.handle: Any = None
        self.name = ""

    async def _local(self, fn: Callable[..., Any], *args: Any) -> Any:
        # Disk errors are the user's to fix, not the network's: never retried, typed apart.
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except OSError as exc:
            raise LocalFileError(
                f"cannot write {self.target}: {exc.strerror or exc}", path=self.target
            ) from exc

    async def open(self) -> None:
        def resolve_and_open() -> None:
            # A callable target is resolved here, in the worker thread: it may touch the disk.
            # The file is kept on self in the thread itself: a cancel that arrives meanwhile
            # waits for the thread, and `discard` then closes and removes what it opened.
            target = self._target
            self.target = target() if callable(target) else target
            fd, self.name = _open_part(self.target)
            self.handle = os.fdopen(fd, "wb")

        await self._local(resolve_and_open)

    async def write(self, chunks: list[bytes]) -> None:
        def write_all() -> None:
            write = self.handle.write
            for chunk in chunks:  # not joined: no copy of the batch
                write(chunk)

        await self._local(write_all)

    async def finish(self) -> None:
        # The handle stays on self until it is closed: a cancel before the worker thread
        # starts would otherwise leave it to the GC (`discard` closes it then).
        await self._local(self.handle.close)
        self.handle = None
        await self._local(os.replace, self.name, self.target)

    def discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.name:
            Path(self.name).unlink(missing_ok=True)


async def _copy_rest(
    response: aiohttp.ClientResponse, part: _PartFile, held: list[bytes], size: int
) -> None:
    """Write `held` and the rest of the body to `part`, in batches of `WRITE_BATCH` bytes."""
    # Each piece as it was received (iter_chunks): iter_any would join what is buffered.
    async for chunk, _ in response.content.iter_chunks():
        held.append(chunk)
        size += len(chunk)
        if size >= WRITE_BATCH:
            await part.write(held)
            held, size = [], 0
    if held:
        await part.write(held)


async def stream_to_file(response: aiohttp.ClientResponse, target: Path) -> Path:
    """Write the answer's body to `target` in constant memory; return `target`.

    Disk errors raise `LocalFileError` (never retried: they are the user's to fix). A failed
    download removes its temporary file and never leaves a truncated `target`.
    """
    part = _PartFile(target)
    try:
        await part.open()
        await _copy_rest(response, part, [], 0)
        await part.finish()
    except BaseException:
        part.discard()
        raise
    return target


async def spool(
    response: aiohttp.ClientResponse, spill_bytes: int, target: Callable[[], Path]
) -> bytes | Path:
    """The body in memory when it is at most `spill_bytes`, else written to ``target()``.

    A body declared larger goes to the file from its first byte; an undeclared one is held
    until it passes `spill_bytes`, then what was held and the rest go to the file. Returns the
    bytes, or the path of the complete file (renamed into place like `stream_to_file`).
    `target` is called in a worker thread (it may create a folder).
    """
    declared = response.content_length
    held: list[bytes] = []
    size = 0
    if declared is None or declared <= spill_bytes or response.headers.get("Content-Encoding"):
        async for chunk, _ in response.content.iter_chunks():
            held.append(chunk)
            size += len(chunk)
            if size > spill_bytes:
                break
        else:
            return b"".join(held)
    part = _PartFile(target)
    try:
        await part.open()
        await _copy_rest(response, part, held, size)
        await part.finish()
    except BaseException:
        part.discard()
        raise
    assert part.target is not None  # set by open()
    return part.target


async def read_output(
    request: Request, response: aiohttp.ClientResponse, limit: int | None
) -> bytes:
    """The whole body of a download, up to `limit` bytes (None: no bound).

    Past the bound (or declared past it: then nothing is read), `AnswerTooLargeError` names
    the remedies: stream it to disk with `download_job_output_to`, or raise
    ``max_download_bytes=``.
    """
    declared = response.content_length
    compressed = bool(response.headers.get("Content-Encoding"))
    if limit is None or (declared is not None and declared <= limit and not compressed):
        return await response.read()
    if declared is not None and declared > limit and not compressed:
        raise _too_large(request, response, limit, b"")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _too_large(request, response, limit, b"".join(chunks)[:ERROR_SNIPPET_CHARS])
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(
    request: Request, response: aiohttp.ClientResponse, limit: int, head: bytes
) -> AnswerTooLargeError:
    url = str(response.url)
    error = AnswerTooLargeError(
        f"{request.method} {url} -> {response.status}: the output is larger than "
        f"max_download_bytes ({limit:,} bytes), the bound of outputs held in memory; not read. "
        "Stream it to disk with download_job_output_to (no bound; run_job spills large "
        "outputs to disk by itself), or raise the client's max_download_bytes= (None: no bound)",
        method=request.method,
        url=url,
        status=response.status,
        snippet=_core.snippet(head),
        request_id=_core.request_id_of(response.headers),
    )
    error.limit = limit
    return error
