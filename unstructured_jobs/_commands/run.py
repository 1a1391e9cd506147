"""``unstructured-jobs run``: run a long-lived workflow, optionally with files."""

from __future__ import annotations

import argparse
import os

from .._exit_codes import ExitCode
from . import _common
from ._progress import TransferProgress, mode_of
from ._types import uuid_id

NAME = "run"
HELP = "run a workflow, optionally with files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The workflow id, the files, ``--wait``."""
    p.add_argument("workflow_id", type=uuid_id("workflow_id"))
    p.add_argument("files", nargs="*", help="input files")
    _common.add_wait_options(p, flag=True)


async def run(args: argparse.Namespace) -> ExitCode:
    """Run the workflow (and wait for its job with ``--wait``)."""
    total = sum(os.path.getsize(f) for f in args.files if os.path.isfile(f))
    async with _common.client(args) as client:
        with TransferProgress(mode_of(args), what="upload", total=total) as bar:
            job = await client.run_workflow(
                args.workflow_id, input_files=args.files, on_upload_progress=bar.update
            )
        if args.wait:
            job = await _common.wait(args, client, job.id)
    _common.show_jobs(args, [job])
    return _common.exit_for(job) if args.wait else ExitCode.OK
