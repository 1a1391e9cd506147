"""The batch manifest: one SQLite file that makes a batch resumable and exactly-once.

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)
        "schema" = "1", "request_data" = the JSON sent as request_data for every job
    groups(id INTEGER PRIMARY KEY, state TEXT, job_id TEXT, sent_at TEXT, job_status TEXT,
           error TEXT)
        state (a `GroupState`): new -> submitting -> submitted -> finished, or refused;
        sent_at is the client's UTC clock (ISO 8601) recorded *before* the create-job request
        leaves; job_id is set once known
    files(id INTEGER PRIMARY KEY, path TEXT UNIQUE, upload_name TEXT UNIQUE, size INTEGER,
          state TEXT, group_id INTEGER, position INTEGER, job_id TEXT, job_status TEXT,
          output_path TEXT, error TEXT)
        state (a `FileState`): pending -> submitting -> submitted -> done | failed

A file is `failed` without a `group_id` when it was refused before sending (too large,
unreadable): such files are checked again on the next run. Every transition is one committed
transaction (`Manifest._write`), so a process killed at any point leaves a consistent file;
groups found in state ``submitting`` are reconciled against ``list_jobs`` before anything is
sent again.

All SQL of the batch lives here: the engine asks named questions (`Manifest.groups_to_send`,
...) and records named transitions (`Manifest.group_created`, ...), each of which updates a
group and its files together.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ._exceptions import InvalidInputError

__all__ = ["FileRow", "FileState", "GroupRow", "GroupState", "Manifest"]


class FileState(enum.StrEnum):
    """Where one file of a batch stands. Equal to its string value (``FileState.DONE == "done"``).

    - ``pending``: not sent yet (or certainly not created): the next run sends it.
    - ``submitting``: its create-job request left and the answer is unknown: the next run
      looks for its job before sending anything again.
    - ``submitted``: its job exists but has not finished, or its output is not downloaded yet.
    - ``done``: processed (and downloaded, when an output folder was given).
    - ``failed``: refused before sending, refused by the server, or failed in its job.
    """

    PENDING = "pending"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    DONE = "done"
    FAILED = "failed"


class GroupState(enum.StrEnum):
    """Where one group of files (one job) stands in the manifest.

    ``new`` (formed, not sent, or certainly not created) -> ``submitting`` (recorded before the
    create-job request leaves) -> ``submitted`` (its job is known) -> ``finished`` (every file
    has its outcome); ``refused`` when the server refused to create its job for good.
    """

    NEW = "new"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    FINISHED = "finished"
    REFUSED = "refused"


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
_SELECT_FILES = (
    "SELECT id, path, upload_name, size, state, group_id, job_id, job_status, output_path, "
    "error FROM files WHERE "
)
_FILE_ORDER = " ORDER BY group_id, position, path"
# The job status recorded when a group's job no longer exists on the server.
_UNKNOWN_JOB_STATUS = "UNKNOWN"


@attrs.frozen
class FileRow:
    """One file of the manifest."""

    id: int
    path: str
    upload_name: str
    size: int
    state: FileState = attrs.field(converter=FileState)
    group_id: int | None
    job_id: str | None
    job_status: str | None
    output_path: str | None
    error: str | None


@attrs.frozen
class GroupRow:
    """One group of files sent (or to be sent) as one job."""

    id: int
    state: GroupState = attrs.field(converter=GroupState)
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
    """The SQLite manifest of one batch. Methods are blocking and thread-safe.

    A manifest on disk is held with an exclusive lock (``<path>.lock``) while it is open: a
    second batch process opening it gets an `InvalidInputError` ("... is in use by another
    batch process").
    """

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

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: every change made inside is committed together, or none is."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # -- setup --------------------------------------------------------------------------------

    def check_request_data(self, request_data: str) -> None:
        """Record the job definition, or refuse a manifest made for another one."""
        rows = self._read("SELECT value FROM meta WHERE key = 'request_data'")
        if rows and rows[0][0] != request_data:
            raise InvalidInputError(
                f"the manifest {self.path} belongs to a batch with other job settings "
                f"({rows[0][0]}); use another manifest"
            )
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('request_data', ?)", (request_data,))

    def add_files(self, files: Sequence[tuple[str, str, int]]) -> None:
        """Add ``(path, wanted_name, size)`` files not yet known, as pending, with unique names.

        A known file still pending gets its size updated (it may have changed since).
        """
        known = {row[0]: row for row in self._read("SELECT path, upload_name FROM files")}
        taken = {row[1] for row in known.values()}
        with self._write() as db:
            for path, name, size in files:
                if path in known:
                    db.execute(
                        "UPDATE files SET size = ? WHERE path = ? AND state = ?",
                        (size, path, FileState.PENDING),
                    )
                    continue
                upload_name = unique_name(name, taken)
                taken.add(upload_name)
                db.execute(
                    "INSERT INTO files (path, upload_name, size, state) VALUES (?, ?, ?, ?)",
                    (path, upload_name, size, FileState.PENDING),
                )

    def reject(self, path: str, error: str) -> None:
        """Mark a file that cannot be sent as failed (checked again on the next run)."""
        with self._write() as db:
            db.execute(
                "UPDATE files SET state = ?, error = ? "
                "WHERE path = ? AND state = ? AND group_id IS NULL",
                (FileState.FAILED, error, path, FileState.PENDING),
            )

    def retry(self, *, failed_jobs: bool) -> None:
        """Make refused files pending again; with `failed_jobs`, failed files of jobs too."""
        sql = (
            "UPDATE files SET state = ?, group_id = NULL, position = NULL, job_id = NULL, "
            "job_status = NULL, error = NULL WHERE state = ?"
        )
        if not failed_jobs:
            sql += " AND group_id IS NULL"
        with self._write() as db:
            db.execute(sql, (FileState.PENDING, FileState.FAILED))

    # -- questions ----------------------------------------------------------------------------

    def all_files(self) -> list[FileRow]:
        """Every file of the manifest, in (group, position, path) order."""
        return self._files("1")

    def ungrouped_pending_files(self, *, larger_than: int | None = None) -> list[FileRow]:
        """Pending files not in any group yet (only those over `larger_than` bytes, if given)."""
        if larger_than is None:
            return self._files("state = ? AND group_id IS NULL", (FileState.PENDING,))
        return self._files(
            "state = ? AND group_id IS NULL AND size > ?", (FileState.PENDING, larger_than)
        )

    def groups_to_reconcile(self) -> list[GroupRow]:
        """Groups left ``submitting``: their job may exist; look for it before sending again."""
        return self._groups(GroupState.SUBMITTING)

    def groups_to_send(self) -> list[GroupRow]:
        """Groups formed but not sent (or certainly not created), in order."""
        return self._groups(GroupState.NEW)

    def groups_to_wait(self) -> list[GroupRow]:
        """Groups whose job exists and whose files do not all have their outcome yet."""
        return self._groups(GroupState.SUBMITTED)

    def submitted_group(self, group_id: int) -> GroupRow | None:
        """The group `group_id` if its job is recorded (state ``submitted``), else None."""
        rows = self._groups(GroupState.SUBMITTED, group_id)
        return rows[0] if rows else None

    def claimed_job_ids(self) -> set[str]:
        """Every job id already recorded for some group."""
        return {r[0] for r in self._read("SELECT job_id FROM groups WHERE job_id IS NOT NULL")}

    def used_outputs(self) -> set[str]:
        """Output paths already assigned to a file."""
        rows = self._read("SELECT output_path FROM files WHERE output_path IS NOT NULL")
        return {r[0] for r in rows}

    def _files(self, where: str, args: Sequence[Any] = ()) -> list[FileRow]:
        sql = _SELECT_FILES + where + _FILE_ORDER  # `where`: a literal of this module
        return [FileRow(*row) for row in self._read(sql, args)]

    def _groups(self, state: GroupState, group_id: int | None = None) -> list[GroupRow]:
        sql = "SELECT id, state, job_id, sent_at FROM groups WHERE state = ?"
        args: tuple[Any, ...] = (state,)
        if group_id is not None:
            sql, args = sql + " AND id = ?", (state, group_id)
        rows = self._read(sql + " ORDER BY id", args)
        return [
            GroupRow(row[0], row[1], row[2], row[3], tuple(self._files("group_id = ?", (row[0],))))
            for row in rows
        ]

    # -- transitions: each updates a group and its files together -----------------------------

    def new_group(self, file_ids: Sequence[int]) -> int:
        """Form a ``new`` group of pending files, in this upload order; return its id."""
        with self._write() as db:
            cur = db.execute("INSERT INTO groups (state) VALUES (?)", (GroupState.NEW,))
            group_id = int(cur.lastrowid or 0)
            db.executemany(
                "UPDATE files SET group_id = ?, position = ? WHERE id = ?",
                [(group_id, position, file_id) for position, file_id in enumerate(file_ids)],
            )
        return group_id

    def group_sending(self, group_id: int, sent_at: str) -> None:
        """The group is about to be sent: ``submitting`` since `sent_at` (call BEFORE sending)."""
        with self._write() as db:
            db.execute(
                "UPDATE groups SET state = ?, sent_at = ?, error = NULL WHERE id = ?",
                (GroupState.SUBMITTING, sent_at, group_id),
            )
            db.execute(
                "UPDATE files SET state = ? WHERE group_id = ?", (FileState.SUBMITTING, group_id)
            )

    def group_created(self, group_id: int, job_id: str, job_status: str) -> None:
        """The group's job exists (created, or found after a lost answer): ``submitted``."""
        with self._write() as db:
            db.execute(
                "UPDATE groups SET state = ?, job_id = ?, job_status = ? WHERE id = ?",
                (GroupState.SUBMITTED, job_id, job_status, group_id),
            )
            db.execute(
                "UPDATE files SET state = ?, job_id = ?, job_status = ?, error = NULL "
                "WHERE group_id = ?",
                (FileState.SUBMITTED, job_id, job_status, group_id),
            )

    def group_unsent(self, group_id: int, error: str | None) -> None:
        """The group was certainly not created: ``new`` again, its files pending (same group)."""
        with self._write() as db:
            db.execute(
                "UPDATE groups SET state = ?, error = ? WHERE id = ?",
                (GroupState.NEW, error, group_id),
            )
            db.execute(
                "UPDATE files SET state = ?, error = ? WHERE group_id = ?",
                (FileState.PENDING, error, group_id),
            )

    def group_refused(self, group_id: int, error: str) -> None:
        """The server refused the group for good (no job): ``refused``, its files failed."""
        with self._write() as db:
            db.execute(
                "UPDATE groups SET state = ?, error = ? WHERE id = ?",
                (GroupState.REFUSED, error, group_id),
            )
            db.execute(
                "UPDATE files SET state = ?, error = ? WHERE group_id = ?",
                (FileState.FAILED, error, group_id),
            )

    def group_error(self, group_id: int, error: str) -> None:
        """Note an error on a group and its files whose states do not change."""
        with self._write() as db:
            db.execute("UPDATE groups SET error = ? WHERE id = ?", (error, group_id))
            db.execute("UPDATE files SET error = ? WHERE group_id = ?", (error, group_id))

    def group_job_missing(self, group_id: int, error: str) -> None:
        """The group's job no longer exists: every file failed, the group ``finished``."""
        with self._write() as db:
            db.execute(
                "UPDATE files SET state = ?, job_status = ?, output_path = NULL, error = ? "
                "WHERE group_id = ?",
                (FileState.FAILED, _UNKNOWN_JOB_STATUS, error, group_id),
            )
            self._finish_group(db, group_id, _UNKNOWN_JOB_STATUS)

    def group_finished(self, group_id: int, job_status: str) -> None:
        """The group's job ended and every file has its outcome: ``finished``."""
        with self._write() as db:
            self._finish_group(db, group_id, job_status)

    def drop_from_group(self, errors: Mapping[int, str]) -> None:
        """Take unreadable files (id -> why) out of a group that was not sent: failed."""
        with self._write() as db:
            db.executemany(
                "UPDATE files SET state = ?, group_id = NULL, position = NULL, error = ? "
                "WHERE id = ?",
                [(FileState.FAILED, error, file_id) for file_id, error in errors.items()],
            )

    def file_outcome(
        self,
        file_id: int,
        *,
        state: FileState,
        job_status: str,
        output_path: str | None,
        error: str | None,
    ) -> None:
        """Record one file's outcome: done, failed, or submitted (its download is retried)."""
        with self._write() as db:
            db.execute(
                "UPDATE files SET state = ?, job_status = ?, output_path = ?, error = ? "
                "WHERE id = ?",
                (state, job_status, output_path, error, file_id),
            )

    @staticmethod
    def _finish_group(db: sqlite3.Connection, group_id: int, job_status: str) -> None:
        db.execute(
            "UPDATE groups SET state = ?, job_status = ? WHERE id = ?",
            (GroupState.FINISHED, job_status, group_id),
        )
