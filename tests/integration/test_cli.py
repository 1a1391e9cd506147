"""The ``unstructured-jobs`` command line against the emulator.

Most tests call `main(argv)` in this process (the `cli` fixture, in conftest.py: stdout, stderr
and the exit status, like a process would give them). Only what needs a real process runs one
(`start`): Ctrl-C, a kill, a terminal, and the installed console script with its exit status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sysconfig
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import KEY, READY_LIMIT, Cli, Start, env_for, poll_until, process_env

from unstructured_jobs import JobsClient
from unstructured_jobs.testing import Emulator, Fault, Schedule


@pytest.fixture
def emu(unstructured_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return unstructured_emulator_factory(api_key=KEY)


def test_job_subcommands_json_and_tables(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    env = env_for(emu)
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    r = cli("list", "--json", env=env)
    assert (r.returncode, json.loads(r.stdout)) == (0, [])
    r = cli("create", "--template-id", "tpl", str(doc), "--wait", "--poll-interval", "0.01",
            "--json", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (job,) = json.loads(r.stdout)
    assert job["status"] == "COMPLETED" and job["input_file_ids"] == ["a.txt"]
    job_id = job["id"]
    r = cli("get", job_id, env=env)
    assert r.returncode == 0 and job_id in r.stdout and "COMPLETED" in r.stdout
    assert r.stdout.splitlines()[0].split()[:2] == ["ID", "STATUS"]
    r = cli("details", job_id, "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == job_id
    r = cli("failed-files", job_id, "--json", env=env)
    assert json.loads(r.stdout) == {"failed_files": []}
    r = cli("wait", job_id, "--json", env=env)
    assert r.returncode == 0
    r = cli("download", job_id, "-o", str(tmp_path / "out"), "--json", env=env)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert Path(row["output_path"]).read_bytes().startswith(b"[")
    r = cli("cancel", job_id, "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == job_id


def test_wait_on_failed_job_exits_1(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(fail_files=lambda name: True)
    doc = tmp_path / "bad.txt"
    doc.write_text("x")
    r = cli("create", "--template-id", "t", str(doc), "--wait", "--poll-interval", "0.01",
            env=env_for(emu))  # fmt: skip
    assert r.returncode == 1 and "FAILED" in r.stdout


def test_usage_and_api_errors_exit_codes(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    env = env_for(emu)
    assert cli("frobnicate", env=env).returncode == 2
    assert cli("batch", str(tmp_path), env=env).returncode == 2  # no --template-id
    r = cli("get", "../not-a-uuid", env=env)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "usage: unstructured-jobs get [OPTIONS] JOB_ID",
        "unstructured-jobs: error: argument job_id: not a job_id (a UUID): '../not-a-uuid'",
    ]
    wrong = "wrong-secret-key-777"
    for extra in ((), ("--debug",)):
        r = cli("list", *extra, env=env_for(emu, key=wrong))
        assert r.returncode == 3
        assert wrong not in r.stderr + r.stdout
        assert "401" in r.stderr or "API key" in r.stderr
    r = cli("list", "--debug", "--api-key", wrong, env=env)  # flag beats the env var
    assert r.returncode == 3 and wrong not in r.stderr and "Traceback" in r.stderr
    r = cli("list", "--server-url", "http://127.0.0.1:9", "--max-retries", "0", env=env)
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1
    r = cli("list", env=env_for(emu, key=None))
    assert r.returncode == 2 and "UNSTRUCTURED_API_KEY" in r.stderr
    r = cli("serve", "--help", env=env)
    assert r.returncode == 0 and "--run-for" in r.stdout


def test_download_never_escapes_output_folder(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    with JobsClient(api_key=KEY, server_url=emu.url) as client:
        job = client.create_job(template_id="t", input_files=[("../../evil.txt", b"boo")])
    (tmp_path / "out").mkdir()
    r = cli("download", job.id, "-o", str(tmp_path / "out"), "--json", env=env_for(emu))
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["file_id"] == "../../evil.txt"
    assert Path(row["output_path"]).parent == (tmp_path / "out").resolve()
    assert not (tmp_path.parent / "evil.txt.json").exists()


def test_batch_exit_codes_and_json(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(fail_files=lambda name: name == "b.txt")
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text(name)
    r = cli("batch", "in", "--template-id", "t", "-o", "out", "--launch-rate", "0",
            "--poll-interval", "0.01", "--json", env=env_for(emu), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    assert data["counts"] == {"done": 2, "failed": 1}
    assert Path(data["manifest"]).name == ".unstructured-jobs.sqlite"


def _resume_setup(tmp_path: Path, count: int) -> list[str]:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(count):
        (folder / f"f{i:02d}.txt").write_text(f"file {i}")
    return ["batch", "in", "--template-id", "t", "-o", "out", "--files-per-job", "2",
            "--launch-rate", "50", "--poll-interval", "0.02"]  # fmt: skip


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_batch_killed_mid_run_resumes_exactly_once(
    cli: Cli,
    start: Start,
    unstructured_emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
    sig: int,
) -> None:
    emu = unstructured_emulator_factory(schedule=Schedule.manual())
    env = env_for(emu)
    args = _resume_setup(tmp_path, 20)
    proc = start(*args, env=env, cwd=tmp_path)
    # Jobs on the emulator prove the child is inside its event loop, where Ctrl-C is handled.
    poll_until(lambda: len(emu.jobs) >= 3, "a few jobs")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=READY_LIMIT)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and out == "" and "Traceback" not in err
        *progress, last = err.splitlines()  # progress lines: stderr is not a terminal
        assert last == "unstructured-jobs: error: interrupted; run the same command again to resume"
        assert all(line.startswith("batch: ") for line in progress)
    else:
        assert proc.returncode == -signal.SIGKILL
    before = len(emu.jobs)
    assert 3 <= before <= 10
    r = cli(*args, "--no-wait", env=env, cwd=tmp_path)  # sends the rest, does not wait
    assert r.returncode == 0, r.stderr
    emu.advance(None, steps=2)  # every job COMPLETED
    r = cli(*args, "--json", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == {"done": 20}
    received = Counter(f.filename for f in emu.received_files())
    assert received == {f"f{i:02d}.txt": 1 for i in range(20)}
    assert len(emu.jobs) == 10
    assert len(list((tmp_path / "out").glob("*.json"))) == 20


def test_demo_runs_offline(cli: Cli, tmp_path: Path) -> None:
    env = {k: None for k in os.environ if k.startswith("UNSTRUCTURED")}
    r = cli("demo", "--workdir", str(tmp_path / "demo"), env=env)
    assert r.returncode == 0, r.stderr
    assert "7 done" in r.stdout
    assert len(list((tmp_path / "demo" / "outputs").glob("*.json"))) == 7
    r = cli("demo", "--workdir", str(tmp_path / "demo2"), "--files", "2", "--json",
            "--no-progress", env=env)  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout)["counts"] == {"done": 2}


def test_debug_output_with_a_short_key_is_redacted_but_not_mangled(
    cli: Cli, unstructured_emulator_factory: Callable[..., Emulator]
) -> None:
    """`--debug` prints a traceback; the short key `k` is redacted there only as a token."""
    emu = unstructured_emulator_factory()  # accepts any key, `k` among them
    # A careless server that quotes the key back in its error message.
    echo = Fault.raw(401, b'{"detail": "API key \'k\' is not valid (key=k)"}')
    emu.inject(echo, method="GET", path="/api/v1/jobs/")
    code, out, err = cli(
        "list", "--api-key", "k", "--server-url", emu.url, "--debug", "--max-retries", "0",
        env=env_for(None, key=None),
    )  # fmt: skip
    assert code == 3 and out == ""
    assert "Traceback (most recent call last):" in err
    assert "unstructured_jobs.AuthenticationError: GET " in err
    assert "unstructured_jobs INFO GET /api/v1/jobs/ -> 401 (127.0.0.1:" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("unstructured-jobs: error: GET http://127.0.0.1:")
    assert last.endswith("-> 401: API key '***' is not valid (key=***)")
    assert err.count("API key '***' is not valid (key=***)") == 2  # traceback and error line
    assert re.search(r"(?<![\w-])k(?![\w-])", err) is None, err


def test_ctrl_c_while_waiting_exits_130_with_one_line(
    start: Start, unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY, schedule=Schedule.manual())
    with JobsClient(api_key=KEY, server_url=emu.url) as client:
        job = client.create_job(template_id="t")  # stays SCHEDULED: the wait never ends
    proc = start("wait", job.id, "--poll-interval", "3600", env=env_for(emu), cwd=tmp_path)
    assert proc.stderr is not None
    # The live status (a line: stderr is not a terminal) proves the first poll was answered:
    # the child is inside its event loop, where Ctrl-C is handled.
    assert proc.stderr.readline() == f"job {job.id}: SCHEDULED\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=READY_LIMIT)
    assert (proc.returncode, out, err) == (130, "", "unstructured-jobs: error: interrupted\n")


def test_the_console_script_exits_with_the_status(emu: Emulator, tmp_path: Path) -> None:
    """The installed `unstructured-jobs` entry point, once: output and the process's status."""
    folders = [sysconfig.get_path("scripts"), sysconfig.get_path("scripts", f"{os.name}_user")]
    scripts = [Path(folder, "unstructured-jobs") for folder in folders]
    script = next((path for path in scripts if path.is_file()), None)
    assert script is not None, f"no console script in {folders}: pip install -e ."

    def run(key: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "list", "--json"], env=process_env(env_for(emu, key=key)),
            cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    r = run(KEY)
    assert (r.returncode, json.loads(r.stdout)) == (0, []), r.stderr
    r = run("wrong-secret-key-777")
    assert (r.returncode, r.stdout) == (3, "") and r.stderr.startswith("unstructured-jobs: error")


def test_batch_prints_a_file_name_that_is_not_utf8(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with open(os.fsencode(tmp_path / "in") + b"/caf\xe9.txt", "wb") as f:
        f.write(b"old archive")
    (tmp_path / "in" / "plain.txt").write_text("plain")
    args = ["batch", "in", "--template-id", "t", "-o", "out", "--launch-rate", "0",
            "--poll-interval", "0.01"]  # fmt: skip
    r = cli(*args, env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "caf\\xe9.txt" in r.stdout and "2 files: 2 done" in r.stdout
    r = cli(*args, "--json", env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    paths = sorted(Path(f["path"]).name for f in json.loads(r.stdout)["files"])
    assert paths == ["caf\\xe9.txt", "plain.txt"]  # the bytes shown, as in the table
    assert sorted(f.filename for f in emu.received_files()) == ["caf\ufffd.txt", "plain.txt"]


def test_batch_on_a_full_disk_prints_one_line_and_exits_1(
    cli: Cli, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from unstructured_jobs._files import downloads as _downloads

    class FullDisk:
        def __init__(self, handle: object) -> None:
            self.close = handle.close  # type: ignore[attr-defined]

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (tmp_path / "in").mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (tmp_path / "in" / name).write_text(name)
    real_fdopen = os.fdopen
    monkeypatch.setattr(_downloads.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    args = ["batch", "in", "--template-id", "t", "-o", "out", "--launch-rate", "0",
            "--poll-interval", "0.01", "--files-per-job", "1"]  # fmt: skip
    r = cli(*args, env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == ""
    [line] = [x for x in r.stderr.splitlines() if not x.startswith("batch: ")]
    assert line.startswith("unstructured-jobs: error: cannot write the output ")
    assert "is full (No space left on device)" in line and "run the same batch again" in line
    assert "ExceptionGroup" not in line
    monkeypatch.undo()
    r = cli(*args, env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(emu.jobs) == 4  # resumed, nothing sent twice


def test_batch_on_a_damaged_manifest_page_exits_2(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    import sqlite3

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    args = ["batch", "in", "--template-id", "t", "--manifest", "m.sqlite", "--launch-rate", "0",
            "--poll-interval", "0.01"]  # fmt: skip
    assert cli(*args, env=env_for(emu), cwd=tmp_path).returncode == 0
    manifest = tmp_path / "m.sqlite"
    with sqlite3.connect(manifest) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.execute("PRAGMA page_size").fetchone()[0]
        [root] = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'files'").fetchone()
    db.close()
    with open(manifest, "r+b") as f:  # a real damaged page: the files table's
        f.seek((root - 1) * size)
        f.write(b"\xa5" * size)
    r = cli(*args, env=env_for(emu), cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    [line] = [x for x in r.stderr.splitlines() if not x.startswith("batch: ")]
    assert "the manifest m.sqlite is damaged (database disk image is malformed)" in line


def test_common_options_go_before_or_after_the_command(
    cli: Cli, emu: Emulator, ca_path: str, tmp_path: Path
) -> None:
    """`--json`, `--api-key`, `--server-url`, `--debug`, `--ca-bundle`: anywhere, like gh."""
    no_env = env_for(None, key=None)
    where = ["--api-key", KEY, "--server-url", emu.url]
    for args in (
        ["--json", "list", *where],
        ["list", "--json", *where],
        [*where, "--json", "list"],
        ["--json", *where[:2], "list", *where[2:]],
    ):
        r = cli(*args, env=no_env)
        assert (r.returncode, json.loads(r.stdout)) == (0, []), (args, r.stderr)
    r = cli("--debug", "list", *where, env=no_env)
    assert (
        r.returncode == 0
        and "unstructured_jobs INFO GET /api/v1/jobs/ -> 200 (127.0.0.1:" in r.stderr
    )
    # The one after the command wins, as for any repeated option.
    r = cli("--server-url", "http://127.0.0.1:9", "list", "--json", *where, env=no_env)
    assert r.returncode == 0, r.stderr
    # A missing CA bundle is refused before anything is sent, wherever the option is.
    for args in (["--ca-bundle", ca_path + ".missing", "list"], ["list", "--ca-bundle", "x"]):
        r = cli(*args, *where, env=no_env)
        assert r.returncode == 2 and "no CA bundle at" in r.stderr
    assert [r.path for r in emu.requests] == ["/api/v1/jobs/"] * 6


def test_bad_values_are_usage_errors_before_any_request(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    """Statuses (any case), ids, sizes and numbers are checked while parsing: exit 2, no request."""
    env = env_for(emu)
    with JobsClient(api_key=KEY, server_url=emu.url) as client:
        job = client.create_job(template_id="t")
    sent = len(emu.requests)
    for status, found in (("completed", [job.id]), ("Completed", [job.id]), ("in-progress", [])):
        r = cli("list", "--status", status, "--json", env=env)
        assert r.returncode == 0, r.stderr
        assert [j["id"] for j in json.loads(r.stdout)] == found, status
    assert [r.query.get("status") for r in emu.requests[sent:]] == ["COMPLETED"] * 2 + [
        "IN_PROGRESS"
    ]
    sent = len(emu.requests)
    (tmp_path / "a.txt").write_text("a")
    bad = [
        (["list", "--status", "done"], "argument --status: invalid choice: 'DONE' (choose from"),
        (["list", "--workflow-id", "wf-1"], "not a workflow_id (a UUID): 'wf-1'"),
        (["get", "42"], "not a job_id (a UUID): '42'"),
        (["wait", job.id, "--timeout", "-1"], "argument --timeout: not a number above 0"),
        (["wait", job.id, "--poll-interval", "nan"], "argument --poll-interval: not a number"),
        (["download", job.id, "--node-id", "last"], "not a node_id (a UUID): 'last'"),
        (["run", "my-workflow"], "not a workflow_id (a UUID): 'my-workflow'"),
        (["create", "--template-id", "..", "a.txt"], "template_id cannot be '..'"),
        (["create", "--job-nodes", "{}", "a.txt"], "job nodes must be a non-empty JSON list"),
        (["batch", "a.txt", "--template-id", "t", "--max-file-size", "10XB"], "not a size"),
        (["batch", "a.txt", "--template-id", "t", "--max-job-size", "0"], "not a size: '0'"),
        (["batch", "a.txt", "--template-id", "t", "--files-per-job", "0"], ">= 1: '0'"),
        (["batch", "a.txt", "--template-id", "t", "--concurrency", "x"], ">= 1: 'x'"),
        (["batch", "a.txt", "--template-id", "t", "--launch-rate", "-1"], "not a number >= 0"),
        (["list", "--max-retries", "-1"], "argument --max-retries: not a whole number >= 0"),
        (["list", "--request-timeout", "0"], "argument --request-timeout: not a number above 0"),
    ]
    for args, message in bad:
        r = cli(*args, env=env, cwd=tmp_path)
        assert r.returncode == 2 and r.stdout == "", (args, r)
        usage, error = r.stderr.splitlines()
        assert usage.startswith(f"usage: unstructured-jobs {args[0]} "), (args, usage)
        assert error.startswith("unstructured-jobs: error: ") and message in error, (args, error)
    assert len(emu.requests) == sent and len(emu.jobs) == 1


def test_download_never_overwrites_one_output_with_another(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    """`../x.txt`, `x.txt` and `a/x.txt` all make the safe name `x.txt.json`-ish: each output
    keeps its own file, and an id listed twice is downloaded once."""
    names = ["../x.txt", "x.txt", "sub/x.txt", "sub_x.txt", "x.txt"]
    with JobsClient(api_key=KEY, server_url=emu.url) as client:
        files = [(name, f"content {i}".encode()) for i, name in enumerate(names)]
        job = client.create_job(template_id="t", input_files=files)
    out = tmp_path / "out"
    r = cli("download", job.id, "-o", str(out), "--json", env=env_for(emu))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["file_id"] for row in rows] == ["../x.txt", "x.txt", "sub/x.txt", "sub_x.txt"]
    paths = [Path(row["output_path"]) for row in rows]
    assert [p.name for p in paths] == ["x.txt.json", "x.txt (2).json", "sub_x.txt.json",
                                       "sub_x.txt (2).json"]  # fmt: skip
    sources = {json.loads(p.read_text())[0]["metadata"]["filename"] for p in paths}
    assert sources == {"../x.txt", "x.txt", "sub/x.txt", "sub_x.txt"}  # four outputs kept
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
