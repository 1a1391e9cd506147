"""A real Jupyter kernel (ipykernel, driven by nbclient) runs a notebook against the emulator.

A cell runs inside the kernel's asyncio loop, which is exactly where a blocking client used to be
refused. The notebook uses the sync client, `run_batch` and top-level ``await`` of the async
client, as a data scientist would.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from unstructured_jobs.testing import Emulator


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this very interpreter, so the kernel imports this checkout."""
    spec = tmp_path / "jupyter" / "kernels" / "unstructured-jobs-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "unstructured-jobs tests",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return "unstructured-jobs-test"


def _cell(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(textwrap.dedent(source).strip())


def test_a_notebook_uses_the_sync_client_run_batch_and_top_level_await(
    unstructured_emulator: Emulator, tmp_path: Path, kernel_name: str
) -> None:
    emu = unstructured_emulator
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"page{i}.txt").write_text(f"page {i}\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell(
            f"""
            import asyncio, traceback
            from unstructured_jobs import AsyncJobsClient, JobsClient, NotFoundError
            from unstructured_jobs import SyncInAsyncContextError
            from unstructured_jobs.batch import run_batch
            URL, KEY = {emu.url!r}, {emu.api_key!r}
            asyncio.get_running_loop()  # a cell runs inside the kernel's event loop
            """
        ),
        _cell(
            """
            client = JobsClient(api_key=KEY, server_url=URL + "/api/v1")
            job = client.create_job(template_id="hi_res_partition")
            done = client.wait_for_job(job.id, poll_interval=0.01)
            print("sync:", done.status.value)
            try:  # an error shows the cell's line and the client's method, not the loop's
                client.get_job("00000000-0000-4000-8000-000000000000")
            except NotFoundError as exc:
                print("frames:", [f.name for f in traceback.extract_tb(exc.__traceback__)])
            """
        ),
        _cell(
            f"""
            report = run_batch([{str(docs)!r}], api_key=KEY, server_url=URL, template_id="t",
                               output_dir={str(tmp_path / "out")!r}, launch_rate=None,
                               poll_interval=0.01, max_poll_interval=0.02)
            print("batch:", report.ok, len(report.files))
            """
        ),
        _cell(
            """
            async with AsyncJobsClient(api_key=KEY, server_url=URL) as aclient:
                jobs = await aclient.list_jobs()
            print("await:", len(jobs))
            """
        ),
        _cell(
            """
            refused = []
            def on_poll(_):
                try:
                    client.get_job(job.id)
                except SyncInAsyncContextError as exc:
                    refused.append(str(exc))
            client.wait_for_job(job.id, on_poll=on_poll)
            client.close()
            print("callback:", "own event loop thread" in refused[0])
            """
        ),
    ]
    NotebookClient(nb, timeout=60, kernel_name=kernel_name, allow_errors=False).execute()
    out = "".join(
        o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []) if "text" in o
    )
    assert "sync: COMPLETED" in out
    assert "frames: ['<module>', 'get_job']" in out
    assert "batch: True 3" in out
    assert "await: 2" in out  # the sync client's job and the batch's one job
    assert "callback: True" in out
    assert len(emu.jobs) == 2


def test_a_run_shows_as_a_table_and_ctrl_c_in_a_cell_names_the_job(
    unstructured_emulator: Emulator, kernel_name: str
) -> None:
    emu = unstructured_emulator
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell(
            f"""
            import os, signal
            from unstructured_jobs import JobsClient
            client = JobsClient(api_key={emu.api_key!r}, server_url={emu.url!r})
            """
        ),
        _cell(  # the last expression of a cell is displayed: its HTML table in Jupyter
            """
            run = client.run_job(template_id="t", poll_interval=0.01, progress=True,
                                 input_files=[("a.txt", b"a"), ("<b>.txt", b"b")])
            run
            """
        ),
        _cell(
            """
            import threading
            sent, seen = [], threading.Event()
            def on_sigint(signum, frame):  # Python's own Ctrl-C, telling the test it ran
                seen.set()
                raise KeyboardInterrupt
            signal.signal(signal.SIGINT, on_sigint)
            def ctrl_c(job):  # the user presses Ctrl-C (Jupyter: "interrupt the kernel")
                if not sent:
                    sent.append(job.id)
                    os.kill(os.getpid(), signal.SIGINT)
                    seen.wait(30)  # the job may not finish before the interrupt is handled
            try:
                client.run_job(template_id="t", input_files=[("c.txt", b"c")],
                               on_poll=ctrl_c, poll_interval=0.01)
            except KeyboardInterrupt as exc:
                notes = "".join(getattr(exc, "__notes__", []))
                print("interrupted:", f"run_job(job_id={sent[0]!r})" in notes)
            again = client.run_job(job_id=sent[0], poll_interval=0.01)  # what the note says
            print("resumed:", again.job.id == sent[0], again.ok)
            client.close()
            """
        ),
    ]
    NotebookClient(nb, timeout=60, kernel_name=kernel_name, allow_errors=False).execute()
    (shown,) = [o for o in nb.cells[1].outputs if o.get("output_type") == "execute_result"]
    page = shown["data"]["text/html"]
    assert page.startswith("<table>") and page.count("<tr>") == 3
    assert "<td>&lt;b&gt;.txt</td><td>in memory</td>" in page and "<b>" not in page
    assert shown["data"]["text/plain"].startswith("JobRun(job=")
    assert "files=2: 2 in memory" in shown["data"]["text/plain"]
    bars = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.get("name") == "stderr")
    assert f"job {next(iter(emu.jobs))}: COMPLETED" in bars  # progress=True: a bar in the cell
    out = "".join(o.get("text", "") for o in nb.cells[2].outputs if "text" in o)
    assert "interrupted: True" in out and "resumed: True True" in out
    assert len(emu.jobs) == 2  # the run, and the interrupted job resumed: no third
