"""``unstructured-jobs completion bash|zsh|fish``: scripts generated from the parser.

The bash script is run by bash, as bash runs it on Tab: ``COMP_WORDS``/``COMP_CWORD`` set,
the function called, ``COMPREPLY`` read back. zsh and fish are checked by their own parsers
when the machine has them, and against the parser's commands and options always.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cli_support import Cli

from unstructured_jobs._commands import build_parser
from unstructured_jobs._commands._types import JOB_STATUSES
from unstructured_jobs._commands.completion import describe

COMMANDS = [c.name for c in describe(build_parser()).commands]


@pytest.fixture
def scripts(cli: Cli) -> dict[str, str]:
    out = {}
    for shell in ("bash", "zsh", "fish"):
        r = cli("completion", shell, env={})
        assert r.returncode == 0 and r.stderr == "", r
        out[shell] = r.stdout
    return out


def _complete(script: Path, cwd: Path, *words: str) -> list[str]:
    """What bash offers for the last of `words` (an empty one: a Tab after a space)."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (
        f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
        '_unstructured_jobs; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "-c", program], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    return [line for line in done.stdout.splitlines() if line]


def test_the_bash_script_parses_and_completes(scripts: dict[str, str], tmp_path: Path) -> None:
    assert (
        "complete -o filenames -o bashdefault -F _unstructured_jobs unstructured-jobs"
        in (scripts["bash"])
    )
    if shutil.which("bash") is None:  # what can be checked without bash is checked above
        return
    script = tmp_path / "unstructured-jobs.bash"
    script.write_text(scripts["bash"])
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=60)
    (tmp_path / "my report.pdf").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    p = "unstructured-jobs"
    assert _complete(script, tmp_path, p, "") == COMMANDS
    assert _complete(script, tmp_path, p, "cr") == ["create"]
    assert _complete(script, tmp_path, p, "--json", "li") == ["list"]  # options before it
    assert _complete(script, tmp_path, p, "f") == ["failed-files", "file-status"]
    assert _complete(script, tmp_path, p, "fa") == ["failed-files"]
    assert _complete(script, tmp_path, p, "list", "--st") == ["--status"]
    assert _complete(script, tmp_path, p, "list", "--status", "") == list(JOB_STATUSES)
    assert _complete(script, tmp_path, p, "list", "--status", "IN") == ["IN_PROGRESS"]
    assert _complete(script, tmp_path, p, "batch", "--dr") == ["--dry-run"]
    assert _complete(script, tmp_path, p, "create", "--template-id", "t", "my") == ["my report.pdf"]
    assert _complete(script, tmp_path, p, "batch", "-o", "no") == ["notes.txt"]
    assert _complete(script, tmp_path, p, "get", "") == []  # a job id: nothing to offer
    assert _complete(script, tmp_path, p, "completion", "") == ["bash", "zsh", "fish"]
    assert "--fault-503" in _complete(script, tmp_path, p, "serve", "--fault")


def test_zsh_and_fish_scripts_know_every_command_and_option(scripts: dict[str, str]) -> None:
    program = describe(build_parser())
    zsh, fish = scripts["zsh"], scripts["fish"]
    assert zsh.startswith("#compdef unstructured-jobs\n")
    for command in program.commands:
        assert f"'{command.name}:" in zsh and f"            {command.name})" in zsh
        assert f"-a {command.name} " in fish
        for option in command.options:
            for flag in option.flags:
                assert flag in zsh, (command.name, flag)
                short = f"-s {flag[1:]}" if not flag.startswith("--") else f"-l {flag[2:]}"
                assert short in fish, (command.name, flag)
    assert "-a 'SCHEDULED IN_PROGRESS COMPLETED STOPPED FAILED'" in fish
    for shell, check in (("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])):
        if shutil.which(shell):  # parse it too where the shell is installed
            subprocess.run([*check], input=scripts[shell], text=True, check=True, timeout=60)


def test_an_unknown_shell_is_a_usage_error(cli: Cli) -> None:
    r = cli("completion", "powershell", env={})
    assert r.returncode == 2 and "invalid choice: 'powershell'" in r.stderr
