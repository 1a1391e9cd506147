"""Progress on stderr: tqdm bars while a terminal watches."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm import tqdm

from ..batch import BatchObserver
from ._common import bars_enabled


def byte_bar(args: argparse.Namespace, total: int | None, desc: str = "upload") -> tqdm[Any]:
    """A bar of bytes uploaded."""
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        file=sys.stderr,
        disable=not bars_enabled(args),
        leave=False,
    )


class Bars(BatchObserver):
    """tqdm bars on stderr: bytes uploaded and jobs finished."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.upload: tqdm[Any] | None = None
        self.jobs: tqdm[Any] | None = None

    def on_start(self, *, jobs: int, files: int, upload_bytes: int) -> None:
        """Open the bars."""
        common: dict[str, Any] = {"file": sys.stderr, "disable": not self.enabled}
        self.upload = tqdm(
            total=upload_bytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="upload",
            position=0,
            **common,
        )
        self.jobs = tqdm(total=jobs, unit="job", desc="jobs", position=1, **common)

    def on_upload(self, delta: int) -> None:
        """Move the byte bar."""
        if self.upload is not None:
            self.upload.update(delta)

    def on_job_finished(self, job_id: str, status: str) -> None:
        """Move the jobs bar."""
        if self.jobs is not None:
            self.jobs.update(1)

    def close(self) -> None:
        """Close the bars."""
        for bar in (self.upload, self.jobs):
            if bar is not None:
                bar.close()
