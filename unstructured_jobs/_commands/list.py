"""``unstructured-jobs list``: the jobs."""

from __future__ import annotations

import argparse

from .._exit_codes import ExitCode
from . import _common

NAME = "list"
HELP = "list jobs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The filters the API has."""
    p.add_argument("--workflow-id")
    p.add_argument("--status")


async def run(args: argparse.Namespace) -> ExitCode:
    """List the jobs."""
    async with _common.client(args) as client:
        jobs = await client.list_jobs(workflow_id=args.workflow_id, status=args.status)
    _common.show_jobs(args, jobs)
    return ExitCode.OK
