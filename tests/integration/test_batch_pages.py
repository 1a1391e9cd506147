"""A batch whose groups are read a page at a time (issue 20, item 7), over loopback: pages of two
groups, faults that put groups back, a resumed run; every file sent exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import AsyncJobsClient
from unstructured_jobs._batch import manifest as _manifest
from unstructured_jobs.batch import BatchObserver, submit_batch
from unstructured_jobs.testing import Emulator, FaultRates

FAST: dict[str, Any] = {"launch_rate": None, "poll_interval": 0.01, "reconcile_grace": 0}


class Start(BatchObserver):
    def __init__(self) -> None:
        self.seen: list[dict[str, int]] = []

    def on_start(self, *, jobs: int, files: int, upload_bytes: int) -> None:
        self.seen.append({"jobs": jobs, "files": files, "upload_bytes": upload_bytes})


async def test_groups_read_a_page_at_a_time_are_each_sent_once_under_faults(
    emu_client: tuple[Emulator, AsyncJobsClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_manifest, "GROUP_PAGE", 2)
    monkeypatch.setattr(_manifest, "ADD_CHUNK", 7)
    emu, client = emu_client
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(41):
        (folder / f"doc{i:03d}.txt").write_text(f"document {i}\n" * (i % 5 + 1))
    total = sum(p.stat().st_size for p in folder.iterdir())
    emu.fault_rates = FaultRates(status_429=0.2, status_503=0.1, seed=7)
    start = Start()
    options: dict[str, Any] = {"files_per_job": 3, "max_submit_attempts": 30, **FAST}
    report = await submit_batch(
        client, [folder], template_id="t", manifest=tmp_path / "m.sqlite", observer=start,
        max_concurrent_uploads=4, **options,
    )  # fmt: skip
    emu.fault_rates = None
    assert report.counts() == {"done": 41}
    assert Counter(r.fault for r in emu.requests if r.fault)["status"]  # groups were put back
    assert start.seen == [{"jobs": 14, "files": 41, "upload_bytes": total}]
    received = Counter(f.filename for j in emu.jobs.values() for f in j.files)
    assert len(received) == 41 and set(received.values()) == {1}
    assert len(emu.jobs) == 14
    # The same batch again: nothing to send, nothing sent.
    again = await submit_batch(
        client, [folder], template_id="t", manifest=tmp_path / "m.sqlite", **options
    )
    assert again.counts() == {"done": 41} and len(emu.jobs) == 14
