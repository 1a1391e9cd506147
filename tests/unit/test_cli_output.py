"""The pieces that keep the command line's output readable: escaping, cutting, pacing counts."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest

from unstructured_jobs import RetryEvent
from unstructured_jobs._commands._progress import BatchProgress, Lines, Mode, RetryNotes
from unstructured_jobs._commands._report import failure_line
from unstructured_jobs._output import cut_middle, print_table, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain/name.pdf", "plain/name.pdf"),
        ("two\nlines.txt", "two\\nlines.txt"),
        ("tab\tcr\r.txt", "tab\\tcr\\r.txt"),
        ("esc\x1b[2Jclear.txt", "esc\\x1b[2Jclear.txt"),
        ("c1\x85\x9b.txt", "c1\\x85\\x9b.txt"),
        ("bidi\u202etxt.exe", "bidi\\u202etxt.exe"),
        ("caf\udce9.pdf", "caf\\xe9.pdf"),  # a byte that is not UTF-8 (surrogateescape)
        ("été.pdf", "été.pdf"),
    ],
)
def test_printable_escapes_what_a_terminal_would_obey(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(printable(raw)) == shown


def test_cut_middle_keeps_the_start_and_the_file_name() -> None:
    path = "archive/2024/scans/department-of-finance/invoice-0042.pdf"
    assert cut_middle(path, 100) == path
    cut = cut_middle(path, 30)
    assert len(cut) == 30 and cut.startswith("archive") and cut.endswith("invoice-0042.pdf")
    assert cut_middle(path, 1) == "…"


def test_a_table_escapes_cells_and_cuts_path_columns_in_the_middle() -> None:
    out = io.StringIO()
    rows = [["a/very/long/folder/name/file.txt", "x\ny", "id-0001"]]
    with redirect_stdout(out):
        print_table(("file", "note", "id"), rows, paths=(0,), width=30)
    header, row = out.getvalue().splitlines()
    assert header.startswith("FILE ")
    assert row.startswith("a/ve…e/file.txt ")  # 15 characters: what is left of 30
    assert "x\\ny" in row and row.endswith("id-0001") and len(row) <= 30


def test_a_failure_line_fits_the_width_and_keeps_the_name() -> None:
    path = "in/" + "deep-folder/" * 10 + "report.pdf"
    line = failure_line(path, "refused:\nfile too large " + "x" * 80, 80)
    assert len(line) <= 80 and "/report.pdf: refused:\\nfile too large" in line
    assert failure_line("a.pdf", "e", None) == "  a.pdf: e"


def event(
    status: int | None, attempt: int = 1, url: str = "http://h/api/v1/jobs/?x=1"
) -> RetryEvent:
    reason = f"HTTP {status}" if status else "could not connect"
    kind = "status" if status else "not_sent"
    return RetryEvent("GET", url, attempt, 5, 1.5, reason, status, kind)


def test_retry_notes_say_each_retry_and_count_attempts(capsys: pytest.CaptureFixture[str]) -> None:
    notes = RetryNotes(say=True)
    notes(event(None))
    notes(event(None, attempt=2))
    assert capsys.readouterr().err.splitlines() == [
        "unstructured-jobs: GET /api/v1/jobs/: could not connect (attempt 1 of 5); next in 1.5 s",
        "unstructured-jobs: GET /api/v1/jobs/: could not connect (attempt 2 of 5); next in 1.5 s",
    ]
    failed = ConnectionError()
    failed.method, failed.url = "GET", "http://h/api/v1/jobs/"  # type: ignore[attr-defined]
    assert notes.made(failed) == 3 and notes.retries == 2
    assert notes.made(ValueError()) is None


def test_in_a_batch_refusals_are_counted_not_said(capsys: pytest.CaptureFixture[str]) -> None:
    progress = BatchProgress(Mode.LINES, lines=Lines(interval=0.0))
    notes = RetryNotes(say=True)
    notes.pacing = progress.client_paced
    progress.on_start(jobs=2, files=2, upload_bytes=2)
    notes(event(429))
    progress.on_paced("HTTP 429", 2.0)  # the engine's own pacing
    assert "HTTP 429" not in capsys.readouterr().err
    assert progress.text().endswith("paced: 2 refusals (429), 3 s waited")
    assert notes.retries == 0
    # The engine's report wins over what on_paced counted; the client's retries are added.
    assert progress.totals(0, 0.0) == (2, 3.5)
    assert progress.totals(4, 6.0) == (5, 7.5)


def test_debug_says_each_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    progress = BatchProgress(Mode.OFF, debug=True)
    progress.on_paced("HTTP 429", 2.0)
    progress.client_paced(event(429))
    assert capsys.readouterr().err.splitlines() == [
        "unstructured-jobs: paced: HTTP 429; next launch in 2.0 s",
        "unstructured-jobs: paced: GET /api/v1/jobs/: HTTP 429 (attempt 1); next in 1.5 s",
    ]
