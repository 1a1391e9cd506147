"""``unstructured-jobs demo``: a batch against an in-process emulator, no account needed."""

from __future__ import annotations

import argparse
import time

from .._constants import CLI_DEMO_FILES
from .._demo import demo_workdir, run_demo
from .._exit_codes import ExitCode
from ._progress import BatchProgress, mode_of
from ._report import report
from ._types import positive

NAME = "demo"
HELP = "run a batch against a built-in emulator (no account needed)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--workdir`` and ``--files``."""
    p.add_argument("--workdir", help="folder for inputs/outputs (default: a temporary one)")
    p.add_argument(
        "--files",
        type=positive,
        default=CLI_DEMO_FILES,
        help=f"sample files (default {CLI_DEMO_FILES})",
    )


async def run(args: argparse.Namespace) -> ExitCode:
    """Run the demo batch and print its report."""
    workdir = demo_workdir(args.workdir)
    progress = BatchProgress(mode_of(args))
    started = time.monotonic()
    try:
        result = await run_demo(workdir, files=args.files, observer=progress)
    finally:
        progress.close()
    elapsed = time.monotonic() - started
    code = report(args, result, wait=True, uploaded=progress.sent_bytes, elapsed=elapsed)
    if not args.json and not args.quiet:
        print(f"inputs and outputs are in {workdir}")
        print("next: unstructured-jobs batch FOLDER --template-id ID -o OUT (with an API key)")
    return code
