"""What the ``unstructured-jobs`` commands print on stdout: plain tables or indented JSON;
and the helpers that keep any line readable: `printable` (control characters escaped) and
`cut_middle` (a long path cut to a width, its file name kept)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["cut_middle", "line_width", "print_json", "print_table", "printable", "table_width"]

MIN_COLUMN = 12
"""A column that shrinks to fit the terminal keeps at least this many characters."""

# C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional controls
# that can make a name read as another ("Trojan source"): never printed raw.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str | os.PathLike[str]) -> str:
    r"""`text` safe to print on one line of any terminal: a line feed as ``\n``, a tab as
    ``\t``, other control characters (an escape sequence's ESC) as ``\x1b`` or ``\u202e``;
    bytes that are not UTF-8 (a name from an old archive) as ``\xe9``."""
    text = os.fspath(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes of a file name
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


def cut_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters: cut in the middle with ``…`` so that a path
    keeps its start and, longer, its end (the file name)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 3
    tail = width - 1 - head
    return text[:head] + "…" + text[len(text) - tail :]


def _columns_of(stream: TextIO) -> int | None:
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns or None
    except (OSError, ValueError, AttributeError):
        pass
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def table_width() -> int | None:
    """The width tables must fit in: the terminal's when stdout is one, else ``$COLUMNS`` when
    set; None (no limit) for a pipe or a file, which get every character, as with gh."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return _columns_of(sys.stdout)


def line_width(stream: TextIO | None = None) -> int | None:
    """The width lines on `stream` (default stderr) must fit in, as `table_width` for stdout."""
    return _columns_of(sys.stderr if stream is None else stream)


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    shrink: Sequence[int] = (),
    paths: Sequence[int] = (),
    width: int | None = None,
) -> None:
    """Print rows as a plain, left-aligned text table, each cell `printable`.

    When the table is wider than `width` (default: `table_width`), the columns whose indexes
    are in `shrink` (names, errors; never ids) or `paths` are cut, the widest first, down to
    `MIN_COLUMN` characters; a cut value ends with ``…``, a cut path has it in the middle
    (`cut_middle`: its file name stays).
    """
    cells = [[("" if v is None else printable(str(v))) for v in row] for row in rows]
    shrink = (*shrink, *paths)
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    limit = table_width() if width is None else width
    if limit is not None and shrink:
        excess = sum(widths) + 2 * (len(widths) - 1) - limit
        while excess > 0:
            i = max(shrink, key=lambda i: widths[i])
            if widths[i] <= max(MIN_COLUMN, len(headers[i])):
                break
            widths[i] -= 1
            excess -= 1
        for row in cells:
            for i in shrink:
                if len(row[i]) > widths[i]:
                    cut = cut_middle(row[i], widths[i]) if i in paths else None
                    row[i] = cut or row[i][: widths[i] - 1] + "…"
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_json(data: object) -> None:
    """Print data as indented JSON."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
