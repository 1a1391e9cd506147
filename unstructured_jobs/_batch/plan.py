"""A dry run's plan (`unstructured_jobs.batch.plan_batch`), answered from SQL.

The plan is computed, never written where it matters: it works on a temporary copy of the
manifest (`Manifest.copy_of`, or a fresh temporary one). The walk goes into a lean table of its
own (`walked`: path and size, one index; no upload names, which a plan does not show), and
what a run would do with each file is one SQL expression (`_ACTION`) over the manifest's rows,
the walked files it does not hold being new, pending files. The counts come from two aggregate
queries; the list of files is read a page at a time, in path order, when it is iterated. Jobs
that a run would form are numbered as `unstructured_jobs._batch.engine.form_groups` would form them:
files in path order, within the count and byte limits, after the groups already formed.
"""

from __future__ import annotations

import enum
import heapq
import math
import sqlite3
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import attrs

from .grouping import GroupLimits
from .manifest import GroupState, Manifest, _db_path, _py_path

__all__ = ["BatchPlan", "PlannedAction", "PlannedFile", "make_plan"]


class PlannedAction(enum.StrEnum):
    """What a run would do with one file (`plan_batch`)."""

    SEND = "send"
    """Upload it, in the job numbered `PlannedFile.job`."""
    CHECK = "check"
    """Its job may exist (an answer was lost): look for it, send it again only if missing."""
    WAIT = "wait"
    """Its job exists: wait for it (and download the output)."""
    SENT = "sent"
    """Its job exists and is not waited for (``wait=False``)."""
    DONE = "done"
    """Done in an earlier run: skipped."""
    FAIL = "fail"
    """Refused before sending (too large, unreadable, a pattern matching nothing), or failed
    in an earlier run (``retry_failed`` sends it again)."""


@attrs.frozen
class PlannedFile:
    """One file of a `BatchPlan`."""

    path: str
    action: PlannedAction
    size: int = 0
    job: int | None = None
    """For `PlannedAction.SEND`: the number of the job it would be sent in (1, 2, ...)."""
    reason: str | None = None


# What a run would do with a file of the manifest, after `form_groups` (parameters :retry,
# :limit, :wait). A file is "loose" when the run would group it: pending or failed before
# sending (no group), or failed in a job with retry_failed; one over the limit would fail.
_LOOSE = (
    "((f.group_id IS NULL AND f.state IN ('pending', 'failed')) OR (:retry AND f.state = 'failed'))"
)
_ACTION = f"""CASE
    WHEN {_LOOSE} THEN CASE WHEN :limit IS NOT NULL AND f.size > :limit THEN 'fail' ELSE 'send' END
    WHEN f.state = 'pending' AND g.state = 'new' THEN 'send'
    WHEN g.state = 'submitting' THEN 'check'
    WHEN f.state = 'submitted' THEN CASE WHEN :wait THEN 'wait' ELSE 'sent' END
    WHEN f.state = 'done' THEN 'done'
    ELSE 'fail' END"""
_FROM = " FROM files f LEFT JOIN groups g ON g.id = f.group_id"
_COUNTS = (
    f"SELECT {_ACTION} AS action, {_LOOSE} AS loose, count(*), total(f.size), "
    f"count(DISTINCT f.group_id){_FROM} GROUP BY action, loose"
)
_PAGE = (
    f"SELECT f.path, f.size, {_ACTION}, {_LOOSE}, f.group_id, f.error{_FROM} "
    "WHERE f.path > :after ORDER BY f.path LIMIT :page"
)
PAGE = 2000
"""Rows read at a time when the plan's files are listed."""
_WALKED = (
    "CREATE TABLE IF NOT EXISTS walked (path PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID"
)
# Walked files the manifest holds are its rows (their size updated if still pending).
_KNOWN_SIZES = (
    "UPDATE files SET size = (SELECT w.size FROM walked w WHERE w.path = files.path) "
    "WHERE state = 'pending' AND EXISTS "
    "(SELECT 1 FROM walked w WHERE w.path = files.path AND w.size != files.size)"
)
# New files: walked, not held by the manifest (filtered when read, not deleted: a delete of a
# million rows would hold them all in the transaction's journal).
_NEW = "FROM walked w WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.path = w.path)"
_WALKED_COUNTS = (
    "SELECT count(*), total(CASE WHEN :limit IS NOT NULL AND size > :limit THEN 0 ELSE size END), "
    f"total(CASE WHEN :limit IS NOT NULL AND size > :limit THEN 1 ELSE 0 END) {_NEW}"
)
_WALKED_PAGE = f"SELECT path, size {_NEW} AND w.path > :after ORDER BY w.path LIMIT :page"


def _too_large(size: int, limit: int) -> str:
    return f"file is {size} bytes, over the limit of {limit} bytes per file"


class _Jobs:
    """Numbers the jobs `form_groups` would form from loose files given in path order."""

    def __init__(self, limits: GroupLimits, first: int) -> None:
        self.limits = limits
        self.number = first - 1
        self.files = self.bytes = 0

    def add(self, size: int) -> int:
        too_many = self.files >= self.limits.files
        too_big = self.limits.job_bytes is not None and self.bytes + size > self.limits.job_bytes
        if self.files == 0 or too_many or too_big:
            self.number += 1
            self.files = self.bytes = 0
        self.files += 1
        self.bytes += size
        return self.number


class PlannedFiles(Sequence[PlannedFile]):
    """The files of a `BatchPlan`, in path order (names that are not UTF-8 last), then the
    inputs that could not be taken. Read from the plan's temporary manifest a page at a time
    while iterated: `len()` costs nothing, and a plan of a million files is listed without
    holding them all (indexing reads up to the index: iterate instead)."""

    def __init__(
        self,
        store: Manifest,
        params: dict[str, Any],
        limits: GroupLimits,
        total: int,
        first_virtual_job: int,
        problems: Sequence[tuple[str, str]],
    ) -> None:
        self._store = store
        self._params = params
        self._limits = limits
        self._stored = total
        self._first_virtual_job = first_virtual_job
        self._problems = tuple(problems)
        self._close = weakref.finalize(self, store.close)

    def __len__(self) -> int:
        return self._stored + len(self._problems)

    def __iter__(self) -> Iterator[PlannedFile]:
        groups = self._store._read(
            "SELECT id FROM groups WHERE state = ? ORDER BY id", (GroupState.NEW,)
        )
        job_of_group = {row[0]: number for number, row in enumerate(groups, start=1)}
        del groups
        jobs = _Jobs(self._limits, self._first_virtual_job)
        limit = self._params["limit"]
        for stored, size, action, loose, group_id, error in _rows(self._store, self._params):
            path = _py_path(stored) or ""
            job = reason = None
            if action == PlannedAction.SEND:
                job = jobs.add(size) if loose else job_of_group.get(group_id)
            elif action == PlannedAction.FAIL:
                reason = _too_large(size, limit) if loose else error
            elif action == PlannedAction.CHECK:
                reason = error
            yield PlannedFile(path, PlannedAction(action), size, job, reason)
        for path, why in self._problems:
            yield PlannedFile(path, PlannedAction.FAIL, reason=why)

    @overload
    def __getitem__(self, index: int) -> PlannedFile: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[PlannedFile]: ...
    def __getitem__(self, index: int | slice) -> PlannedFile | Sequence[PlannedFile]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("plan file index out of range")
        for position, planned in enumerate(self):
            if position == index:
                return planned
        raise IndexError("plan file index out of range")  # pragma: no cover

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} planned files>"

    def close(self) -> None:
        """Delete the plan's temporary manifest (done anyway when the plan is collected)."""
        self._close()


@attrs.frozen(eq=False)
class BatchPlan:
    """What `submit_batch` would do with the same arguments, found without sending anything.

    The counts, `jobs` and `upload_bytes` are known at once; `files` lists every file (a
    sequence read lazily from a temporary copy of the manifest: iterate it, a page at a time,
    rather than indexing or copying it for a large batch).
    """

    files: Sequence[PlannedFile]
    excluded: int = 0
    """Files found in the inputs but left out by ``include``/``exclude``."""
    manifest: str | None = None
    _counts: dict[str, int] | None = attrs.field(default=None, alias="counts", repr=False)
    _jobs: int | None = attrs.field(default=None, alias="jobs", repr=False)
    _upload_bytes: int | None = attrs.field(default=None, alias="upload_bytes", repr=False)

    @property
    def jobs(self) -> int:
        """Jobs that would be created."""
        if self._jobs is not None:
            return self._jobs
        return len({f.job for f in self.files if f.action == PlannedAction.SEND})

    @property
    def upload_bytes(self) -> int:
        """Bytes that would be uploaded."""
        if self._upload_bytes is not None:
            return self._upload_bytes
        return sum(f.size for f in self.files if f.action == PlannedAction.SEND)

    def counts(self) -> dict[str, int]:
        """Number of files per action."""
        if self._counts is not None:
            return dict(self._counts)
        out: dict[str, int] = {}
        for f in self.files:
            out[f.action] = out.get(f.action, 0) + 1
        return out


def _order(row: tuple[Any, ...]) -> tuple[bool, str | bytes]:
    """SQLite's order of paths: TEXT (as UTF-8 bytes: as Python compares str), then BLOBs."""
    return isinstance(row[0], bytes), row[0]


def _paged(store: Manifest, sql: str, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    after: str | bytes = ""
    while page := store._read(sql, {**params, "after": after, "page": PAGE}):
        after = page[-1][0]
        yield from page


def _rows(store: Manifest, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """(path, size, action, loose, group_id, error) of every file, in path order: the
    manifest's rows and the new walked files, merged."""
    limit = params["limit"]
    walked = (
        (path, size, "fail" if limit is not None and size > limit else "send", 1, None, None)
        for path, size in _paged(store, _WALKED_PAGE, params)
    )
    return heapq.merge(_paged(store, _PAGE, params), walked, key=_order)


def record_walk(store: Manifest, files: Iterable[tuple[str, str, int]]) -> None:
    """Record a walk for a plan in `walked`; those the manifest holds get their size updated
    when they are still pending, as `Manifest.add_files` does (the others are new)."""

    def record(db: sqlite3.Connection, chunk: list[tuple[str, str, int]]) -> int:
        rows = [(_db_path(path), size) for path, _name, size in chunk]
        db.executemany("INSERT OR IGNORE INTO walked (path, size) VALUES (?, ?)", rows)
        return len(rows)

    with store._write() as db:
        db.execute(_WALKED)
        held = db.execute("SELECT 1 FROM files LIMIT 1").fetchone() is not None
    for _ in store.each_chunk(files, record):
        pass
    if held:
        with store._write() as db:
            db.execute(_KNOWN_SIZES)


def make_plan(
    store: Manifest,
    limits: GroupLimits,
    *,
    wait: bool,
    retry_failed: bool,
    problems: Sequence[tuple[str, str]],
    excluded: int,
    manifest: str | None,
) -> BatchPlan:
    """The plan of a run over `store`, after `record_walk` (the plan keeps the store, and
    closes it when collected)."""
    params: dict[str, Any] = {"retry": retry_failed, "limit": limits.file_bytes, "wait": wait}
    counts: dict[str, int] = {}
    total = send_bytes = existing_jobs = loose_send = 0
    for action, loose, count, size, groups in store._read(_COUNTS, params):
        counts[action] = counts.get(action, 0) + count
        total += count
        if action == PlannedAction.SEND:
            send_bytes += int(size)
            if loose:
                loose_send = count
            else:
                existing_jobs = groups
    [(walked, walked_bytes, too_large)] = store._read(_WALKED_COUNTS, params)
    walked, too_large = int(walked), int(too_large)
    if walked:
        total += walked
        loose_send += walked - too_large
        send_bytes += int(walked_bytes)
        for action, n in (
            (PlannedAction.SEND, walked - too_large),
            (PlannedAction.FAIL, too_large),
        ):
            if n:
                counts[action] = counts.get(action, 0) + n
    if loose_send and limits.job_bytes is None:
        virtual = math.ceil(loose_send / limits.files)
    elif loose_send:
        virtual = _count_jobs(store, params, limits)
    else:
        virtual = 0
    first = _existing_groups(store) + 1
    if problems:
        counts[PlannedAction.FAIL] = counts.get(PlannedAction.FAIL, 0) + len(problems)
    files = PlannedFiles(store, params, limits, total, first, problems)
    return BatchPlan(
        files,
        excluded,
        manifest,
        counts={PlannedAction(a): n for a, n in counts.items()},
        jobs=existing_jobs + virtual,
        upload_bytes=send_bytes,
    )


def _existing_groups(store: Manifest) -> int:
    rows = store._read("SELECT count(*) FROM groups WHERE state = ?", (GroupState.NEW,))
    return int(rows[0][0])


def _count_jobs(store: Manifest, params: dict[str, Any], limits: GroupLimits) -> int:
    """The jobs loose files would make with a byte limit per job: sizes read in path order."""
    jobs = _Jobs(limits, 1)
    for _path, size, action, loose, _group, _error in _rows(store, params):
        if loose and action == PlannedAction.SEND:
            jobs.add(size)
    return jobs.number
