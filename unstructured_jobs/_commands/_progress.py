"""Progress on stderr, in three modes (`Mode`): bars, lines, or nothing.

The bars and lines themselves are in ``unstructured_jobs._bars`` (the library's
``progress=True`` shows the same ones through ``tqdm.auto``); here: which mode a command
line asks for, the retry notes and the log lines.

- **bars** (tqdm) when stderr is a terminal, or with ``--progress``;
- **lines** when it is not (a CI log, ``nohup``, a pipe): plain lines with counts
  (``batch: 12 files uploaded (1.2 MB of 3.4 MB), 3/20 jobs finished, 10/40 files done``),
  at most one every `CLI_PROGRESS_INTERVAL` seconds, plus the first and the last, and each
  change of a job's status at once;
- **off** with ``--quiet`` or ``--no-progress``.

Every other line on stderr (a retry note, a ``--debug`` log line) goes through `write_line`,
which tqdm clears the bars for and draws them again below: a line is never glued into a bar.
`RetryNotes` is the command line's retry hook (`RetryEvent`): it says each retry on its own
line, or, in a batch, folds the service's refusals (429: pacing, not an error) into counters.

Nothing here writes to stdout: ``--json`` output stays clean.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

from .._bars import (
    BatchProgress,
    Lines,
    Mode,
    StatusProgress,
    TransferProgress,
    files_text,
    human_bytes,
    human_seconds,
    write_line,
)
from .._http.hooks import RetryEvent

__all__ = [
    "BatchProgress",
    "Lines",
    "LogLines",
    "Mode",
    "RetryNotes",
    "StatusProgress",
    "TransferProgress",
    "files_text",
    "human_bytes",
    "human_seconds",
    "mode_of",
    "write_line",
]


class LogLines(logging.Handler):
    """``--debug`` logging on stderr, each record a line of its own above the bars."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the formatted record with `write_line`."""
        try:
            write_line(self.format(record))
        except Exception:  # a logging handler never raises (logging's own rule)
            self.handleError(record)


class RetryNotes:
    """The command line's retry hook (``event_hooks={"retry": [notes]}``).

    Each retry is said on stderr the moment it is decided (``unstructured-jobs: GET
    /api/v1/jobs/: could not connect (attempt 1 of 5); next in 0.5 s``), through `write_line`,
    unless `say` is False (``--quiet``; ``--debug`` logs them instead). With `pacing` set (a
    batch), a 429 goes to `pacing` instead of a line: the service asked us to slow down, which
    the batch counts and shows in its summary. The attempts of each request are counted, for
    the final error.
    """

    def __init__(self, *, say: bool, redact: Callable[[str], str] = str) -> None:
        self.say = say
        self.redact = redact
        self.pacing: Callable[[RetryEvent], None] | None = None
        self.retries = 0
        """Retries said (or that would have been), 429s given to `pacing` excluded."""
        self._attempts: dict[tuple[str, str], int] = {}

    def __call__(self, event: RetryEvent) -> None:
        """Note one retry."""
        url = event.url.partition("?")[0]
        self._attempts[(event.method, url)] = event.attempt + 1
        if event.status == 429 and self.pacing is not None:
            self.pacing(event)
            return
        self.retries += 1
        if self.say:
            path = urlsplit(url).path
            text = (
                f"unstructured-jobs: {event.method} {path}: {event.reason} "
                f"(attempt {event.attempt} of {event.max_attempts}); next in {event.delay:.1f} s"
            )
            write_line(self.redact(text))

    def made(self, exc: BaseException) -> int | None:
        """The attempts made for the request that failed with `exc` (None: not a request's)."""
        method, url = getattr(exc, "method", None), getattr(exc, "url", None)
        if not isinstance(url, str):
            return None
        return self._attempts.get((str(method), url), 1)


def mode_of(args: argparse.Namespace) -> Mode:
    """``--quiet``/``--no-progress``: off; ``--progress``: bars; else bars on a terminal only."""
    if getattr(args, "quiet", False) or args.progress is False:
        return Mode.OFF
    if args.progress:
        return Mode.BARS
    return Mode.BARS if sys.stderr.isatty() else Mode.LINES
