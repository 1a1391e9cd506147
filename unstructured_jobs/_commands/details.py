"""``unstructured-jobs details``: a job's processing status and per-node counters."""

from __future__ import annotations

import argparse

from .._converter import unstructure
from .._exit_codes import ExitCode
from . import _common
from ._types import uuid_id

NAME = "details"
HELP = "show a job's processing details"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job id."""
    p.add_argument("job_id", type=uuid_id("job_id"))


async def run(args: argparse.Namespace) -> ExitCode:
    """Show the details."""
    async with _common.client(args) as client:
        details = await client.get_job_details(args.job_id)
    if not args.json and not args.quiet:
        print(
            f"job {details.id}: {details.processing_status}"
            + (f" ({details.message})" if details.message else "")
        )
    rows = [
        [n.node_name, n.node_type, n.ready, n.in_progress, n.success, n.failure]
        for n in details.node_stats
    ]
    headers = ("node", "type", "ready", "in_progress", "success", "failure")
    _common.show(args, unstructure(details), headers, rows)
    return ExitCode.OK
