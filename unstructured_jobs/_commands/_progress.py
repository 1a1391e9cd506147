"""Progress on stderr, in three modes (`Mode`): bars, lines, or nothing.

- **bars** (tqdm) when stderr is a terminal, or with ``--progress``;
- **lines** when it is not (a CI log, ``nohup``, a pipe): plain lines with counts
  (``batch: 12 files uploaded (1.2 MB of 3.4 MB), 3/20 jobs finished, 10/40 files done``),
  at most one every `CLI_PROGRESS_INTERVAL` seconds, plus the first and the last, and each
  change of a job's status at once;
- **off** with ``--quiet`` or ``--no-progress``.

Nothing here writes to stdout: ``--json`` output stays clean.
"""

from __future__ import annotations

import argparse
import enum
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

from .._constants import CLI_PROGRESS_INTERVAL
from .._manifest import FileState
from .._models import JobInformation
from ..batch import BatchObserver

__all__ = ["BatchProgress", "Lines", "Mode", "StatusProgress", "TransferProgress", "mode_of"]


def _bar_columns() -> dict[str, Any]:
    """The size of the terminal on stderr for tqdm, 80x24 when it reports none.

    tqdm draws nothing at all on a terminal of width 0 (a pseudo-terminal nobody sized, as
    some CI runners and ``script`` make).
    """
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file: let tqdm decide
        return {}
    return {"ncols": size.columns or 80, "nrows": size.lines or 24}


class Mode(enum.Enum):
    """How progress is shown."""

    BARS = "bars"
    LINES = "lines"
    OFF = "off"


def mode_of(args: argparse.Namespace) -> Mode:
    """``--quiet``/``--no-progress``: off; ``--progress``: bars; else bars on a terminal only."""
    if getattr(args, "quiet", False) or args.progress is False:
        return Mode.OFF
    if args.progress:
        return Mode.BARS
    return Mode.BARS if sys.stderr.isatty() else Mode.LINES


def human_bytes(n: float) -> str:
    """``1.2 MB`` (decimal units, as file managers and `ls -h --si` show them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def human_seconds(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Lines:
    """Plain progress lines on stderr, throttled: at most one per `interval` seconds.

    `say(text, force=True)` prints at once (a first or last line, a status change). A line
    equal to the last one printed is never repeated.
    """

    def __init__(
        self,
        *,
        interval: float = CLI_PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.stream = stream
        self._next = -float("inf")
        self._last: str | None = None

    def say(self, text: str, *, force: bool = False) -> None:
        """Print `text` if forced or if the last line is `interval` seconds old."""
        now = self.clock()
        if text == self._last or (not force and now < self._next):
            return
        print(text, file=self.stream or sys.stderr, flush=True)
        self._last = text
        self._next = now + self.interval


class TransferProgress:
    """Bytes uploaded (``create``, ``run``) or outputs downloaded (``download``)."""

    def __init__(
        self, mode: Mode, *, what: str, total: int, unit: str = "B", lines: Lines | None = None
    ) -> None:
        self.mode, self.what, self.total, self.unit = mode, what, total, unit
        self.done = 0
        self.lines = lines or Lines()
        self.bar: tqdm[Any] | None = None
        if mode is Mode.BARS:
            scale: dict[str, Any] = (
                {"unit": "B", "unit_scale": True, "unit_divisor": 1024}
                if unit == "B"
                else {"unit": unit}
            )
            self.bar = tqdm(
                total=total, desc=what, file=sys.stderr, leave=False, **scale, **_bar_columns()
            )

    def _amount(self, n: int) -> str:
        return human_bytes(n) if self.unit == "B" else str(n)

    def update(self, delta: int) -> None:
        """`delta` more (negative when an upload attempt is retried)."""
        self.done += delta
        if self.bar is not None:
            self.bar.update(delta)
        elif self.mode is Mode.LINES and self.total:
            first = self.done == delta
            self.lines.say(self._text(), force=first)

    def _text(self) -> str:
        percent = f" ({100 * self.done // self.total} %)" if self.total else ""
        return f"{self.what}: {self._amount(self.done)} of {self._amount(self.total)}{percent}"

    def close(self) -> None:
        """Remove the bar, or print the last line."""
        if self.bar is not None:
            self.bar.close()
        elif self.mode is Mode.LINES and self.total and self.done:
            self.lines.say(self._text(), force=True)

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StatusProgress:
    """A job's live status while ``wait`` or ``--wait`` polls it.

    Bars mode: one line redrawn in place (``job 3f2c...: IN_PROGRESS [00:12]``). Lines mode:
    each change of status at once, and ``still IN_PROGRESS after 2 min 10 s`` now and then.
    """

    def __init__(
        self, mode: Mode, job_id: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.mode, self.job_id, self.clock = mode, job_id, clock
        self.started = clock()
        self.status: str | None = None
        self.lines = Lines(clock=clock)
        self.bar: tqdm[Any] | None = None
        if mode is Mode.BARS:
            self.bar = tqdm(
                total=None,
                desc=f"job {job_id}: waiting",
                bar_format="{desc} [{elapsed}]",
                file=sys.stderr,
                leave=False,
                **_bar_columns(),
            )

    def __call__(self, job: JobInformation) -> None:
        """`on_poll` of `wait_for_job`: show the job's status."""
        status = str(job.status)
        changed, self.status = status != self.status, status
        if self.bar is not None:
            self.bar.set_description_str(f"job {self.job_id}: {status}", refresh=True)
        elif self.mode is Mode.LINES:
            if changed:
                self.lines.say(f"job {self.job_id}: {status}", force=True)
            else:
                waited = human_seconds(self.clock() - self.started)
                self.lines.say(f"job {self.job_id}: still {status} after {waited}")

    def close(self) -> None:
        """Remove the status line."""
        if self.bar is not None:
            self.bar.close()


class BatchProgress(BatchObserver):
    """A batch's progress: two bars (bytes uploaded, jobs finished), or throttled count lines."""

    def __init__(self, mode: Mode, *, lines: Lines | None = None) -> None:
        self.mode = mode
        self.lines = lines or Lines()
        self.upload: tqdm[Any] | None = None
        self.jobs: tqdm[Any] | None = None
        self.total_jobs = self.total_files = self.total_bytes = 0
        self.sent_bytes = self.uploaded_files = self.finished_jobs = 0
        self.done_files = self.failed_files = 0
        self.started = False

    # -- the observer ---------------------------------------------------------------------------

    def on_start(self, *, jobs: int, files: int, upload_bytes: int) -> None:
        """Open the bars, or print the first line."""
        self.total_jobs, self.total_files, self.total_bytes = jobs, files, upload_bytes
        self.started = True
        if self.mode is Mode.BARS:
            common: dict[str, Any] = {"file": sys.stderr, **_bar_columns()}
            self.upload = tqdm(
                total=upload_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="upload",
                position=0,
                **common,
            )
            self.jobs = tqdm(total=jobs, unit="job", desc="jobs", position=1, **common)
        self._line(force=True)

    def on_upload(self, delta: int) -> None:
        """Bytes sent."""
        self.sent_bytes += delta
        if self.upload is not None:
            self.upload.update(delta)
        self._line()

    def on_job_submitted(self, job_id: str, files: int) -> None:
        """A job was created for `files` files."""
        self.uploaded_files += files
        self._line()

    def on_job_finished(self, job_id: str, status: str) -> None:
        """A job ended."""
        self.finished_jobs += 1
        if self.jobs is not None:
            self.jobs.update(1)
        self._line()

    def on_file(self, path: str, state: FileState) -> None:
        """A file reached its state for this run."""
        if state == FileState.DONE:
            self.done_files += 1
        elif state == FileState.FAILED:
            self.failed_files += 1
        self._line()

    # -- output ---------------------------------------------------------------------------------

    def text(self) -> str:
        """The progress line: ``batch: 12 files uploaded (1.2 MB of 3.4 MB), ...``."""
        parts = [
            f"{self.uploaded_files} files uploaded "
            f"({human_bytes(self.sent_bytes)} of {human_bytes(self.total_bytes)})",
            f"{self.finished_jobs}/{self.total_jobs} jobs finished",
            f"{self.done_files}/{self.total_files} files done",
        ]
        if self.failed_files:
            parts.append(f"{self.failed_files} failed")
        return "batch: " + ", ".join(parts)

    def _line(self, *, force: bool = False) -> None:
        if self.mode is Mode.LINES and self.started:
            self.lines.say(self.text(), force=force)

    def close(self) -> None:
        """Close the bars, or print the last line."""
        for bar in (self.upload, self.jobs):
            if bar is not None:
                bar.close()
        self._line(force=True)
