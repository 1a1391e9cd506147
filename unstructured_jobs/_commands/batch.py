"""``unstructured-jobs batch``: many files as jobs, resumably (see docs/cli.md)."""

from __future__ import annotations

import argparse

from .._constants import (
    BATCH_MANIFEST_NAME,
    BATCH_MAX_CONCURRENT_UPLOADS,
    CLI_BATCH_MANIFEST,
    SERVICE_LAUNCHES_PER_SECOND,
    SERVICE_MAX_FILE_BYTES,
    SERVICE_MAX_FILES_PER_JOB,
)
from .._exit_codes import ExitCode
from ..batch import submit_batch
from . import _common
from ._progress import BatchProgress, mode_of
from ._report import report
from ._types import number, positive, size, size_text

NAME = "batch"
HELP = "send many files as jobs, resumably; re-run the same command to resume"
REQUIRED = "(--template-id ID | --job-nodes JSON|@FILE)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Inputs, job definition, output, manifest, limits and rates."""
    p.add_argument("inputs", nargs="+", help="files, folders (recursive) and glob patterns")
    _common.add_job_definition(p)
    p.add_argument("-o", "--output", help="download outputs into this folder")
    p.add_argument(
        "--manifest",
        help=f"manifest file (default: OUTPUT/{BATCH_MANIFEST_NAME}, else ./{CLI_BATCH_MANIFEST})",
    )
    p.add_argument(
        "--files-per-job",
        type=positive,
        default=SERVICE_MAX_FILES_PER_JOB,
        help=f"default {SERVICE_MAX_FILES_PER_JOB}",
    )
    p.add_argument(
        "--max-file-size",
        type=size,
        default=SERVICE_MAX_FILE_BYTES,
        help=f"default {size_text(SERVICE_MAX_FILE_BYTES)}",
    )
    p.add_argument("--max-job-size", type=size, default=None, help="default: no limit")
    p.add_argument(
        "--launch-rate",
        type=number(zero=True),
        default=SERVICE_LAUNCHES_PER_SECOND,
        help="jobs/s, 0: no limit",
    )
    p.add_argument(
        "--concurrency",
        type=positive,
        default=BATCH_MAX_CONCURRENT_UPLOADS,
        help=f"uploads at once (default {BATCH_MAX_CONCURRENT_UPLOADS})",
    )
    p.add_argument("--no-wait", action="store_true", help="submit only; re-run to wait")
    p.add_argument("--retry-failed", action="store_true", help="resend files whose job failed")
    p.add_argument("--include-hidden", action="store_true", help="include dot files in folders")
    _common.add_wait_options(p, flag=False)


async def run(args: argparse.Namespace) -> ExitCode:
    """Run the batch and print its report."""
    manifest = args.manifest
    if manifest is None and args.output is None:
        manifest = CLI_BATCH_MANIFEST
    bars = BatchProgress(mode_of(args))
    try:
        async with _common.client(args) as client:
            result = await submit_batch(
                client,
                args.inputs,
                template_id=args.template_id,
                job_nodes=args.job_nodes,
                output_dir=args.output,
                manifest=manifest,
                files_per_job=args.files_per_job,
                max_file_bytes=args.max_file_size,
                max_job_bytes=args.max_job_size,
                launch_rate=args.launch_rate or None,
                max_concurrent_uploads=args.concurrency,
                wait=not args.no_wait,
                wait_timeout=args.timeout,
                poll_interval=args.poll_interval,
                retry_failed=args.retry_failed,
                include_hidden=args.include_hidden,
                observer=bars,
            )
    finally:
        bars.close()
    return report(args, result, wait=not args.no_wait)
