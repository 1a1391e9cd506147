"""Every ```python block of README.md and docs/ runs, against the emulator.

One test per page. The page's blocks run in order, in one namespace (a block may use what an
earlier block of the same page defined), in a temporary folder holding sample input files,
with ``UNSTRUCTURED_API_URL`` and ``UNSTRUCTURED_API_KEY`` pointing at an emulator of the page's
own (started by ``unstructured_emulator_factory``: every fault a block injects must fire).
Top-level ``await`` works, on one event loop per page. What a block finds already defined (the
context a fragment of a page assumes):

- the public names of ``unstructured_jobs``, ``unstructured_jobs.batch`` and
  ``unstructured_jobs.testing``, and ``os``, ``ssl``, ``Path``, ``aiohttp``, ``asyncio``;
- ``emu`` (that emulator), ``client`` (an open ``AsyncJobsClient`` on it), ``job`` and
  ``job_id`` (a COMPLETED job made from ``a.pdf``);
- in the folder: ``a.pdf``, ``b.pdf``, ``b.docx``, ``report.pdf``, ``slides.pptx``, ``docs/``
  and a CA bundle ``corp-root.pem``.

A block that defines ``test_*`` functions has each of them called afterwards, as pytest
would, with the fixtures ``tmp_path``, ``unstructured_emulator`` and
``unstructured_emulator_env`` (a fresh emulator for each test, the environment pointing at it
while it runs; async tests run on the page's loop).

Markers, an HTML comment on the line just before the block (they show nowhere on the page):

- ``<!-- docs-test: skip: REASON -->``: the block is not run; REASON says why (it needs a
  real account, say). Rare: ``test_skipped_blocks_say_why`` lists them.
- ``<!-- example: NAME -->`` (docs/emulator.md): a file of a pytest project, run through
  pytester by tests/integration/test_emulator_tooling.py.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import ssl
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import trustme

import unstructured_jobs
import unstructured_jobs.batch
import unstructured_jobs.testing
from unstructured_jobs import AsyncJobsClient
from unstructured_jobs.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SAMPLES = {
    "a.pdf": b"%PDF-1.7 a",
    "b.pdf": b"%PDF-1.7 b",
    "b.docx": b"docx",
    "report.pdf": b"%PDF-1.7 report",
    "slides.pptx": b"pptx",
    "docs/report.pdf": b"%PDF-1.7 report",
    "docs/notes.txt": b"notes",
}
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\S*)\s*$")
_SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(?P<why>\S.*?)\s*-->")


@attrs.frozen
class Block:
    page: str
    line: int
    code: str
    skip: str | None  # why it is not run here
    elsewhere: str | None  # the name of a pytester example file


def blocks(path: Path) -> list[Block]:
    """The ```python blocks of a page (indented ones in list items too), with their markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, start = fence["indent"], i
        i += 1
        body = []
        while not lines[i].startswith(indent + "```"):
            body.append(lines[i])
            i += 1
        i += 1
        if fence["lang"] != "python":
            continue
        before = next((x for x in reversed(lines[:start]) if x.strip()), "")
        skip = _SKIP.search(before)
        example = re.match(r"<!-- example: (\S+) -->", before.strip())
        found.append(
            Block(
                page=path.relative_to(ROOT).as_posix(),
                line=start + 1,
                code=textwrap.dedent("\n".join(body)),
                skip=skip["why"] if skip else None,
                elsewhere=example[1] if example else None,
            )
        )
    return found


def _public(module: Any) -> dict[str, Any]:
    return {name: getattr(module, name) for name in module.__all__}


@pytest.fixture
def in_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    for name, data in SAMPLES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    trustme.CA().cert_pem.write_to_path(str(folder / "corp-root.pem"))  # a CA bundle
    monkeypatch.chdir(folder)
    return folder


class Page:
    """Runs a page's blocks in order, in one namespace, on one event loop."""

    def __init__(
        self, emu: Emulator, folder: Path, fresh: Callable[[], Emulator], env: pytest.MonkeyPatch
    ) -> None:
        self.emu = emu
        self.fresh = fresh
        self.env = env
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.tests = 0
        ns: dict[str, Any] = {"__name__": "docs_example"}
        for module in (unstructured_jobs.testing, unstructured_jobs.batch, unstructured_jobs):
            ns.update(_public(module))
        ns.update(os=os, ssl=ssl, Path=Path, aiohttp=aiohttp, asyncio=asyncio, emu=emu)
        self.ns = ns
        self.client = AsyncJobsClient(api_key=emu.api_key, server_url=emu.url)
        ns["client"] = self.client
        job = self.loop.run_until_complete(self._a_job())
        ns.update(job=job, job_id=job.id)

    async def _a_job(self) -> Any:
        job = await self.client.create_job(template_id="hi_res_partition", input_files=["a.pdf"])
        return await self.client.wait_for_job(job.id)

    def run(self, block: Block) -> None:
        where = f"{block.page}:{block.line}"
        code = compile(block.code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        before = set(self.ns)
        result = eval(code, self.ns)
        if inspect.iscoroutine(result):
            self.loop.run_until_complete(result)
        for name in [n for n in self.ns if n not in before and n.startswith("test_")]:
            self._call_test(self.ns[name])

    def _call_test(self, fn: Callable[..., Any]) -> None:
        self.tests += 1
        params = inspect.signature(fn).parameters
        emu = (
            self.fresh()
            if {"unstructured_emulator", "unstructured_emulator_env"} & set(params)
            else None
        )
        fixtures: dict[str, Any] = {
            "tmp_path": self.folder / f"test-{self.tests}",
            "unstructured_emulator": emu,
            "unstructured_emulator_env": emu,
        }
        fixtures["tmp_path"].mkdir()
        with self.env.context() as env:
            if "unstructured_emulator_env" in params and emu is not None:
                env.setenv("UNSTRUCTURED_API_URL", emu.url)
                env.setenv("UNSTRUCTURED_API_KEY", emu.api_key)
            result = fn(**{p: fixtures[p] for p in params})
            if inspect.iscoroutine(result):
                self.loop.run_until_complete(result)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.client.aclose())
        finally:
            self.loop.close()


@pytest.fixture
def page_runner(
    unstructured_emulator_factory: Callable[..., Emulator],
    in_samples: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Page]:
    emu = unstructured_emulator_factory()
    monkeypatch.setenv("UNSTRUCTURED_API_URL", emu.url)
    monkeypatch.setenv("UNSTRUCTURED_API_KEY", emu.api_key)
    page = Page(emu, in_samples, unstructured_emulator_factory, monkeypatch)
    try:
        yield page
    finally:
        page.close()


@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_python_block_runs(path: Path, page_runner: Page) -> None:
    for block in blocks(path):
        if block.skip is None and not block.elsewhere:
            page_runner.run(block)


def test_the_pages_have_blocks_and_skips_are_rare() -> None:
    every = [b for p in PAGES for b in blocks(p)]
    assert len([b for b in every if b.skip is None and not b.elsewhere]) >= 20
    skipped = [b for b in every if b.skip is not None]
    assert len(skipped) <= len(every) // 5, [f"{b.page}:{b.line}: {b.skip}" for b in skipped]


def test_pytester_examples_are_run_elsewhere() -> None:
    """The `<!-- example: -->` blocks left out here are the ones test_emulator_tooling runs."""
    runner = (ROOT / "tests/integration/test_emulator_tooling.py").read_text()
    names = [b.elsewhere for p in PAGES for b in blocks(p) if b.elsewhere]
    assert names
    for name in names:
        assert f'_example("example: {name}")' in runner, f"no test runs the docs example {name}"


def test_every_marker_is_well_formed() -> None:
    """A marker the test cannot read would leave its block run, or skipped, unexplained."""
    for path in PAGES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "docs-test:" in line:
                assert _SKIP.search(line), f"{path.name}:{number}: {line.strip()}"
