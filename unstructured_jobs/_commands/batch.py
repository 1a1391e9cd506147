"""``unstructured-jobs batch``: many files as jobs, resumably (see docs/cli.md)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import anyio.to_thread

from .._constants import (
    BATCH_MANIFEST_NAME,
    BATCH_MAX_CONCURRENT_UPLOADS,
    CLI_BATCH_MANIFEST,
    SERVICE_LAUNCHES_PER_SECOND,
    SERVICE_MAX_FILE_BYTES,
    SERVICE_MAX_FILES_PER_JOB,
)
from .._exit_codes import ExitCode
from ..batch import plan_batch, submit_batch
from . import _common
from ._progress import BatchProgress, RetryNotes, mode_of
from ._report import TABLE_MAX_FILES, Pacing, plan, report
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
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only files matching this pattern (repeatable): '*.pdf' matches names, "
        "'drafts/**' the end of paths",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out files matching this pattern (repeatable)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be sent (files, jobs, bytes) and send nothing",
    )
    p.add_argument(
        "--table",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"a line per file before the summary (default: for at most {TABLE_MAX_FILES} "
        "files; a larger batch prints its summary and failures)",
    )
    _common.add_wait_options(p, flag=False)


async def run(args: argparse.Namespace) -> ExitCode:
    """Run the batch (or plan it, with ``--dry-run``) and print its report."""
    manifest = args.manifest
    if manifest is None and args.output is None:
        manifest = CLI_BATCH_MANIFEST
    options: dict[str, Any] = {
        "template_id": args.template_id,
        "job_nodes": args.job_nodes,
        "output_dir": args.output,
        "manifest": manifest,
        "files_per_job": args.files_per_job,
        "max_file_bytes": args.max_file_size,
        "max_job_bytes": args.max_job_size,
        "wait": not args.no_wait,
        "retry_failed": args.retry_failed,
        "include_hidden": args.include_hidden,
        "include": args.include,
        "exclude": args.exclude,
    }
    if args.dry_run:  # no client: nothing can be sent, and no API key is needed
        return plan(
            args, await anyio.to_thread.run_sync(lambda: plan_batch(args.inputs, **options))
        )
    progress = BatchProgress(mode_of(args), debug=args.debug)
    notes: RetryNotes | None = getattr(args, "retry_notes", None)
    if notes is not None:  # a 429 is the service pacing the batch: counted, not said
        notes.pacing = progress.client_paced
    started = time.monotonic()
    try:
        async with _common.client(args) as client:
            result = await submit_batch(
                client,
                args.inputs,
                launch_rate=args.launch_rate or None,
                max_concurrent_uploads=args.concurrency,
                wait_timeout=args.timeout,
                poll_interval=args.poll_interval,
                observer=progress,
                **options,
            )
    finally:
        progress.close()
    refusals, waited = progress.totals(result.refusals, result.paced_seconds)
    return report(
        args,
        result,
        wait=not args.no_wait,
        uploaded=progress.sent_bytes,
        elapsed=time.monotonic() - started,
        pacing=Pacing(refusals, waited, notes.retries if notes is not None else 0),
    )
