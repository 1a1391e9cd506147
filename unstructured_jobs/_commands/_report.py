"""What ``batch`` and ``demo`` print at the end: a summary line (after a table of every file,
for a small batch or with ``--table``), or JSON; the failures and what to do about them on
stderr; the plan of a dry run.

Readable at any size: a batch of more than `TABLE_MAX_FILES` files prints its summary and its
failures, not a table of thousands of lines (``--table`` asks for it, ``--no-table`` leaves it
out of a small one, ``--json`` has every file); paths are cut to the terminal's width in the
middle (their file name stays) and control characters in names are escaped (`printable`).
"""

from __future__ import annotations

import argparse
import sys

import attrs

from .._batch.manifest import display_path
from .._exit_codes import ExitCode
from .._output import cut_middle, line_width, print_json, print_table, printable
from ..batch import BatchPlan, BatchReport, FileState, PlannedAction
from ._common import shown_path
from ._progress import human_bytes, human_seconds

FAILURES_LISTED = 20
"""Failed files named one by one on stderr; the rest are counted (all are in the report)."""
TABLE_MAX_FILES = 50
"""Up to this many files, a batch (or a dry run) prints a table of each file by default."""
_PATH_SHARE = 0.6
"""A failure line cut to the terminal gives its path at most this share of the width."""


@attrs.frozen
class Pacing:
    """How much the service slowed a run: refusals (429) and the seconds they cost, and the
    other retries (a 503, a dropped connection)."""

    refusals: int = 0
    waited: float = 0.0
    retries: int = 0


def _shown(text: str | None) -> str | None:
    return None if text is None else printable(text)


def _json_text(text: str | None) -> str | None:
    # Paths that are not UTF-8 (caf\xe9.pdf from an old archive) are given with their bytes
    # escaped: JSON cannot carry them raw (JSON escapes control characters by itself).
    return None if text is None else display_path(text)


def show_table(args: argparse.Namespace, files: int) -> bool:
    """``--table``/``--no-table``, else a table for at most `TABLE_MAX_FILES` files."""
    table: bool | None = getattr(args, "table", None)
    return files <= TABLE_MAX_FILES if table is None else table


def report(
    args: argparse.Namespace,
    result: BatchReport,
    *,
    wait: bool,
    uploaded: int = 0,
    elapsed: float | None = None,
    pacing: Pacing | None = None,
) -> ExitCode:
    """Print the batch's report; 0 when every file is done (or submitted, without waiting).

    stdout: a table of every file (see `show_table`) and a summary line, or JSON (nothing
    with ``--quiet``). stderr, in every mode: the failed files with their errors, and what to
    run next.
    """
    bad = {"failed", "pending", "submitting"} | ({"submitted"} if wait else set())
    pacing = pacing or Pacing(result.refusals, result.paced_seconds)
    if args.json:
        files = [
            {
                k: _json_text(getattr(f, k))
                if k in ("path", "output_path", "error")
                else getattr(f, k)
                for k in ("path", "state", "job_id", "job_status", "output_path", "error")
            }
            for f in result.files
        ]
        print_json(
            {
                "manifest": _json_text(result.manifest),
                "counts": result.counts(),
                "pacing": {
                    "refusals": pacing.refusals,
                    "waited_seconds": round(pacing.waited, 3),
                    "retries": pacing.retries,
                },
                "files": files,
            }
        )
    elif not args.quiet:
        table = show_table(args, len(result.files))
        if table:
            rows = [
                [
                    shown_path(f.path),
                    f.state,
                    f.job_id,
                    shown_path(f.output_path) if f.output_path else _shown(f.error),
                ]
                for f in result.files
            ]
            print_table(("file", "state", "job", "output / error"), rows, shrink=(3,), paths=(0,))
            print()
        print(summary(result, uploaded=uploaded, elapsed=elapsed, pacing=pacing))
        if not table:
            print(f"(a line per file: --table, or --json; {len(result.files)} files)")
    _failures(result)
    return ExitCode.FAILED if any(f.state in bad for f in result.files) else ExitCode.OK


def summary(
    result: BatchReport, *, uploaded: int, elapsed: float | None, pacing: Pacing | None = None
) -> str:
    """``40 files: 38 done, 2 failed; 20 jobs; 1.2 MB uploaded in 12 s; paced: 3 refusals
    (429), 4 s waited; 2 retries (manifest: ...)`` (pacing and retries only when there were)."""
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
    sent = f"{human_bytes(uploaded)} uploaded" if uploaded else "nothing uploaded"
    took = f" in {human_seconds(elapsed)}" if elapsed is not None else ""
    jobs = len(result.job_ids)
    text = f"{len(result.files)} files: {counts}; {jobs} job{'s' * (jobs != 1)}; {sent}{took}"
    if pacing is not None and pacing.refusals:
        n = pacing.refusals
        text += f"; paced: {n} refusal{'s' * (n != 1)} (429), {human_seconds(pacing.waited)} waited"
    if pacing is not None and pacing.retries:
        text += f"; {pacing.retries} retr{'ies' if pacing.retries != 1 else 'y'}"
    return text + (f" (manifest: {shown_path(result.manifest)})" if result.manifest else "")


def failure_line(path: str, error: str | None, width: int | None) -> str:
    """``  PATH: ERROR``, cut to `width` (the path in its middle, then the error at its end)."""
    shown, why = shown_path(path), _shown(error) or ""
    line = f"  {shown}: {why}"
    if width is None or len(line) <= width:
        return line
    shown = cut_middle(shown, max(int(width * _PATH_SHARE), 12))
    line = f"  {shown}: {why}"
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


def _failures(result: BatchReport) -> None:
    """The failed files with their errors, then the next steps, on stderr."""
    failed = [f for f in result.files if f.state == FileState.FAILED]
    if failed:
        width = line_width(sys.stderr)
        print(f"unstructured-jobs: error: {len(failed)} file(s) failed:", file=sys.stderr)
        for f in failed[:FAILURES_LISTED]:
            print(failure_line(f.path, f.error, width), file=sys.stderr)
        if len(failed) > FAILURES_LISTED:
            more = len(failed) - FAILURES_LISTED
            print(f"  ... and {more} more (--table or --json lists each)", file=sys.stderr)
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
                "reason": _json_text(f.reason),
            }
            for f in result.files
        ]
        print_json(
            {
                "dry_run": True,
                "manifest": _json_text(result.manifest),
                "jobs": result.jobs,
                "upload_bytes": result.upload_bytes,
                "excluded": result.excluded,
                "counts": result.counts(),
                "files": files,
            }
        )
    elif not args.quiet:
        table = show_table(args, len(result.files))
        if table:
            rows = [
                [shown_path(f.path), human_bytes(f.size), f.action, f.job, _shown(f.reason)]
                for f in result.files
            ]
            print_table(("file", "size", "action", "job", "reason"), rows, shrink=(4,), paths=(0,))
            print()
        print(plan_summary(result))
        if not table:
            print(f"(a line per file: --table, or --json; {len(result.files)} files)")
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
