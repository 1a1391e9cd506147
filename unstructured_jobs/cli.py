"""The ``unstructured-jobs`` command line (see docs/cli.md): parsing, errors and exit codes.

The subcommands live in `_commands` (one module each), what they print in `_output`, the exit
statuses in `_exit_codes` (`ExitCode`). Errors are one line on stderr (a traceback only with
``--debug``); each retry of a request is said on stderr as it is decided.

This module imports only the standard library and two small modules of the package at first:
everything else (aiohttp and the client with it) is imported inside `main`, so that Ctrl-C
from the very start (the first half second goes to imports) exits 130 with one line, never a
traceback.
"""

from __future__ import annotations

import logging
import os
import re
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
# What the transport logs when it decides to retry (`_transport.Transport._send`).
_RETRY = re.compile(r"^(\S+) (\S+) failed \((.*)\); retry (\d+)/(\d+) in ([\d.]+)s$")
_WHY = {"not sent": "could not connect", "lost": "connection lost"}


def _redact(text: str) -> str:
    # Whole tokens only for short keys: the key `k` must not turn "Traceback" into "Tracebac***".
    return redact_secrets(text, _secrets)


def _fail(message: str) -> None:
    print(_redact(f"unstructured-jobs: error: {message}"), file=sys.stderr)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record))


class _RetryNotes(logging.Handler):
    """Each retry said on stderr when it is decided, and the attempts counted per request.

    ``unstructured-jobs: GET /api/v1/jobs/: could not connect (attempt 1 of 5); next in 0.5 s``
    comes within milliseconds of a refused connection, instead of seconds of silence while
    the client retries; the final error then says how many attempts were made.
    """

    def __init__(self, *, say: bool) -> None:
        super().__init__(logging.INFO)
        self.say = say
        self.attempts: dict[tuple[str, str], int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Note a retry (other records are left to other handlers)."""
        match = _RETRY.match(record.getMessage())
        if match is None:
            return
        method, path, why, retry, limit, delay = match.groups()
        self.attempts[(method, path)] = int(retry) + 1
        if self.say:
            why = _WHY.get(why, why)
            text = f"{method} {path}: {why} (attempt {retry} of {int(limit) + 1}); "
            print(
                _redact(f"unstructured-jobs: {text}next in {float(delay):.1f} s"), file=sys.stderr
            )

    def made(self, exc: BaseException) -> int | None:
        """The attempts made for the request that failed with `exc`."""
        method, url = getattr(exc, "method", None), getattr(exc, "url", None)
        if not isinstance(url, str):
            return None
        counts = [n for (m, path), n in self.attempts.items() if m == method and url.endswith(path)]
        return max(counts, default=1)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # while importing or parsing, before a command ran
        _fail("interrupted")
        return int(ExitCode.INTERRUPTED)


def _main(argv: list[str]) -> int:
    import asyncio
    import inspect

    import anyio

    from ._commands import COMMANDS, build_parser
    from ._commands._common import UsageError
    from ._proxy import environment_secrets

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
    logger = logging.getLogger(LOGGER_NAME)
    notes = _RetryNotes(say=not (args.debug or getattr(args, "quiet", False)))
    logger.addHandler(notes)
    if args.debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    elif logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # the retries (`_RetryNotes`); nothing else is printed
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
        _fail(_describe(exc, notes.made(exc)))
        return code
    finally:
        logger.removeHandler(notes)


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
