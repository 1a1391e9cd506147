"""The ``unstructured-jobs`` command line (see docs/cli.md): parsing, errors and exit codes.

The subcommands live in `_commands`, what they print in `_output`, the exit statuses in
`_exit_codes` (`ExitCode`). Errors are one line on stderr (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import anyio

from ._commands import COMMANDS
from ._constants import (
    API_PREFIX,
    BATCH_MANIFEST_NAME,
    BATCH_MAX_CONCURRENT_UPLOADS,
    CLI_BATCH_MANIFEST,
    CLI_DEMO_FILES,
    DEFAULT_POLL_INTERVAL,
    ENV_API_KEY,
    ENV_SERVER_URL,
    LOGGER_NAME,
    SERVICE_LAUNCHES_PER_SECOND,
    SERVICE_MAX_FILE_BYTES,
    SERVICE_MAX_FILES_PER_JOB,
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
from ._version import __version__

__all__ = ["main"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}
_secrets: list[str] = []


def _redact(text: str) -> str:
    # Whole tokens only for short keys: the key `k` must not turn "Traceback" into "Tracebac***".
    return redact_secrets(text, _secrets)


def _fail(message: str) -> None:
    print(_redact(f"unstructured-jobs: error: {message}"), file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        _fail(message)
        raise SystemExit(ExitCode.USAGE)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record))


def _size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10MB, 512KiB, 1000)")
    return int(float(match[1]) * _UNITS[(match[2] or "").lower()])


def _size_text(size: int) -> str:
    """`size` the way `_size` reads it back, in the largest decimal unit that divides it."""
    for unit in ("g", "m", "k"):
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit.upper()}B"
    return str(size)


def _job_nodes(text: str) -> list[dict[str, Any]]:
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        value = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read job nodes: {exc}") from None
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("job nodes must be a JSON list")
    return value


def _build_parser() -> _Parser:
    common = _Parser(add_help=False)
    g = common.add_argument_group("common options")
    g.add_argument("--api-key", help=f"API key (default: ${ENV_API_KEY})")
    g.add_argument(
        "--server-url",
        "--api-url",
        dest="server_url",
        help=f"API base URL (default: ${ENV_SERVER_URL}, then the public service)",
    )
    g.add_argument("--json", action="store_true", help="print JSON instead of tables")
    g.add_argument("--debug", action="store_true", help="tracebacks and DEBUG logging")
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force progress bars on/off (default: on when stderr is a terminal)",
    )
    g.add_argument("--max-retries", type=int, default=None, help="retries per request")
    g.add_argument("--request-timeout", type=float, default=None, help="seconds per request")
    g.add_argument(
        "--ca-bundle",
        metavar="PATH",
        help="verify the server against this CA bundle (default: $SSL_CERT_FILE, "
        "else $REQUESTS_CA_BUNDLE, else the system's CAs)",
    )
    g.add_argument(
        "--no-proxy-env",
        action="store_true",
        help="ignore HTTPS_PROXY/HTTP_PROXY/NO_PROXY (default: use them, except for loopback)",
    )

    parser = _Parser(prog="unstructured-jobs", description="Run Unstructured Platform jobs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=text, description=text)

    def job_def(p: argparse.ArgumentParser) -> None:
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--template-id", help="template every job runs")
        which.add_argument("--job-nodes", type=_job_nodes, help="JSON list of nodes, or @file")

    def waiting(p: argparse.ArgumentParser, flag: bool) -> None:
        if flag:
            p.add_argument("--wait", action="store_true", help="wait until the job ends")
        p.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
        p.add_argument(
            "--poll-interval",
            type=float,
            default=DEFAULT_POLL_INTERVAL,
            help="first poll interval",
        )

    p = cmd("create", "create one job from files")
    job_def(p)
    p.add_argument("files", nargs="*", help="input files")
    waiting(p, True)
    p = cmd("run", "run a workflow, optionally with files")
    p.add_argument("workflow_id")
    p.add_argument("files", nargs="*", help="input files")
    waiting(p, True)
    p = cmd("list", "list jobs")
    p.add_argument("--workflow-id")
    p.add_argument("--status")
    for name, text in (
        ("get", "show a job"),
        ("details", "show a job's processing details"),
        ("failed-files", "list a job's failed files"),
        ("cancel", "cancel a job"),
    ):
        cmd(name, text).add_argument("job_id")
    p = cmd("wait", "wait for a job to end (exit 0 when COMPLETED)")
    p.add_argument("job_id")
    waiting(p, False)
    p = cmd("download", "download a job's outputs into a folder")
    p.add_argument("job_id")
    p.add_argument("-o", "--output", default=".", help="folder (default: current)")
    p.add_argument("--file-id", action="append", help="only this file id (repeatable)")
    p.add_argument("--node-id", help="node whose output to download (default: last)")
    p = cmd("batch", "send many files as jobs, resumably; re-run the same command to resume")
    p.add_argument("inputs", nargs="+", help="files, folders (recursive) and glob patterns")
    job_def(p)
    p.add_argument("-o", "--output", help="download outputs into this folder")
    p.add_argument(
        "--manifest",
        help=f"manifest file (default: OUTPUT/{BATCH_MANIFEST_NAME}, else ./{CLI_BATCH_MANIFEST})",
    )
    p.add_argument(
        "--files-per-job",
        type=int,
        default=SERVICE_MAX_FILES_PER_JOB,
        help=f"default {SERVICE_MAX_FILES_PER_JOB}",
    )
    p.add_argument(
        "--max-file-size",
        type=_size,
        default=SERVICE_MAX_FILE_BYTES,
        help=f"default {_size_text(SERVICE_MAX_FILE_BYTES)}",
    )
    p.add_argument("--max-job-size", type=_size, default=None, help="default: no limit")
    p.add_argument(
        "--launch-rate",
        type=float,
        default=SERVICE_LAUNCHES_PER_SECOND,
        help="jobs/s, 0: no limit",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=BATCH_MAX_CONCURRENT_UPLOADS,
        help=f"uploads at once (default {BATCH_MAX_CONCURRENT_UPLOADS})",
    )
    p.add_argument("--no-wait", action="store_true", help="submit only; re-run to wait")
    p.add_argument("--retry-failed", action="store_true", help="resend files whose job failed")
    p.add_argument("--include-hidden", action="store_true", help="include dot files in folders")
    waiting(p, False)
    sub.add_parser("serve", help="serve the local emulator (see: serve --help)", add_help=False)
    p = cmd("demo", "run a batch against a built-in emulator (no account needed)")
    p.add_argument("--workdir", help="folder for inputs/outputs (default: a temporary one)")
    p.add_argument(
        "--files",
        type=int,
        default=CLI_DEMO_FILES,
        help=f"sample files (default {CLI_DEMO_FILES})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        from .testing import main as serve

        return serve(argv[1:])
    _secrets[:] = [s for s in (os.environ.get(ENV_API_KEY), *environment_secrets()) if s]
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:
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
        return int(anyio.run(COMMANDS[args.command], args))
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
