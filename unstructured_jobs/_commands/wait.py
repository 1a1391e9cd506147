"""``unstructured-jobs wait``: wait until a job ends."""

from __future__ import annotations

import argparse

from .._exit_codes import ExitCode
from . import _common
from ._types import uuid_id

NAME = "wait"
HELP = "wait for a job to end (exit 0 when COMPLETED)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job id, ``--timeout``, ``--poll-interval``."""
    p.add_argument("job_id", type=uuid_id("job_id"))
    _common.add_wait_options(p, flag=False)


async def run(args: argparse.Namespace) -> ExitCode:
    """Wait, show the job, exit 0 only when it COMPLETED."""
    async with _common.client(args) as client:
        job = await _common.wait(args, client, args.job_id)
    _common.show_jobs(args, [job])
    return _common.exit_for(job)
