"""The batch manifest: one SQLite file that makes a batch resumable and exactly-once.

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)
        "schema" = "1", "request_data" = the JSON sent as request_data for every job
    groups(id INTEGER PRIMARY KEY, state TEXT, job_id TEXT, sent_at TEXT, job_status TEXT,
           error TEXT)
        state: submitting -> submitted -> finished; sent_at is the client's UTC clock (ISO 8601)
        recorded *before* the create-job request leaves; job_id is set once known
    files(id INTEGER PRIMARY KEY, path TEXT UNIQUE, upload_name TEXT UNIQUE, size INTEGER,
          state TEXT, group_id INTEGER, position INTEGER, job_id TEXT, job_status TEXT,
          output_path TEXT, error TEXT)
        state: pending -> submitting -> submitted -> done | failed

A file is `failed` without a `group_id` when it was refused before sending (too large,
unreadable): such files are checked again on the next run. Every transition is one committed
transaction, so a process killed at any point leaves a consistent file; groups found in state
``submitting`` are reconciled against ``list_jobs`` before anything is sent again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from ._exceptions import InvalidInputError

__all__ = ["FileRow", "GroupRow", "Manifest"]

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY, state TEXT NOT NULL, job_id TEXT, sent_at TEXT,
    job_status TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, upload_name TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL, state TEXT NOT NULL, group_id INTEGER REFERENCES groups(id),
    position INTEGER, job_id TEXT, job_status TEXT, output_path TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS files_group ON files(group_id);
"""


@attrs.frozen
class FileRow:
    """One file of the manifest."""

    id: int
    path: str
    upload_name: str
    size: int
    state: str
    group_id: int | None
    job_id: str | None
    job_status: str | None
    output_path: str | None
    error: str | None


@attrs.frozen
class GroupRow:
    """One group of files sent (or to be sent) as one job."""

    id: int
    state: str
    job_id: str | None
    sent_at: str | None
    files: tuple[FileRow, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The upload names, in upload order."""
        return tuple(f.upload_name for f in self.files)


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or ``stem (n).ext`` with the smallest n >= 2 not in `taken`."""
    if name not in taken:
        return name
    stem, ext = os.path.splitext(name)
    n = 2
    while f"{stem} ({n}){ext}" in taken:
        n += 1
    return f"{stem} ({n}){ext}"


class Manifest:
    """The SQLite manifest of one batch. Methods are blocking and thread-safe."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else Path(path)
        target = ":memory:" if self.path is None else str(self.path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._flock: Any = None
        try:
            self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise InvalidInputError(f"cannot open the manifest {target}: {exc}") from None
        self._lock_file()
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise InvalidInputError(f"{target} is not a batch manifest: {exc}") from None

    def _lock_file(self) -> None:
        if self.path is None:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            return
        handle = open(f"{self.path}.lock", "a")  # noqa: SIM115 - held for the manifest's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            self._db.close()
            raise InvalidInputError(
                f"the manifest {self.path} is in use by another batch process"
            ) from None
        self._flock = handle

    def close(self) -> None:
        """Close the database and release the lock."""
        with self._lock:
            self._db.close()
            if self._flock is not None:
                self._flock.close()
                self._flock = None

    def _tx(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # -- setup --------------------------------------------------------------------------------

    def check_request_data(self, request_data: str) -> None:
        """Record the job definition, or refuse a manifest made for another one."""
        rows = self._query("SELECT value FROM meta WHERE key = 'request_data'")
        if rows and rows[0][0] != request_data:
            raise InvalidInputError(
                f"the manifest {self.path} belongs to a batch with other job settings "
                f"({rows[0][0]}); use another manifest"
            )
        self._tx(
            [
                ("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)),
                ("INSERT OR IGNORE INTO meta VALUES ('request_data', ?)", (request_data,)),
            ]
        )

    def add_files(self, files: Sequence[tuple[str, str, int]]) -> None:
        """Add ``(path, wanted_name, size)`` files not yet known, as pending, with unique names."""
        known = {row[0]: row for row in self._query("SELECT path, upload_name FROM files")}
        taken = {row[1] for row in known.values()}
        statements: list[tuple[str, Sequence[Any]]] = []
        for path, name, size in files:
            if path in known:
                statements.append(
                    ("UPDATE files SET size = ? WHERE path = ? AND state = 'pending'", (size, path))
                )
                continue
            upload_name = unique_name(name, taken)
            taken.add(upload_name)
            statements.append(
                (
                    "INSERT INTO files (path, upload_name, size, state) "
                    "VALUES (?, ?, ?, 'pending')",
                    (path, upload_name, size),
                )
            )
        self._tx(statements)

    def reject(self, path: str, error: str) -> None:
        """Mark a file that cannot be sent as failed (checked again on the next run)."""
        self._tx(
            [
                (
                    "UPDATE files SET state = 'failed', error = ? "
                    "WHERE path = ? AND state = 'pending' AND group_id IS NULL",
                    (error, path),
                )
            ]
        )

    def retry(self, *, failed_jobs: bool) -> None:
        """Make refused files pending again; with `failed_jobs`, failed files of jobs too."""
        where = "state = 'failed'" + ("" if failed_jobs else " AND group_id IS NULL")
        sql = (
            "UPDATE files SET state = 'pending', group_id = NULL, position = NULL, job_id = NULL, "
        )
        sql += "job_status = NULL, error = NULL WHERE " + where
        self._tx([(sql, ())])

    # -- reading ------------------------------------------------------------------------------

    def files(self, where: str = "1", args: Sequence[Any] = ()) -> list[FileRow]:
        """Files matching an SQL condition, in (group, position, path) order."""
        sql = "SELECT id, path, upload_name, size, state, group_id, job_id, job_status, "
        sql += "output_path, error FROM files WHERE " + where  # internal callers only
        rows = self._query(sql + " ORDER BY group_id, position, path", args)
        return [FileRow(*row) for row in rows]

    def groups(self, state: str, group_id: int | None = None) -> list[GroupRow]:
        """Groups in `state` (only `group_id` when given), with their files in upload order."""
        sql = "SELECT id, state, job_id, sent_at FROM groups WHERE state = ?"
        args: tuple[Any, ...] = (state,)
        if group_id is not None:
            sql, args = sql + " AND id = ?", (state, group_id)
        rows = self._query(sql + " ORDER BY id", args)
        return [
            GroupRow(row[0], row[1], row[2], row[3], tuple(self.files("group_id = ?", (row[0],))))
            for row in rows
        ]

    def claimed_job_ids(self) -> set[str]:
        """Every job id already recorded for some group."""
        return {r[0] for r in self._query("SELECT job_id FROM groups WHERE job_id IS NOT NULL")}

    def used_outputs(self) -> set[str]:
        """Output paths already assigned to a file."""
        rows = self._query("SELECT output_path FROM files WHERE output_path IS NOT NULL")
        return {r[0] for r in rows}

    # -- transitions --------------------------------------------------------------------------

    def new_group(self, file_ids: Sequence[int]) -> int:
        """Create a group of pending files (state ``submitting`` comes with `mark_submitting`)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute("INSERT INTO groups (state) VALUES ('new')")
                group_id = int(cur.lastrowid or 0)
                for position, file_id in enumerate(file_ids):
                    self._db.execute(
                        "UPDATE files SET group_id = ?, position = ? WHERE id = ?",
                        (group_id, position, file_id),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return group_id

    def mark_submitting(self, group_id: int, sent_at: str) -> None:
        """Record that the group is about to be sent (call BEFORE sending)."""
        self._tx(
            [
                (
                    "UPDATE groups SET state = 'submitting', sent_at = ?, error = NULL "
                    "WHERE id = ?",
                    (sent_at, group_id),
                ),
                ("UPDATE files SET state = 'submitting' WHERE group_id = ?", (group_id,)),
            ]
        )

    def mark_submitted(self, group_id: int, job_id: str, job_status: str) -> None:
        """Record the job created for the group."""
        self._tx(
            [
                (
                    "UPDATE groups SET state = 'submitted', job_id = ?, job_status = ? "
                    "WHERE id = ?",
                    (job_id, job_status, group_id),
                ),
                (
                    "UPDATE files SET state = 'submitted', job_id = ?, job_status = ?, "
                    "error = NULL WHERE group_id = ?",
                    (job_id, job_status, group_id),
                ),
            ]
        )

    def mark_unsent(self, group_id: int, error: str | None) -> None:
        """The group was certainly not created: its files are pending again (same group)."""
        self._tx(
            [
                ("UPDATE groups SET state = 'new', error = ? WHERE id = ?", (error, group_id)),
                (
                    "UPDATE files SET state = 'pending', error = ? WHERE group_id = ?",
                    (error, group_id),
                ),
            ]
        )

    def mark_group_failed(self, group_id: int, error: str) -> None:
        """The group was refused by the server for good (no job): its files failed."""
        self._tx(
            [
                ("UPDATE groups SET state = 'refused', error = ? WHERE id = ?", (error, group_id)),
                (
                    "UPDATE files SET state = 'failed', error = ? WHERE group_id = ?",
                    (error, group_id),
                ),
            ]
        )

    def drop_from_group(self, file_ids: Sequence[int], error: str) -> None:
        """Take unreadable files out of a group that was not sent, marking them failed."""
        self._tx(
            [
                (
                    "UPDATE files SET state = 'failed', group_id = NULL, position = NULL, "
                    "error = ? WHERE id = ?",
                    (error, file_id),
                )
                for file_id in file_ids
            ]
        )

    def set_group_error(self, group_id: int, error: str) -> None:
        """Note an error on a group whose state does not change (e.g. still submitting)."""
        self._tx(
            [
                ("UPDATE groups SET error = ? WHERE id = ?", (error, group_id)),
                ("UPDATE files SET error = ? WHERE group_id = ?", (error, group_id)),
            ]
        )

    def finish_file(
        self,
        file_id: int,
        *,
        state: str,
        job_status: str,
        output_path: str | None,
        error: str | None,
    ) -> None:
        """Record one file's outcome (`state` is done, failed, or submitted to retry later)."""
        self._tx(
            [
                (
                    "UPDATE files SET state = ?, job_status = ?, output_path = ?, error = ? "
                    "WHERE id = ?",
                    (state, job_status, output_path, error, file_id),
                )
            ]
        )

    def finish_group(self, group_id: int, job_status: str) -> None:
        """Record that the group's job ended and every file has its outcome."""
        self._tx(
            [
                (
                    "UPDATE groups SET state = 'finished', job_status = ? WHERE id = ?",
                    (job_status, group_id),
                )
            ]
        )
