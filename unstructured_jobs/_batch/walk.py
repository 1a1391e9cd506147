"""Expanding batch inputs as a stream: files, folders (recursively) and globs, in path order.

`iter_files` yields ``(absolute path, size)`` one file at a time, sorted by path (as Python
compares strings) across all inputs, each real file once. It keeps in memory one folder
listing per level of the folder being walked, the inputs and the matches of glob patterns,
and the real paths of files reached through symbolic links, never every path it yields: a
folder of a million files is walked in the memory of a thousand. The manifest
(`unstructured_jobs._batch.manifest.Manifest.add_files`) consumes it in bounded chunks.

How the order is kept: a folder's entries are visited sorted by name, a subfolder's name
compared with a ``/`` after it (``b-c`` comes before ``b/``, as ``a/b-c`` sorts before
``a/b/x``), which is exactly the order of the full paths; the streams of several inputs are
merged (`heapq.merge`).

How a file reached by several paths is taken once, by the first (smallest) path: a file's
real path is known without `os.path.realpath` for every entry that is not itself a link
(the real path of its folder, plus its name); a file is left out when a path that sorts
before it leads to the same real file, which is decided from the inputs alone (which walk
would reach that real path, and at which path), or when a link taken before led to it.
"""

from __future__ import annotations

import heapq
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .paths import _GLOB_CHARS, _glob

__all__ = ["Walk", "iter_files"]

_SEP = os.sep
_EUID = os.geteuid() if hasattr(os, "geteuid") else -1
# One file of a source: (path as found, name, size, real path or None when it is the path
# itself, whether the entry is a link, the folder walked or None for a single file).
_Item = tuple[str, str, int, "str | None", bool, "_Source | None"]


class _Source:
    """A folder to walk: where it was found and what it really is."""

    __slots__ = ("abs", "overlaps", "real")

    def __init__(self, path: str) -> None:
        self.abs = os.path.abspath(path)
        self.real = os.path.realpath(path)
        self.overlaps = False  # another input may reach the same real files


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(_SEP) + _SEP)


class _Inputs:
    """The inputs, expanded into folders to walk and single files, with the rules that say
    which of them reaches a given real file (for the de-duplication)."""

    def __init__(
        self,
        inputs: Iterable[str | os.PathLike[str]],
        excluded: Sequence[str],
        include_hidden: bool,
        problems: list[tuple[str, str]],
    ) -> None:
        self.problems = problems
        self.include_hidden = include_hidden
        self.excluded = excluded
        self.walks: list[_Source] = []
        singles: list[tuple[str, str]] = []  # (path as given, label)
        for item in inputs:
            text = os.fspath(item)
            if os.path.isdir(text):
                self.walks.append(_Source(text))
            elif os.path.lexists(text) or not _GLOB_CHARS.search(text):
                singles.append((text, text))
            else:
                matches = sorted(_glob(text))
                if not matches:
                    problems.append((text, "no file matches this pattern"))
                folders = [m for m in matches if os.path.isdir(m)]
                self.walks += self._outermost(folders)
                singles += [(m, m) for m in matches if not os.path.isdir(m)]
        # (absolute path, real path, label), in path order
        self.singles = sorted(
            (os.path.abspath(p), os.path.realpath(p), label) for p, label in singles
        )
        for walk in self.walks:
            walk.overlaps = any(
                other is not walk
                and (_under(other.real, walk.real) or _under(walk.real, other.real))
                for other in self.walks
            ) or any(_under(real, walk.real) for _, real, _ in self.singles)

    def _outermost(self, folders: list[str]) -> list[_Source]:
        """Folders matched by a glob, less those that the walk of another one covers exactly
        (``**`` matches every folder below a match too; walking each would repeat files)."""
        kept: list[_Source] = []
        for folder in folders:  # sorted: an ancestor comes before what is below it
            source = _Source(folder)
            if not any(self._covers(k, source) for k in kept):
                kept.append(source)
        return kept

    def _covers(self, outer: _Source, inner: _Source) -> bool:
        if not inner.abs.startswith(outer.abs.rstrip(_SEP) + _SEP):
            return False
        rel = inner.abs[len(outer.abs.rstrip(_SEP)) + 1 :]
        if not self.include_hidden and any(p.startswith(".") for p in rel.split(_SEP)):
            return False
        return inner.real == os.path.join(outer.real, rel)

    def is_excluded(self, real: str) -> bool:
        return any(_under(real, e) for e in self.excluded)

    def found_before(self, real: str, path: str) -> bool:
        """Whether some input reaches the real file `real` at a path that sorts before `path`."""
        for walk in self.walks:
            root = walk.real.rstrip(_SEP)
            if real.startswith(root + _SEP):
                rel = real[len(root) + 1 :]
                if not self.include_hidden and any(p.startswith(".") for p in rel.split(_SEP)):
                    continue
                if os.path.join(walk.abs, rel) < path:
                    return True
        return any(r == real and a < path for a, r, _ in self.singles)

    # -- the streams ------------------------------------------------------------------------

    def _check(self, path: str, st: os.stat_result | OSError, label: str) -> int | None:
        """The size of a file that can be taken, or None (its problem recorded)."""
        if isinstance(st, OSError):
            self.problems.append((label, st.strerror or str(st)))
        elif not stat.S_ISREG(st.st_mode):
            self.problems.append((label, "not a regular file"))
        elif not _readable(path, st):
            self.problems.append((label, "permission denied"))
        else:
            return st.st_size
        return None

    def singles_stream(self) -> Iterator[_Item]:
        for path, real, label in self.singles:
            if self.is_excluded(real):
                continue
            try:
                st: os.stat_result | OSError = os.stat(path)
            except OSError as exc:
                st = exc
            size = self._check(path, st, label)
            if size is not None:
                name = path.rpartition(_SEP)[2]
                yield path, name, size, (None if real == path else real), False, None

    def walk_stream(self, source: _Source) -> Iterator[_Item]:
        """Every file below `source` (links to folders not followed) that can be taken, in
        path order; the others are recorded in `problems`."""
        hidden_ok = self.include_hidden
        clean = source.abs == source.real
        if self.is_excluded(source.real):
            return
        excluded = set(self.excluded)
        parents = {os.path.dirname(e) for e in self.excluded}  # folders holding one
        problems = self.problems
        # A stack of (iterator over a sorted listing, real path of that folder).
        stack: list[tuple[Iterator[tuple[str, os.DirEntry[str], bool]], str]] = []

        def listing(folder: str) -> Iterator[tuple[str, os.DirEntry[str], bool]]:
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError:
                return iter(())  # as os.walk: a folder that cannot be listed is skipped
            keyed = []
            for entry in entries:
                name = entry.name
                if not hidden_ok and name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if entry.is_symlink():
                        continue  # as os.walk: a link to a folder is not followed
                    keyed.append((name + _SEP, entry, True))
                else:
                    keyed.append((name, entry, False))
            keyed.sort()  # by key: unique in a folder, so entries are never compared
            return iter(keyed)

        stack.append((listing(source.abs), source.real))
        while stack:
            entries, real_dir = stack[-1]
            some_excluded = real_dir in parents
            for _key, entry, is_dir in entries:
                if is_dir:
                    real = entry.path if clean else os.path.join(real_dir, entry.name)
                    if real not in excluded:
                        stack.append((listing(entry.path), real))
                        break
                    continue
                path = entry.path
                if entry.is_symlink():
                    real = os.path.realpath(path)
                    if self.is_excluded(real):
                        continue
                    try:
                        st: os.stat_result | OSError = entry.stat()
                    except OSError as exc:
                        st = exc
                    if (size := self._check(path, st, path)) is not None:
                        yield path, entry.name, size, real, True, source
                    continue
                real = path if clean else os.path.join(real_dir, entry.name)
                if some_excluded and real in excluded:
                    continue
                try:
                    st = entry.stat()
                except OSError as exc:
                    problems.append((path, exc.strerror or str(exc)))
                    continue
                if st.st_mode & 0o170000 == stat.S_IFREG and (
                    (st.st_uid == _EUID and st.st_mode & stat.S_IRUSR) or _readable(path, st)
                ):
                    yield path, entry.name, st.st_size, (None if clean else real), False, source
                else:
                    self._check(path, st, path)
            else:
                stack.pop()


def _first(item: tuple[Any, ...]) -> Any:
    return item[0]


def _readable(path: str, st: os.stat_result) -> bool:
    """`os.access(path, R_OK)`, without the system call for a file we own and may read."""
    if st.st_uid == _EUID and st.st_mode & stat.S_IRUSR:
        return True
    return os.access(path, os.R_OK)


def iter_files(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    exclude: Sequence[str | os.PathLike[str]] = (),
    include_hidden: bool = False,
    problems: list[tuple[str, str]] | None = None,
) -> Iterator[tuple[str, int]]:
    """Expand files, folders (recursively) and globs into ``(absolute path, size)`` pairs, one
    at a time, in path order, each real file once (by the first path found).

    Inside folders, hidden entries (a name starting with ``.``) are skipped unless
    `include_hidden`; paths under an `exclude` entry (the output folder, the manifest) are
    always skipped; links to folders are not followed (a ``**`` glob follows each at most
    once). What cannot be taken is appended to `problems` as ``(input, reason)``. The inputs
    are examined (and globs expanded) when iteration starts. Blocking.
    """
    walk = Walk(inputs, exclude=exclude, include_hidden=include_hidden)
    if problems is not None:
        walk.problems = problems
    for path, _name, size in walk:
        yield path, size


class Walk:
    """One walk of a batch's inputs (see `iter_files`): iterating it yields ``(path, name,
    size)`` in path order, `name` being the file's name as found; files that `keep` refuses
    (the include/exclude patterns) are counted in `excluded`, not yielded, and `problems`
    collects what could not be taken. Iterate it once."""

    def __init__(
        self,
        inputs: Iterable[str | os.PathLike[str]],
        *,
        exclude: Sequence[str | os.PathLike[str]] = (),
        include_hidden: bool = False,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        self.inputs = inputs
        self.exclude = exclude
        self.include_hidden = include_hidden
        self.keep = keep
        self.problems: list[tuple[str, str]] = []
        self.excluded = 0

    def __iter__(self) -> Iterator[tuple[str, str, int]]:
        problems = self.problems
        keep = self.keep
        excluded = [os.path.realpath(p) for p in self.exclude]
        spec = _Inputs(self.inputs, excluded, self.include_hidden, problems)
        streams = [spec.walk_stream(w) for w in spec.walks]
        if spec.singles:
            streams.append(spec.singles_stream())
        if not streams:
            return
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_first)
        reals: set[str] = set()  # real files taken through a link (or by a single file)
        last = None
        for path, name, size, real, is_link, source in merged:
            if path == last:
                continue  # the same path from two inputs
            last = path
            target = path if real is None else real
            if reals and target in reals:
                continue
            if (source is None or is_link or source.overlaps) and spec.found_before(target, path):
                continue
            if real is not None and (is_link or source is None):
                reals.add(real)
            if keep is not None and not keep(path):
                self.excluded += 1
                continue
            yield path, name, size
