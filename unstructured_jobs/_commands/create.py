"""``unstructured-jobs create``: one job from files, optionally waited for."""

from __future__ import annotations

import argparse
import os

from .._exit_codes import ExitCode
from . import _common
from ._progress import TransferProgress, mode_of

NAME = "create"
HELP = "create one job from files"
REQUIRED = "(--template-id ID | --job-nodes JSON|@FILE)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--template-id``/``--job-nodes``, the files, ``--wait``."""
    _common.add_job_definition(p)
    p.add_argument("files", nargs="*", help="input files")
    _common.add_wait_options(p, flag=True)


async def run(args: argparse.Namespace) -> ExitCode:
    """Create the job (and wait for it with ``--wait``)."""
    total = sum(os.path.getsize(f) for f in args.files if os.path.isfile(f))
    async with _common.client(args) as client:
        with TransferProgress(mode_of(args), what="upload", total=total) as bar:
            job = await client.create_job(
                template_id=args.template_id,
                job_nodes=args.job_nodes,
                input_files=args.files,
                on_upload_progress=bar.update,
            )
        if args.wait:
            job = await _common.wait(args, client, job.id)
    _common.show_jobs(args, [job])
    return _common.exit_for(job) if args.wait else ExitCode.OK
