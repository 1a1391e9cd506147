"""``unstructured-jobs batch``: many files as jobs, resumably (see docs/cli.md)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import anyio.to_thread

from .._batch.options import BATCH_OPTIONS, BatchOption
from .._constants import CLI_BATCH_MANIFEST
from .._exit_codes import ExitCode
from . import _common
from ._progress import BatchProgress, RetryNotes, mode_of
from ._report import TABLE_MAX_FILES, Pacing, plan, report
from ._types import number, positive, size, size_text

NAME = "batch"
HELP = "send many files as jobs, resumably; re-run the same command to resume"
REQUIRED = "(--template-id ID | --job-nodes JSON|@FILE)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Inputs, then the batch options that have a flag (`BATCH_OPTIONS`), then the command's."""
    p.add_argument("inputs", nargs="+", help="files, folders (recursive) and glob patterns")
    for option in BATCH_OPTIONS:
        if option.flag is not None:
            _add_option(p, option)
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


def _add_option(p: argparse.ArgumentParser, option: BatchOption) -> None:
    """One batch option's flag, read as its `CliKind` says (see `_batch_options`)."""
    assert option.flag is not None
    if option.kind == "shared":  # the helper shared with other commands adds it once
        if option.flag == "--template-id":
            _common.add_job_definition(p)
        elif option.flag == "--timeout":
            _common.add_wait_options(p, flag=False)
        return
    shown = size_text(option.cli_default) if option.kind == "size" else option.cli_default
    help = None if option.cli_help is None else option.cli_help.format(default=shown)
    metavar = option.dest.upper()
    kinds: dict[str, dict[str, Any]] = {
        "text": {},
        "positive": {"type": positive, "metavar": metavar},
        "size": {"type": size, "metavar": metavar},
        "rate": {"type": number(zero=True), "metavar": metavar},
        "flag": {"action": "store_true"},
        "negated": {"action": "store_true"},
        "globs": {"action": "append", "metavar": "GLOB", "default": []},
    }
    arguments = kinds[option.kind]
    if option.kind in ("text", "positive", "size", "rate"):
        arguments = {**arguments, "default": option.cli_default}
    flags = [option.flag] if option.short is None else [option.short, option.flag]
    p.add_argument(*flags, help=help, **arguments)


async def run(args: argparse.Namespace) -> ExitCode:
    """Run the batch (or plan it, with ``--dry-run``) and print its report."""
    manifest = args.manifest
    if manifest is None and args.output is None:
        manifest = CLI_BATCH_MANIFEST
    options = {o.name: o.from_args(args) for o in BATCH_OPTIONS if o.flag is not None}
    options["manifest"] = manifest
    from ..batch import plan_batch, submit_batch  # the engine: not needed for --help

    if args.dry_run:  # no client: nothing can be sent, and no API key is needed
        return plan(
            args,
            await anyio.to_thread.run_sync(
                lambda: plan_batch(
                    args.inputs, **{o.name: options[o.name] for o in BATCH_OPTIONS if o.plan}
                )
            ),
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
