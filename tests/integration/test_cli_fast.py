"""Fast and early: a refused connection is said at once, with the attempts; Ctrl-C from the
first instant exits 130 with one line."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from cli_support import READY_LIMIT, Cli, Start, env_for


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_is_said_at_once_with_the_attempts(
    cli: Cli, start: Start, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    env = {**env_for(None), "UNSTRUCTURED_API_URL": url}
    # The first retry is said while the client still has seconds of retries ahead.
    proc = start("list", env=env, cwd=tmp_path)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith(
        "unstructured-jobs: GET /api/v1/jobs/: could not connect (attempt 1 of 5); next in "
    )
    assert proc.poll() is None  # still running: said now, not after 7 s of silence
    proc.send_signal(signal.SIGINT)  # Ctrl-C while it waits to retry
    out, err = proc.communicate(timeout=READY_LIMIT)
    assert (proc.returncode, out) == (130, "") and "Traceback" not in err
    assert err.splitlines()[-1] == "unstructured-jobs: error: interrupted"
    # The final error says how many attempts were made.
    r = cli("list", "--max-retries", "1", env=env)
    assert r.returncode == 3
    retry, error = r.stderr.splitlines()
    assert retry.startswith(
        "unstructured-jobs: GET /api/v1/jobs/: could not connect (attempt 1 of 2)"
    )
    assert error.startswith(f"unstructured-jobs: error: GET {url}/api/v1/jobs/: ")
    assert error.endswith(
        " (2 attempts; check that the server is up, and --server-url or $UNSTRUCTURED_API_URL)"
    )
    r = cli("list", "--max-retries", "0", env=env)
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "(1 attempt;" in r.stderr
    r = cli("list", "--max-retries", "1", "--quiet", env=env)  # quiet: the error only
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "(2 attempts;" in r.stderr


def test_ctrl_c_while_the_program_starts_exits_130_without_a_traceback(
    start: Start, tmp_path: Path
) -> None:
    # `-X importtime` reports each module as its import ends: once aiohttp's client is
    # reported, the program is still importing (the command line, the client).
    proc = start("list", env=env_for(None), cwd=tmp_path, python=["-X", "importtime"])
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.split("|")[-1].strip() == "aiohttp.client":
            break
    else:
        pytest.fail("aiohttp was never imported")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=READY_LIMIT)
    assert (proc.returncode, out) == (130, ""), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.splitlines()[-1] == "unstructured-jobs: error: interrupted"


def test_ctrl_c_while_parsing_exits_130_in_process(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unstructured_jobs import _commands

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_commands, "build_parser", interrupted)
    assert cli("list", env={}) == (130, "", "unstructured-jobs: error: interrupted\n")
