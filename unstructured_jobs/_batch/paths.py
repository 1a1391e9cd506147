"""Batch inputs on disk: expanding files/folders/globs (output names: `unstructured_jobs.paths`)."""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Callable, Iterable, Sequence

from .._exceptions import UnsafePathError
from .._files.inputs import _clean_name
from ..paths import output_path_inside, safe_output_name

__all__ = [
    "UnsafePathError",
    "collect_files",
    "mount_point",
    "name_as_sent",
    "output_path_inside",
    "path_filter",
    "safe_output_name",
]

_GLOB_CHARS = re.compile(r"[*?\[]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
    always skipped. A file reached by several paths (symbolic links) is taken once, by the
    first path found; a ``**`` glob follows a link to a folder at most once, so a link to an
    ancestor folder (a loop) cannot repeat files. Blocking: run it in a worker thread from
    async code. This is `unstructured_jobs._batch.walk.iter_files` as lists: the batch itself
    streams the walk, without holding every path.
    """
    from .walk import iter_files

    problems: list[tuple[str, str]] = []
    files = list(
        iter_files(inputs, exclude=exclude, include_hidden=include_hidden, problems=problems)
    )
    return files, problems


def path_filter(include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Callable[[str], bool]:
    """Whether a file is taken: it matches an `include` pattern (when any is given) and no
    `exclude` pattern, as rclone's ``--include``/``--exclude`` and rsync's filters.

    A pattern without a ``/`` matches the file's name (``*.pdf``); one with a ``/`` matches
    the end of its path, at a folder boundary (``drafts/*.pdf``, ``old/**``), or, starting
    with ``/``, the whole absolute path. ``*`` and ``?`` never cross a ``/``; ``**`` does;
    ``[abc]`` and ``[!abc]`` are character classes. Case matters.
    """
    taken = [_pattern(p) for p in include]
    dropped = [_pattern(p) for p in exclude]

    def keep(path: str) -> bool:
        text = path.replace(os.sep, "/") if os.sep != "/" else path
        name = text.rsplit("/", 1)[-1]

        def hit(rx: re.Pattern[str], anchored: bool) -> bool:
            return bool(rx.search(text) if anchored else rx.fullmatch(name))

        if taken and not any(hit(rx, a) for rx, a in taken):
            return False
        return not any(hit(rx, a) for rx, a in dropped)

    return keep


def _pattern(pattern: str) -> tuple[re.Pattern[str], bool]:
    """A glob as a regular expression, and whether it applies to the path (not the name)."""
    if not pattern:
        raise ValueError("an empty pattern matches nothing")
    text = pattern.replace("\\", "/") if os.altsep else pattern
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := text.find("]", i + 2)) != -1:
            body = text[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    if "/" not in text:
        return re.compile(body), False
    if text.startswith("/"):
        return re.compile(f"^{body}$"), True
    return re.compile(f"(?:^|/){body}$"), True


def _glob(pattern: str) -> list[str]:
    """``glob.glob(pattern, recursive=True)``, except that ``**`` enters each folder once.

    `glob` follows every link to a folder under ``**``: a link to an ancestor folder repeats
    the tree below it once per level the system resolves (40), and two such links multiply.
    Here one ``**`` enters a real folder at most once, however many links lead to it.
    """
    parts = re.split(r"[\\/]", pattern) if os.altsep else pattern.split(os.sep)
    if "**" not in parts:
        return glob.glob(pattern, recursive=True)  # nothing recursive: no loop possible
    first = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
    base = os.sep.join(parts[:first]) or ("" if first == 0 else os.sep)
    current = [base] if os.path.isdir(base or os.curdir) else []
    for position, part in enumerate(parts[first:], start=first):
        last = position == len(parts) - 1
        if part == "**":
            seen: set[str] = set()
            current = [d for c in current for d in _folders_below(c, seen)]
        elif _GLOB_CHARS.search(part):
            hidden_ok = part.startswith(".")
            current = [
                _join(c, name)
                for c in current
                for name in _names(c)
                if (hidden_ok or not name.startswith(".")) and fnmatch.fnmatch(name, part)
            ]
        else:
            current = [_join(c, part) for c in current if os.path.lexists(_join(c, part))]
        if not last:
            current = [c for c in current if os.path.isdir(c or os.curdir)]
    return list(dict.fromkeys(c or os.curdir for c in current))


def _join(folder: str, name: str) -> str:
    return os.path.join(folder, name) if folder else name


def _names(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder or os.curdir))
    except OSError:
        return []


def _folders_below(start: str, seen: set[str]) -> list[str]:
    """`start` and every folder below it (links followed, hidden ones skipped), each real
    folder once: those already in `seen` are not entered again."""
    out: list[str] = []
    stack = [start]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder or os.curdir)
        if real in seen:
            continue
        seen.add(real)
        out.append(folder)
        subs = [
            _join(folder, name)
            for name in _names(folder)
            if not name.startswith(".") and os.path.isdir(_join(folder, name))
        ]
        stack.extend(reversed(subs))
    return out


def name_as_sent(name: str) -> str:
    """The name the server stores for an upload called `name`.

    The multipart body (`unstructured_jobs._files.multipart`) sends bytes that are not UTF-8 (the
    byte 0xE9 of a Latin-1 ``café.pdf`` from an old archive) as U+FFFD and percent-encodes
    control characters (LF as ``%0A``), so that a name can never break out of its header; the
    server keeps what it received. Applying it twice changes nothing. The batch names its
    files by this form, so a lost answer is reconciled on what the server lists.
    """
    if name.isascii() and name.isprintable():
        return name  # the usual case, at no cost: nothing to replace
    return _CONTROL.sub(lambda m: f"%{ord(m[0]):02X}", _clean_name(name))


def mount_point(path: str | os.PathLike[str]) -> str:
    """The mount point of the file system that holds `path` (or would hold it)."""
    current = os.path.realpath(path)
    while not os.path.exists(current) or not os.path.ismount(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current
