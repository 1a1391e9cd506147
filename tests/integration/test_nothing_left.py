"""Nothing left for the garbage collector once a client is closed (issue 23, item 4).

Each case of ``tests/_gc_cases.py`` runs in a fresh child process with
``-W error::ResourceWarning`` and Python's development mode, against a loopback server that
stops reading an upload, never answers or hangs up half-way; the call ends by cancellation,
a timeout, Ctrl-C (a real SIGINT) or an error, the client is closed (``async with`` inside
``asyncio.run``, or a `JobsClient`), and ``gc.collect()`` runs. Any socket, transport, file or
task left to the collector shows as a ResourceWarning or an unraisable exception, printed by
the child, and fails the case.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CASES_FILE = Path(__file__).parent.parent / "_gc_cases.py"
CASES = [
    "async_cancelled_upload",
    "async_upload_stalled",
    "async_read_timeout",
    "async_total_timeout",
    "async_dropped_connection",
    "async_task_cancelled_at_exit",
    "sync_read_timeout",
    "sync_ctrl_c_during_upload",
    "sync_dropped_connection",
]


def test_every_case_is_run() -> None:
    source = CASES_FILE.read_text()
    assert sorted(CASES) == sorted(
        line.split("(")[0].removeprefix("def ")
        for line in source.splitlines()
        if line.startswith(("def async_", "def sync_"))
    )


@pytest.mark.parametrize("case", CASES)
def test_nothing_is_left_for_the_collector(case: str) -> None:
    command = [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", str(CASES_FILE), case]
    run = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert run.returncode == 0, f"left for the collector:\n{run.stdout}\n{run.stderr[-3000:]}"
    assert run.stdout == ""
