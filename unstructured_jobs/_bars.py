"""Progress bars and lines, for the command line (``_commands._progress``) and for the
library's opt-in ``progress=True`` (`Mode.AUTO`: ``tqdm.auto``, a widget in Jupyter).

- `Mode.BARS`: tqdm on stderr, at the terminal's size, removed when done;
- `Mode.LINES`: plain throttled lines on stderr (a CI log, a pipe);
- `Mode.AUTO`: ``tqdm.auto`` bars, left shown when done;
- `Mode.OFF`: nothing.
"""

from __future__ import annotations

import enum
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from ._batch.engine import BatchObserver
from ._batch.manifest import FileState
from ._batch.scheduler import PROGRESS_FILE_STATUS_EVERY
from ._constants import CLI_PROGRESS_INTERVAL
from ._http.hooks import RetryEvent
from ._models import JobFileStatus, JobInformation

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = [
    "BatchProgress",
    "Lines",
    "Mode",
    "StatusProgress",
    "TransferProgress",
    "files_text",
    "human_bytes",
    "human_seconds",
    "write_line",
]


def write_line(text: str) -> None:
    """Print a line on stderr above the progress bars (tqdm clears them, then redraws them)."""
    bars = sys.modules.get("tqdm")  # imported by the first bar (`_bar`): none without it
    if bars is not None:
        bars.tqdm.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)
    sys.stderr.flush()


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
    AUTO = "auto"
    """Bars through ``tqdm.auto`` (a widget in Jupyter, a bar on stderr elsewhere), left shown
    when done: ``progress=True`` of the library's calls."""


def _bar(mode: Mode, **kwargs: Any) -> tqdm[Any]:
    """A tqdm bar: ``tqdm.auto`` for `Mode.AUTO` (it ignores the terminal's size), else tqdm's
    own on stderr at the terminal's size. tqdm is imported with the first bar: a run without
    bars (stderr not a terminal, ``--no-progress``, ``--help``) spends no start-up on it."""
    from tqdm import tqdm

    if mode is Mode.AUTO:
        from tqdm.auto import tqdm as auto_tqdm

        kwargs["leave"] = True
        return auto_tqdm(**kwargs)
    return tqdm(**kwargs, **_bar_columns())


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


def file_counts(status: JobFileStatus) -> tuple[int, int, int, int]:
    """``(done, running, failed, total)`` of a job's files: SUCCESS, IN_PROGRESS, FAILURE, all
    (the rest are READY: not started, or a status this release does not know)."""
    done = running = failed = 0
    for f in status.files:
        if f.status == "SUCCESS":
            done += 1
        elif f.status == "IN_PROGRESS":
            running += 1
        elif f.status == "FAILURE":
            failed += 1
    return done, running, failed, len(status.files)


def files_text(done: int, running: int, failed: int, total: int | None = None) -> str:
    """``files: 3/10 done, 2 running, 1 failed`` (``3 done`` with no `total`)."""
    of = "" if total is None else f"/{total}"
    return f"files: {done}{of} done, {running} running, {failed} failed"


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
        if mode in (Mode.BARS, Mode.AUTO):
            scale: dict[str, Any] = (
                {"unit": "B", "unit_scale": True, "unit_divisor": 1024}
                if unit == "B"
                else {"unit": unit}
            )
            self.bar = _bar(mode, total=total, desc=what, file=sys.stderr, leave=False, **scale)

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
        self.files_bar: tqdm[Any] | None = None
        self.counts: tuple[int, int, int, int] | None = None
        """The files' ``(done, running, failed, total)`` last read (`files`), if any."""
        if mode in (Mode.BARS, Mode.AUTO):
            self.bar = _bar(
                mode,
                total=None,
                desc=f"job {job_id}: waiting",
                bar_format="{desc} [{elapsed}]",
                file=sys.stderr,
                leave=False,
            )

    def __call__(self, job: JobInformation) -> None:
        """`on_poll` of `wait_for_job`: show the job's status."""
        status = str(job.status)
        changed, self.status = status != self.status, status
        if self.bar is not None:
            self.bar.set_description_str(f"job {self.job_id}: {status}", refresh=True)
        elif self.mode is Mode.LINES:
            if changed:
                self.lines.say(f"job {self.job_id}: {status}{self._files()}", force=True)
            else:
                self.lines.say(self._still())

    def _files(self) -> str:
        return "" if self.counts is None else f" ({files_text(*self.counts)})"

    def _still(self) -> str:
        waited = human_seconds(self.clock() - self.started)
        return f"job {self.job_id}: still {self.status} after {waited}{self._files()}"

    def files(self, status: JobFileStatus) -> None:
        """Show the files' states (`get_job_file_status`, the ``on_files`` of a wait): in
        bars, a bar of the files ended with how many are in each state (``1 FAILURE,
        2 IN_PROGRESS, 3 SUCCESS``); in lines,
        those counts on the status lines (a change of them is said with the next line due).
        No files: nothing shown."""
        if not status.files:  # none yet (or a job without files): nothing to count
            return
        self.counts = file_counts(status)
        done, _, failed, total = self.counts
        if self.bar is None:
            if self.mode is Mode.LINES and self.status is not None:
                self.lines.say(self._still())
            return
        if self.files_bar is None:
            self.files_bar = _bar(self.mode, total=total, desc="files", unit="file",
                                  file=sys.stderr, leave=False)  # fmt: skip
        counts: dict[str, int] = {}
        for f in status.files:
            counts[str(f.status)] = counts.get(str(f.status), 0) + 1
        self.files_bar.total = max(total, self.files_bar.total or 0)
        self.files_bar.n = done + failed
        self.files_bar.set_postfix_str(
            ", ".join(f"{n} {state}" for state, n in sorted(counts.items())), refresh=True
        )

    def close(self) -> None:
        """Remove the status line (`Mode.AUTO`: leave it, with the last status shown)."""
        for bar in (self.bar, self.files_bar):
            if bar is not None:
                bar.close()


class BatchProgress(BatchObserver):
    """A batch's progress: two bars (bytes uploaded, jobs finished), or throttled count lines.

    Within the jobs still running, the files done, running and failed (``in running jobs:
    3 files done, 5 running, 1 failed``, on the jobs bar or the count line): each running job's
    files' states are read at most every `PROGRESS_FILE_STATUS_EVERY` (30) s, one read a second
    at most in all (`file_status_every`; the batch's ``JobWatcher`` keeps the budget).

    The service's refusals (429) are pacing, not errors: counted on the jobs bar (or in the
    count line) with the time they made the batch wait, each said on a line only with `debug`.
    They come from the engine (`on_paced`) and from the client's retries (`client_paced`,
    given to `RetryNotes.pacing`).
    """

    def __init__(self, mode: Mode, *, lines: Lines | None = None, debug: bool = False) -> None:
        self.mode = mode
        self.debug = debug
        self.lines = lines or Lines()
        self.engine_refusals = self.client_refusals = 0
        self.engine_waited = self.client_waited = 0.0
        self.upload: tqdm[Any] | None = None
        self.jobs: tqdm[Any] | None = None
        self.total_jobs = self.total_files = self.total_bytes = 0
        self.sent_bytes = self.uploaded_files = self.finished_jobs = 0
        self.done_files = self.failed_files = 0
        self.started = False
        # Nothing shown (``--quiet``, ``--no-progress``): no file status read.
        self.file_status_every = None if mode is Mode.OFF else PROGRESS_FILE_STATUS_EVERY
        self.running_files: dict[str, tuple[int, int, int, int]] = {}
        """Running jobs' files' ``(done, running, failed, total)``, as last read."""

    # -- the observer ---------------------------------------------------------------------------

    def on_start(self, *, jobs: int, files: int, upload_bytes: int) -> None:
        """Open the bars, or print the first line."""
        self.total_jobs, self.total_files, self.total_bytes = jobs, files, upload_bytes
        self.started = True
        if self.mode in (Mode.BARS, Mode.AUTO):
            self.upload = _bar(
                self.mode,
                total=upload_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="upload",
                position=0,
                file=sys.stderr,
            )
            self.jobs = _bar(
                self.mode, total=jobs, unit="job", desc="jobs", position=1, file=sys.stderr
            )
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
        self.running_files.pop(job_id, None)  # its files are counted by `on_file` now
        if self.jobs is not None:
            self.jobs.update(1)
            self._postfix()
        self._line()

    def on_job_files(self, job_id: str, status: JobFileStatus) -> None:
        """The files' states of a running job."""
        self.running_files[job_id] = file_counts(status)
        self._postfix()
        self._line()

    def running_text(self) -> str:
        """``in running jobs: 3 files done, 5 running, 1 failed`` ("" when none was read)."""
        if not self.running_files:
            return ""
        done, running, failed = (sum(c[i] for c in self.running_files.values()) for i in range(3))
        return f"in running jobs: {done} files done, {running} running, {failed} failed"

    def _postfix(self) -> None:
        if self.jobs is not None:
            parts = [self.running_text(), self.pacing_text() if self.refusals else ""]
            self.jobs.set_postfix_str(", ".join(p for p in parts if p), refresh=True)

    def on_file(self, path: str, state: FileState) -> None:
        """A file reached its state for this run."""
        if state == FileState.DONE:
            self.done_files += 1
        elif state == FileState.FAILED:
            self.failed_files += 1
        self._line()

    def on_paced(self, reason: str, delay: float) -> None:
        """The batch waits `delay` s before a launch because the service refused one."""
        self.engine_refusals += 1
        self.engine_waited += delay
        self._paced(f"{reason}; next launch in {delay:.1f} s")

    def client_paced(self, event: RetryEvent) -> None:
        """A request refused with 429 is retried by the client in `event.delay` s."""
        self.client_refusals += 1
        self.client_waited += event.delay
        where = f"{event.method} {urlsplit(event.url).path}: {event.reason}"
        self._paced(f"{where} (attempt {event.attempt}); next in {event.delay:.1f} s")

    def _paced(self, text: str) -> None:
        if self.debug:
            write_line(f"unstructured-jobs: paced: {text}")
        self._postfix()
        self._line()

    @property
    def refusals(self) -> int:
        """The refusals seen so far (engine and client)."""
        return self.engine_refusals + self.client_refusals

    @property
    def waited(self) -> float:
        """The seconds those refusals made the batch wait."""
        return self.engine_waited + self.client_waited

    def pacing_text(self) -> str:
        """``3 refusals (429), 4 s waited``."""
        n = self.refusals
        return f"{n} refusal{'s' * (n != 1)} (429), {human_seconds(self.waited)} waited"

    def totals(self, refusals: int, paced_seconds: float) -> tuple[int, float]:
        """The batch's refusals and seconds waited: the engine's (from its report, else from
        `on_paced`) plus the client's retries of 429s."""
        engine = max(refusals, self.engine_refusals)
        waited = max(paced_seconds, self.engine_waited)
        return engine + self.client_refusals, waited + self.client_waited

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
        if self.running_files:
            parts.append(self.running_text())
        if self.refusals:
            parts.append(f"paced: {self.pacing_text()}")
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
