"""``unstructured-jobs failed-files``: a job's failed documents and their errors."""

from __future__ import annotations

import argparse

from .._converter import unstructure
from .._exit_codes import ExitCode
from . import _common
from ._types import uuid_id

NAME = "failed-files"
HELP = "list a job's failed files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job id."""
    p.add_argument("job_id", type=uuid_id("job_id"))


async def run(args: argparse.Namespace) -> ExitCode:
    """List the failed files."""
    async with _common.client(args) as client:
        failed = await client.get_job_failed_files(args.job_id)
    rows = [[f.document, f.error] for f in failed.failed_files]
    _common.show(args, unstructure(failed), ("document", "error"), rows, shrink=(1,))
    return ExitCode.OK
