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

from ._constants import DOWNLOAD_CHUNK_SIZE
from ._exceptions import LocalFileError

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


async def stream_to_file(response: aiohttp.ClientResponse, target: Path) -> Path:
    """Write the answer's body to `target` in constant memory; return `target`.

    Disk errors raise `LocalFileError` (never retried: they are the user's to fix). A failed
    download removes its temporary file and never leaves a truncated `target`.
    """

    def open_temp() -> tuple[int, str]:
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

    async def local(fn: Callable[..., Any], *args: Any) -> Any:
        # Disk errors are the user's to fix, not the network's: never retried, typed apart.
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except OSError as exc:
            raise LocalFileError(
                f"cannot write {target}: {exc.strerror or exc}", path=target
            ) from exc

    fd, tmp_name = await local(open_temp)
    handle = os.fdopen(fd, "wb")
    try:
        async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_SIZE):
            await local(handle.write, chunk)
        await local(handle.close)
        await local(os.replace, tmp_name, target)
    except BaseException:
        handle.close()
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
