"""``unstructured-jobs demo``: a whole batch against the in-process emulator, no account needed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ._constants import CLI_DEMO_FILES
from .batch import BatchObserver, BatchReport, submit_batch

DEMO_TEMPLATE = "hi_res_and_enrichment"

SAMPLES: dict[str, str] = {
    "welcome.txt": "Welcome to unstructured-jobs.\n\nThis file was processed by an emulator.\n",
    "meeting-notes.md": "# Meeting notes\n\n- Ship the batch engine\n- Write the docs\n",
    "invoice.html": "<html><body><h1>Invoice 42</h1><p>Total: 99.00 EUR</p></body></html>\n",
    "inventory.csv": "item,count\nbolts,120\nnuts,80\nwashers,300\n",
    "letter.txt": "Dear reader,\n\nEvery file of a batch is sent exactly once.\n\nRegards\n",
    "report.json": '{"title": "Quarterly report", "pages": 3}\n',
    "faq.md": "## Is it offline?\n\nYes: the API is emulated on 127.0.0.1.\n",
}


def demo_workdir(requested: str | None) -> Path:
    """The demo's folder: the one asked for, or a new temporary one."""
    if requested:
        return Path(requested)
    return Path(tempfile.mkdtemp(prefix="unstructured-jobs-demo-"))


def write_samples(folder: Path, count: int) -> list[Path]:
    """Write `count` sample documents (cycling through `SAMPLES`) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(SAMPLES)
    paths = []
    for i in range(count):
        name = names[i % len(names)]
        if i >= len(names):
            stem, _, ext = name.partition(".")
            name = f"{stem}-{i // len(names) + 1}.{ext}"
        path = folder / name
        path.write_text(SAMPLES[names[i % len(names)]], encoding="utf-8")
        paths.append(path)
    return paths


async def run_demo(
    workdir: Path, *, files: int = CLI_DEMO_FILES, observer: BatchObserver | None = None
) -> BatchReport:
    """Serve the emulator, write sample files under `workdir` and run a batch through it."""
    from ._client import AsyncJobsClient  # aiohttp: not imported for `--help`
    from .testing import Emulator, Schedule

    inputs = workdir / "inputs"
    write_samples(inputs, files)
    async with (
        Emulator(schedule=Schedule(start_after=0.1, run_for=0.4)) as emu,
        AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client,
    ):
        return await submit_batch(
            client,
            [inputs],
            template_id=DEMO_TEMPLATE,
            output_dir=workdir / "outputs",
            files_per_job=2,
            launch_rate=5.0,
            poll_interval=0.1,
            max_poll_interval=0.3,
            observer=observer,
        )
