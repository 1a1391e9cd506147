"""What ``batch`` and ``demo`` print at the end: a table and a summary line, or JSON; the
failures and what to do about them on stderr; the plan of a dry run."""

from __future__ import annotations

import argparse
import sys

from .._exit_codes import ExitCode
from .._manifest import display_path
from .._output import print_json, print_table
from ..batch import BatchPlan, BatchReport, FileState, PlannedAction
from ._common import shown_path
from ._progress import human_bytes, human_seconds

FAILURES_LISTED = 20
"""Failed files named one by one on stderr; the rest are counted (all are in the report)."""


def _shown(text: str | None) -> str | None:
    return None if text is None else display_path(text)


def report(
    args: argparse.Namespace,
    result: BatchReport,
    *,
    wait: bool,
    uploaded: int = 0,
    elapsed: float | None = None,
) -> ExitCode:
    """Print the batch's report; 0 when every file is done (or submitted, without waiting).

    stdout: a table of every file and a summary line, or JSON (nothing with ``--quiet``).
    stderr, in every mode: the failed files with their errors, and what to run next.
    """
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
                shown_path(f.path),
                f.state,
                f.job_id,
                shown_path(f.output_path) if f.output_path else _shown(f.error),
            ]
            for f in result.files
        ]
        print_table(("file", "state", "job", "output / error"), rows, shrink=(3,))
        print(f"\n{summary(result, uploaded=uploaded, elapsed=elapsed)}")
    _failures(result)
    return ExitCode.FAILED if any(f.state in bad for f in result.files) else ExitCode.OK


def summary(result: BatchReport, *, uploaded: int, elapsed: float | None) -> str:
    """``40 files: 38 done, 2 failed; 20 jobs; 1.2 MB uploaded in 12 s (manifest: ...)``."""
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
    sent = f"{human_bytes(uploaded)} uploaded" if uploaded else "nothing uploaded"
    took = f" in {human_seconds(elapsed)}" if elapsed is not None else ""
    jobs = len(result.job_ids)
    text = f"{len(result.files)} files: {counts}; {jobs} job{'s' * (jobs != 1)}; {sent}{took}"
    return text + (f" (manifest: {shown_path(result.manifest)})" if result.manifest else "")


def _failures(result: BatchReport) -> None:
    """The failed files with their errors, then the next steps, on stderr."""
    failed = [f for f in result.files if f.state == FileState.FAILED]
    if failed:
        print(f"unstructured-jobs: error: {len(failed)} file(s) failed:", file=sys.stderr)
        for f in failed[:FAILURES_LISTED]:
            print(f"  {shown_path(f.path)}: {_shown(f.error)}", file=sys.stderr)
        if len(failed) > FAILURES_LISTED:
            more = len(failed) - FAILURES_LISTED
            print(f"  ... and {more} more (each is in the report)", file=sys.stderr)
        print(
            "unstructured-jobs: fix the cause shown for each, then run the same command again "
            "with --retry-failed to send them again",
            file=sys.stderr,
        )
    unsettled = (FileState.PENDING, FileState.SUBMITTING, FileState.SUBMITTED)
    if unfinished := sum(1 for f in result.files if f.state in unsettled):
        print(
            f"unstructured-jobs: {unfinished} file(s) are not finished: run the same command "
            "again to send, reconcile or wait for them; nothing is sent twice",
            file=sys.stderr,
        )


def plan(args: argparse.Namespace, result: BatchPlan) -> ExitCode:
    """Print a dry run: every file with what a run would do, and a summary line."""
    if args.json:
        files = [
            {
                "path": display_path(f.path),
                "size": f.size,
                "action": f.action,
                "job": f.job,
                "reason": _shown(f.reason),
            }
            for f in result.files
        ]
        print_json(
            {
                "dry_run": True,
                "manifest": _shown(result.manifest),
                "jobs": result.jobs,
                "upload_bytes": result.upload_bytes,
                "excluded": result.excluded,
                "counts": result.counts(),
                "files": files,
            }
        )
    elif not args.quiet:
        rows = [
            [shown_path(f.path), human_bytes(f.size), f.action, f.job, _shown(f.reason)]
            for f in result.files
        ]
        print_table(("file", "size", "action", "job", "reason"), rows, shrink=(4,))
        print(f"\n{plan_summary(result)}")
    return ExitCode.OK


def plan_summary(result: BatchPlan) -> str:
    """``dry run: 38 files (1.2 MB) would be sent in 19 jobs; ...; nothing was sent``."""
    counts = result.counts()
    send = counts.get(PlannedAction.SEND, 0)
    parts = [
        f"{send} file{'s' * (send != 1)} ({human_bytes(result.upload_bytes)}) would be sent in "
        f"{result.jobs} job{'s' * (result.jobs != 1)}"
    ]
    described = {
        PlannedAction.CHECK: "would be looked for on the server (answer lost)",
        PlannedAction.WAIT: "already sent, would be waited for",
        PlannedAction.SENT: "already sent",
        PlannedAction.DONE: "done before, skipped",
        PlannedAction.FAIL: "would fail",
    }
    parts += [f"{counts[a]} {text}" for a, text in described.items() if counts.get(a)]
    if result.excluded:
        parts.append(f"{result.excluded} left out by --include/--exclude")
    return "dry run: " + "; ".join(parts) + "; nothing was sent"
