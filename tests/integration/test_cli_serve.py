"""``unstructured-jobs serve``: a real subcommand that prints the lines to paste."""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

from cli_support import READY_LIMIT, Cli, Start, env_for


def _exported(line: str) -> dict[str, str | None]:
    """The variables an ``export A=1 B=2`` line sets, as a shell would read it."""
    words = shlex.split(line)
    assert words[0] == "export", line
    return {k: v for k, _, v in (w.partition("=") for w in words[1:])}


def test_serve_prints_the_export_line_to_paste(cli: Cli, start: Start, tmp_path: Path) -> None:
    proc = start("serve", "--port", "0", "--api-key", "it's a key", env={}, cwd=tmp_path)
    assert proc.stdout is not None
    listening = proc.stdout.readline()
    assert listening.startswith("unstructured-jobs emulator listening on http://127.0.0.1:")
    url = listening.split()[-1]
    line = proc.stdout.readline()
    assert line == f"export UNSTRUCTURED_API_URL={url} UNSTRUCTURED_API_KEY='it'\"'\"'s a key'\n"
    pasted = _exported(line)
    assert pasted == {"UNSTRUCTURED_API_URL": url, "UNSTRUCTURED_API_KEY": "it's a key"}
    r = cli("list", "--json", env=pasted)  # what the user runs after pasting it
    assert (r.returncode, r.stdout.strip()) == (0, "[]"), r.stderr
    assert cli("list", env={**pasted, "UNSTRUCTURED_API_KEY": "another"}).returncode == 3
    proc.send_signal(signal.SIGINT)  # Ctrl-C is how it is stopped: exit 0
    assert proc.wait(timeout=READY_LIMIT) == 0


def test_serve_takes_fault_options(cli: Cli, start: Start, tmp_path: Path) -> None:
    proc = start("serve", "--port", "0", "--fault-503", "1", "--retry-after", "0", "--seed", "7",
                 env={}, cwd=tmp_path)  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()
    pasted = _exported(proc.stdout.readline())
    assert pasted["UNSTRUCTURED_API_KEY"] == "emulator-key"  # any key is accepted: a sample
    r = cli("list", "--max-retries", "0", env=pasted)
    assert r.returncode == 3 and "-> 503" in r.stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=READY_LIMIT) == 0


def test_serve_is_a_real_subcommand(cli: Cli) -> None:
    r = cli("serve", "--help", env={})
    assert r.returncode == 0 and r.stdout.startswith("usage: unstructured-jobs serve [OPTIONS]")
    for option in ("--port", "--api-key", "--run-for", "--fault-429", "--fault-503",
                   "--fault-drop", "--fault-drop-before", "--latency", "--seed"):  # fmt: skip
        assert option in r.stdout
    r = cli("--help", env={})
    assert "serve " in r.stdout
    r = cli("serve", "--fault-503", "2", "--port", "0", env={})  # not a share: refused at once
    assert r.returncode == 2 and "fault rates must be in [0, 1]" in r.stderr
    r = cli("serve", "--port", "x", env={})
    assert r.returncode == 2 and r.stderr.startswith("usage: unstructured-jobs serve")
    assert env_for(None, key=None) == {"UNSTRUCTURED_API_KEY": None, "UNSTRUCTURED_API_URL": None}


def test_serve_takes_the_api_key_before_the_command(start: Start, tmp_path: Path) -> None:
    proc = start("--api-key", "before", "serve", "--port", "0", env={}, cwd=tmp_path)
    assert proc.stdout is not None
    proc.stdout.readline()
    assert _exported(proc.stdout.readline())["UNSTRUCTURED_API_KEY"] == "before"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=READY_LIMIT) == 0
