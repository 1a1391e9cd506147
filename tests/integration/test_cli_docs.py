"""docs/cli.md stays true: every example in it runs, and prints what the page shows.

Each ```console block is a session: ``$ command`` lines (a trailing ``\\`` continues one), each
followed by the output the page shows. The examples run in order, in one temporary folder
holding a ``docs/`` of sample files, against one emulator (any key accepted; the API's URL is
pinned to it, even after an ``export`` line), with ``HOME`` in that folder:

- ``unstructured-jobs ...`` runs in this process (the `cli` fixture), ``> FILE`` redirecting its
  stdout; ``serve`` runs as a child (it serves until Ctrl-C) on a free port;
- ``export NAME=VALUE ...`` sets variables for the next commands; anything else runs in bash;
- ``JOB_ID`` is the newest job on the emulator, ``WORKFLOW_ID`` a workflow added to it;
- the exit status must be 0, or N when the line ends with ``# exits N``;
- every output line shown must be printed, in that order (stdout, then stderr), once ids,
  numbers and runs of spaces are set aside; ``...`` stands for lines left out.

The exit codes table must list `ExitCode` exactly.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import attrs
from cli_support import READY_LIMIT, Cli, Start

from unstructured_jobs.cli import ExitCode
from unstructured_jobs.testing import Emulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
SAMPLES = {
    "docs/report.pdf": "%PDF report",
    "docs/slides.pptx": "slides",
    "docs/notes.txt": "notes",
    "docs/drafts/old.pdf": "%PDF old",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@attrs.frozen
class Example:
    line: int
    command: str
    output: tuple[str, ...]


def examples(text: str) -> list[Example]:
    """The ``$`` commands of the page's console blocks, with the output shown after each."""
    found: list[Example] = []
    lines = text.splitlines()
    inside = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            inside = line == "```console"
            i += 1
            continue
        if inside and line.startswith("$ "):
            start, command = i + 1, line[2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + lines[i].strip()
            output = []
            while i + 1 < len(lines) and not lines[i + 1].startswith(("$ ", "```")):
                i += 1
                output.append(lines[i])
            found.append(Example(start, command, tuple(output)))
        i += 1
    return found


def normal(line: str) -> str:
    """A line without what changes from run to run: ids, numbers, widths of columns."""
    return " ".join(re.sub(r"\d+", "N", _UUID.sub("<id>", line)).split())


def assert_shown(example: Example, printed: str) -> None:
    """Every line the page shows (but ``...``) is printed, in order."""
    actual = iter(normal(line) for line in printed.splitlines())
    for expected in example.output:
        if expected.strip() in ("...", ""):
            continue
        want = normal(expected)
        assert any(got == want for got in actual), (
            f"docs/cli.md line {example.line}: `{example.command}` did not print\n  {expected}\n"
            f"It printed:\n{printed}"
        )


def test_every_example_in_docs_cli_md_runs(
    cli: Cli,
    start: Start,
    unstructured_emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
) -> None:
    emu = unstructured_emulator_factory()
    workflow = emu.add_workflow("nightly invoices", schedule=["0 2 * * *"])
    for name, text in SAMPLES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    home = tmp_path / "home"
    home.mkdir()
    env: dict[str, str | None] = {
        "UNSTRUCTURED_API_URL": emu.url,
        "UNSTRUCTURED_API_KEY": "docs-example-key",
        "HOME": str(home),
        "COLUMNS": None,
    }
    found = examples(DOC.read_text(encoding="utf-8"))
    assert len(found) >= 18
    for example in found:
        status = re.search(r"#\s*exits (\d+)\s*$", example.command)
        expected = int(status[1]) if status else 0
        command = example.command.replace("WORKFLOW_ID", workflow)
        if "JOB_ID" in command:
            command = command.replace("JOB_ID", list(emu.jobs)[-1])
        # `~` is the test's home, never the real one.
        words = [str(home) + w[1:] if w.startswith("~/") else w
                 for w in shlex.split(command, comments=True)]  # fmt: skip
        where = f"docs/cli.md line {example.line}: {example.command}"
        if words[0] == "export":
            for word in words[1:]:
                name, _, value = word.partition("=")
                if name != "UNSTRUCTURED_API_URL":  # the examples talk to the emulator
                    env[name] = value
            continue
        if words[:2] == ["unstructured-jobs", "serve"]:
            _serve(start, example, words, tmp_path)
            continue
        if words[0] != "unstructured-jobs":
            done = subprocess.run(["bash", "-c", command], cwd=tmp_path, timeout=READY_LIMIT,
                                  env={**os.environ, "HOME": str(home)}, capture_output=True,
                                  text=True)  # fmt: skip
            assert done.returncode == expected, (where, done.stderr)
            assert_shown(example, done.stdout + done.stderr)
            continue
        target = None
        if ">" in words:
            at = words.index(">")
            words, target = words[:at], Path(words[at + 1])
        r = cli(*words[1:], env=env, cwd=tmp_path)
        assert r.returncode == expected, (where, r.stderr)
        if target is not None:
            (tmp_path / target).write_text(r.stdout)
        assert_shown(example, r.stdout + r.stderr)


def _serve(start: Start, example: Example, words: list[str], folder: Path) -> None:
    """`serve` until its lines are printed, then Ctrl-C (on a free port: 8765 may be taken)."""
    proc = start(*words[1:], "--port", "0", env={}, cwd=folder)
    assert proc.stdout is not None
    printed = "".join(proc.stdout.readline() for _ in example.output)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=READY_LIMIT) == 0
    assert_shown(example, printed)


def test_the_exit_codes_table_is_the_enum() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Exit codes") :].split("\n## ")[0]
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", table, re.MULTILINE)
    assert [(int(code), name) for code, name in rows] == [(e.value, e.name) for e in ExitCode]
