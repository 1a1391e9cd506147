"""``unstructured-jobs file-status``: each file of a job and where it is."""

from __future__ import annotations

import argparse

from .._converter import unstructure
from .._exit_codes import ExitCode
from .._models import FileProcessingStatus, FileStatus
from . import _common
from ._types import uuid_id

NAME = "file-status"
HELP = "list each file of a job with its status (READY, IN_PROGRESS, SUCCESS, FAILURE)"
HEADERS = ("document", "status", "seconds", "node", "error")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job id."""
    p.add_argument("job_id", type=uuid_id("job_id"))


def _row(f: FileStatus) -> list[object]:
    node = f.current_node
    seconds = f.time_elapsed
    if seconds is None and node is not None:
        seconds = node.time_elapsed  # a running file: the time in its node so far
    return [
        f.document,
        f.status,
        None if seconds is None else f"{seconds:.1f}",
        None if node is None else node.id,
        f.error,
    ]


async def run(args: argparse.Namespace) -> ExitCode:
    """List the files, after a line counting them by status."""
    async with _common.client(args) as client:
        status = await client.get_job_file_status(args.job_id)
    if not args.json and not args.quiet:
        counts = [f"{status.count(s)} {s}" for s in FileProcessingStatus if status.count(s)]
        unknown = len(status.files) - sum(status.count(s) for s in FileProcessingStatus)
        counts += [f"{unknown} other"] if unknown else []
        line = f"job {status.id}: {len(status.files)} file(s)"
        line += f": {', '.join(counts)}" if counts else ""
        if status.truncated:
            line += " (the server listed only some of them)"
        if status.index_finished is False:
            line += " (more may come: the source is still being listed)"
        print(line)
    rows = [_row(f) for f in status.files]
    _common.show(args, unstructure(status), HEADERS, rows, shrink=(0, 4))
    return ExitCode.OK
