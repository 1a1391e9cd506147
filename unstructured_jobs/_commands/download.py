"""``unstructured-jobs download``: a job's outputs into a folder."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .._batch.paths import output_path_inside
from .._exit_codes import ExitCode
from . import _common
from ._progress import TransferProgress, mode_of
from ._types import uuid_id

NAME = "download"
HELP = (
    "download a job's outputs into a folder (one file per input file, never overwritten by another)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job id, the folder, which files and node."""
    p.add_argument("job_id", type=uuid_id("job_id"))
    p.add_argument("-o", "--output", default=".", help="folder (default: current)")
    p.add_argument("--file-id", action="append", help="only this file id (repeatable)")
    p.add_argument(
        "--node-id", type=uuid_id("node_id"), help="node whose output to download (default: last)"
    )


async def run(args: argparse.Namespace) -> ExitCode:
    """Download each output as ``<file id>.json``."""
    os.makedirs(args.output, exist_ok=True)
    rows: list[dict[str, Any]] = []
    async with _common.client(args) as client:
        file_ids = args.file_id or list((await client.get_job(args.job_id)).input_file_ids or ())
        file_ids = list(dict.fromkeys(file_ids))  # one output per id, however often it is listed
        # Ids whose safe names collide (`a/b.pdf`, `a_b.pdf`) get `a_b.pdf (2).json`: one
        # output never replaces another.
        from .._run_job import output_names

        names = output_names(file_ids)
        with TransferProgress(
            mode_of(args), what="download", total=len(file_ids), unit="outputs"
        ) as progress:
            for file_id, name in zip(file_ids, names, strict=True):
                target = output_path_inside(args.output, name)
                await client.download_job_output_to(
                    args.job_id, target, file_id=file_id, node_id=args.node_id
                )
                rows.append({"file_id": file_id, "output_path": str(target)})
                progress.update(1)
    table = [[r["file_id"], _common.shown_path(r["output_path"])] for r in rows]
    _common.show(args, rows, ("file_id", "output_path"), table)
    return ExitCode.OK
