"""A batch stays readable at 3,000 files and through pacing: a refusal (429) that is retried is
not an error line but a count in the summary (each one said with ``--debug``); retry notes are
lines of their own, never glued into a bar; a large batch prints its summary and failures
rather than a table of thousands of lines; long paths are cut to the terminal, control
characters in names escaped."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import KEY, Cli, env_for

from unstructured_jobs.testing import Emulator, Fault, FaultRates

BATCH = ["batch", "in", "--template-id", "t", "--launch-rate", "0", "--poll-interval", "0.01"]
SUMMARY = re.compile(r"^\d+ files: ")


def _files(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        (folder / f"f{i:04d}.txt").write_text(f"file {i}")


def _refusals(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.status == 429)


def test_3000_files_through_refusals_print_a_summary_not_a_line_per_429(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    # One launch in ten refused (429, Retry-After: 0), at random but seeded.
    rates = FaultRates(status_429=0.1, seed=3, methods=("POST",), path_prefix="/api/v1/jobs/")
    emu = unstructured_emulator_factory(
        api_key=KEY, fault_rates=rates, fail_files=lambda name: name.endswith("7.txt")
    )
    _files(tmp_path / "in", 3000)
    r = cli(*BATCH, "--concurrency", "8", env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 1  # the 300 files ending in 7 failed
    refused = _refusals(emu)
    assert refused >= 10  # the run was paced
    assert len(emu.jobs) == 300  # each refused launch sent again once, no more
    # stdout: the summary, counting the refusals, and how to see every file: no 3,000 rows.
    summary, hint = r.stdout.splitlines()
    assert summary.startswith("3000 files: 2700 done, 300 failed; 300 jobs; ")
    assert re.search(f"; paced: {refused} refusals \\(429\\), [\\w ]+ waited", summary), summary
    assert hint == "(a line per file: --table, or --json; 3000 files)"
    # stderr: the progress lines, the failures (20, then a count) and what to do. Not one line
    # per refusal.
    err = r.stderr.splitlines()
    assert not [line for line in err if "HTTP 429" in line or "next in" in line]
    failures = err.index("unstructured-jobs: error: 300 file(s) failed:")
    assert len([line for line in err[failures + 1 :] if line.startswith("  in/f")]) == 20
    assert "  ... and 280 more (--table or --json lists each)" in err
    assert re.search(f"paced: {refused} refusals \\(429\\), [\\w ]+ waited$", err[failures - 1])
    # The same report as JSON has every file, and the pacing.
    r = cli(*BATCH, "--json", env=env_for(emu), cwd=tmp_path)
    report = json.loads(r.stdout)
    assert len(report["files"]) == 3000 and report["counts"] == {"done": 2700, "failed": 300}
    assert report["pacing"] == {"refusals": 0, "waited_seconds": 0.0, "retries": 0}


def test_a_strict_launch_limit_is_pacing_not_errors(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    # The service's limiter: a launch less than 0.5 s after the last accepted one gets 429
    # with Retry-After. The command sends as fast as it can (--launch-rate 0).
    emu = unstructured_emulator_factory(api_key=KEY, launch_rate=2.0)
    _files(tmp_path / "in", 6)
    r = cli(*BATCH, "--files-per-job", "2", env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    refused = _refusals(emu)
    assert len(emu.jobs) == 3
    assert not [line for line in r.stderr.splitlines() if "HTTP 429" in line or "next in" in line]
    summary = r.stdout.splitlines()[-1]
    if refused:  # two uploads that arrive together: one of them is refused
        s = "s" * (refused != 1)
        assert re.search(f"; paced: {refused} refusal{s} \\(429\\), \\d+ s waited", summary)
    else:
        assert "paced" not in summary


def test_a_dry_run_of_a_large_batch_prints_its_table_on_request(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    _files(tmp_path / "in", 51)
    env = env_for(None, key=None)
    r = cli(*BATCH, "--dry-run", env=env, cwd=tmp_path)
    assert r.stdout.splitlines() == [
        "dry run: 51 files (347 B) would be sent in 6 jobs; nothing was sent",
        "(a line per file: --table, or --json; 51 files)",
    ]
    r = cli(*BATCH, "--dry-run", "--table", env=env, cwd=tmp_path)
    assert len(r.stdout.splitlines()) == 1 + 51 + 2  # header, a row per file, blank, summary
    (tmp_path / "in" / "f0000.txt").unlink()  # 50 files: a table by default
    r = cli(*BATCH, "--dry-run", env=env, cwd=tmp_path)
    assert len(r.stdout.splitlines()) == 1 + 50 + 2
    r = cli(*BATCH, "--dry-run", "--no-table", env=env, cwd=tmp_path)
    assert r.stdout.splitlines()[1] == "(a line per file: --table, or --json; 50 files)"


def test_debug_says_each_refusal_and_the_summary_the_time_waited(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY)
    emu.inject(Fault.status(429, retry_after="1"), method="POST", path="/api/v1/jobs/", times=2)
    _files(tmp_path / "in", 4)
    args = [*BATCH, "--files-per-job", "2", "--concurrency", "1"]
    r = cli(*args, "--debug", env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # One line per refusal, whether the client retried it (after Retry-After) or the batch's
    # launch scheduler sent it again.
    paced = [line for line in r.stderr.splitlines() if line.startswith("unstructured-jobs: paced:")]
    assert len(paced) == 2 and all(": HTTP 429" in line for line in paced), paced
    assert all(re.search(r"next (launch )?in \d\.\d s$", line) for line in paced), paced
    assert re.search(r"; paced: 2 refusals \(429\), \d+ s waited \(manifest: ", r.stdout)
    # Without --debug: no line, the count only.
    emu.inject(Fault.status(429, retry_after="1"), method="POST", path="/api/v1/jobs/", times=1)
    _files(tmp_path / "more", 1)
    more = ["batch", "more", *args[2:], "--manifest", "more.sqlite", "--json"]
    r = cli(*more, env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not [line for line in r.stderr.splitlines() if "HTTP 429" in line or "next in" in line]
    pacing = json.loads(r.stdout)["pacing"]
    assert (pacing["refusals"], pacing["retries"]) == (1, 0)
    assert pacing["waited_seconds"] >= 1.0  # the Retry-After at least


def test_retry_notes_are_lines_of_their_own_above_the_bars(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY)
    emu.inject(Fault.status(503, retry_after="0"), method="GET", path="/api/v1/jobs/*", times=3)
    _files(tmp_path / "in", 6)
    r = cli(*BATCH, "--files-per-job", "2", "--progress", env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\r" in r.stderr  # bars were drawn
    # What a terminal shows of each line is what follows its last carriage return (and the
    # cursor moving up to the line of a cleared bar): the note alone, not a bar with the note
    # glued to its end.
    shown = [re.sub(r"^(\x1b\[A)+", "", line.rsplit("\r", 1)[-1]) for line in r.stderr.split("\n")]
    notes = [line for line in shown if "next in" in line]
    assert len(notes) == 3
    for note in notes:
        assert re.fullmatch(
            r"unstructured-jobs: GET /api/v1/jobs/\S*: HTTP 503 \(attempt \d of 5\); next in 0\.0 s",
            note,
        ), note
    assert r.stdout.splitlines()[-1].split(" (manifest")[0].endswith("; 3 retries")


def test_long_paths_are_cut_to_the_terminal_and_control_characters_escaped(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY, fail_files=lambda name: "bad" in name)
    deep = tmp_path / "in" / ("very-long-folder-name/" * 4)
    deep.mkdir(parents=True)
    (deep / "report-bad.txt").write_text("x")
    (tmp_path / "in" / "two\nlines.txt").write_text("y")
    (tmp_path / "in" / "esc\x1b[31mred.txt").write_text("z")
    env = {**env_for(emu), "COLUMNS": "100"}  # a terminal 100 columns wide
    r = cli(*BATCH, env=env, cwd=tmp_path)
    assert r.returncode == 1
    rows = r.stdout.splitlines()[1:4]
    assert all(len(line) <= 100 for line in r.stdout.splitlines()[:4])
    assert "\x1b" not in r.stdout + r.stderr
    assert rows[0].startswith("in/esc\\x1b[31mred.txt ")
    assert rows[1].startswith("in/two\\nlines.txt ")
    assert re.match(r"in/very-…[-a-z/]*/report-bad\.txt ", rows[2]), rows[2]  # the name stays
    (failure,) = [line for line in r.stderr.splitlines() if "report-bad" in line]
    assert len(failure) <= 100 and failure.startswith("  in/very-long") and "…" in failure
    assert "/report-bad.txt: " in failure
    # A pipe without $COLUMNS gets every character.
    r = cli(*BATCH, "--dry-run", env=env_for(emu), cwd=tmp_path)
    assert str(Path("in", *["very-long-folder-name"] * 4, "report-bad.txt")) in r.stdout


@pytest.mark.parametrize("quiet", [False, True])
def test_a_single_command_still_says_its_retries(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], quiet: bool
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY)
    emu.inject(Fault.status(429, retry_after="0"), method="GET", path="/api/v1/jobs/")
    r = cli("list", *(["--quiet"] if quiet else []), env=env_for(emu))
    assert r.returncode == 0
    expected = (
        ""
        if quiet
        else ("unstructured-jobs: GET /api/v1/jobs/: HTTP 429 (attempt 1 of 5); next in 0.0 s\n")
    )
    assert r.stderr == expected
