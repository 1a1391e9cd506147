"""Pure helpers of the batch engine: grouping files into jobs, matching a lost job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import attrs

from .._models import JobInformation
from .manifest import FileRow
from .paths import name_as_sent

__all__ = ["GroupLimits", "group_files", "match_job", "server_offset"]


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
    offset: timedelta = timedelta(0),
) -> JobInformation | None:
    """The unclaimed job with exactly these input names created closest to the send.

    `sent_at` is our clock's time of the send, `offset` what we measured of the server's clock
    (server time - ours, see `server_offset`), so the server's clock read about ``sent_at +
    offset`` when the group left. Candidates are created after that minus `skew` (an extra
    tolerance: the clock behind ``Date`` and the one behind ``created_at`` may differ); one
    created at or after it is preferred to an earlier one (which could belong to another run
    sending the same names). Names are compared as the server stores them (`name_as_sent`).
    """
    wanted = tuple(name_as_sent(n) for n in names)
    sent = sent_at + offset
    found = [
        j
        for j in jobs
        if j.id not in claimed
        and j.created_at >= sent - skew
        and tuple(name_as_sent(n) for n in j.input_file_ids or ()) == wanted
    ]
    if not found:
        return None
    return min(found, key=lambda j: (j.created_at < sent, abs(j.created_at - sent)))


def server_offset(date_header: str | None, received_at: datetime) -> timedelta | None:
    """Server time - local time, from an answer's ``Date`` header and when we received it.

    The server wrote the header (whole seconds, rounded down) before we received the answer,
    so the result never exceeds the true offset; it is low by at most the round trip plus one
    second. None when the header is missing or unreadable.
    """
    if not date_header:
        return None
    try:
        server_time = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if server_time.tzinfo is None:  # "-0000": UTC by RFC 5322
        server_time = server_time.replace(tzinfo=UTC)
    return server_time - received_at
