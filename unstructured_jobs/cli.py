"""The ``unstructured-jobs`` command line (see docs/cli.md): parsing, errors and exit codes.

The subcommands live in `_commands`, what they print in `_output`, the exit statuses in
`_exit_codes` (`ExitCode`). Errors are one line on stderr (a traceback only with ``--debug``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sys
from typing import cast

import anyio

from ._commands import COMMANDS, build_parser
from ._commands._common import UsageError
from ._constants import (
    API_PREFIX,
    ENV_API_KEY,
    ENV_SERVER_URL,
    LOGGER_NAME,
)
from ._core import URL_FORMS
from ._exceptions import (
    InvalidInputError,
    LocalFileError,
    NotFoundError,
    UnstructuredJobsError,
    redact_secrets,
)
from ._exit_codes import ExitCode
from ._proxy import environment_secrets

__all__ = ["main"]

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
    _secrets[:] = [s for s in (os.environ.get(ENV_API_KEY), *environment_secrets()) if s]
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(exc.usage, file=sys.stderr, end="")
        _fail(str(exc))
        return int(ExitCode.USAGE)
    except SystemExit as exc:  # --help, --version
        return int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE)
    if args.api_key:
        _secrets.append(args.api_key)
    if args.debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger = logging.getLogger(LOGGER_NAME)
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
        code = int(_exit_code(exc))
        if args.debug:
            import traceback

            print(_redact("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
        _fail(_describe(exc))
        return code


def _exit_code(exc: BaseException) -> ExitCode:
    if isinstance(exc, InvalidInputError):
        return ExitCode.USAGE
    if isinstance(exc, LocalFileError):
        return ExitCode.FAILED  # a local I/O error, as documented
    if isinstance(exc, UnstructuredJobsError):
        return ExitCode.API
    return ExitCode.FAILED


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, NotFoundError) and exc.url.rstrip("/").endswith(API_PREFIX + "/jobs"):
        return (
            f"{text} (the server has no jobs endpoint there: check --server-url or "
            f"${ENV_SERVER_URL}; expected {URL_FORMS})"
        )
    if isinstance(exc, UnstructuredJobsError):
        return text or type(exc).__name__
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
