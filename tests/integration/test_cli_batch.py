"""``unstructured-jobs batch`` like rclone: a dry run, include/exclude filters, a summary line,
failures listed with what to do, and paths as given or absolute."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import KEY, Cli, env_for

from unstructured_jobs.testing import Emulator

BATCH = ["batch", "in", "--template-id", "t", "--launch-rate", "0", "--poll-interval", "0.01"]


@pytest.fixture
def emu(unstructured_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return unstructured_emulator_factory(api_key=KEY)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_dry_run_sends_nothing_and_says_files_jobs_and_bytes(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    _write(tmp_path / "in", {"a.txt": "aaaa", "b.txt": "bb", "c.txt": "c", "big.txt": "x" * 50})
    args = [*BATCH, "-o", "out", "--files-per-job", "2", "--max-file-size", "10", "--dry-run"]
    env = env_for(emu, key=None)  # no API key needed: nothing can be sent
    r = cli(*args, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[1:5]]
    assert rows == [
        ["in/a.txt", "4", "B", "send", "1"],
        ["in/b.txt", "2", "B", "send", "1"],
        ["in/big.txt", "50", "B", "fail", "file", "is", "50", "bytes,", "over", "the", "limit",
         "of", "10", "bytes", "per", "file"],
        ["in/c.txt", "1", "B", "send", "2"],
    ]  # fmt: skip
    assert r.stdout.splitlines()[-1] == (
        "dry run: 3 files (7 B) would be sent in 2 jobs; 1 would fail; nothing was sent"
    )
    r = cli(*args, "--json", env=env, cwd=tmp_path)
    plan = json.loads(r.stdout)
    assert (plan["dry_run"], plan["jobs"], plan["upload_bytes"]) == (True, 2, 7)
    assert plan["counts"] == {"send": 3, "fail": 1}
    assert emu.requests == []  # nothing sent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written


def test_a_dry_run_after_a_run_plans_what_the_next_run_does(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    _write(tmp_path / "in", {"a.txt": "a", "b.txt": "b"})
    env = env_for(emu)
    assert cli(*BATCH, "-o", "out", env=env, cwd=tmp_path).returncode == 0
    _write(tmp_path / "in", {"c.txt": "c", "d.txt": "d", "e.txt": "e"})
    manifest = tmp_path / "out" / ".unstructured-jobs.sqlite"
    before = hashlib.sha256(manifest.read_bytes()).hexdigest()
    sent = len(emu.requests)
    r = cli(*BATCH, "-o", "out", "--files-per-job", "2", "--dry-run", "--json", env=env,
            cwd=tmp_path)  # fmt: skip
    plan = json.loads(r.stdout)
    actions = {Path(f["path"]).name: (f["action"], f["job"]) for f in plan["files"]}
    assert actions == {
        "a.txt": ("done", None),
        "b.txt": ("done", None),
        "c.txt": ("send", 1),
        "d.txt": ("send", 1),
        "e.txt": ("send", 2),
    }
    assert len(emu.requests) == sent
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == before
    # The real run does what the plan said.
    jobs = len(emu.jobs)
    r = cli(*BATCH, "-o", "out", "--files-per-job", "2", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(emu.jobs) == jobs + 2
    assert sorted(f.filename for f in emu.received_files()) == [f"{c}.txt" for c in "abcde"]
    # A dry run refuses what the run would refuse: another job definition, exit 2.
    r = cli(*BATCH[:3], "other", *BATCH[4:], "-o", "out", "--dry-run", env=env, cwd=tmp_path)
    assert r.returncode == 2 and "belongs to a batch with other job settings" in r.stderr


def test_include_and_exclude_patterns_repeat(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    _write(tmp_path / "in", {
        "a.pdf": "a", "b.txt": "b", "c.docx": "c", "drafts/d.pdf": "d", "drafts/old/e.pdf": "e",
        "keep/f.pdf": "f",
    })  # fmt: skip
    filters = ["--include", "*.pdf", "--include", "*.docx", "--exclude", "drafts/**"]
    r = cli(*BATCH, *filters, "--dry-run", env=env_for(emu), cwd=tmp_path)
    assert "3 files (3 B) would be sent in 1 job; 3 left out by --include/--exclude" in r.stdout
    r = cli(*BATCH, *filters, "--json", env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(f.filename for f in emu.received_files()) == ["a.pdf", "c.docx", "f.pdf"]


def test_the_run_ends_with_a_summary_and_the_failures_with_what_to_do(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    failing = {"b.txt"}
    emu = unstructured_emulator_factory(api_key=KEY, fail_files=lambda name: name in failing)
    _write(tmp_path / "in", {"a.txt": "a", "b.txt": "b", "c.txt": "c"})
    r = cli(*BATCH, "-o", "out", env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 1
    summary = r.stdout.splitlines()[-1]
    assert summary.startswith("3 files: 2 done, 1 failed; 1 job; 3 B uploaded in ")
    assert summary.endswith(" (manifest: out/.unstructured-jobs.sqlite)")
    errors = [line for line in r.stderr.splitlines() if not line.startswith("batch: ")]
    assert errors == [
        "unstructured-jobs: error: 1 file(s) failed:",
        "  in/b.txt: Partitioner: unable to process the document (emulated failure)",
        "unstructured-jobs: fix the cause shown for each, then run the same command again with "
        "--retry-failed to send them again",
    ]
    failing.clear()
    r = cli(*BATCH, "-o", "out", "--retry-failed", env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("3 files: 3 done; 2 jobs; 1 B uploaded in ")


def test_paths_are_shown_as_given_or_absolute_never_dot_dot(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    data, work = tmp_path / "data", tmp_path / "work"
    _write(data / "in", {"a.txt": "a"})
    _write(work / "in", {"b.txt": "b"})
    args = ["batch", str(data / "in"), "in", "--template-id", "t", "--launch-rate", "0",
            "--poll-interval", "0.01", "-o", "out"]  # fmt: skip
    r = cli(*args, env=env_for(emu), cwd=work)
    assert r.returncode == 0, r.stderr
    assert ".." not in r.stdout
    files = [line.split()[0] for line in r.stdout.splitlines()[1:3]]
    assert files == [str(data / "in" / "a.txt"), "in/b.txt"]
    outputs = [line.split()[-1] for line in r.stdout.splitlines()[1:3]]
    assert outputs == ["out/a.txt.json", "out/b.txt.json"]
