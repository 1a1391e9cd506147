"""The command line imports what a command needs when it needs it (its start-up is measured in
benchmarks/w7_batch_limits.py: a batch's wall time includes it).

``--help``, a usage error or ``--dry-run`` never import aiohttp (the HTTP client and its TLS
set-up) nor tqdm (the bars); a run whose stderr is not a terminal never imports tqdm.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("aiohttp", "tqdm")

PROBE = """
import json, sys
from unstructured_jobs.cli import main
code = main({argv!r})
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print("LOADED=" + json.dumps([code, loaded]), file=sys.stderr)
"""


def _loaded(argv: list[str], cwd: str) -> tuple[int, list[str]]:
    code = PROBE.format(argv=argv, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("LOADED="))
    status, loaded = json.loads(line.removeprefix("LOADED="))
    return status, loaded


@pytest.mark.parametrize(
    "argv",
    [
        ["batch", "--help"],
        ["--help"],
        ["create", "--help"],
        ["batch", "in", "--files-per-job", "0", "--template-id", "t"],  # a usage error
    ],
)
def test_help_and_usage_errors_import_neither_aiohttp_nor_tqdm(
    argv: list[str], tmp_path: Path
) -> None:
    status, loaded = _loaded(argv, str(tmp_path))
    assert status in (0, 2)
    assert loaded == []


def test_a_dry_run_imports_neither(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    status, loaded = _loaded(
        ["batch", str(folder), "--template-id", "t", "--dry-run"], str(tmp_path)
    )
    assert status == 0
    assert loaded == []


def test_a_line_without_bars_is_printed_without_tqdm(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from unstructured_jobs._commands import _progress

    monkeypatch.delitem(sys.modules, "tqdm", raising=False)
    _progress.write_line("retrying: HTTP 503")
    assert capsys.readouterr().err == "retrying: HTTP 503\n"
    assert "tqdm" not in sys.modules
