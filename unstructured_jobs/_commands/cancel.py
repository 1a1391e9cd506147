"""``unstructured-jobs cancel``: cancel a job."""

from __future__ import annotations

import argparse

from .._exit_codes import ExitCode
from . import _common
from ._types import uuid_id

NAME = "cancel"
HELP = "cancel a job"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job id."""
    p.add_argument("job_id", type=uuid_id("job_id"))


async def run(args: argparse.Namespace) -> ExitCode:
    """Cancel the job."""
    async with _common.client(args) as client:
        result = await client.cancel_job(args.job_id)
    rows = [[result.id, result.status, result.message]]
    _common.show(args, dict(result.raw), ("id", "status", "message"), rows, shrink=(2,))
    return ExitCode.OK
