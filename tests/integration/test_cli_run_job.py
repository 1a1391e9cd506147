"""Issue 13 on the command line: ``templates``, ``workflows`` (a list, or one with ``--id``),
and ``create -o DIR``, which waits and downloads every output (`run_job`); all with ``--json``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import KEY, Cli, env_for

from unstructured_jobs.testing import Emulator, Schedule


@pytest.fixture
def emu(unstructured_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return unstructured_emulator_factory(api_key=KEY)


def test_templates_list_and_one(cli: Cli, emu: Emulator) -> None:
    env = env_for(emu)
    r = cli("templates", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["ID", "NAME", "VERSION", "LAST_UPDATED",
                                                "DESCRIPTION"]  # fmt: skip
    assert any(line.startswith("hi_res_partition ") for line in r.stdout.splitlines())
    listed = json.loads(cli("templates", "--json", env=env).stdout)
    assert {"hi_res_partition", "hi_res_and_enrichment"} <= {t["id"] for t in listed}
    r = cli("templates", "--id", "hi_res_partition", env=env)
    assert r.returncode == 0 and r.stdout.startswith("hi_res_partition: ")
    assert "NODE_ID" in r.stdout and "partition" in r.stdout.lower()
    one = json.loads(cli("templates", "--id", "hi_res_partition", "--json", env=env).stdout)
    assert one["id"] == "hi_res_partition" and one["nodes"]
    r = cli("templates", "--id", "no_such_template", env=env)
    assert r.returncode == 3 and "404" in r.stderr


def test_workflows_list_filters_and_one(cli: Cli, emu: Emulator) -> None:
    env = env_for(emu)
    source = str(uuid.uuid4())
    nightly = emu.add_workflow("nightly invoices", sources=[source], schedule=["0 2 * * *"])
    emu.add_workflow("paused", status="inactive")
    r = cli("workflows", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["ID", "NAME", "STATUS", "TYPE", "CREATED_AT",
                                                "SCHEDULE"]  # fmt: skip
    assert len(r.stdout.splitlines()) == 3
    r = cli("workflows", "--status", "ACTIVE", "--json", env=env)
    assert [w["name"] for w in json.loads(r.stdout)] == ["nightly invoices"]
    r = cli("workflows", "--source-id", source, "--name", "invoice", "--json", env=env)
    assert [w["id"] for w in json.loads(r.stdout)] == [nightly]
    r = cli("workflows", "--id", nightly, env=env)
    assert r.returncode == 0 and r.stdout.startswith(f"{nightly}: nightly invoices (active")
    assert "schedule: 0 2 * * *" in r.stdout and f"sources: {source}" in r.stdout
    one = json.loads(cli("workflows", "--id", nightly, "--json", env=env).stdout)
    assert one["id"] == nightly and one["schedule"]["crontab_entries"]
    sent = len(emu.requests)
    r = cli("workflows", "--status", "paused", env=env)  # not a workflow state: refused here
    assert r.returncode == 2 and len(emu.requests) == sent
    r = cli("workflows", "--id", "nightly", env=env)
    assert r.returncode == 2 and "not a workflow_id (a UUID)" in r.stderr
    r = cli("run", nightly, "--wait", "--poll-interval", "0.01", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)[0]["workflow_name"] == "nightly invoices"


def test_create_with_an_output_folder_waits_and_downloads(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    docs = []
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
        docs.append(str(tmp_path / name))
    out = tmp_path / "out"
    r = cli("create", "--template-id", "hi_res_partition", *docs, "-o", str(out),
            "--poll-interval", "0.01", env=env_for(emu))  # fmt: skip
    assert r.returncode == 0, r.stderr
    (job_id,) = emu.jobs
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["FILE_ID", "OUTPUT", "/", "ERROR"]
    assert lines[1].split() == ["a.txt", str(out / "a.txt.json")]
    assert lines[-1] == f"job {job_id} COMPLETED: 2 of 2 outputs"
    assert json.loads((out / "b.txt.json").read_text())[0]["metadata"]["filename"] == "b.txt"
    assert r.stderr.splitlines()[-1] == f"job {job_id}: COMPLETED"  # its live status
    r = cli("create", "--template-id", "t", *docs, "-o", str(tmp_path / "o2"), "--json",
            "--poll-interval", "0.01", env=env_for(emu))  # fmt: skip
    data = json.loads(r.stdout)
    assert data["job"]["status"] == "COMPLETED"
    assert [f["output_path"] for f in data["files"]] == [
        str(tmp_path / "o2" / "a.txt.json"), str(tmp_path / "o2" / "b.txt.json")
    ]  # fmt: skip


def test_create_with_an_output_folder_reports_failed_files(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY, fail_files=lambda name: name == "bad.txt")
    for name in ("good.txt", "bad.txt"):
        (tmp_path / name).write_text(name)
    args = ["create", "--template-id", "t", "good.txt", "bad.txt", "-o", "out",
            "--poll-interval", "0.01", "--json"]  # fmt: skip
    r = cli(*args, env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 1
    files = {f["file_id"]: f for f in json.loads(r.stdout)["files"]}
    assert files["good.txt"]["error"] is None and files["bad.txt"]["output_path"] is None
    assert "unable to process" in files["bad.txt"]["error"]
    assert "unstructured-jobs: error: bad.txt: " in r.stderr


def test_create_with_an_output_folder_that_times_out_names_the_job(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY, schedule=Schedule.manual())
    (tmp_path / "a.txt").write_text("a")
    r = cli("create", "--template-id", "t", "a.txt", "-o", "out", "--timeout", "0.05",
            "--poll-interval", "0.01", env=env_for(emu), cwd=tmp_path)  # fmt: skip
    (job_id,) = emu.jobs
    assert r.returncode == 1 and r.stdout == ""
    assert (
        f"`unstructured-jobs wait {job_id}`, then `unstructured-jobs download {job_id} -o out`"
        in (r.stderr)
    )
