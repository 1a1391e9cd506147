"""A batch of any size in bounded memory (issue 20, item 7): the walk is a stream in path order,
the manifest takes it a chunk at a time, grouping pages through SQL, and a dry run answers from
SQL with a lazy list of files. Speed is measured in benchmarks/w9_million.py, never here."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from unstructured_jobs._batch import manifest as _manifest
from unstructured_jobs._batch import plan as _plan
from unstructured_jobs._batch.engine import form_groups
from unstructured_jobs._batch.grouping import GroupLimits
from unstructured_jobs._batch.manifest import FileState, Manifest
from unstructured_jobs._batch.walk import Walk, iter_files
from unstructured_jobs._files.inputs import request_data_json
from unstructured_jobs.batch import PlannedAction, plan_batch


def tree(root: Path, rels: list[str]) -> Path:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    return root


def test_the_walk_yields_every_file_in_path_order_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Names where folder order and path order differ: "b-c/" sorts before "b/", "b.txt" too.
    rels = ["b/y.txt", "b-c/x.txt", "b.txt", "a", "b/z/deep.txt", "b0", "B.txt", "é.txt"]
    root = tree(tmp_path / "in", rels)
    found = [p for p, _size in iter_files([root])]
    assert found == sorted(str(root / r) for r in rels)
    # A stream: the first file comes after listing the folders on its way, not the tree.
    listed: list[str] = []
    real_scandir = os.scandir

    def counting(path: str) -> object:
        listed.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    stream = iter_files([root])
    assert next(stream)[0] == str(root / "B.txt")
    assert listed == [str(root)]  # b/, b-c/ and b/z/ not listed yet


def test_a_file_reached_by_several_inputs_is_taken_once_by_the_smallest_path(
    tmp_path: Path,
) -> None:
    real = tree(tmp_path / "real", ["a.txt", "sub/b.txt", "sub/c.txt"])
    (tmp_path / "alias").symlink_to(real)  # the same folder through a link
    (real / "sub" / "link.txt").symlink_to(real / "a.txt")  # a file under a second name
    inputs = [real / "sub", tmp_path / "alias", real, real / "sub" / "b.txt"]
    walk = Walk(inputs)
    found = [p for p, _name, _size in walk]
    assert walk.problems == []
    assert sorted(os.path.realpath(p) for p in found) == sorted(
        str(real / r) for r in ["a.txt", "sub/b.txt", "sub/c.txt"]
    )
    # "alias/..." sorts before "real/...": the paths through the link are the first found.
    assert found == sorted(str(tmp_path / "alias" / r) for r in ["a.txt", "sub/b.txt", "sub/c.txt"])


def test_the_manifest_takes_the_walk_a_bounded_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_manifest, "ADD_CHUNK", 3)
    path = tmp_path / "m.sqlite"
    m = Manifest(path)
    reader = sqlite3.connect(path, check_same_thread=False)  # the walk is read ahead
    held: list[int] = []

    def files() -> Iterator[tuple[str, str, int]]:
        for i in range(40):
            recorded = reader.execute("SELECT count(*) FROM files").fetchone()[0]
            held.append(i - recorded)  # taken from the walk, not recorded yet
            yield f"/in/{i:03d}.txt", f"{i:03d}.txt", i

    try:
        assert m.add_files(files()) == 40
        assert len(m.all_files()) == 40
        # The chunk being recorded and the one read ahead, never the whole walk.
        assert max(held) <= 3 * 3
        assert m.add_files(files()) == 0  # known: nothing added twice
    finally:
        reader.close()
        m.close()


def test_names_stay_unique_across_chunks_in_the_order_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_manifest, "ADD_CHUNK", 2)
    m = Manifest(None)
    try:
        files = [(f"/in/{d}/report.pdf", "report.pdf", 1) for d in "abcde"]
        files.insert(2, ("/in/x/report (3).pdf", "report (3).pdf", 1))
        m.add_files(files)
        m.add_files([("/in/f/report.pdf", "report.pdf", 1)])  # a later run: still unique
        names = {f.path: f.upload_name for f in m.all_files()}
    finally:
        m.close()
    assert names == {
        "/in/a/report.pdf": "report.pdf",
        "/in/b/report.pdf": "report (2).pdf",
        "/in/x/report (3).pdf": "report (3).pdf",
        "/in/c/report.pdf": "report (4).pdf",
        "/in/d/report.pdf": "report (5).pdf",
        "/in/e/report.pdf": "report (6).pdf",
        "/in/f/report.pdf": "report (7).pdf",
    }


@pytest.mark.parametrize("job_bytes", [None, 10])
def test_grouping_pages_through_the_files_in_path_order(
    monkeypatch: pytest.MonkeyPatch, job_bytes: int | None
) -> None:
    monkeypatch.setattr(_manifest, "ADD_CHUNK", 2)  # pages of 2: groups span pages
    sizes = [4, 4, 4, 1, 9, 2, 2, 30, 3]
    m = Manifest(None)
    try:
        m.add_files([(f"/in/{i}.txt", f"{i}.txt", s) for i, s in reversed(list(enumerate(sizes)))])
        form_groups(m, GroupLimits(3, 20, job_bytes), retry_failed=False)
        groups = [[f.path for f in g.files] for g in m.groups_to_send()]
        [too_big] = [f for f in m.all_files() if f.state == FileState.FAILED]
    finally:
        m.close()
    assert too_big.path == "/in/7.txt"
    assert too_big.error == "file is 30 bytes, over the limit of 20 bytes per file"
    order = [0, 1, 2, 3, 4, 5, 6, 8]
    if job_bytes is None:
        expected = [order[0:3], order[3:6], order[6:]]
    else:  # at most 10 bytes a job
        expected = [[0, 1], [2, 3], [4], [5, 6, 8]]
    assert groups == [[f"/in/{i}.txt" for i in g] for g in expected]


@pytest.mark.parametrize("job_bytes", [None, 10])
def test_a_dry_run_plans_the_groups_a_run_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_bytes: int | None
) -> None:
    monkeypatch.setattr(_plan, "PAGE", 2)
    root = tmp_path / "in"
    root.mkdir()
    sizes = [4, 4, 4, 1, 9, 2, 2, 30, 3, 5, 5]
    for i, size in enumerate(sizes):
        (root / f"{i:02d}.txt").write_bytes(b"x" * size)
    options = {"files_per_job": 3, "max_file_bytes": 20, "max_job_bytes": job_bytes}
    manifest = tmp_path / "m.sqlite"
    # A first run formed some groups (and failed a file) before it stopped.
    m = Manifest(manifest)
    try:
        m.check_request_data(request_data_json(template_id="t", job_nodes=None, request_data=None))
        m.add_files([(str(root / f"{i:02d}.txt"), f"{i:02d}.txt", sizes[i]) for i in range(4)])
        form_groups(m, GroupLimits(3, 20, job_bytes), retry_failed=False)
    finally:
        m.close()
    sizes[3] = 2  # a pending file that changed since: planned (and sent) at its new size
    (root / "03.txt").write_bytes(b"x" * sizes[3])
    plan = plan_batch([root], template_id="t", manifest=manifest, **options)  # type: ignore[arg-type]
    planned = list(plan.files)
    assert len(plan.files) == len(planned) == len(sizes)
    assert plan.files == tuple(planned)  # the old attribute still compares as a sequence
    # The run itself, on a copy of the manifest: the same jobs, the same files in each.
    m = Manifest.copy_of(manifest)
    try:
        m.add_files([(str(root / f"{i:02d}.txt"), f"{i:02d}.txt", s) for i, s in enumerate(sizes)])
        form_groups(m, GroupLimits(3, 20, job_bytes), retry_failed=False)
        run_groups = [sorted(f.path for f in g.files) for g in m.groups_to_send()]
        failed = {f.path: f.error for f in m.all_files() if f.state == FileState.FAILED}
    finally:
        m.close()
    jobs: dict[int, list[str]] = {}
    for f in planned:
        if f.action == PlannedAction.SEND:
            assert f.job is not None
            jobs.setdefault(f.job, []).append(f.path)
    assert [sorted(jobs[n]) for n in sorted(jobs)] == run_groups
    assert plan.jobs == len(run_groups)
    assert plan.upload_bytes == sum(s for s in sizes if s <= 20)
    assert {f.path: f.size for f in planned} == {
        str(root / f"{i:02d}.txt"): s for i, s in enumerate(sizes)
    }
    assert {f.path: f.reason for f in planned if f.action == PlannedAction.FAIL} == failed
    assert plan.counts() == {PlannedAction.SEND: len(sizes) - 1, PlannedAction.FAIL: 1}
    with sqlite3.connect(manifest) as db:  # the dry run only read it
        assert db.execute("SELECT count(*) FROM files").fetchone() == (4,)


def test_a_walk_over_known_files_updates_only_the_sizes_of_pending_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_manifest, "ADD_CHUNK", 3)
    m = Manifest(None)
    try:
        files = [(f"/in/{i}.txt", f"{i}.txt", 10) for i in range(7)]
        assert m.add_files(files) == 7
        done = {f.path: f.id for f in m.all_files()}["/in/1.txt"]
        m.file_outcome(done, state=FileState.DONE, job_status="COMPLETED", output_path=None,
                       error=None)  # fmt: skip
        again = [(p, n, 10 + (i in (1, 4))) for i, (p, n, _size) in enumerate(files)]
        assert m.add_files(again) == 0  # every chunk known, in order
        assert m.add_files([*again, ("/in/9.txt", "9.txt", 1)]) == 1
        sizes = {f.path: f.size for f in m.all_files()}
    finally:
        m.close()
    # 4.txt is pending: its new size counts; 1.txt is done: its record stays as it was sent.
    assert sizes == {**{p: 10 for p, _n, _s in files}, "/in/4.txt": 11, "/in/9.txt": 1}
