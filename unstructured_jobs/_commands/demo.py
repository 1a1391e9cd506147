"""``unstructured-jobs demo``: a batch against an in-process emulator, no account needed."""

from __future__ import annotations

import argparse
import time

from .._constants import CLI_DEMO_FILES
from .._demo import DEMO_TEMPLATE, demo_workdir, run_demo
from .._exit_codes import ExitCode
from ._progress import BatchProgress, mode_of
from ._report import report
from ._types import positive

NAME = "demo"
HELP = "run a batch against a built-in emulator (no account needed)"


NEXT = f"""
what to try next:
  unstructured-jobs serve --run-for 5    # this emulator in a shell of its own; paste the
                                         # export line it prints into another shell, then:
  unstructured-jobs batch FOLDER --template-id {DEMO_TEMPLATE} -o OUT   # your own files
  unstructured-jobs list                 # the jobs, newest first
  unstructured-jobs templates            # what a job can run
  unstructured-jobs completion --help    # Tab completion for bash, zsh or fish
with an API key (--api-key KEY or UNSTRUCTURED_API_KEY), the same commands use the service.
"""
"""The lines the demo ends with: real commands, with the emulator first (no account)."""


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
        print(NEXT, end="")
    return code
