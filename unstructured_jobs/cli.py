"""The ``unstructured-jobs`` command line (see docs/cli.md): parsing, errors and exit codes.

The subcommands live in `_commands` (one module each), what they print in `_output`, the exit
statuses in `_exit_codes` (`ExitCode`). Errors are one line on stderr (a traceback only with
``--debug``); each retry of a request is said on stderr as it is decided, by the client's retry
hook (`_commands._progress.RetryNotes`), never by reading log text.

This module imports only the standard library and two small modules of the package at first:
everything else (aiohttp and the client with it) is imported inside `main`, so that Ctrl-C
from the very start (the first half second goes to imports) exits 130 with one line, never a
traceback.

A closed standard output (``unstructured-jobs list | head -1``) ends the command quietly with
status 141 (`ExitCode.BROKEN_PIPE`: 128 + SIGPIPE, what a shell reports for a tool the broken
pipe killed, so ``set -o pipefail`` scripts see the same as with ``cat``), as Python's
documentation advises (`signal` module, "Note on SIGPIPE"): the rest of the output goes to
``os.devnull``.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from typing import cast

from ._constants import API_PREFIX, ENV_API_KEY, ENV_SERVER_URL, LOGGER_NAME
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    CertificateVerifyError,
    InvalidInputError,
    LocalFileError,
    NotFoundError,
    UnstructuredJobsError,
    redact_secrets,
)
from ._exit_codes import ExitCode

__all__ = ["ExitCode", "main"]

_secrets: list[str] = []


def _redact(text: str) -> str:
    # Whole tokens only for short keys: the key `k` must not turn "Traceback" into "Tracebac***".
    return redact_secrets(text, _secrets)


def _fail(message: str) -> None:
    print(_redact(f"unstructured-jobs: error: {message}"), file=sys.stderr)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(argv)
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:  # while importing or parsing, before a command ran
        _fail("interrupted")
        return int(ExitCode.INTERRUPTED)
    except BaseException as exc:
        if _broken_pipe(exc):
            return _stdout_gone()
        raise


def _broken_pipe(exc: BaseException) -> bool:
    """Whether `exc` is (or groups only) a write to a pipe whose reader went away."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_broken_pipe(e) for e in exc.exceptions)
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno == errno.EPIPE
    )


def _stdout_gone() -> int:
    """Send the rest of stdout to devnull (so the flush at exit cannot fail again); 141."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (a test's capture): nothing to redirect
        pass
    return int(ExitCode.BROKEN_PIPE)


def _main(argv: list[str]) -> int:
    import asyncio
    import inspect

    import anyio

    from ._commands import COMMANDS, build_parser
    from ._commands._common import UsageError
    from ._commands._progress import LogLines, RetryNotes
    from ._http.proxy import environment_secrets

    _secrets[:] = [s for s in (os.environ.get(ENV_API_KEY), *environment_secrets()) if s]
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        if exc.missing and (not argv or argv[-1] in COMMANDS):
            # `unstructured-jobs batch` alone: what it needs, not one line of error.
            print(exc.help, file=sys.stderr, end="")
            return int(ExitCode.USAGE)
        print(exc.usage, file=sys.stderr, end="")
        _fail(str(exc))
        return int(ExitCode.USAGE)
    except SystemExit as exc:  # --help, --version
        return int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE)
    if args.api_key:
        _secrets.append(args.api_key)
    logger = logging.getLogger(LOGGER_NAME)
    # The client's retry hook (`_commands._common.client` installs it): each retry said on
    # stderr (not with --quiet; --debug logs them), and the attempts counted for the error.
    notes = RetryNotes(say=not (args.debug or getattr(args, "quiet", False)), redact=_redact)
    args.retry_notes = notes
    if args.debug:
        from ._http.log import without_environment_handler

        without_environment_handler()  # --debug's handler below replaces UNSTRUCTURED_JOBS_LOG's
        handler = LogLines()
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        command = COMMANDS[args.command]
        if inspect.iscoroutinefunction(command):
            return int(anyio.run(command, args))
        return int(cast(ExitCode, command(args)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        # asyncio's runner cancels the main task on Ctrl-C and raises KeyboardInterrupt once it
        # has unwound; a CancelledError is caught too, should the task end cancelled anyway.
        hint = "; run the same command again to resume" if args.command == "batch" else ""
        _fail(f"interrupted{hint}")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:
        if _broken_pipe(exc):  # `unstructured-jobs list | head -1`: the reader is done
            return _stdout_gone()
        code = int(_exit_code(exc))
        if args.debug:
            import traceback

            print(_redact("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
        _fail(_describe(exc, notes.made(exc)))
        return code


def _exit_code(exc: BaseException) -> ExitCode:
    if isinstance(exc, InvalidInputError):
        return ExitCode.USAGE
    if isinstance(exc, LocalFileError):
        return ExitCode.FAILED  # a local I/O error, as documented
    if isinstance(exc, UnstructuredJobsError):
        return ExitCode.API
    return ExitCode.FAILED


def _describe(exc: BaseException, attempts: int | None) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, NotFoundError) and exc.url.rstrip("/").endswith(API_PREFIX + "/jobs"):
        from ._core import URL_FORMS

        return (
            f"{text} (the server has no jobs endpoint there: check --server-url or "
            f"${ENV_SERVER_URL}; expected {URL_FORMS})"
        )
    if isinstance(exc, APIConnectionError) and not isinstance(exc, CertificateVerifyError):
        tries = f"{attempts} attempt{'s' * (attempts != 1)}" if attempts else "1 attempt"
        if isinstance(exc, APITimeoutError):
            return f"{text} ({tries})"
        return (
            f"{text} ({tries}; check that the server is up, and --server-url or ${ENV_SERVER_URL})"
        )
    if isinstance(exc, UnstructuredJobsError):
        return text or type(exc).__name__
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
