"""What the subcommands share: the parser class, the common options, the client, job tables."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from .._constants import DEFAULT_POLL_INTERVAL, DEFAULT_WAIT_TIMEOUT, ENV_API_KEY, ENV_SERVER_URL
from .._converter import unstructure
from .._exceptions import InvalidInputError, WaitTimeoutError
from .._exit_codes import ExitCode
from .._models import JobInformation, JobStatus
from .._options import Timeout
from .._output import print_json, print_table, printable
from ._progress import Mode, StatusProgress, mode_of
from ._types import count, job_nodes, name_id, number

if TYPE_CHECKING:
    from .._client import AsyncJobsClient

JOB_COLUMNS = ("id", "status", "created_at", "workflow_name", "files")


class UsageError(Exception):
    """A command line argparse refused: `cli` prints the usage and the message, exits 2.

    ``help`` is the whole help of the (sub)command that refused it: `cli` prints it instead
    when a command that needs arguments was given none (``missing``: required ones absent).
    """

    def __init__(self, message: str, usage: str, help: str = "") -> None:
        super().__init__(message)
        self.usage = usage
        self.help = help or usage
        self.missing = message.startswith(
            ("the following arguments are required", "one of the arguments")
        )


class Parser(argparse.ArgumentParser):
    """argparse, except that an error is raised (`UsageError`) for `cli` to print."""

    def error(self, message: str) -> NoReturn:
        """Raise `UsageError` instead of printing and exiting."""
        raise UsageError(message, self.format_usage(), self.format_help())


def add_common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every subcommand takes, before or after its name.

    They are given to the program's parser with their `defaults` and to each subcommand's
    without (``argparse.SUPPRESS``): an option given after the subcommand then overrides one
    given before it, and one given only before it is not reset by the subcommand's parser.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    g = parser.add_argument_group("common options (before or after the command)")
    g.add_argument("--api-key", default=default(None), help=f"API key (default: ${ENV_API_KEY})")
    g.add_argument(
        "--server-url",
        "--api-url",
        dest="server_url",
        default=default(None),
        help=f"API base URL (default: ${ENV_SERVER_URL}, then the public service)",
    )
    g.add_argument(
        "--json", action="store_true", default=default(False), help="print JSON instead of tables"
    )
    g.add_argument(
        "--debug", action="store_true", default=default(False), help="tracebacks and DEBUG logging"
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="print nothing but errors (with --json: the JSON too)",
    )
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=default(None),
        help="force progress bars on, or no progress at all (default: bars when stderr is a "
        "terminal, else a line every few seconds)",
    )
    g.add_argument("--max-retries", type=count, default=default(None), help="retries per request")
    g.add_argument(
        "--request-timeout", type=number(), default=default(None), help="seconds per request"
    )
    g.add_argument(
        "--ca-bundle",
        metavar="PATH",
        default=default(None),
        help="verify the server against this CA bundle (default: $SSL_CERT_FILE, "
        "else $REQUESTS_CA_BUNDLE, else the system's CAs)",
    )
    g.add_argument(
        "--no-proxy-env",
        action="store_true",
        default=default(False),
        help="ignore HTTPS_PROXY/HTTP_PROXY/NO_PROXY (default: use them, except for loopback)",
    )


def add_job_definition(p: argparse.ArgumentParser) -> None:
    """``--template-id`` or ``--job-nodes``: what a job runs."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--template-id", type=name_id("template_id"), help="template every job runs")
    which.add_argument(
        "--job-nodes", type=job_nodes, metavar="JSON|@FILE", help="JSON list of nodes, or @file"
    )


def add_wait_options(p: argparse.ArgumentParser, *, flag: bool) -> None:
    """``--timeout`` and ``--poll-interval`` (and ``--wait`` when `flag`)."""
    if flag:
        p.add_argument("--wait", action="store_true", help="wait until the job ends")
    p.add_argument("--timeout", type=number(), default=None, help="seconds to wait at most")
    p.add_argument(
        "--poll-interval",
        type=number(),
        default=DEFAULT_POLL_INTERVAL,
        help="first poll interval",
    )


@asynccontextmanager
async def client(args: argparse.Namespace) -> AsyncIterator[AsyncJobsClient]:
    """The client the common options describe, with the command line's retry hook
    (``args.retry_notes``, set by `unstructured_jobs.cli`) when there is one."""
    from .._client import AsyncJobsClient  # aiohttp: imported when a command talks to the API

    options: dict[str, Any] = {}
    notes = getattr(args, "retry_notes", None)
    if notes is not None:
        options["event_hooks"] = {"retry": [notes]}
    if args.max_retries is not None:
        options["max_retries"] = args.max_retries
    if args.request_timeout is not None:
        options["timeout"] = Timeout.coerce(args.request_timeout)
    if args.ca_bundle is not None:
        options["ssl"] = args.ca_bundle
    if args.no_proxy_env:
        options["trust_env"] = False
    if not (args.api_key or os.environ.get(ENV_API_KEY)):
        raise InvalidInputError(f"no API key: pass --api-key KEY or set {ENV_API_KEY}")
    async with AsyncJobsClient(api_key=args.api_key, server_url=args.server_url, **options) as c:
        yield c


def _job_row(job: JobInformation) -> list[object]:
    files = len(job.input_file_ids or ())
    return [
        job.id,
        job.status,
        job.created_at.isoformat(timespec="seconds"),
        job.workflow_name,
        files,
    ]


def show(
    args: argparse.Namespace,
    data: object,
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    shrink: Sequence[int] = (),
) -> None:
    """A command's result on stdout: `data` as JSON with ``--json``, else a table of `rows`
    whose `shrink` columns are cut to fit the terminal (nothing with ``--quiet``)."""
    if args.json:
        print_json(data)
    elif not args.quiet:
        print_table(headers, rows, shrink=shrink)


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path for people: relative to the current folder when it is inside it, else absolute
    (never ``../../..``); bytes that are not UTF-8 and control characters escaped
    (``caf\\xe9.pdf``, ``two\\nlines.txt``: see `printable`)."""
    absolute = os.path.abspath(path)
    here = os.getcwd()
    inside = absolute.startswith(here.rstrip(os.sep) + os.sep)
    return printable(os.path.relpath(absolute, here) if inside else absolute)


def note(args: argparse.Namespace, text: str) -> None:
    """A line for the person watching, on stderr (not with ``--quiet``)."""
    if not args.quiet:
        print(text, file=sys.stderr)


def show_jobs(args: argparse.Namespace, jobs: list[JobInformation]) -> None:
    """Jobs as a table, or as JSON with ``--json``; ``no jobs`` rather than an empty table."""
    if not jobs and not args.json:
        if not args.quiet:
            print("no jobs")
        return
    show(args, unstructure(jobs), JOB_COLUMNS, [_job_row(j) for j in jobs], shrink=(3,))


def exit_for(job: JobInformation) -> ExitCode:
    """0 for a COMPLETED job; 1 for any other, said on stderr (also with ``--quiet``)."""
    if job.status == JobStatus.COMPLETED:
        return ExitCode.OK
    ended = "ended" if job.status.is_terminal else "is still"
    hint = f" (see: unstructured-jobs failed-files {job.id})" if job.status == "FAILED" else ""
    print(f"unstructured-jobs: error: job {job.id} {ended} {job.status}{hint}", file=sys.stderr)
    return ExitCode.FAILED


def wait_timeout(args: argparse.Namespace) -> float:
    """``--timeout``, else the default wait (600 s)."""
    return DEFAULT_WAIT_TIMEOUT if args.timeout is None else float(args.timeout)


async def wait(args: argparse.Namespace, c: AsyncJobsClient, job_id: str) -> JobInformation:
    """Wait for the job; past ``--timeout``, say so and return the last state seen."""
    mode = mode_of(args)
    status = StatusProgress(mode, job_id)
    try:
        return await c.wait_for_job(
            job_id,
            timeout=wait_timeout(args),
            poll_interval=args.poll_interval,
            on_poll=status,
            # The files done, running and failed, on the status line: read at most every 5 s
            # (the service allows 12 a minute per job), not at all when nothing is shown.
            on_files=None if mode is Mode.OFF else status.files,
        )
    except WaitTimeoutError as exc:
        if exc.last_job is None:
            raise
        print(f"unstructured-jobs: {exc}", file=sys.stderr)
        return exc.last_job
    finally:
        status.close()
