"""Pure helpers of the batch engine: grouping files into jobs, matching a lost job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from ._manifest import FileRow
from ._models import JobInformation

__all__ = ["GroupLimits", "group_files", "match_job"]


@attrs.frozen
class GroupLimits:
    """How files are grouped into jobs."""

    files: int
    file_bytes: int | None
    job_bytes: int | None


def group_files(files: Sequence[FileRow], limits: GroupLimits) -> list[list[FileRow]]:
    """Split files (in order) into groups within the count and byte limits."""
    groups: list[list[FileRow]] = []
    current: list[FileRow] = []
    size = 0
    for f in files:
        too_many = len(current) >= limits.files
        too_big = limits.job_bytes is not None and size + f.size > limits.job_bytes
        if current and (too_many or too_big):
            groups.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        groups.append(current)
    return groups


def match_job(
    names: Sequence[str],
    sent_at: datetime,
    jobs: Sequence[JobInformation],
    claimed: set[str],
    skew: timedelta,
) -> JobInformation | None:
    """The unclaimed job with exactly these input names created closest to `sent_at`.

    Candidates are created after ``sent_at - skew``; one created at or after `sent_at` is
    preferred to an earlier one (which could belong to another run sending the same names).
    """
    wanted = tuple(names)
    found = [
        j
        for j in jobs
        if j.id not in claimed
        and tuple(j.input_file_ids or ()) == wanted
        and j.created_at >= sent_at - skew
    ]
    if not found:
        return None
    return min(found, key=lambda j: (j.created_at < sent_at, abs(j.created_at - sent_at)))
