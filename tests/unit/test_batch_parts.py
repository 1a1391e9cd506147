"""The batch's parts on their own: its states, the manifest (format, lock) and input expansion."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import AsyncJobsClient, InvalidInputError, UnstructuredJobsError
from unstructured_jobs._batch.manifest import Manifest
from unstructured_jobs._batch.paths import collect_files
from unstructured_jobs.batch import (
    BatchReport,
    FileResult,
    FileState,
    GroupState,
    UnsafePathError,
    output_path_inside,
    submit_batch,
)
from unstructured_jobs.testing import Emulator

# -- states --------------------------------------------------------------------------------------


def test_states_are_their_strings_so_comparing_with_text_keeps_working() -> None:
    result = FileResult(path="a.pdf", state="done")  # a string is converted
    assert result.state == "done" and result.ok
    assert result.state is FileState.DONE
    assert f"{result.state}" == str(result.state) == "done"
    report = BatchReport((result, FileResult(path="b.pdf", state=FileState.FAILED)))
    assert report.counts() == {"done": 1, "failed": 1}
    assert report.counts()["failed"] == 1
    assert json.dumps({"counts": report.counts(), "state": result.state}) == (
        '{"counts": {"done": 1, "failed": 1}, "state": "done"}'
    )
    assert [s.value for s in FileState] == ["pending", "submitting", "submitted", "done", "failed"]
    groups = ["new", "submitting", "submitted", "finished", "refused"]
    assert [s.value for s in GroupState] == groups


def test_unsafe_path_error_is_on_the_ladder_and_still_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError) as info:
        output_path_inside(tmp_path, "../x.json")
    assert isinstance(info.value, InvalidInputError)
    assert isinstance(info.value, UnstructuredJobsError)
    assert isinstance(info.value, ValueError)


# -- the manifest's format -----------------------------------------------------------------------


def test_the_manifest_stores_the_same_plain_strings(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    m = Manifest(path)
    try:
        m.add_files([("/in/a.pdf", "a.pdf", 3), ("/in/b.pdf", "b.pdf", 4)])
        a, b = m.all_files()
        group = m.new_group([a.id, b.id])
        m.group_sending(group, "2026-01-01T00:00:00+00:00")
        m.group_created(group, "job-1", "SCHEDULED")
        m.file_outcome(a.id, state=FileState.DONE, job_status="COMPLETED", output_path=None,
                       error=None)  # fmt: skip
        m.group_finished(group, "COMPLETED")
    finally:
        m.close()
    with sqlite3.connect(path) as db:
        files = db.execute("SELECT path, state, typeof(state) FROM files ORDER BY path").fetchall()
        groups = db.execute("SELECT state, typeof(state) FROM groups").fetchall()
    assert files == [("/in/a.pdf", "done", "text"), ("/in/b.pdf", "submitted", "text")]
    assert groups == [("finished", "text")]


def test_a_manifest_written_before_the_enums_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # what version 1 wrote, by hand
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE groups (id INTEGER PRIMARY KEY, state TEXT NOT NULL, job_id TEXT,
                sent_at TEXT, job_status TEXT, error TEXT);
            CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,
                upload_name TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, state TEXT NOT NULL,
                group_id INTEGER REFERENCES groups(id), position INTEGER, job_id TEXT,
                job_status TEXT, output_path TEXT, error TEXT);
            INSERT INTO meta VALUES ('schema', '1'), ('request_data', '{"template_id": "t"}');
            INSERT INTO groups VALUES (1, 'submitting', NULL, '2026-01-01T00:00:00+00:00',
                NULL, NULL);
            INSERT INTO files VALUES (1, '/in/a.pdf', 'a.pdf', 3, 'submitting', 1, 0, NULL,
                NULL, NULL, NULL);
            INSERT INTO files VALUES (2, '/in/b.pdf', 'b.pdf', 3, 'pending', NULL, NULL, NULL,
                NULL, NULL, NULL);
            """
        )
    db.close()
    m = Manifest(path)
    try:
        m.check_request_data('{"template_id": "t"}')
        [leftover] = m.groups_to_reconcile()
        assert leftover.state is GroupState.SUBMITTING and leftover.names == ("a.pdf",)
        assert leftover.files[0].state is FileState.SUBMITTING
        [pending] = m.ungrouped_pending_files()
        assert pending.path == "/in/b.pdf" and pending.state == "pending"
    finally:
        m.close()


# -- the manifest's lock -------------------------------------------------------------------------

_HOLDER = """
import sys
from unstructured_jobs._batch.manifest import Manifest

m = Manifest(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()  # hold the manifest until the test says so
m.close()
"""


@pytest.fixture
def held_elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A manifest that another process has open (as a running batch has)."""
    path = tmp_path / "batch.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        yield path
    finally:
        if holder.stdin is not None:
            holder.stdin.close()  # end of input: the holder closes the manifest and exits
        assert holder.wait(timeout=30) == 0


async def test_a_second_batch_on_a_manifest_in_use_is_refused(
    held_elsewhere: Path,
    unstructured_emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
) -> None:
    emu = unstructured_emulator_factory()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        with pytest.raises(InvalidInputError, match="is in use by another batch process"):
            await submit_batch(client, [tmp_path / "in"], template_id="t", manifest=held_elsewhere)
    assert emu.requests == []  # refused before anything was sent


def test_the_manifest_lock_is_exclusive_and_released_on_close(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    first = Manifest(path)
    try:
        with pytest.raises(InvalidInputError, match="in use by another batch process"):
            Manifest(path)
    finally:
        first.close()
    Manifest(path).close()  # free again once the first one is closed
    Manifest(None).close()  # in memory: nothing to lock
    Manifest(None).close()


# -- expanding folders ---------------------------------------------------------------------------


def test_hidden_folders_and_files_are_skipped_inside_folders(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for rel in ["a.txt", ".env", ".git/config", "sub/b.txt", "sub/.hidden.txt",
                "sub/.cache/c.txt", ".venv/lib/d.txt"]:  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)

    def found(*inputs: Path, include_hidden: bool = False) -> list[str]:
        files, problems = collect_files(inputs, include_hidden=include_hidden)
        assert problems == []
        return [Path(p).relative_to(root).as_posix() for p, _size in files]

    assert found(root) == ["a.txt", "sub/b.txt"]
    assert found(root, include_hidden=True) == [
        ".env", ".git/config", ".venv/lib/d.txt", "a.txt", "sub/.cache/c.txt",
        "sub/.hidden.txt", "sub/b.txt",
    ]  # fmt: skip
    # Named explicitly, a hidden folder or file is taken: the rule is about what a folder holds.
    assert found(root / ".git", root / ".env") == [".env", ".git/config"]


# -- names as sent, paths as stored (issue 11) ---------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["plain.pdf", "line\nfeed.txt", "car\rriage.txt", "tab\t.txt", "esc\x1b[0m.txt", "del\x7f.txt",
     'quote".txt', "back\\slash.txt", "caf\udce9.txt", "50%0A.txt"],
)  # fmt: skip
def test_name_as_sent_is_what_the_multipart_body_puts_on_the_wire(name: str) -> None:
    from unstructured_jobs._batch.paths import name_as_sent
    from unstructured_jobs._files.inputs import _clean_name
    from unstructured_jobs._files.multipart import _quote_param

    sent = name_as_sent(name)
    # The wire form, once the server undoes the quoted-string escapes (\\ and \"), is it.
    quoted = _quote_param(_clean_name(name))
    assert quoted[0] == quoted[-1] == '"'
    unescaped = quoted[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    assert unescaped == sent
    assert name_as_sent(sent) == sent  # applying it twice changes nothing
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in sent)
    sent.encode("utf-8")  # storable and printable anywhere


def test_the_manifest_keeps_paths_that_are_not_utf8_exactly(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "m.sqlite")
    latin1 = os.fsdecode(b"/in/caf\xe9.txt")
    try:
        m.add_files([(latin1, os.path.basename(latin1), 3), ("/in/cafe.txt", "cafe.txt", 3)])
        m.add_files([(latin1, os.path.basename(latin1), 4)])  # known: its size is updated
        rows = {f.path: f for f in m.all_files()}
        assert set(rows) == {latin1, "/in/cafe.txt"}
        assert rows[latin1].upload_name == "caf\ufffd.txt" and rows[latin1].size == 4
        m.claim_output(rows[latin1].id, latin1 + ".json")
        assert m.used_outputs() == {latin1 + ".json"}
        m.reject(latin1, f"cannot read {latin1}")
        [failed] = [f for f in m.all_files() if f.state == FileState.FAILED]
        assert failed.error == "cannot read /in/caf\\xe9.txt"  # shown, storable
    finally:
        m.close()


def test_upload_names_are_unique_as_sent(tmp_path: Path) -> None:
    m = Manifest(None)
    try:
        m.add_files([
            (os.fsdecode(b"/a/caf\xe9.txt"), os.fsdecode(b"caf\xe9.txt"), 1),
            (os.fsdecode(b"/b/caf\xe8.txt"), os.fsdecode(b"caf\xe8.txt"), 1),
            ("/c/caf\ufffd.txt", "caf\ufffd.txt", 1),
            ("/d/a\nb.txt", "a\nb.txt", 1),
            ("/e/a%0Ab.txt", "a%0Ab.txt", 1),
        ])  # fmt: skip
        names = sorted(f.upload_name for f in m.all_files())
    finally:
        m.close()
    assert names == ["a%0Ab (2).txt", "a%0Ab.txt", "caf\ufffd (2).txt", "caf\ufffd (3).txt",
                     "caf\ufffd.txt"]  # fmt: skip


# -- the server's clock (issue 11) ---------------------------------------------------------------


def test_the_server_offset_comes_from_the_date_header() -> None:
    from datetime import UTC, datetime, timedelta

    from unstructured_jobs._batch.grouping import server_offset

    received = datetime(2026, 1, 1, 13, 0, 0, 500000, tzinfo=UTC)
    assert server_offset("Thu, 01 Jan 2026 12:00:00 GMT", received) == -timedelta(
        hours=1, microseconds=500000
    )
    assert server_offset("Thu, 01 Jan 2026 12:00:00 -0000", received) is not None
    for garbage in (None, "", "yesterday", "Thu, 99 Foo 2026"):
        assert server_offset(garbage, received) is None


def test_a_lost_job_is_matched_on_the_servers_clock() -> None:
    from datetime import UTC, datetime, timedelta

    from unstructured_jobs import JobInformation, JobStatus
    from unstructured_jobs._batch.grouping import match_job

    sent = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)  # our clock, an hour ahead
    behind = -timedelta(hours=1, seconds=1)  # measured: Date is whole seconds, received later

    def job(job_id: str, server_time: datetime, names: tuple[str, ...] = ("a%0Ab",)) -> Any:
        return JobInformation(job_id, "w", "n", JobStatus.SCHEDULED, server_time, None, names)

    ours = job("ours", datetime(2026, 1, 1, 12, 0, 0, 300000, tzinfo=UTC))
    older = job("older", datetime(2026, 1, 1, 11, 50, tzinfo=UTC))  # another run, same names
    skew = timedelta(seconds=300)
    assert match_job(["a\nb"], sent, [ours], set(), skew) is None  # a fixed tolerance misses
    found = match_job(["a\nb"], sent, [older, ours], set(), skew, behind)
    assert found is ours  # raw names and names as sent are the same name
    assert match_job(["a\nb"], sent, [older], set(), skew, behind) is None  # 10 min too old
    assert match_job(["a\nb"], sent, [ours], {"ours"}, skew, behind) is None


# -- stale .part files (issue 11) ----------------------------------------------------------------


def test_only_our_own_part_files_are_removed(tmp_path: Path) -> None:
    from unstructured_jobs._files.downloads import part_name, remove_stale_parts

    ours = part_name(tmp_path / "a.pdf.json")
    assert ours.parent == tmp_path and ours.name.startswith(".a.pdf.json.")
    names = [ours.name, ".b.json.0123456789ab.part", ".a.pdf.json.part", ".a.pdf.json.XYZ.part",
             ".a.pdf.json.0123456789ABCDEF.part", "a.pdf.json.0123456789ab.part", ".foo.part"]  # fmt: skip
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_stale_parts(tmp_path, {"a.pdf.json"})
    assert removed == [ours.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
    assert remove_stale_parts(tmp_path / "missing", {"a.pdf.json"}) == []


def test_an_unusable_manifest_file_is_named_and_typed(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(InvalidInputError, match=r"notes\.txt is not a batch manifest"):
        Manifest(garbage)
    manifest = tmp_path / "m.sqlite"
    Manifest(manifest).close()
    with sqlite3.connect(manifest) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(manifest, "r+b") as f:  # the schema page, past its 100-byte file header
        f.seek(100)
        f.write(b"\xa5" * (size - 100))
    with pytest.raises(InvalidInputError, match=r"the manifest .*m\.sqlite is damaged"):
        Manifest(manifest)


@pytest.mark.parametrize(
    ("include", "exclude", "path", "taken"),
    [
        ((), (), "/d/a.pdf", True),
        (("*.pdf",), (), "/d/a.pdf", True),
        (("*.pdf",), (), "/d/a.PDF", False),  # case matters, as in rclone
        (("*.pdf",), (), "/d/x.pdf/a.txt", False),  # a name pattern looks at the name only
        (("*.pdf", "*.txt"), (), "/d/a.txt", True),
        ((), ("*.tmp",), "/d/a.tmp", False),
        ((), ("drafts/**",), "/d/drafts/x/a.pdf", False),
        ((), ("drafts/**",), "/d/mydrafts/a.pdf", True),  # at a folder boundary only
        ((), ("drafts/*",), "/d/drafts/x/a.pdf", True),  # `*` does not cross a `/`
        ((), ("**/old/*.pdf",), "/d/x/old/a.pdf", False),
        ((), ("/d/*.pdf",), "/d/a.pdf", False),  # a leading `/` anchors at the root
        ((), ("/d/*.pdf",), "/e/d/a.pdf", True),
        (("a?.txt",), (), "/d/ab.txt", True),
        (("a[0-9].txt",), (), "/d/a7.txt", True),
        (("a[!0-9].txt",), (), "/d/a7.txt", False),
        (("*.pdf",), ("secret*",), "/d/secret.pdf", False),  # exclude wins
        (("a+b (1).pdf",), (), "/d/a+b (1).pdf", True),  # regex characters are literal
    ],
)
def test_path_filter(
    include: tuple[str, ...], exclude: tuple[str, ...], path: str, taken: bool
) -> None:
    from unstructured_jobs._batch.paths import path_filter

    assert path_filter(include, exclude)(path) is taken
