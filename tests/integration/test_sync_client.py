"""The blocking facade: parity with the async client, who runs the loop, threads, Ctrl-C, loops."""

from __future__ import annotations

import asyncio
import inspect
import logging
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

from unstructured_jobs import (
    AsyncJobsClient,
    EventLoopThread,
    JobsClient,
    JobStatus,
    NotFoundError,
    SyncInAsyncContextError,
    UnstructuredJobsError,
)
from unstructured_jobs._client import RAW_METHODS
from unstructured_jobs._sync import public_async_methods
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


def test_the_static_view_lists_every_method() -> None:
    """`if TYPE_CHECKING:` lines give type checkers the same methods `_mirror` adds."""
    source = Path(inspect.getfile(JobsClient)).read_text()
    static = source.split("if TYPE_CHECKING:  # the static view", 1)[1]
    for name in public_async_methods():
        assert f"{name} = _typed(AsyncJobsClient.{name})" in static, name
    raw = source.split("class RawResponses:", 1)[1]
    for name in RAW_METHODS:
        assert f"{name} = _typed_raw(AsyncJobsClient.{name})" in raw, name


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


def test_a_single_threaded_script_runs_the_loop_in_its_own_thread(
    unstructured_emulator: Emulator,
) -> None:
    """No thread hop per call (it cost more than a small request): a caller with no event loop
    of its own runs the client's loop itself, the same loop and session for the client's life;
    no thread is started; callbacks run in the caller's thread."""
    before = threading.active_count()
    sessions: list[aiohttp.ClientSession] = []
    loops: set[int] = set()
    polled_in: set[int] = set()

    def factory() -> aiohttp.ClientSession:
        sessions.append(aiohttp.ClientSession())
        loops.add(id(asyncio.get_running_loop()))
        return sessions[-1]

    def on_poll(_: object) -> None:
        polled_in.add(threading.get_ident())
        loops.add(id(asyncio.get_running_loop()))

    client = JobsClient(api_key="k", server_url=unstructured_emulator.url, session_factory=factory)
    for _ in range(5):
        client.list_jobs()
        job = client.create_job(template_id="t")
        client.wait_for_job(job.id, on_poll=on_poll)
        assert threading.active_count() == before  # no helper thread was needed
    assert polled_in == {threading.get_ident()} and len(loops) == 1
    [session] = sessions  # one session, made once, in the one loop
    assert not session.closed
    client.close()
    client.close()  # idempotent
    assert session.closed
    assert threading.active_count() == before
    with pytest.raises(UnstructuredJobsError, match="closed"):
        client.list_jobs()


def test_a_call_still_running_when_the_loop_runner_returns_is_finished_by_a_helper(
    unstructured_emulator_factory: object,
) -> None:
    """Thread A runs the loop for its wait; thread B's call, made meanwhile, runs in A's loop.
    A's wait ends first: a helper thread takes over the loop, and B's call still finishes."""
    emu = unstructured_emulator_factory(schedule=Schedule.manual())  # type: ignore[operator]
    with JobsClient(api_key="k", server_url=emu.url) as client:
        job = client.create_job(template_id="t")
        polled = threading.Event()
        b_running = threading.Event()
        release: list[asyncio.Future[str]] = []
        b_ran_in: list[str] = []

        async def b_call(async_client: AsyncJobsClient) -> str:
            release.append(asyncio.get_running_loop().create_future())
            b_ran_in.append(threading.current_thread().name)
            b_running.set()
            answer = await release[0]
            b_ran_in.append(threading.current_thread().name)
            return answer + (await async_client.get_job(job.id)).id

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="caller") as pool:
            a = pool.submit(
                client.wait_for_job, job.id, poll_interval=0.01, on_poll=lambda _: polled.set()
            )
            assert polled.wait(30)  # A runs the loop now
            b = pool.submit(client.call_async, b_call)
            assert b_running.wait(30)
            assert b_ran_in[0].startswith("caller")  # in A's thread: A runs the loop
            emu.set_status(job.id, "COMPLETED")
            assert a.result(timeout=30).status is JobStatus.COMPLETED  # A returned; B waits
            loop = client._current().thread.loop
            loop.call_soon_threadsafe(release[0].set_result, "done:")
            assert b.result(timeout=30) == "done:" + job.id
        assert b_ran_in[1] == "unstructured-jobs-loop"  # the helper ran the rest of B


@pytest.mark.parametrize("caller", ["a plain thread", "a thread running an event loop"])
def test_a_connection_the_server_closed_while_idle_is_never_used(
    unstructured_emulator: Emulator, caller: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Between two blocking calls nobody runs the client's loop, so nobody reads the close of a
    connection that the server dropped meanwhile (its idle timeout). Each call first lets the
    loop read it: the create goes out on a new connection at once, instead of failing on the
    closed one and being sent again after a retry's wait (half a second)."""
    caplog.set_level(logging.INFO, logger="unstructured_jobs")
    emu = unstructured_emulator

    def scenario(client: JobsClient) -> None:
        client.list_jobs()  # one connection, now idle in the pool
        assert emu.expire_idle_connections() == 1
        client.create_job(template_id="t")

    with JobsClient(api_key="k", server_url=emu.url) as client:
        if caller == "a plain thread":
            scenario(client)
        else:

            async def cell() -> None:  # a notebook cell: the call hops to the helper thread
                scenario(client)

            asyncio.run(cell())
    assert len(emu.jobs) == 1
    assert [r.method for r in emu.requests] == ["GET", "POST"]
    assert not [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]


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


def test_a_main_thread_with_its_own_sigint_handler_never_runs_the_loop_itself(
    unstructured_emulator: Emulator,
) -> None:
    """A program that handles SIGINT itself (a server, a TUI) keeps its handler: the call hops
    to the helper thread, so the handler never runs, and never raises, inside the loop."""
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


def test_callbacks_run_in_the_thread_that_runs_the_loop(unstructured_emulator: Emulator) -> None:
    """The caller's own thread, when it runs the loop; the helper's, for a notebook cell."""
    threads: list[str] = []
    with JobsClient(api_key="k", server_url=unstructured_emulator.url) as client:
        job = client.create_job(template_id="t")

        def wait() -> None:
            client.wait_for_job(
                job.id, on_poll=lambda _: threads.append(threading.current_thread().name)
            )

        wait()
        assert threads == [threading.current_thread().name]

        async def cell() -> None:
            wait()

        asyncio.run(cell())
    assert threads[1:] == ["unstructured-jobs-loop"]


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
