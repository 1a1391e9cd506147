"""What the command line shows while it works: bars in a terminal, lines in a log, or nothing.

In-process runs have a stderr that is not a terminal (pytest captures it): they see the
lines. The terminal case runs a child whose stderr is a pseudo-terminal.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_support import KEY, READY_LIMIT, Cli, Start, env_for

from unstructured_jobs import JobsClient
from unstructured_jobs._batch.manifest import FileState
from unstructured_jobs._commands._progress import BatchProgress, Lines, Mode, StatusProgress
from unstructured_jobs._constants import CLI_PROGRESS_INTERVAL
from unstructured_jobs._models import JobInformation, JobStatus
from unstructured_jobs.testing import Emulator, Schedule


@pytest.fixture
def emu(unstructured_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return unstructured_emulator_factory(api_key=KEY)


def _files(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        (folder / f"f{i}.txt").write_text(f"file {i}")


def test_without_a_terminal_a_batch_prints_count_lines(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    _files(tmp_path / "in", 4)
    r = cli("batch", "in", "--template-id", "t", "-o", "out", "--files-per-job", "2",
            "--launch-rate", "0", "--poll-interval", "0.01", env=env_for(emu), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "\r" not in r.stderr and "\x1b" not in r.stderr  # no bar drawing in a log
    assert lines[0] == ("batch: 0 files uploaded (0 B of 24 B), 0/2 jobs finished, 0/4 files done")
    assert lines[-1] == (
        "batch: 4 files uploaded (24 B of 24 B), 2/2 jobs finished, 4/4 files done"
    )
    assert all(line.startswith("batch: ") for line in lines[:-1])


def test_create_and_wait_print_upload_and_status_lines(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    r = cli("create", "--template-id", "t", str(doc), "--wait", "--poll-interval", "0.01",
            env=env_for(emu))  # fmt: skip
    assert r.returncode == 0, r.stderr
    (job_id,) = emu.jobs
    assert r.stderr.splitlines() == [
        "upload: 5 B of 5 B (100 %)",
        f"job {job_id}: COMPLETED",
    ]
    assert r.stdout.startswith("ID ")


def test_quiet_prints_nothing_but_errors(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY, fail_files=lambda name: name == "bad.txt")
    env = env_for(emu)
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    wait = ["--wait", "--poll-interval", "0.01"]
    r = cli("create", "--template-id", "t", str(doc), *wait, "--quiet", env=env)
    assert r == (0, "", "")
    r = cli("-q", "create", "--template-id", "t", str(doc), *wait, "--json", env=env)
    assert r.returncode == 0 and r.stderr == ""
    assert json.loads(r.stdout)[0]["status"] == "COMPLETED"
    (job_id, _) = emu.jobs
    for args in (["list"], ["get", job_id], ["details", job_id], ["failed-files", job_id],
                 ["wait", job_id], ["download", job_id, "-o", str(tmp_path / "out")]):  # fmt: skip
        assert cli(*args, "--quiet", env=env) == (0, "", ""), args
    _files(tmp_path / "in", 2)
    batch = ["batch", "in", "--template-id", "t", "--launch-rate", "0", "--poll-interval", "0.01"]
    assert cli(*batch, "--quiet", env=env, cwd=tmp_path) == (0, "", "")
    # A failure is an error: said on stderr, however quiet.
    bad = tmp_path / "bad.txt"
    bad.write_text("x")
    r = cli("create", "--template-id", "t", str(bad), *wait, "--quiet", env=env)
    assert (r.returncode, r.stdout) == (1, "") and r.stderr.startswith("unstructured-jobs: ")
    r = cli("get", job_id, "--quiet", env=env_for(emu, key="wrong-key-123456"))
    assert (r.returncode, r.stdout) == (3, "") and "401" in r.stderr


def test_json_prints_only_json_on_stdout(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    env = env_for(emu)
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    r = cli("create", "--template-id", "t", str(doc), "--wait", "--poll-interval", "0.01",
            "--json", env=env)  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout)[0]["status"] == "COMPLETED"
    assert r.stderr != ""  # the progress went to stderr
    (job_id,) = emu.jobs
    _files(tmp_path / "in", 2)
    for args in (["list"], ["get", job_id], ["details", job_id], ["failed-files", job_id],
                 ["wait", job_id], ["download", job_id, "-o", str(tmp_path / "out")],
                 ["batch", "in", "--template-id", "t", "--launch-rate", "0"]):  # fmt: skip
        r = cli(*args, "--json", env=env, cwd=tmp_path)
        assert r.returncode == 0, (args, r.stderr)
        json.loads(r.stdout)  # all of stdout is one JSON document


def test_in_a_terminal_wait_redraws_one_status_line(
    start: Start, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY, schedule=Schedule.manual())
    with JobsClient(api_key=KEY, server_url=emu.url) as client:
        job = client.create_job(template_id="t")
    leader, follower = pty.openpty()  # a terminal nobody sized (width 0), as CI runners make
    with open(follower, "w") as terminal:
        proc = start("wait", job.id, "--poll-interval", "0.05", env=env_for(emu), cwd=tmp_path,
                     stderr=terminal)  # fmt: skip
    seen = b""
    while f"job {job.id}: SCHEDULED".encode() not in seen:
        ready, _, _ = select.select([leader], [], [], READY_LIMIT)
        assert ready, seen
        seen += os.read(leader, 4096)
    emu.set_status(job.id, "COMPLETED")
    out, _ = proc.communicate(timeout=READY_LIMIT)
    os.close(leader)
    assert proc.returncode == 0 and job.id in out and "COMPLETED" in out
    assert b"\r" in seen  # redrawn in place, not a line per poll
    assert re.search(rb"SCHEDULED \[00:\d\d\]", seen), seen
    assert f"job {job.id}: SCHEDULED\n".encode() not in seen.replace(b"\r\n", b"\n")


# -- the throttle, on a clock the test moves -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_come_at_most_once_per_interval() -> None:
    clock, out = Clock(), io.StringIO()
    lines = Lines(interval=10.0, clock=clock, stream=out)
    lines.say("a")  # the first line
    clock.now = 9.9
    lines.say("b")  # too soon
    clock.now = 10.0
    lines.say("c")
    lines.say("d", force=True)  # a first/last line or a change of status: at once
    lines.say("d", force=True)  # never the same line twice
    assert out.getvalue() == "a\nc\nd\n"
    assert CLI_PROGRESS_INTERVAL == 10.0


def test_a_waited_job_says_each_change_at_once_and_the_rest_now_and_then(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    status = StatusProgress(Mode.LINES, "j1", clock=clock)

    def job(state: str) -> JobInformation:
        created = datetime(2026, 1, 1, tzinfo=UTC)
        return JobInformation("j1", "w", "n", JobStatus(state), created)

    for t, state in ((0, "SCHEDULED"), (1, "SCHEDULED"), (2, "IN_PROGRESS"), (5, "IN_PROGRESS"),
                     (12, "IN_PROGRESS"), (13, "IN_PROGRESS"), (14, "COMPLETED")):  # fmt: skip
        clock.now = t
        status(job(state))
    assert capsys.readouterr().err.splitlines() == [
        "job j1: SCHEDULED",
        "job j1: IN_PROGRESS",
        "job j1: still IN_PROGRESS after 12 s",
        "job j1: COMPLETED",
    ]


def test_batch_lines_count_failures(capsys: pytest.CaptureFixture[str]) -> None:
    progress = BatchProgress(Mode.LINES, lines=Lines(interval=0.0))
    progress.on_start(jobs=1, files=2, upload_bytes=10)
    progress.on_upload(10)
    progress.on_job_submitted("j", 2)
    progress.on_job_finished("j", "COMPLETED")
    progress.on_file("a", FileState.DONE)
    progress.on_file("b", FileState.FAILED)
    progress.close()
    assert capsys.readouterr().err.splitlines()[-1] == (
        "batch: 2 files uploaded (10 B of 10 B), 1/1 jobs finished, 1/2 files done, 1 failed"
    )
