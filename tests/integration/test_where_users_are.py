"""Where users run the client: the docs' URL form, forks, loops in the calling thread, umask."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from unstructured_jobs import (
    AsyncJobsClient,
    InvalidInputError,
    JobsClient,
    JobStatus,
    NotFoundError,
)
from unstructured_jobs.batch import run_batch, submit_batch
from unstructured_jobs.cli import main as cli_main
from unstructured_jobs.testing import Emulator, Fault

FAST = {"launch_rate": None, "poll_interval": 0.01, "max_poll_interval": 0.02}


def make_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"doc{i:03d}.txt"
        path.write_text(f"document {i}\n")
        paths.append(path)
    return paths


# ------------------------------------------------------------------ the base URL, as documented


@pytest.mark.parametrize("suffix", ["", "/", "/api/v1", "/api/v1/"])
async def test_the_rest_docs_url_form_reaches_the_api(
    unstructured_emulator: Emulator, suffix: str
) -> None:
    emu = unstructured_emulator
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url + suffix) as client:
        assert client.server_url == emu.url
        job = await client.create_job(template_id="t")
        assert (await client.get_job(job.id)).id == job.id
    assert all(not r.path.startswith("/api/v1/api/v1") for r in emu.requests)


def test_the_environment_and_the_cli_take_the_api_v1_form(
    unstructured_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = unstructured_emulator
    monkeypatch.setenv("UNSTRUCTURED_API_URL", emu.url + "/api/v1")
    monkeypatch.setenv("UNSTRUCTURED_API_KEY", emu.api_key)
    with JobsClient() as client:
        job = client.create_job(template_id="t")
    monkeypatch.delenv("UNSTRUCTURED_API_URL")
    code = cli_main(["get", job.id, "--json", "--server-url", emu.url + "/api/v1/"])
    assert code == 0, capsys.readouterr().err
    assert job.id in capsys.readouterr().out


def test_an_empty_url_variable_is_refused_not_taken_as_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UNSTRUCTURED_API_URL", "")
    with pytest.raises(InvalidInputError, match="set but empty"):
        AsyncJobsClient(api_key="k")
    assert cli_main(["list", "--api-key", "k"]) == 2
    assert "UNSTRUCTURED_API_URL is set but empty" in capsys.readouterr().err


def test_a_wrong_path_is_refused_before_sending(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidInputError, match=r"https://HOST/api/v1"):
        JobsClient(api_key="k", server_url="https://platform.unstructuredapp.io/api/v2")
    assert cli_main(["list", "--api-key", "k", "--server-url", "https://h.example/jobs"]) == 2
    assert "https://HOST/api/v1" in capsys.readouterr().err


async def test_a_batch_against_a_wrong_server_stops_and_keeps_files_pending(
    unstructured_emulator: Emulator, tmp_path: Path
) -> None:
    """A 404 on the jobs collection means a wrong URL: stop like a 401, lose nothing."""
    emu = unstructured_emulator
    make_files(tmp_path / "in", 25)
    manifest = tmp_path / "m.sqlite"
    emu.inject(Fault.status(404, detail="Not Found"), method="POST", path="/api/v1/jobs/")
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        with pytest.raises(NotFoundError):
            await submit_batch(
                client, [tmp_path / "in"], template_id="t", manifest=manifest,
                max_concurrent_uploads=1, **FAST,
            )  # fmt: skip
        creates = [r for r in emu.requests if r.method == "POST"]
        assert len(creates) == 1  # the first 404 stopped the batch: no file was marked failed
        emu.clear_faults()
        report = await submit_batch(
            client, [tmp_path / "in"], template_id="t", manifest=manifest, **FAST
        )
    assert report.ok and len(report.files) == 25 and len(emu.jobs) == 3
    assert report.next_steps() == []


async def test_a_report_with_failed_files_says_how_to_retry_them(
    unstructured_emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = unstructured_emulator_factory(fail_files=lambda name: name.endswith("1.txt"))
    make_files(tmp_path / "in", 3)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        report = await submit_batch(client, [tmp_path / "in"], template_id="t", **FAST)
    assert [f.state for f in report.files].count("failed") == 1
    (step,) = report.next_steps()
    assert "1 file(s) failed" in step and "retry_failed=True" in step

    code = await asyncio.to_thread(
        cli_main,
        ["batch", str(tmp_path / "in"), "--template-id", "t", "--api-key", emu.api_key,
         "--server-url", emu.url, "--manifest", str(tmp_path / "cli.sqlite"),
         "--launch-rate", "0", "--poll-interval", "0.01"],
    )  # fmt: skip
    assert code == 1
    assert "--retry-failed" in capsys.readouterr().err


# ------------------------------------------------------------------ a loop in the calling thread


async def test_run_batch_works_from_a_thread_that_runs_a_loop(
    unstructured_emulator: Emulator, tmp_path: Path
) -> None:
    """A notebook cell calls run_batch: it blocks the cell's thread and works."""
    asyncio.get_running_loop()
    emu = unstructured_emulator
    make_files(tmp_path / "in", 3)
    report = run_batch(
        [tmp_path / "in"], api_key=emu.api_key, server_url=emu.url, template_id="t",
        output_dir=tmp_path / "out", **FAST,
    )  # fmt: skip
    assert report.ok and len(report.files) == 3
    with JobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        again = run_batch([tmp_path / "in"], client=client, template_id="t",
                          output_dir=tmp_path / "out", **FAST)  # fmt: skip
    assert again.ok and len(emu.jobs) == 1  # resumed from the manifest: nothing sent twice


def test_a_misspelt_batch_option_raises_at_once(unstructured_emulator: Emulator) -> None:
    emu = unstructured_emulator
    with (
        JobsClient(api_key=emu.api_key, server_url=emu.url) as client,
        pytest.raises(TypeError, match="template_idd"),
    ):
        run_batch(["x"], client=client, template_idd="t")  # type: ignore[call-arg]
    assert emu.requests == []


# ------------------------------------------------------------------ forks


def _read_with_deadline(fd: int, seconds: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], seconds)
    return os.read(fd, 4096) if ready else b""


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_client_made_before_fork_works_in_the_child(unstructured_emulator: Emulator) -> None:
    """gunicorn --preload, Celery prefork: the child gets a fresh loop, never a hang."""
    emu = unstructured_emulator
    client = JobsClient(api_key=emu.api_key, server_url=emu.url)
    parent_job = client.create_job(template_id="parent")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            job = client.create_job(template_id="child")
            seen = {j.id for j in client.list_jobs()}
            os.write(write_end, f"{job.id} {parent_job.id in seen}".encode())
            client.close()
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        answer = _read_with_deadline(read_end, 60).decode()
    finally:
        os.close(read_end)
        if not answer:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    assert answer, "the child hung"
    assert os.waitstatus_to_exitcode(status) == 0
    child_job, saw_parent = answer.split()
    assert saw_parent == "True" and child_job in emu.jobs
    assert client.get_job(child_job).id == child_job  # the parent's client is untouched
    client.close()


_POOL_CLIENT: JobsClient | None = None


def _pool_task(template: str) -> str:
    assert _POOL_CLIENT is not None
    return _POOL_CLIENT.create_job(template_id=template).id


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_fork_pool_uses_a_client_made_in_the_parent(unstructured_emulator: Emulator) -> None:
    global _POOL_CLIENT
    emu = unstructured_emulator
    _POOL_CLIENT = JobsClient(api_key=emu.api_key, server_url=emu.url)
    try:
        _POOL_CLIENT.list_jobs()  # the parent's loop and session exist before the fork
        with multiprocessing.get_context("fork").Pool(2) as pool:
            ids = pool.map_async(_pool_task, [f"t{i}" for i in range(6)]).get(timeout=60)
        assert sorted(ids) == sorted(emu.jobs) and len(set(ids)) == 6
    finally:
        _POOL_CLIENT.close()
        _POOL_CLIENT = None


# ------------------------------------------------------------------ file modes


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_downloads_get_the_mode_the_umask_gives(
    unstructured_emulator: Emulator, tmp_path: Path, umask_022: None
) -> None:
    emu = unstructured_emulator
    make_files(tmp_path / "in", 2)
    with JobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        job = client.create_job(template_id="t", input_files=[tmp_path / "in" / "doc000.txt"])
        job = client.wait_for_job(job.id, poll_interval=0.01)
        assert job.status is JobStatus.COMPLETED and job.output_node_files
        out = job.output_node_files[0]
        path = client.download_job_output_to(
            job.id, tmp_path / "one.json", file_id=out.file_id, node_id=out.node_id
        )
        report = run_batch([tmp_path / "in"], client=client, template_id="t",
                           output_dir=tmp_path / "out", **FAST)  # fmt: skip
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    outputs = [Path(f.output_path) for f in report.files if f.output_path]
    assert len(outputs) == 2
    assert {stat.S_IMODE(p.stat().st_mode) for p in outputs} == {0o644}


# ------------------------------------------------------------------ uvloop


def test_the_async_client_and_a_batch_run_under_uvloop(
    unstructured_emulator: Emulator, tmp_path: Path
) -> None:
    import uvloop

    emu = unstructured_emulator
    make_files(tmp_path / "in", 3)

    async def main() -> tuple[str, bool]:
        loop_type = type(asyncio.get_running_loop()).__module__
        async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client:
            job = await client.create_job(
                template_id="t", input_files=[tmp_path / "in" / "doc000.txt"]
            )
            await client.wait_for_job(job.id, poll_interval=0.01)
            report = await submit_batch(
                client, [tmp_path / "in"], template_id="t", output_dir=tmp_path / "out", **FAST
            )
        return loop_type, report.ok

    loop_type, ok = uvloop.run(main())
    assert loop_type.startswith("uvloop") and ok
    assert emu.received_files()[0].filename == "doc000.txt"


def test_run_batch_options_are_exactly_submit_batchs() -> None:
    """`BatchOptions` (what type checkers see for run_batch) cannot drift from submit_batch."""
    import inspect
    import typing

    from unstructured_jobs import batch

    params = inspect.signature(submit_batch).parameters
    keywords = {n: p for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    names = vars(batch) | {"AsyncJobsClient": AsyncJobsClient, "JobsClient": JobsClient}
    hints = typing.get_type_hints(batch.BatchOptions, names)
    assert set(hints) == set(keywords)
    submit_hints = typing.get_type_hints(submit_batch, names)
    for name in keywords:
        assert hints[name] == submit_hints[name], name
