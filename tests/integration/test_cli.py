"""The ``unstructured-jobs`` command line against the emulator, mostly run as a subprocess."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import JobsClient
from unstructured_jobs._constants import LOGGER_NAME
from unstructured_jobs.cli import main
from unstructured_jobs.testing import Emulator, Fault, Schedule

KEY = "cli-secret-key-0042"


def env_for(emu: Emulator | None, key: str = KEY) -> dict[str, str]:
    env = dict(os.environ, UNSTRUCTURED_API_KEY=key)
    env.pop("UNSTRUCTURED_API_URL", None)
    if emu is not None:
        env["UNSTRUCTURED_API_URL"] = emu.url
    return env


def cli(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unstructured_jobs", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def start(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "unstructured_jobs", *args],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def poll_until(check: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def emu(unstructured_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return unstructured_emulator_factory(api_key=KEY)


def test_job_subcommands_json_and_tables(emu: Emulator, tmp_path: Path) -> None:
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
    unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(fail_files=lambda name: True)
    doc = tmp_path / "bad.txt"
    doc.write_text("x")
    r = cli("create", "--template-id", "t", str(doc), "--wait", "--poll-interval", "0.01",
            env=env_for(emu))  # fmt: skip
    assert r.returncode == 1 and "FAILED" in r.stdout


def test_usage_and_api_errors_exit_codes(emu: Emulator, tmp_path: Path) -> None:
    env = env_for(emu)
    assert cli("frobnicate", env=env).returncode == 2
    assert cli("batch", str(tmp_path), env=env).returncode == 2  # no --template-id
    r = cli("get", "../not-a-uuid", env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
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
    env_no_key = env_for(emu)
    env_no_key.pop("UNSTRUCTURED_API_KEY")
    assert cli("list", env=env_no_key).returncode == 2
    r = cli("serve", "--help", env=env)
    assert r.returncode == 0 and "--run-for" in r.stdout


def test_download_never_escapes_output_folder(emu: Emulator, tmp_path: Path) -> None:
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
    unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
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
    unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path, sig: int
) -> None:
    emu = unstructured_emulator_factory(schedule=Schedule.manual())
    env = env_for(emu)
    args = _resume_setup(tmp_path, 20)
    proc = start(*args, env=env, cwd=tmp_path)
    poll_until(lambda: len(emu.jobs) >= 3, "a few jobs")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "run the same command again" in err
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


def test_demo_runs_offline(tmp_path: Path) -> None:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("UNSTRUCTURED")}
    r = cli("demo", "--workdir", str(tmp_path / "demo"), env=env)
    assert r.returncode == 0, r.stderr
    assert "7 done" in r.stdout
    assert len(list((tmp_path / "demo" / "outputs").glob("*.json"))) == 7
    r = cli("demo", "--workdir", str(tmp_path / "demo"), "--json", "--no-progress", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["counts"] == {"done": 7}


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    """The package logger, restored after `--debug` gave it a handler and the DEBUG level."""
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:], logger.level = handlers, level


def test_debug_output_with_a_short_key_is_redacted_but_not_mangled(
    unstructured_emulator_factory: Callable[..., Emulator],
    package_logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--debug` prints a traceback; the short key `k` is redacted there only as a token."""
    monkeypatch.delenv("UNSTRUCTURED_API_KEY", raising=False)
    emu = unstructured_emulator_factory()  # accepts any key, `k` among them
    # A careless server that quotes the key back in its error message.
    echo = Fault.raw(401, b'{"detail": "API key \'k\' is not valid (key=k)"}')
    emu.inject(echo, method="GET", path="/api/v1/jobs/")
    code = main(
        ["list", "--api-key", "k", "--server-url", emu.url, "--debug", "--max-retries", "0"]
    )
    out, err = capsys.readouterr()
    assert code == 3 and out == ""
    assert "Traceback (most recent call last):" in err
    assert "unstructured_jobs._exceptions.AuthenticationError: GET " in err
    assert "unstructured_jobs DEBUG GET /api/v1/jobs/ -> 401" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("unstructured-jobs: error: GET http://127.0.0.1:")
    assert last.endswith("-> 401: API key '***' is not valid (key=***)")
    assert err.count("API key '***' is not valid (key=***)") == 2  # traceback and error line
    assert re.search(r"(?<![\w-])k(?![\w-])", err) is None, err
