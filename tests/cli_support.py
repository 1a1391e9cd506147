"""The command line under test: run in this process (`cli`) or as a child (`start`).

The fixtures themselves are in ``tests/integration/conftest.py``; this module holds what test
modules import (``from cli_support import ...``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, NamedTuple, Protocol

from unstructured_jobs.testing import Emulator

KEY = "cli-secret-key-0042"
READY_LIMIT = 60.0  # seconds a child may take to reach the point a test waits for (loaded CI)

Env = Mapping[str, str | None]
"""Environment changes for one run: a value sets the variable, None unsets it."""


class Result(NamedTuple):
    """What one run of the command line gave (named like `subprocess.CompletedProcess`)."""

    returncode: int
    stdout: str
    stderr: str


class Cli(Protocol):
    def __call__(self, *args: str, env: Env, cwd: Path | None = None) -> Result: ...


class Start(Protocol):
    def __call__(
        self,
        *args: str,
        env: Env,
        cwd: Path,
        stderr: int | IO[str] = ...,
        python: Sequence[str] = ...,
    ) -> subprocess.Popen[str]: ...


def env_for(emu: Emulator | None, key: str | None = KEY) -> dict[str, str | None]:
    """The API key, and the emulator's URL (or none at all)."""
    return {"UNSTRUCTURED_API_KEY": key, "UNSTRUCTURED_API_URL": None if emu is None else emu.url}


def process_env(env: Env) -> dict[str, str]:
    """This process's environment with `env`'s changes, for a child."""
    merged: dict[str, str | None] = {**os.environ, **env}
    return {name: value for name, value in merged.items() if value is not None}


def poll_until(check: Callable[[], bool], what: str, limit: float = READY_LIMIT) -> None:
    """Wait until `check()` holds (it reads the emulator's state), or fail after `limit` s."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
