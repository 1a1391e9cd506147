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
unreadable): such files are checked again on the next run. `upload_name` is the name as the
server stores it (`unstructured_jobs._batch.paths.name_as_sent`: control characters percent-encoded,
bytes that are not UTF-8 as U+FFFD), unique within the batch. `path` and `output_path` are
TEXT, or a BLOB of the file system's bytes for a path that is not UTF-8 (the byte 0xE9 of
``café.pdf`` written in Latin-1 by an old archive), so every path survives exactly.
`output_path` is recorded before the output is downloaded, so a later run knows which
temporary ``.part`` files are its own.

Every transition is one committed transaction (`Manifest._write`), so a process killed at any
point leaves a consistent file; groups found in state ``submitting`` are reconciled against
``list_jobs`` before anything is sent again.

All SQL of the batch lives here: the engine asks named questions (`Manifest.groups_to_send`,
...) and records named transitions (`Manifest.group_created`, ...), each of which updates a
group and its files together.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import errno
import itertools
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any, TypeVar, overload

import attrs

from .._exceptions import InvalidInputError, LocalFileError, UnstructuredJobsError
from .paths import mount_point, name_as_sent

__all__ = ["FileRow", "FileState", "GroupRow", "GroupState", "Manifest"]

T = TypeVar("T")


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


# A plain str: sqlite3 binds a str subclass (an enum member) through its slow adapter path.
_PENDING = FileState.PENDING.value
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
# SQLite's primary result codes (the low byte of `sqlite3.Error.sqlite_errorcode`).
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 10, 11, 13, 26


def _db_path(path: str) -> str | bytes:
    """A path as stored: TEXT when it is UTF-8, else a BLOB of its bytes on disk."""
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _py_path(value: str | bytes | None) -> str | None:
    """A stored path back as the `str` Python uses for it (`os.fsdecode` for a BLOB)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


@overload
def _db_text(text: str) -> str: ...
@overload
def _db_text(text: str | None) -> str | None: ...
def _db_text(text: str | None) -> str | None:
    """Text (an error, a server's job id or status) made storable (see `display_path`)."""
    return None if text is None else display_path(text)


def display_path(path: str | os.PathLike[str]) -> str:
    r"""A path (or text) for messages and printing: bytes that are not UTF-8 shown as ``\xe9``,
    any other lone surrogate as ``\udXXX``, so that it prints on any terminal or pipe."""
    text = os.fspath(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


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


CACHE_KIB = 32 * 1024
"""SQLite's page cache per manifest: the indexes of a million files stay mostly in it."""
ADD_CHUNK = 5000
"""Files `Manifest.add_files` takes from its stream at a time (one transaction each)."""
GROUP_PAGE = 500
"""Groups `Manifest.iter_groups_to_send` reads at a time."""
_IN_PARAMS = 500  # values in one ``IN (...)`` list: far below SQLite's limit of 32766
_SUFFIX_CACHE = 50_000  # names whose next free ``(n)`` is remembered


def _parts(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _IN_PARAMS):
        yield values[start : start + _IN_PARAMS]


def _marks(values: Sized) -> str:
    return ",".join("?" * len(values))


class _Names:
    """Upload names made unique against the manifest's index of names, chunk by chunk.

    Which ``stem (n).ext`` is free next is remembered for names seen taken (a folder tree
    with ten thousand ``index.html`` costs ten thousand look-ups, not fifty million); names
    are never freed, so the smallest free `n` never goes below the last one given.
    """

    def __init__(self, manifest: Manifest) -> None:
        self.next_n: dict[str, int] = {}
        self.last: str | None = None  # the last path of the last chunk read as a range
        # Set by `known` when the chunk's paths are exactly the stored rows read (in order).
        self.all_known: list[tuple[Any, ...]] | None = None
        # Names stored raw by older versions, in the form the server stores them: they are
        # taken in that form too (`name_as_sent`), which no index look-up would find.
        self.legacy = manifest._legacy_names()

    def known(
        self, db: sqlite3.Connection, paths: list[str | bytes]
    ) -> dict[str | bytes, tuple[str, int]]:
        """The state and size of those of `paths` that the manifest holds."""
        text = [p for p in paths if isinstance(p, str)]
        others: list[str | bytes] = [p for p in paths if not isinstance(p, str)]
        found: dict[str | bytes, tuple[str, int]] = {}
        in_order = bool(text) and all(a < b for a, b in itertools.pairwise(text))
        if in_order and (self.last is None or self.last < text[0]):
            # Paths in order, after the last chunk's: the stored paths of this range of the
            # index, read in one pass (over all chunks, each stored path is read once). TEXT
            # compares as UTF-8 bytes, which is the order of Python's strings.
            self.last = text[-1]
            limit = 2 * len(text)  # more stored paths than that in the range: look them up
            rows = db.execute(
                "SELECT path, state, size FROM files WHERE path >= ? AND path <= ? "
                "ORDER BY path LIMIT ?",
                (text[0], text[-1], limit + 1),
            ).fetchall()
            if len(rows) == len(paths) and [r[0] for r in rows] == paths:
                self.all_known = rows  # the usual chunk of a resumed run: every path known
            elif len(rows) <= limit:
                found = {r[0]: (r[1], r[2]) for r in rows}
            else:
                others = paths
        else:
            others = paths
        for part in _parts(others):
            sql = f"SELECT path, state, size FROM files WHERE path IN ({_marks(part)})"  # noqa: S608
            found.update((row[0], (row[1], row[2])) for row in db.execute(sql, part))
        return found

    def unique(
        self, db: sqlite3.Connection, files: list[tuple[str | bytes, str, int, str]]
    ) -> Iterator[tuple[str | bytes, str, int]]:
        """`files` (path, name as sent, size, state) with each name made unique."""
        wanted = list({row[1] for row in files})
        taken = set(self.legacy)
        for part in _parts(wanted):
            sql = f"SELECT upload_name FROM files WHERE upload_name IN ({_marks(part)})"  # noqa: S608
            taken.update(row[0] for row in db.execute(sql, part))
        for path, name, size, _state in files:
            if name in taken:
                name = self._next(db, name, taken)
            taken.add(name)
            yield path, name, size

    def _next(self, db: sqlite3.Connection, name: str, taken: set[str]) -> str:
        stem, ext = os.path.splitext(name)
        n = self.next_n.get(name, 2)
        while True:
            candidate = f"{stem} ({n}){ext}"
            if (
                candidate not in taken
                and not db.execute(
                    "SELECT 1 FROM files WHERE upload_name = ?", (candidate,)
                ).fetchone()
            ):
                break
            n += 1
        if len(self.next_n) >= _SUFFIX_CACHE:
            self.next_n.clear()
        self.next_n[name] = n + 1
        return candidate


class Manifest:
    """The SQLite manifest of one batch. Methods are blocking and thread-safe.

    A manifest on disk is held with an exclusive lock (``<path>.lock``) while it is open: a
    second batch process opening it gets an `InvalidInputError` ("... is in use by another
    batch process").
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else Path(path)
        target = "(temporary)" if self.path is None else display_path(self.path)
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._os_error(exc) from exc
        self._lock = threading.Lock()
        self._flock: Any = None
        # No path: a private temporary file that SQLite deletes when it is closed (not
        # ":memory:", which would hold a batch of a million files in RAM).
        where: str | bytes = "" if self.path is None else _db_path(str(self.path))
        try:
            self._db = sqlite3.connect(where, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise InvalidInputError(f"cannot open the manifest {target}: {exc}") from None
        self._lock_file()
        try:
            # A temporary manifest needs no journal on disk (nothing survives a crash anyway).
            journal = "MEMORY" if self.path is None else "WAL"
            self._db.execute(f"PRAGMA journal_mode={journal}")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.close()
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code in (_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_IOERR):
                raise self._error(exc) from exc
            raise InvalidInputError(f"{target} is not a batch manifest: {exc}") from None

    @classmethod
    def copy_of(cls, path: str | os.PathLike[str]) -> Manifest:
        """A temporary copy of the manifest at `path`, which is only read (not locked, not
        changed): a dry run works on it. The copy is a private temporary file (deleted when
        closed), so a manifest of a million files is not copied into memory."""
        copy = cls(None)
        name = display_path(path)
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        try:
            source = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            copy.close()
            raise InvalidInputError(f"cannot open the manifest {name}: {exc}") from None
        try:
            source.backup(copy._db)
            copy._db.execute("SELECT count(*) FROM files").fetchone()
        except sqlite3.DatabaseError as exc:
            copy.close()
            why = f"{name} is not a batch manifest, or is damaged: {exc}"
            raise InvalidInputError(why) from None
        finally:
            source.close()
        return copy

    def _error(self, exc: sqlite3.Error) -> UnstructuredJobsError:
        """The typed error for an SQLite failure: which manifest, what to do."""
        name = display_path(self.path) if self.path is not None else "(temporary)"
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return InvalidInputError(
                f"the manifest {name} is damaged ({exc}): restore a copy, or move it away to "
                "start the batch afresh (files it recorded as sent would then be sent again)"
            )
        if code in (_SQLITE_FULL, _SQLITE_IOERR) and self.path is not None:
            full = code == _SQLITE_FULL or _is_full(self.path)
            what = f"cannot write the batch manifest {name}"
            return write_error(self.path, what, str(exc), full=full)
        return LocalFileError(f"the batch manifest {name} failed: {exc}", path=self.path)

    def _os_error(self, exc: OSError) -> LocalFileError:
        assert self.path is not None
        what = f"cannot open the batch manifest {display_path(self.path)}"
        full = exc.errno in DISK_FULL_ERRNOS
        return write_error(self.path, what, exc.strerror or str(exc), full=full)

    def _lock_file(self) -> None:
        if self.path is None:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            return
        try:
            handle = open(f"{self.path}.lock", "a")  # noqa: SIM115 - held for the manifest's life
        except OSError as exc:
            self._db.close()
            raise self._os_error(exc) from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            self._db.close()
            raise InvalidInputError(
                f"the manifest {display_path(self.path)} is in use by another batch process"
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
        """One transaction: every change made inside is committed together, or none is.

        SQLite's errors become typed ones (`_error`): a full disk a `LocalFileError` naming
        the manifest and its file system, a damaged file an `InvalidInputError`.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back on its own
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise self._error(exc) from exc

    def _read(
        self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

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

    def add_files(self, files: Iterable[tuple[str, str, int]]) -> int:
        """Add ``(path, wanted_name, size)`` files not yet known, as pending, with unique names;
        return how many were new.

        A known file still pending gets its size updated (it may have changed since).
        The upload name is `wanted_name` as the server will store it (`name_as_sent`), made
        unique in that form: two names that differ only in bytes that are not UTF-8 both
        arrive as ``caf�.pdf``, so another one is sent as ``caf� (2).pdf``.

        `files` is consumed as a stream, `ADD_CHUNK` at a time, each chunk one transaction: a
        walk of a million files (`unstructured_jobs._batch.walk.iter_files`) is recorded without
        ever being held in memory. Which paths are known is read from the index of paths (one
        range of it per chunk when `files` comes in path order, as a walk does; a look-up per
        path otherwise); a name already taken is found by the index of names when the chunk
        is inserted, and only then looked for a free ``(n)``.
        """
        names = _Names(self)
        return sum(self.each_chunk(files, lambda db, chunk: self._add_chunk(db, chunk, names)))

    def each_chunk(
        self, items: Iterable[T], record: Callable[[sqlite3.Connection, list[T]], int]
    ) -> Iterator[int]:
        """`record` each chunk of `items` (`ADD_CHUNK` at a time) in a transaction of its own.

        The next chunk is taken from `items` (a walk: mostly system calls) in a helper thread
        while this one records the last (mostly SQLite): both release the GIL for most of
        their time. At most two chunks are held.
        """
        it = iter(items)

        def take() -> list[T]:
            return list(itertools.islice(it, ADD_CHUNK))

        with concurrent.futures.ThreadPoolExecutor(1, "unstructured-jobs-walk") as ahead:
            future = ahead.submit(take)
            while chunk := future.result():
                future = ahead.submit(take)
                with self._write() as db:
                    recorded = record(db, chunk)
                yield recorded

    def _add_chunk(
        self, db: sqlite3.Connection, chunk: list[tuple[str, str, int]], names: _Names
    ) -> int:
        paths = [_db_path(path) for path, _name, _size in chunk]
        known = names.known(db, paths)
        if (rows := names.all_known) is not None:
            names.all_known = None
            sizes = [size for _path, _name, size in chunk]
            if [r[2] for r in rows] != sizes:  # else: nothing changed, nothing to write
                db.executemany(
                    "UPDATE files SET size = ? WHERE path = ? AND state = ?",
                    [
                        (size, r[0], _PENDING)
                        for r, size in zip(rows, sizes, strict=True)
                        if r[1] == _PENDING and r[2] != size
                    ],
                )
            return 0
        resized: list[tuple[int, str | bytes, str]] = []
        new: list[tuple[str | bytes, str, int, str]] = []
        for (_path, name, size), stored in zip(chunk, paths, strict=True):
            if (old := known.get(stored)) is not None:
                if old[0] == _PENDING and old[1] != size:
                    resized.append((size, stored, _PENDING))
                continue
            known[stored] = (_PENDING, size)  # the same path twice: taken once
            new.append((stored, name_as_sent(name), size, _PENDING))
        if resized:
            db.executemany("UPDATE files SET size = ? WHERE path = ? AND state = ?", resized)
        if not new:
            return 0
        insert = "INSERT INTO files (path, upload_name, size, state) VALUES (?, ?, ?, ?)"
        count = 0
        if not names.legacy:
            # Names are usually free: insert, letting the index of names refuse those taken,
            # then give those a free ``(n)`` (they are found among the rows just added).
            last = db.execute("SELECT max(id) FROM files").fetchone()[0] or 0
            before = db.total_changes
            db.executemany(insert.replace("INSERT", "INSERT OR IGNORE"), new)
            if db.total_changes - before == len(new):
                return len(new)
            added = {r[0] for r in db.execute("SELECT path FROM files WHERE id > ?", (last,))}
            new = [row for row in new if row[0] not in added]
            count = len(added)
        rows = [(p, name, size, _PENDING) for p, name, size in names.unique(db, new)]
        db.executemany(insert, rows)
        return count + len(rows)

    def _legacy_names(self) -> frozenset[str]:
        """Upload names stored raw (by versions before names were stored as sent), as sent."""
        if self._read("SELECT 1 FROM meta WHERE key = 'names' AND value = 'as sent'"):
            return frozenset()
        # Only a name with a character outside printable ASCII can differ from its form as sent.
        rows = self._read("SELECT upload_name FROM files WHERE upload_name GLOB '*[^ -~]*'")
        legacy = frozenset(name_as_sent(r[0]) for r in rows if name_as_sent(r[0]) != r[0])
        if not legacy:
            with self._write() as db:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('names', 'as sent')")
        return legacy

    def reject(self, path: str, error: str) -> None:
        """Mark a file that cannot be sent as failed (checked again on the next run)."""
        with self._write() as db:
            db.execute(
                "UPDATE files SET state = ?, error = ? "
                "WHERE path = ? AND state = ? AND group_id IS NULL",
                (FileState.FAILED, _db_text(error), _db_path(path), FileState.PENDING),
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

    def reject_larger(self, limit: int) -> None:
        """Fail the pending files not in a group that are over `limit` bytes (one statement)."""
        with self._write() as db:
            db.execute(
                "UPDATE files SET state = ?, error = 'file is ' || size || ' bytes, over the "
                "limit of ' || ? || ' bytes per file' "
                "WHERE group_id IS NULL AND state = ? AND size > ?",
                (FileState.FAILED, limit, FileState.PENDING, limit),
            )

    def group_pending(self, files_per_job: int, job_bytes: int | None) -> int:
        """Group the pending files not in a group yet into ``new`` groups, in path order, within
        `files_per_job` files and `job_bytes` bytes (None: no limit) each; return how many.

        The files are read `ADD_CHUNK` at a time in path order (the order of the manifest's
        index on paths: names that are not UTF-8, stored as BLOBs, come last), and each page
        of groups is one transaction; only the group being filled spans two pages.
        """
        exists = "SELECT 1 FROM files WHERE group_id IS NULL AND state = ? LIMIT 1"
        if not self._read(exists, (FileState.PENDING,)):
            return 0
        # `+` keeps SQLite on the index of paths (ORDER BY without sorting), not group_id.
        page_sql = (
            "SELECT id, size, path FROM files WHERE +group_id IS NULL AND +state = ? "
            "AND path > ? ORDER BY path LIMIT ?"
        )
        after: str | bytes = ""
        current: list[int] = []
        current_bytes = 0
        formed = 0
        while True:
            page = self._read(page_sql, (FileState.PENDING, after, ADD_CHUNK))
            if page:
                after = page[-1][2]
            full: list[list[int]] = []
            for file_id, size, _path in page:
                too_many = len(current) >= files_per_job
                too_big = job_bytes is not None and current_bytes + size > job_bytes
                if current and (too_many or too_big):
                    full.append(current)
                    current, current_bytes = [], 0
                current.append(file_id)
                current_bytes += size
            if not page and current:
                full.append(current)
            if full:
                with self._write() as db:
                    for ids in full:
                        self._insert_group(db, ids)
                formed += len(full)
            if not page:
                return formed

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
        return {_py_path(r[0]) or "" for r in rows}

    def _files(self, where: str, args: Sequence[Any] = ()) -> list[FileRow]:
        sql = _SELECT_FILES + where + _FILE_ORDER  # `where`: a literal of this module
        return [
            FileRow(
                id=row[0],
                path=_py_path(row[1]) or "",
                upload_name=row[2],
                size=row[3],
                state=row[4],
                group_id=row[5],
                job_id=row[6],
                job_status=row[7],
                output_path=_py_path(row[8]),
                error=row[9],
            )
            for row in self._read(sql, args)
        ]

    def _groups(
        self,
        state: GroupState,
        group_id: int | None = None,
        *,
        after: int = 0,
        limit: int = -1,
        upto: int | None = None,
    ) -> list[GroupRow]:
        """Groups in `state` (only `group_id`, if given) with ids over `after` (and up to
        `upto`), at most `limit` (-1: all), in id order, with their files: one query for the
        groups and one for every `_IN_PARAMS` of them, whatever their number."""
        sql = "SELECT id, state, job_id, sent_at FROM groups WHERE state = ? AND id > ?"
        args: tuple[Any, ...] = (state, after)
        if upto is not None:
            sql, args = sql + " AND id <= ?", (*args, upto)
        if group_id is not None:
            sql, args = sql + " AND id = ?", (*args, group_id)
        rows = self._read(sql + " ORDER BY id LIMIT ?", (*args, limit))
        if not rows:
            return []
        files: dict[int, list[FileRow]] = {row[0]: [] for row in rows}
        # The files of the groups read, `_IN_PARAMS` groups a query (not one query a group).
        for part in _parts(list(files)):
            for f in self._files(f"group_id IN ({_marks(part)})", part):
                files[f.group_id or 0].append(f)
        return [GroupRow(row[0], row[1], row[2], row[3], tuple(files[row[0]])) for row in rows]

    def iter_groups_to_send(self, page: int | None = None) -> Iterator[GroupRow]:
        """`groups_to_send` as they stand at the first read, read `page` (default `GROUP_PAGE`)
        groups at a time. Groups formed later (with higher ids), and groups put back to ``new``
        once read, are not returned: whoever forms or puts them back sends them."""
        page = page or GROUP_PAGE
        [(upto,)] = self._read("SELECT max(id) FROM groups WHERE state = ?", (GroupState.NEW,))
        after = 0
        while rows := self._groups(GroupState.NEW, after=after, limit=page, upto=upto or 0):
            after = rows[-1].id
            yield from rows

    def send_totals(self) -> tuple[int, int, int]:
        """Groups to send (``new``), their files and their bytes, counted in SQL."""
        rows = self._read(
            "SELECT count(DISTINCT g.id), count(f.id), total(f.size) FROM groups g "
            "LEFT JOIN files f ON f.group_id = g.id WHERE g.state = ?",
            (GroupState.NEW,),
        )
        groups, files, size = rows[0]
        return int(groups), int(files), int(size)

    # -- transitions: each updates a group and its files together -----------------------------

    def new_group(self, file_ids: Sequence[int]) -> int:
        """Form a ``new`` group of pending files, in this upload order; return its id."""
        with self._write() as db:
            return self._insert_group(db, file_ids)

    @staticmethod
    def _insert_group(db: sqlite3.Connection, file_ids: Sequence[int]) -> int:
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
            job_id, job_status = _db_text(job_id), _db_text(job_status)
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
        error = _db_text(error)
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
        error = _db_text(error)
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
        error = _db_text(error)
        with self._write() as db:
            db.execute("UPDATE groups SET error = ? WHERE id = ?", (error, group_id))
            db.execute("UPDATE files SET error = ? WHERE group_id = ?", (error, group_id))

    def group_job_missing(self, group_id: int, error: str) -> None:
        """The group's job no longer exists: the group ``finished``, its files not ``done``
        failed (`retry` with `failed_jobs` sends only them again); done files stay done, with
        their outputs."""
        with self._write() as db:
            db.execute(
                "UPDATE files SET state = ?, job_status = ?, output_path = NULL, error = ? "
                "WHERE group_id = ? AND state != ?",
                (FileState.FAILED, _UNKNOWN_JOB_STATUS, _db_text(error), group_id,
                 FileState.DONE),
            )  # fmt: skip
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
                [(FileState.FAILED, _db_text(error), file_id) for file_id, error in errors.items()],
            )

    def split_group(self, group_id: int, parts: Sequence[Sequence[int]], error: str) -> list[int]:
        """Replace a group the server refused (no job) by ``new`` groups of its files (file ids,
        in upload order), to be sent apart; return their ids. The old group is deleted."""
        error = _db_text(error)
        ids = []
        with self._write() as db:
            for part in parts:
                cur = db.execute(
                    "INSERT INTO groups (state, error) VALUES (?, ?)", (GroupState.NEW, error)
                )
                new_id = int(cur.lastrowid or 0)
                ids.append(new_id)
                db.executemany(
                    "UPDATE files SET group_id = ?, position = ?, state = ?, error = ? "
                    "WHERE id = ?",
                    [(new_id, i, FileState.PENDING, error, f) for i, f in enumerate(part)],
                )
            db.execute("DELETE FROM groups WHERE id = ?", (group_id,))
        return ids

    def take_out(self, keep: Callable[[str], bool]) -> int:
        """Remove from the batch the files that `keep` refuses and that no job holds (pending,
        or failed before or without a job); return how many. Groups left empty go too."""
        rows = self._read(
            "SELECT f.id, f.path FROM files f LEFT JOIN groups g ON g.id = f.group_id "
            "WHERE f.group_id IS NULL OR g.state IN (?, ?)",
            (GroupState.NEW, GroupState.REFUSED),
        )
        gone = [(row[0],) for row in rows if not keep(_py_path(row[1]) or "")]
        if gone:
            with self._write() as db:
                db.executemany("DELETE FROM files WHERE id = ?", gone)
                db.execute(
                    "DELETE FROM groups WHERE state IN (?, ?) AND id NOT IN "
                    "(SELECT group_id FROM files WHERE group_id IS NOT NULL)",
                    (GroupState.NEW, GroupState.REFUSED),
                )
        return len(gone)

    def claim_output(self, file_id: int, output_path: str) -> None:
        """Record where a file's output goes, before its download starts (see `used_outputs`)."""
        with self._write() as db:
            db.execute(
                "UPDATE files SET output_path = ? WHERE id = ?", (_db_path(output_path), file_id)
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
                (
                    state,
                    _db_text(job_status),
                    None if output_path is None else _db_path(output_path),
                    _db_text(error),
                    file_id,
                ),
            )

    @staticmethod
    def _finish_group(db: sqlite3.Connection, group_id: int, job_status: str) -> None:
        db.execute(
            "UPDATE groups SET state = ?, job_status = ? WHERE id = ?",
            (GroupState.FINISHED, _db_text(job_status), group_id),
        )


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
"""The `OSError` errnos that mean "no space left" (a full disk, a used-up quota)."""


def _is_full(path: Path) -> bool:
    """True when the file system holding `path` has no space left for us."""
    try:
        st = os.statvfs(path.parent)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def write_error(path: Path, what: str, reason: str, *, full: bool) -> LocalFileError:
    """`what` failed on `path`: which file system is full (or what failed), and how to resume."""
    mount = display_path(mount_point(path))
    if full:
        problem = f"the file system at {mount} is full ({reason}); free some space"
    else:
        problem = f"{reason} (file system at {mount}); fix that"
    return LocalFileError(
        f"{what}: {problem}, then run the same batch again to resume: what is done is kept "
        "and nothing is sent twice",
        path=path,
    )
