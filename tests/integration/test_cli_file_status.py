"""``unstructured-jobs file-status JOB_ID`` against the emulator, in this process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cli_support import KEY, Cli, env_for

from unstructured_jobs.testing import Emulator, Schedule


def test_file_status_lists_each_file_with_its_state(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(
        api_key=KEY, schedule=Schedule.manual(), fail_files=lambda name: name == "bad.txt"
    )
    env = env_for(emu)
    for name in ("good.txt", "bad.txt"):
        (tmp_path / name).write_text(name)
    r = cli("create", "--template-id", "t", "--json",
            str(tmp_path / "good.txt"), str(tmp_path / "bad.txt"), env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (job,) = json.loads(r.stdout)
    job_id = job["id"]

    r = cli("file-status", job_id, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"job {job_id}: 2 file(s): 2 READY"
    assert lines[1].split() == ["DOCUMENT", "STATUS", "SECONDS", "NODE", "ERROR"]
    assert [line.split()[:2] for line in lines[2:]] == [["good.txt", "READY"], ["bad.txt", "READY"]]

    emu.advance(job_id, steps=2)  # done: one file failed
    r = cli("file-status", job_id, env=env)
    lines = r.stdout.splitlines()
    assert lines[0] == f"job {job_id}: 2 file(s): 1 SUCCESS, 1 FAILURE"
    good, bad = (line.split() for line in lines[2:])
    assert good[:3] == ["good.txt", "SUCCESS", "0.0"] and len(good) == 4  # no error
    assert bad[:2] == ["bad.txt", "FAILURE"] and "Partitioner:" in bad

    r = cli("file-status", job_id, "--json", env=env)
    data = json.loads(r.stdout)
    assert data["id"] == job_id and data["truncated"] is False
    assert [(f["document"], f["status"]) for f in data["files"]] == [
        ("good.txt", "SUCCESS"),
        ("bad.txt", "FAILURE"),
    ]
    assert data["files"][1]["error"].startswith("Partitioner:")
    r = cli("file-status", job_id, "--quiet", env=env)
    assert (r.returncode, r.stdout) == (0, "")

    r = cli("file-status", "not-a-uuid", env=env)
    assert r.returncode == 2 and "not a job_id" in r.stderr
    r = cli("file-status", "00000000-0000-4000-8000-000000000000", env=env)
    assert r.returncode == 3 and "Job not found" in r.stderr
