"""What the ``unstructured-jobs`` commands print on stdout: plain tables or indented JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = ["print_json", "print_table"]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows as a plain, left-aligned text table."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_json(data: object) -> None:
    """Print data as indented JSON."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
