"""Fixtures shared by the integration tests."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest
import trustme
from cli_support import Cli, Env, Result, Start, process_env

from unstructured_jobs import AsyncJobsClient
from unstructured_jobs._constants import LOGGER_NAME
from unstructured_jobs.cli import main
from unstructured_jobs.testing import Emulator, FakeClock


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A throwaway certificate authority for real TLS over loopback."""
    return trustme.CA()


@pytest.fixture
def ca_path(ca: trustme.CA, tmp_path: Path) -> str:
    """The throwaway CA's certificate as a PEM file (what users pass as ``ssl=``)."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    """The package logger, restored after `--debug` gave it a handler and the DEBUG level."""
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:], logger.level = handlers, level


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    package_logger: logging.Logger,
) -> Cli:
    """Run the command line's `main(argv)` here, with `env` and `cwd` for that run only."""

    def run(*args: str, env: Env, cwd: Path | None = None) -> Result:
        capsys.readouterr()  # what earlier code printed is not this run's output
        handlers, level = list(package_logger.handlers), package_logger.level
        with monkeypatch.context() as patch:
            for name, value in env.items():
                if value is None:
                    patch.delenv(name, raising=False)
                else:
                    patch.setenv(name, value)
            if cwd is not None:
                patch.chdir(cwd)
            try:
                code = main(list(args))
            except SystemExit as exc:  # `serve --help`: argparse exits, as in a process
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            finally:
                package_logger.handlers[:], package_logger.level = handlers, level
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def start() -> Iterator[Start]:
    """Start ``python -m unstructured_jobs ARGS`` with Ctrl-C at its default, as in a terminal.

    A caught signal is reset to its default by exec, an ignored one stays ignored: pytest run
    in the background by a script (``pytest &``) ignores SIGINT, and a child that inherited that
    would keep ignoring the test's Ctrl-C and hang it. Children still running at the end of the
    test (it failed) are killed.
    """
    children: list[subprocess.Popen[str]] = []

    def run(
        *args: str,
        env: Env,
        cwd: Path,
        stderr: int | IO[str] = subprocess.PIPE,
        python: Sequence[str] = (),
    ) -> subprocess.Popen[str]:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            child = subprocess.Popen(
                [sys.executable, *python, "-m", "unstructured_jobs", *args],
                env=process_env(env), cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=stderr, text=True,
            )  # fmt: skip
        finally:
            signal.signal(signal.SIGINT, previous)
        children.append(child)
        return child

    yield run
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate()


@pytest.fixture
async def emu_client(
    unstructured_emulator_factory: Callable[..., Emulator],
) -> AsyncIterator[tuple[Emulator, AsyncJobsClient]]:
    """An emulator with no running cap and a client on a FakeClock (Retry-After, backoff and
    launch pacing cost no time), for the batch tests."""
    emu = unstructured_emulator_factory(max_running=None)
    async with AsyncJobsClient(
        api_key=emu.api_key, server_url=emu.url, max_retries=6, clock=FakeClock()
    ) as client:
        yield emu, client
