"""``unstructured-jobs list``: the jobs."""

from __future__ import annotations

import argparse

from .._exit_codes import ExitCode
from . import _common
from ._types import JOB_STATUSES, job_status, uuid_id

NAME = "list"
HELP = "list jobs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The filters the API has."""
    p.add_argument("--workflow-id", type=uuid_id("workflow_id"), help="only this workflow's jobs")
    p.add_argument(
        "--status",
        type=job_status,
        choices=JOB_STATUSES,
        metavar="STATUS",
        help=f"only jobs in this status ({', '.join(JOB_STATUSES)}; any case)",
    )


async def run(args: argparse.Namespace) -> ExitCode:
    """List the jobs."""
    async with _common.client(args) as client:
        jobs = await client.list_jobs(workflow_id=args.workflow_id, status=args.status)
    _common.show_jobs(args, jobs)
    return ExitCode.OK
