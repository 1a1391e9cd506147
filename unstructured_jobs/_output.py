"""What the ``unstructured-jobs`` commands print on stdout: plain tables or indented JSON."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence

__all__ = ["print_json", "print_table", "table_width"]

MIN_COLUMN = 12
"""A column that shrinks to fit the terminal keeps at least this many characters."""


def table_width() -> int | None:
    """The width tables must fit in: the terminal's when stdout is one, else ``$COLUMNS`` when
    set; None (no limit) for a pipe or a file, which get every character, as with gh."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    shrink: Sequence[int] = (),
    width: int | None = None,
) -> None:
    """Print rows as a plain, left-aligned text table.

    When the table is wider than `width` (default: `table_width`), the columns whose indexes
    are in `shrink` (names, errors; never ids) are cut, the widest first, down to `MIN_COLUMN`
    characters; a cut value ends with ``…``.
    """
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
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
                    row[i] = row[i][: widths[i] - 1] + "…"
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_json(data: object) -> None:
    """Print data as indented JSON."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
