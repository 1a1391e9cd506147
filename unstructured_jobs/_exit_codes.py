"""The exit statuses of the ``unstructured-jobs`` command line (the table in docs/cli.md)."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What the process's exit status tells a script about the command it ran."""

    OK = 0
    """Everything done (a waited job is COMPLETED; every batch file is ``done``)."""
    FAILED = 1
    """Some jobs or files failed, a wait timed out, or a local I/O error."""
    USAGE = 2
    """Bad flags or arguments, missing API key, invalid id, unreadable input file."""
    API = 3
    """Authentication, HTTP error status, connection failure, lost answer, bad response."""
    INTERRUPTED = 130
    """Ctrl-C; for ``batch``, run the same command again to resume."""
    BROKEN_PIPE = 141
    """Standard output was closed early (``| head``): the rest was dropped, quietly
    (128 + SIGPIPE, what a shell reports for a tool a broken pipe ended)."""
