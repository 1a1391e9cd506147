"""``unstructured-jobs serve``: the local emulator (`unstructured_jobs.testing`), with faults.

Its options are the emulator's own (``--api-key`` is the key it accepts), shared with
``python -m unstructured_jobs.testing``; the common options of the other commands do not apply.
"""

from __future__ import annotations

import argparse

from .._exit_codes import ExitCode

NAME = "serve"
HELP = "serve the local emulator of the API (prints the export line to paste)"
COMMON_OPTIONS = False
"""The common options (--json, --server-url, ...) are not this command's."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The emulator's options."""
    from ..testing._cli import DESCRIPTION, EPILOG, add_serve_arguments

    p.description, p.epilog = DESCRIPTION, EPILOG
    add_serve_arguments(p)
    for action in p._actions:  # `unstructured-jobs --api-key K serve` works too
        if action.dest == "api_key":
            action.default = argparse.SUPPRESS


def run(args: argparse.Namespace) -> ExitCode:
    """Serve until Ctrl-C or SIGTERM (exit 0)."""
    from ..testing._cli import serve

    return ExitCode(serve(args))
