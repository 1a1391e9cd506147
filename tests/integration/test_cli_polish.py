"""The command line's rough edges (issue 24, item 7): a broken pipe, a bare subcommand, the
missing key, completion's install help and lower-case values, an empty list, the demo's last
lines, and ``launch_rate=0`` in the Python batch API."""

from __future__ import annotations

import fcntl
import io
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import KEY, READY_LIMIT, Cli, env_for, process_env

from unstructured_jobs import AsyncJobsClient, InvalidInputError, JobsClient
from unstructured_jobs._commands import COMMANDS, build_parser
from unstructured_jobs._commands.demo import NEXT
from unstructured_jobs.batch import run_batch, submit_batch
from unstructured_jobs.cli import main
from unstructured_jobs.testing import Emulator, FakeClock

# -- a broken pipe: `unstructured-jobs list | head -1` -----------------------------------------


def _piped_into_head(args: list[str], env: dict[str, str | None]) -> tuple[int, str, str]:
    """Run ``unstructured-jobs ARGS | head -1`` through a one-page pipe, so that the command is
    still writing when head has read its line and gone. (exit status, head's output, stderr)."""
    head = shutil.which("head")
    assert head is not None
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # the output below is far larger
    try:
        reader = subprocess.Popen([head, "-1"], stdin=read_end, stdout=subprocess.PIPE, text=True)
        writer = subprocess.Popen(
            [sys.executable, "-m", "unstructured_jobs", *args], stdout=write_end,
            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=process_env(env), text=True,
        )  # fmt: skip
    finally:
        os.close(read_end)
        os.close(write_end)
    line, _ = reader.communicate(timeout=READY_LIMIT)
    _, err = writer.communicate(timeout=READY_LIMIT)
    return writer.returncode, line, err


def test_list_into_head_ends_quietly(unstructured_emulator: Emulator) -> None:
    emu = unstructured_emulator
    with JobsClient(api_key=KEY, server_url=emu.url) as client:
        for _ in range(150):  # about 100 bytes a row: several pages of output
            client.create_job(template_id="hi_res_partition")
    code, line, err = _piped_into_head(["list", "--limit", "0"], env_for(emu))
    assert line.split() == ["ID", "STATUS", "CREATED_AT", "WORKFLOW_NAME", "FILES"]
    assert err == ""  # no traceback, no "Exception ignored", no error line
    assert code == 141  # 128 + SIGPIPE, as a shell reports `cat` killed by the broken pipe


class _ClosedPipe(io.StringIO):
    """A standard output whose reader went away after the first write."""

    def write(self, text: str) -> int:
        if self.getvalue():
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_a_broken_pipe_in_a_sync_command_is_quiet_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["completion", "bash"]) == 141
    assert capsys.readouterr().err == ""


# -- a bare subcommand prints its help -----------------------------------------------------


@pytest.mark.parametrize("command", ["batch", "create", "get", "completion"])
def test_a_bare_subcommand_prints_its_help(cli: Cli, command: str) -> None:
    r = cli(command, env={})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"usage: unstructured-jobs {command}")
    assert "options:" in r.stderr and "error:" not in r.stderr


def test_no_command_prints_the_programs_help(cli: Cli) -> None:
    r = cli(env={})
    assert r.returncode == 2 and r.stderr.startswith("usage: unstructured-jobs [OPTIONS]")
    assert "batch" in r.stderr and "error:" not in r.stderr


def test_a_subcommand_missing_only_some_arguments_still_says_which(cli: Cli) -> None:
    r = cli("batch", "--template-id", "t", env={})
    assert r.returncode == 2
    assert "error: the following arguments are required: inputs" in r.stderr
    assert "options:" not in r.stderr  # one usage line and the error, not the whole help


# -- the missing key --------------------------------------------------------------------------


def test_the_missing_key_message_names_the_flag_and_the_variable(
    cli: Cli, unstructured_emulator: Emulator
) -> None:
    r = cli("list", env=env_for(unstructured_emulator, key=None))
    assert r.returncode == 2
    assert r.stderr == (
        "unstructured-jobs: error: no API key: pass --api-key KEY or set UNSTRUCTURED_API_KEY\n"
    )
    assert unstructured_emulator.requests == []  # nothing was sent
    r = cli("list", "--api-key", KEY, env=env_for(unstructured_emulator, key=None))
    assert r.returncode == 0, r.stderr


# -- completion ------------------------------------------------------------------------------


def test_completion_help_says_how_to_install_it(cli: Cli) -> None:
    r = cli("completion", "--help", env={})
    assert r.returncode == 0
    assert "completion bash > ~/.local/share/bash-completion/completions/unstructured-jobs" in (
        r.stdout
    )
    assert 'completion zsh > "${fpath[1]}/_unstructured-jobs"' in r.stdout
    assert "completion fish > ~/.config/fish/completions/unstructured-jobs.fish" in r.stdout


def _bash_complete(script: Path, *words: str) -> list[str]:
    quoted = " ".join(shlex.quote(w) for w in words)
    program = (
        f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
        '_unstructured_jobs; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60,
                          check=True)  # fmt: skip
    return [line for line in done.stdout.splitlines() if line]


def test_lower_case_status_values_complete(cli: Cli, tmp_path: Path) -> None:
    scripts = {shell: cli("completion", shell, env={}).stdout for shell in ("bash", "zsh")}
    assert '{compadd -M "m:{a-z}={A-Z}" -- SCHEDULED IN_PROGRESS COMPLETED' in scripts["zsh"]
    script = tmp_path / "c.bash"
    script.write_text(scripts["bash"])
    p = "unstructured-jobs"
    assert _bash_complete(script, p, "list", "--status", "fa") == ["failed"]
    assert _bash_complete(script, p, "list", "--status", "in") == ["in_progress"]
    assert _bash_complete(script, p, "list", "--status", "IN") == ["IN_PROGRESS"]
    # one flag, other values in another command
    assert _bash_complete(script, p, "workflows", "--status", "") == ["active", "inactive"]
    assert _bash_complete(script, p, "--json", "workflows", "--status", "in") == ["inactive"]
    assert _bash_complete(script, p, "--server-url", "") == []  # before any command
    # and what completes is accepted
    assert build_parser().parse_args(["list", "--status", "in_progress"]).status == "IN_PROGRESS"


# -- an empty list -----------------------------------------------------------------------------


def test_an_empty_list_says_no_jobs(cli: Cli, unstructured_emulator: Emulator) -> None:
    env = env_for(unstructured_emulator)
    assert cli("list", env=env).stdout == "no jobs\n"
    assert cli("list", "--status", "failed", env=env).stdout == "no jobs\n"
    assert cli("list", "--json", env=env).stdout.strip() == "[]"  # scripts get an empty list
    assert cli("list", "--quiet", env=env).stdout == ""


# -- the demo ends with what to try next -------------------------------------------------------


def test_the_demo_ends_with_real_commands_to_try(cli: Cli, tmp_path: Path) -> None:
    env = {k: None for k in os.environ if k.startswith("UNSTRUCTURED")}
    r = cli("demo", "--workdir", str(tmp_path / "demo"), "--files", "2", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(NEXT)
    tried = [line.split("#")[0].split() for line in NEXT.splitlines()]
    commands = [words[1:] for words in tried if words[:1] == ["unstructured-jobs"]]
    assert len(commands) >= 4
    for words in commands:  # each parses as the command line would read it
        assert words[0] in COMMANDS
        try:
            build_parser().parse_args(words)
        except SystemExit as exc:  # `completion --help`
            assert exc.code == 0


# -- launch_rate=0 means no limit, as in the CLI ------------------------------------------------


async def test_submit_batch_launch_rate_zero_means_no_pacing(
    unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(max_running=None)
    (tmp_path / "in").mkdir()
    for i in range(4):
        (tmp_path / "in" / f"f{i}.txt").write_text("x")
    paced, free = FakeClock(), FakeClock()
    for clock, rate, name in ((paced, 1.0, "paced"), (free, 0, "free")):
        async with AsyncJobsClient(api_key=KEY, server_url=emu.url, clock=clock) as client:
            report = await submit_batch(
                client, [tmp_path / "in"], template_id=name, files_per_job=1, launch_rate=rate,
                manifest=tmp_path / f"{name}.sqlite", wait=False, reconcile_grace=0,
            )  # fmt: skip
        assert report.counts() == {"submitted": 4}
    # four launches a second apart (plus the scheduler's small margin for jitter)
    assert 3.0 <= sum(paced.sleeps) <= 3.2
    assert free.sleeps == []  # no pacing at all
    with pytest.raises(InvalidInputError, match="launch_rate must be >= 0"):
        run_batch([tmp_path / "in"], api_key=KEY, server_url=emu.url, template_id="t",
                  launch_rate=-1)  # fmt: skip
