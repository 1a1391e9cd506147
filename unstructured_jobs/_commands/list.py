"""``unstructured-jobs list``: the jobs, newest first."""

from __future__ import annotations

import argparse

from .._constants import CLI_LIST_LIMIT
from .._exit_codes import ExitCode
from . import _common
from ._types import JOB_STATUSES, count, job_status, uuid_id

NAME = "list"
HELP = "list jobs, newest first"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The filters the API has (workflow, status) and ``--limit``."""
    p.add_argument("--workflow-id", type=uuid_id("workflow_id"), help="only this workflow's jobs")
    p.add_argument(
        "--status",
        type=job_status,
        choices=JOB_STATUSES,
        metavar="STATUS",
        help=f"only jobs in this status ({', '.join(JOB_STATUSES)}; any case)",
    )
    p.add_argument(
        "-L",
        "--limit",
        type=count,
        default=CLI_LIST_LIMIT,
        metavar="N",
        help=f"the N newest jobs (default {CLI_LIST_LIMIT}; 0: all)",
    )


async def run(args: argparse.Namespace) -> ExitCode:
    """List the jobs, newest first (the API gives them in no documented order)."""
    async with _common.client(args) as client:
        jobs = await client.list_jobs(workflow_id=args.workflow_id, status=args.status)
    jobs.sort(key=lambda job: job.created_at, reverse=True)
    if args.limit and len(jobs) > args.limit:
        _common.note(
            args,
            f"unstructured-jobs: showing the {args.limit} newest of {len(jobs)} jobs "
            "(--limit N for more, --limit 0 for all)",
        )
        del jobs[args.limit :]
    _common.show_jobs(args, jobs)
    return ExitCode.OK
