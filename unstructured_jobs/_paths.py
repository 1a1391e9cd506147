"""Batch inputs and outputs on disk: expanding files/folders/globs, and safe output names."""

from __future__ import annotations

import glob
import os
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from ._constants import BATCH_MAX_OUTPUT_NAME_BYTES as _MAX_NAME
from ._constants import MAX_FILE_NAME_BYTES
from ._exceptions import UnsafePathError

__all__ = ["UnsafePathError", "collect_files", "output_path_inside", "safe_output_name"]

_GLOB_CHARS = re.compile(r"[*?\[]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


def collect_files(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    exclude: Sequence[str | os.PathLike[str]] = (),
    include_hidden: bool = False,
) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """Expand files, folders (recursively) and globs into ``(absolute path, size)`` pairs.

    Returns the files (sorted, without duplicates) and the problems as ``(input, reason)``.
    Inside folders, hidden entries (a name starting with ``.``) are skipped unless
    `include_hidden`; paths under an `exclude` entry (the output folder, the manifest) are
    always skipped. Blocking: run it in a worker thread from async code.
    """
    excluded = [os.path.realpath(p) for p in exclude]
    found: dict[str, int] = {}
    problems: list[tuple[str, str]] = []

    def skip(path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == e or real.startswith(e.rstrip(os.sep) + os.sep) for e in excluded)

    def add(path: str, label: str) -> None:
        if skip(path):
            return
        try:
            st = os.stat(path)
        except OSError as exc:
            problems.append((label, exc.strerror or str(exc)))
            return
        if not stat.S_ISREG(st.st_mode):
            problems.append((label, "not a regular file"))
        elif not os.access(path, os.R_OK):
            problems.append((label, "permission denied"))
        else:
            found.setdefault(os.path.abspath(path), st.st_size)

    def walk(folder: str) -> None:
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if include_hidden or not d.startswith("."))
            for name in sorted(names):
                if include_hidden or not name.startswith("."):
                    path = os.path.join(root, name)
                    add(path, path)

    for item in inputs:
        text = os.fspath(item)
        if os.path.isdir(text):
            walk(text)
        elif os.path.lexists(text) or not _GLOB_CHARS.search(text):
            add(text, text)
        else:
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                problems.append((text, "no file matches this pattern"))
            for match in matches:
                if os.path.isdir(match):
                    walk(match)
                else:
                    add(match, match)
    return sorted(found.items()), problems


def safe_output_name(file_id: str) -> str:
    """Turn a server-provided file id into one plain file name.

    Path separators (``/`` and ``\\``), ``.``/``..`` components, drive letters, NUL and other
    control characters cannot survive: the components left are joined with ``_``. Names that
    end up empty, hidden or reserved on Windows get a ``_`` prefix.
    """
    text = _CONTROL.sub("", str(file_id).replace("\\", "/"))
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    parts = [p for p in text.split("/") if p not in ("", ".", "..")]
    name = "_".join(parts).replace(":", "_").strip(" ")
    if not name or name.startswith(".") or _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name.encode()) > _MAX_NAME:
        stem, ext = os.path.splitext(name)
        name = stem.encode()[: _MAX_NAME - len(ext.encode())].decode("utf-8", "ignore") + ext
    return name


def output_path_inside(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder/name`` after checking that it resolves to a direct child of `folder`."""
    plain = (
        name not in ("", ".", "..")
        and not name.startswith(".")
        and not _CONTROL.search(name)
        and not any(c in name for c in "/\\:")
        and len(name.encode("utf-8", "surrogateescape")) <= MAX_FILE_NAME_BYTES
    )
    base = Path(folder).resolve()
    if not plain or (base / name).resolve().parent != base:
        raise UnsafePathError(f"refusing to write {name!r}: it is not a plain name inside {base}")
    return base / name
