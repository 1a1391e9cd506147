"""Issue 24, item 5, against the emulator over loopback (on virtual time): opt-in progress that
shows each file's state, and an interrupt or error after the job exists that says which job it
is and how to go on, so that running the cell again does not create a second job."""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from cli_support import KEY, Cli, env_for

from unstructured_jobs import AsyncJobsClient, JobInformation, JobsClient
from unstructured_jobs.batch import submit_batch
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

FILES = [("a.txt", b"a"), ("bad.txt", b"b"), ("c.txt", b"c")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[Emulator]:
    fail = {"fail_files": lambda name: name.startswith("bad")}
    async with Emulator(schedule=Schedule(start_after=5, run_for=30), clock=clock, **fail) as e:
        yield e


@pytest.fixture
async def client(emu: Emulator, clock: FakeClock) -> AsyncIterator[AsyncJobsClient]:
    async with AsyncJobsClient(emu.api_key, emu.url, clock=clock) as c:
        yield c


def file_status_calls(emu: Emulator) -> list[str]:
    return [r.path for r in emu.requests if r.path.endswith("/file-status")]


async def test_progress_shows_the_job_and_each_files_state_and_is_off_by_default(
    emu: Emulator, client: AsyncJobsClient, capsys: pytest.CaptureFixture[str]
) -> None:
    job = await client.create_job(template_id="t", input_files=FILES)
    done = await client.wait_for_job(job.id, poll_interval=1, max_poll_interval=2)
    assert done.status == "COMPLETED"
    assert capsys.readouterr() == ("", "")  # silent by default
    assert file_status_calls(emu) == []  # and no extra call

    job = await client.create_job(template_id="t", input_files=FILES)
    done = await client.wait_for_job(job.id, poll_interval=1, max_poll_interval=2, progress=True)
    assert done.status == "COMPLETED"
    out, err = capsys.readouterr()
    assert out == ""  # bars go to stderr (a widget in Jupyter)
    assert f"job {job.id}: COMPLETED" in err
    assert "3/3" in err and "1 FAILURE, 2 SUCCESS" in err  # the files' last states
    assert "3 READY" in err or "3 IN_PROGRESS" in err  # and some on the way
    calls = file_status_calls(emu)
    assert 2 <= len(calls) <= 12  # every 5 s at most over ~35 s, plus the final one

    run = await client.run_job(job_id=job.id, progress=True)
    assert run.outcomes() == {"in memory": 2, "failed": 1}
    err = capsys.readouterr().err
    assert f"job {job.id}: COMPLETED" in err and "outputs: 100%" in err and "2/2" in err
    await client.run_job(job_id=job.id)
    assert capsys.readouterr() == ("", "")


async def test_a_cancel_after_the_job_exists_names_it_and_run_job_resumes_it(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    caught: list[BaseException] = []

    async def cell(scope: anyio.CancelScope) -> None:
        try:
            await client.run_job(
                template_id="t", input_files=FILES, on_poll=lambda _: scope.cancel()
            )
        except BaseException as exc:  # the cancellation itself
            caught.append(exc)
            raise

    with anyio.CancelScope() as scope:
        await cell(scope)
    (job_id,) = emu.jobs
    assert isinstance(caught[0], anyio.get_cancelled_exc_class())
    (note,) = caught[0].__notes__
    assert f"job {job_id} exists on the server" in note
    assert f"run_job(job_id={job_id!r})" in note and f"wait_for_job({job_id!r})" in note

    run = await client.run_job(job_id=job_id)  # what the note says to do
    assert run.job.id == job_id and run.job.status == "COMPLETED"
    assert [f.file_id for f in run.files] == ["a.txt", "bad.txt", "c.txt"]
    assert run.outcomes() == {"in memory": 2, "failed": 1}
    assert list(emu.jobs) == [job_id]  # no second job


async def test_resuming_takes_no_inputs(client: AsyncJobsClient, emu: Emulator) -> None:
    from unstructured_jobs import InvalidInputError

    for extra in ({"template_id": "t"}, {"input_files": FILES}, {"input_files": iter(())}):
        with pytest.raises(InvalidInputError, match="job_id= resumes"):
            await client.run_job(job_id="00000000-0000-4000-8000-000000000000", **extra)
    assert emu.requests == []


def test_ctrl_c_in_the_blocking_run_job_says_which_job_exists() -> None:
    # pytest run in the background ignores SIGINT: Ctrl-C's own handler for this test.
    seen = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:  # Python's own Ctrl-C, and a sign it ran
        seen.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    clock = FakeClock()
    sent: list[str] = []

    def ctrl_c(job: JobInformation) -> None:  # in the client's loop thread, as a user's Ctrl-C
        if not sent:
            sent.append(job.id)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            seen.wait(30)  # the job must not finish before the interrupt is handled

    try:
        with (
            Emulator(
                schedule=Schedule(start_after=5, run_for=30), clock=clock
            ).running_in_thread() as emu,
            JobsClient(emu.api_key, emu.url, clock=clock) as client,
        ):
            with pytest.raises(KeyboardInterrupt) as info:  # still a KeyboardInterrupt
                client.run_job(template_id="t", input_files=FILES, on_poll=ctrl_c)
            (job_id,) = emu.jobs
            assert sent == [job_id]
            notes = getattr(info.value, "__notes__", [])
            assert any(f"run_job(job_id={job_id!r})" in n for n in notes), notes
            run = client.run_job(job_id=job_id)
            assert run.ok and list(emu.jobs) == [job_id]
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("how", [["--wait"], ["-o", "out"]])
def test_the_command_line_names_the_job_after_an_error_once_it_exists(
    how: list[str],
    cli: Cli,
    unstructured_emulator_factory: Callable[..., Emulator],
    tmp_path: Any,
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY)
    emu.inject(Fault.status(403, detail="no"), method="GET", path="/api/v1/jobs/*")
    (tmp_path / "a.txt").write_text("a")
    r = cli("create", "--template-id", "t", "a.txt", *how, "--poll-interval", "0.01",
            env=env_for(emu), cwd=tmp_path)  # fmt: skip
    (job_id,) = emu.jobs
    assert r.returncode != 0
    assert f"job {job_id} was created and goes on" in r.stderr
    assert f"`unstructured-jobs wait {job_id}`" in r.stderr
    assert ("download" in r.stderr) == (how[0] == "-o")


async def test_a_batch_shows_bars_only_when_asked(
    emu: Emulator, client: AsyncJobsClient, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    quiet = await submit_batch(client, [tmp_path / "a.txt"], template_id="t", launch_rate=None)
    assert quiet.ok and capsys.readouterr() == ("", "")
    shown = await submit_batch(
        client, [tmp_path / "b.txt"], template_id="t", launch_rate=None, progress=True
    )
    assert shown.ok
    out, err = capsys.readouterr()
    assert out == "" and "jobs: 100%" in err and "1/1" in err
    with pytest.raises(Exception, match="progress=True or an observer"):
        from unstructured_jobs.batch import BatchObserver

        await submit_batch(client, [tmp_path], template_id="t", progress=True,
                           observer=BatchObserver())  # fmt: skip
