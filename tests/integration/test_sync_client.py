"""The blocking facade: parity with the async client, its loop thread, threads, Ctrl-C, loops."""

from __future__ import annotations

import asyncio
import inspect
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from helpers import public_async_methods

from unstructured_jobs import (
    AsyncJobsClient,
    JobsClient,
    JobStatus,
    NotFoundError,
    SyncInAsyncContextError,
    UnstructuredJobsError,
)
from unstructured_jobs._sync.loop_thread import EventLoopThread
from unstructured_jobs.testing import Emulator, Schedule

MISSING = "00000000-0000-4000-8000-000000000000"


def test_every_async_method_has_an_identical_blocking_twin() -> None:
    methods = public_async_methods()
    assert {"create_job", "wait_for_job", "watch_job", "download_job_output_to"} <= set(methods)
    for name, async_fn in methods.items():
        twin = getattr(JobsClient, name, None)
        assert twin is not None, f"JobsClient lacks {name}"
        assert twin.__doc__ == async_fn.__doc__, name
        a, s = inspect.signature(async_fn), inspect.signature(twin)
        assert list(a.parameters.values()) == list(s.parameters.values()), name
        expected = a.return_annotation
        if inspect.isasyncgenfunction(async_fn):
            expected = expected.replace("AsyncIterator[", "Iterator[", 1)
        assert s.return_annotation == expected, name
        assert not inspect.iscoroutinefunction(twin), name


def test_the_constructor_has_the_async_clients_real_signature() -> None:
    """Same parameters, kinds, defaults and annotations; `session` may only be None."""
    a = inspect.signature(AsyncJobsClient.__init__).parameters
    s = inspect.signature(JobsClient.__init__).parameters
    assert list(a) == list(s)
    for name in a:
        if name == "session":
            assert s[name].annotation == "None" and s[name].default is None
            continue
        assert a[name] == s[name], name


def test_a_session_is_refused_with_the_way_to_customise_instead() -> None:
    from unstructured_jobs import InvalidInputError

    with pytest.raises(InvalidInputError, match="session_factory"):
        JobsClient(api_key="k", session=object())  # type: ignore[arg-type]


def test_sync_client_drives_a_whole_job(unstructured_emulator: Emulator, tmp_path: Path) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF sync")
    progress: list[int] = []
    with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
        job = client.create_job(
            template_id="t", input_files=[doc], on_upload_progress=progress.append
        )
        done = client.wait_for_job(job.id, poll_interval=0.01)
        assert done.status is JobStatus.COMPLETED
        out = done.output_node_files[0]  # type: ignore[index]
        path = client.download_job_output_to(
            job.id, tmp_path / "out.json", file_id=out.file_id, node_id=out.node_id
        )
        assert path.exists()
        assert [j.id for j in client.list_jobs()] == [job.id]
        with pytest.raises(NotFoundError):  # the same exception types as the async client
            client.get_job(MISSING)
    assert sum(progress) == len(b"%PDF sync")
    assert "***" in repr(client) and "JobsClient(" in repr(client)


def test_one_loop_thread_and_one_session_for_the_clients_life(
    unstructured_emulator: Emulator,
) -> None:
    """The same loop and session from call to call (one thread, started with the client);
    callbacks run in that thread; close() closes the session and stops the thread."""

    def loop_threads() -> set[threading.Thread]:
        # By name: idle worker threads of other tests may come and go meanwhile.
        return {t for t in threading.enumerate() if t.name == "unstructured-jobs-loop"}

    before = loop_threads()
    sessions: list[aiohttp.ClientSession] = []
    loops: set[int] = set()
    polled_in: set[str] = set()

    def factory() -> aiohttp.ClientSession:
        sessions.append(aiohttp.ClientSession())
        loops.add(id(asyncio.get_running_loop()))
        return sessions[-1]

    def on_poll(_: object) -> None:
        polled_in.add(threading.current_thread().name)
        loops.add(id(asyncio.get_running_loop()))

    client = JobsClient(api_key="k", server_url=unstructured_emulator.url, session_factory=factory)
    for _ in range(5):
        client.list_jobs()
        job = client.create_job(template_id="t")
        client.wait_for_job(job.id, on_poll=on_poll)
        assert len(loop_threads() - before) == 1  # the client's loop thread, no other
    assert polled_in == {"unstructured-jobs-loop"} and len(loops) == 1
    [session] = sessions  # one session, made once, in the one loop
    assert not session.closed
    client.close()
    client.close()  # idempotent
    assert session.closed
    assert loop_threads() <= before  # the thread is stopped
    with pytest.raises(UnstructuredJobsError, match="closed"):
        client.list_jobs()


def test_thread_safe_under_a_thread_pool(unstructured_emulator: Emulator) -> None:
    with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
        job = client.create_job(template_id="t")
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: client.get_job(job.id).id, range(64)))
    assert results == [job.id] * 64


def test_watch_job_iterates_and_can_stop_early(
    unstructured_emulator_factory: object,
) -> None:
    emu = unstructured_emulator_factory(schedule=Schedule.manual())  # type: ignore[operator]
    with JobsClient(api_key="k", server_url=emu.url) as client:
        job = client.create_job(template_id="t")
        stream = client.watch_job(job.id, poll_interval=0.01)
        first = next(stream)
        assert first.status is JobStatus.SCHEDULED
        stream.close()  # the async generator is finalised inside the portal
        assert next(stream, None) is None
        emu.set_status(job.id, "COMPLETED")
        assert [j.status for j in client.watch_job(job.id)] == [JobStatus.COMPLETED]


async def test_works_from_a_thread_that_runs_an_event_loop(unstructured_emulator: Emulator) -> None:
    """A notebook cell or a sync helper called from async code: the call blocks, and works."""
    asyncio.get_running_loop()  # this test's thread runs a loop, like a Jupyter kernel's
    with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
        job = client.create_job(template_id="t")
        assert client.get_job(job.id).id == job.id
        assert [j.id for j in client.list_jobs()] == [job.id]


def test_a_callback_calling_the_client_back_fails_fast(unstructured_emulator: Emulator) -> None:
    """The one call that would deadlock: from the client's own loop thread."""
    errors: list[BaseException] = []
    with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
        job = client.create_job(template_id="t")

        def on_poll(_: object) -> None:
            try:
                client.get_job(job.id)
            except SyncInAsyncContextError as exc:
                errors.append(exc)

        client.wait_for_job(job.id, poll_interval=0.01, on_poll=on_poll)
        assert client.get_job(job.id).id == job.id  # the client still works afterwards
    assert errors and "own event loop thread" in str(errors[0])


def test_ctrl_c_cancels_the_call_inside_the_portal(unstructured_emulator: Emulator) -> None:
    client = JobsClient(api_key="k", server_url=unstructured_emulator.url)
    outcome: list[str] = []
    main_thread = threading.get_ident()

    async def long_call(_: AsyncJobsClient) -> None:
        try:
            # Ctrl-C arrives while the caller is blocked waiting for this call.
            signal.pthread_kill(main_thread, signal.SIGINT)
            await anyio.sleep_forever()
        except BaseException as exc:  # anyio delivers cancellation as CancelledError
            outcome.append(type(exc).__name__)
            raise

    with pytest.raises(KeyboardInterrupt):
        client.call_async(long_call)
    assert outcome == ["CancelledError"]
    assert client.list_jobs() == []  # the client still works afterwards
    client.close()


def test_a_main_thread_with_its_own_sigint_handler_keeps_it(
    unstructured_emulator: Emulator,
) -> None:
    """A program that handles SIGINT itself (a server, a TUI) keeps its handler: the loop runs
    in its own thread, so the handler never runs, and never raises, inside the loop."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
            job = client.create_job(template_id="t")
            threads: list[str] = []
            client.wait_for_job(
                job.id, on_poll=lambda _: threads.append(threading.current_thread().name)
            )
            assert threads == ["unstructured-jobs-loop"]
            signal.raise_signal(signal.SIGINT)  # still the program's handler
            assert seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_callbacks_run_in_the_loop_thread(unstructured_emulator: Emulator) -> None:
    """From a plain thread and from a notebook cell alike."""
    threads: list[str] = []
    with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
        job = client.create_job(template_id="t")

        def wait() -> None:
            client.wait_for_job(
                job.id, on_poll=lambda _: threads.append(threading.current_thread().name)
            )

        wait()

        async def cell() -> None:
            wait()

        asyncio.run(cell())
    assert threads == ["unstructured-jobs-loop"] * 2


def test_unclosed_client_does_not_hang_exit(unstructured_emulator: Emulator) -> None:
    script = textwrap.dedent(
        f"""
        from unstructured_jobs import JobsClient
        client = JobsClient(api_key="k", server_url={unstructured_emulator.url!r})
        print(len(client.list_jobs()))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stderr
    assert "Unclosed" not in proc.stderr


@pytest.mark.parametrize("debug", [False, True], ids=["default", "debug-logging"])
def test_an_error_shows_the_callers_line_not_the_loops_frames(
    unstructured_emulator: Emulator, debug: bool, tmp_path: Path
) -> None:
    """A 404 from get_job prints the user's call and the error in a few lines; with the
    package's logger at DEBUG, every frame (the transport's included) is kept."""
    script = textwrap.dedent(
        f"""
        import logging
        from unstructured_jobs import JobsClient
        if {debug!r}:
            logging.getLogger("unstructured_jobs").setLevel(logging.DEBUG)
        client = JobsClient(api_key="k", server_url={unstructured_emulator.url!r})
        client.get_job({MISSING!r})  # the user's call
        """
    )
    path = tmp_path / "user_script.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    lines = proc.stderr.splitlines()
    shown = lines[lines.index("Traceback (most recent call last):") :]
    assert shown[-1].startswith("unstructured_jobs.NotFoundError: "), proc.stderr
    assert "client.get_job(" in proc.stderr
    if debug:
        assert "/_http/transport.py" in proc.stderr and "/_sync/loop_thread.py" in proc.stderr
    else:
        assert len(shown) <= 20, proc.stderr
        assert (
            "/_http/transport.py" not in proc.stderr and "/_sync/loop_thread.py" not in proc.stderr
        )


def test_async_and_sync_clients_share_records(unstructured_emulator: Emulator) -> None:
    async def via_async() -> str:
        async with AsyncJobsClient(api_key="k", server_url=unstructured_emulator.url) as c:
            return (await c.create_job(template_id="t")).id

    job_id = asyncio.run(via_async())
    with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
        assert type(client.get_job(job_id)).__name__ == "JobInformation"


def test_a_wrong_argument_raises_at_once_instead_of_hanging(
    unstructured_emulator: Emulator,
) -> None:
    with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
        with pytest.raises(TypeError):
            client.get_job(job_idd="x")  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            client.get_job("a", "b")  # type: ignore[misc]
        assert client.list_jobs() == []


def test_closing_while_another_thread_waits_ends_that_call_with_a_typed_error(
    unstructured_emulator_factory: object,
) -> None:
    emu = unstructured_emulator_factory(schedule=Schedule.manual())  # type: ignore[operator]
    client = JobsClient(api_key="k", server_url=emu.url)
    job = client.create_job(template_id="t")
    polling = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiter = pool.submit(
            client.wait_for_job, job.id, poll_interval=60, on_poll=lambda _: polling.set()
        )
        assert polling.wait(10)  # the other thread is now sleeping between polls
        client.close()
        with pytest.raises(UnstructuredJobsError, match="closed during this call"):
            waiter.result(timeout=10)


def test_ctrl_c_right_after_the_hop_still_cancels_the_call() -> None:
    """A Ctrl-C landing between handing the call to the loop and waiting for it (a window the
    scheduler opens under load) must cancel the call, not leave it running in the background."""
    outcome: list[str] = []
    started = threading.Event()

    async def long_call() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise

    with EventLoopThread() as thread:
        real = thread.loop.call_soon_threadsafe
        caller = threading.get_ident()
        interrupted: list[bool] = []

        def hop_then_ctrl_c(callback: Any, *args: Any) -> Any:
            handle = real(callback, *args)
            # Only the caller's first hop is interrupted: the cancel's own hop, and any hop
            # made by another thread (the loop's included), go through untouched, whatever
            # the load. No timeout decides the outcome.
            if threading.get_ident() == caller and not interrupted:
                interrupted.append(True)
                started.wait()  # the call is running in the loop: now the Ctrl-C lands
                raise KeyboardInterrupt
            return handle

        thread.loop.call_soon_threadsafe = hop_then_ctrl_c  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            thread.run(long_call)
        thread.loop.call_soon_threadsafe = real  # type: ignore[method-assign]
        assert outcome == ["CancelledError"]  # before close() would cancel it anyway
