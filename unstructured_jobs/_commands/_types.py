"""Argument types: every value the command line can check is checked while parsing.

A bad value is then a usage error (exit 2) before anything is read or sent, with the usage
line of its subcommand, instead of a server's 422 after a round trip.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._core import validate_id, validate_name_id
from .._exceptions import InvalidIdError
from .._models import JobStatus

__all__ = [
    "JOB_STATUSES",
    "count",
    "job_nodes",
    "job_status",
    "name_id",
    "number",
    "positive",
    "size",
    "size_text",
    "uuid_id",
]

JOB_STATUSES = tuple(s.value for s in JobStatus)
"""What ``--status`` takes (any case; ``in-progress`` too)."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def job_status(text: str) -> str:
    """A job status in any case (``completed``, ``in-progress``); checked against `choices`."""
    return text.strip().upper().replace("-", "_")


def uuid_id(what: str) -> Callable[[str], str]:
    """A type for a UUID id (a job's, a workflow's), given in canonical form."""

    def parse(text: str) -> str:
        try:
            return validate_id(text, what)
        except InvalidIdError:
            raise argparse.ArgumentTypeError(f"not a {what} (a UUID): {text!r:.60}") from None

    parse.__name__ = what  # argparse names the type in its fallback message
    return parse


def name_id(what: str) -> Callable[[str], str]:
    """A type for an id that is a name (a template's ``hi_res_partition``)."""

    def parse(text: str) -> str:
        try:
            return validate_name_id(text, what)
        except InvalidIdError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = what
    return parse


def size(text: str) -> int:
    """A byte size above 0: ``1000``, ``10MB``, ``512KiB``."""
    match = _SIZE.match(text)
    value = int(float(match[1]) * _UNITS[(match[2] or "").lower()]) if match else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10MB, 512KiB, 1000)")
    return value


def size_text(value: int) -> str:
    """`value` the way `size` reads it back, in the largest decimal unit that divides it."""
    for unit in ("g", "m", "k"):
        if value and value % _UNITS[unit] == 0:
            return f"{value // _UNITS[unit]}{unit.upper()}B"
    return str(value)


def count(text: str) -> int:
    """A whole number >= 0 (``--max-retries``)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {text!r}")
    return value


def positive(text: str) -> int:
    """A whole number >= 1 (``--limit``, ``--files-per-job``, ``--concurrency``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number >= 1: {text!r}")
    return value


def number(*, zero: bool = False) -> Callable[[str], float]:
    """A type for a finite number above 0 (or >= 0 when `zero` is allowed)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            bound = ">= 0" if zero else "above 0"
            raise argparse.ArgumentTypeError(f"not a number {bound}: {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def job_nodes(text: str) -> list[dict[str, Any]]:
    """A JSON list of job nodes, or ``@file`` holding one."""
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        value = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read job nodes: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(n, dict) for n in value) or not value:
        raise argparse.ArgumentTypeError("job nodes must be a non-empty JSON list of objects")
    return value
