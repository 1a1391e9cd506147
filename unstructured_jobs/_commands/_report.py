"""The report of a batch (``batch``, ``demo``): a table and a summary, or JSON."""

from __future__ import annotations

import argparse
import os
import sys

from .._exit_codes import ExitCode
from .._manifest import display_path
from .._output import print_json, print_table
from ..batch import BatchReport


def _shown(text: str | None) -> str | None:
    return None if text is None else display_path(text)


def report(args: argparse.Namespace, result: BatchReport, *, wait: bool) -> ExitCode:
    """Print the batch's report; 0 when every file is done (or submitted, without waiting)."""
    bad = {"failed", "pending", "submitting"} | ({"submitted"} if wait else set())
    # Paths that are not UTF-8 (caf\xe9.pdf from an old archive) are shown with their bytes
    # escaped: printing them raw would fail on a UTF-8 terminal or pipe.
    if args.json:
        files = [
            {
                k: _shown(getattr(f, k)) if k in ("path", "output_path", "error") else getattr(f, k)
                for k in ("path", "state", "job_id", "job_status", "output_path", "error")
            }
            for f in result.files
        ]
        manifest = _shown(result.manifest)
        print_json({"manifest": manifest, "counts": result.counts(), "files": files})
    elif not args.quiet:
        rows = [
            [
                display_path(os.path.relpath(f.path) if os.path.isabs(f.path) else f.path),
                f.state,
                f.job_id,
                _shown(f.output_path or f.error),
            ]
            for f in result.files
        ]
        print_table(("file", "state", "job", "output / error"), rows)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
        print(
            f"\n{len(result.files)} files: {summary}"
            + (f" (manifest: {_shown(result.manifest)})" if result.manifest else "")
        )
    for step in result.next_steps():  # on stderr, also with --json: advice, not data
        print(step, file=sys.stderr)
    return ExitCode.FAILED if any(f.state in bad for f in result.files) else ExitCode.OK
