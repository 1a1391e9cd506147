"""``unstructured-jobs get``: one job."""

from __future__ import annotations

import argparse

from .._exit_codes import ExitCode
from . import _common
from ._types import uuid_id

NAME = "get"
HELP = "show a job"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job id."""
    p.add_argument("job_id", type=uuid_id("job_id"))


async def run(args: argparse.Namespace) -> ExitCode:
    """Show the job."""
    async with _common.client(args) as client:
        job = await client.get_job(args.job_id)
    _common.show_jobs(args, [job])
    return ExitCode.OK
