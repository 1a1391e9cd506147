"""Event hooks (``event_hooks=``) on both clients, against the emulator: what each attempt
sends, gets and retries, never the key; hooks that fail; hooks that add a header."""

from __future__ import annotations

import asyncio
import socket
import threading
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import API_URL, CompatAioresponses
from yarl import URL

from unstructured_jobs import (
    AsyncJobsClient,
    InvalidInputError,
    JobsClient,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault

KEY = "hook-test-secret-key-77"
Event = RequestEvent | ResponseEvent | RetryEvent


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY) as emulator:
        yield emulator


def recorder() -> tuple[list[Event], Any]:
    """Hooks that note every event: the request and retry hooks sync, the response one async."""
    seen: list[Event] = []

    async def on_response(event: ResponseEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event)

    return seen, {"request": [seen.append], "response": [on_response], "retry": [seen.append]}


def assert_no_key(events: list[Event]) -> None:
    for event in events:
        assert KEY not in repr(event)
        if isinstance(event, RequestEvent | ResponseEvent):
            assert all(KEY not in v for v in event.headers.values())
            assert "unstructured-api-key" not in {k.lower() for k in event.headers}


async def test_each_attempt_is_told_to_the_hooks_retries_included(emu: Emulator) -> None:
    seen, hooks = recorder()
    emu.inject(Fault.status(503, retry_after="2"), method="GET", path="/api/v1/jobs/")
    clock = FakeClock()
    async with AsyncJobsClient(KEY, emu.url, clock=clock, event_hooks=hooks) as client:
        assert await client.list_jobs(status="COMPLETED") == []
    url = f"{emu.url}/api/v1/jobs/?status=COMPLETED"
    kinds = [type(e).__name__ for e in seen]
    assert kinds == ["RequestEvent", "ResponseEvent", "RetryEvent", "RequestEvent", "ResponseEvent"]
    first, failed, retry, second, ok = seen
    assert isinstance(first, RequestEvent) and isinstance(second, RequestEvent)
    assert (first.method, first.url, first.attempt, second.attempt) == ("GET", url, 1, 2)
    assert first.headers["User-Agent"].startswith("unstructured-jobs/")
    assert isinstance(failed, ResponseEvent) and isinstance(ok, ResponseEvent)
    assert (failed.status, failed.attempt, ok.status, ok.attempt) == (503, 1, 200, 2)
    assert failed.url == url and failed.elapsed >= 0 and failed.headers["Retry-After"] == "2"
    assert ok.request_id is None or isinstance(ok.request_id, str)
    assert retry == RetryEvent(
        "GET", url, attempt=1, max_attempts=5, delay=2.0, reason="HTTP 503", status=503,
        kind="status",
    )  # fmt: skip
    assert clock.sleeps == [2.0]  # the hook saw the wait before it happened
    assert_no_key(seen)


async def test_a_refused_connection_is_a_retry_without_a_status() -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    retries: list[RetryEvent] = []
    responses: list[ResponseEvent] = []
    client = AsyncJobsClient(
        KEY,
        f"http://127.0.0.1:{port}",
        clock=FakeClock(),
        max_retries=2,
        event_hooks={"retry": [retries.append], "response": [responses.append]},
    )
    async with client:
        with pytest.raises(Exception, match="Cannot connect"):
            await client.get_job("00000000-0000-4000-8000-000000000000")
    assert [(r.attempt, r.max_attempts, r.reason, r.status, r.kind) for r in retries] == [
        (1, 3, "could not connect", None, "not_sent"),
        (2, 3, "could not connect", None, "not_sent"),
    ]
    assert responses == []  # no answer came
    assert_no_key(list(retries))


async def test_a_hook_that_raises_ends_the_request_as_it_is(emu: Emulator) -> None:
    def broken(event: ResponseEvent) -> None:
        raise OSError("the hook's own I/O error")  # not to be taken for a network failure

    async with AsyncJobsClient(KEY, emu.url, event_hooks={"response": [broken]}) as client:
        with pytest.raises(OSError, match="the hook's own I/O error") as info:
            await client.list_jobs()
    assert type(info.value) is OSError
    assert len(emu.requests) == 1  # not retried

    def refuse(event: RequestEvent) -> None:
        raise ValueError("no")

    async with AsyncJobsClient(KEY, emu.url, event_hooks={"request": [refuse]}) as client:
        with pytest.raises(ValueError, match="no"):
            await client.create_job(template_id="t")
    assert len(emu.requests) == 1 and emu.jobs == {}  # nothing sent


async def test_a_request_hook_cannot_set_the_key(emu: Emulator) -> None:
    def steal(event: RequestEvent) -> None:
        event.headers["Unstructured-API-Key"] = "another-key"

    async with AsyncJobsClient(KEY, emu.url, event_hooks={"request": [steal]}) as client:
        with pytest.raises(InvalidInputError, match="cannot set the unstructured-api-key"):
            await client.list_jobs()
    assert emu.requests == []


async def test_a_request_hook_adds_a_header(mock_api: CompatAioresponses) -> None:
    def trace(event: RequestEvent) -> None:
        event.headers["X-Trace"] = f"attempt-{event.attempt}"

    url = f"{API_URL}/api/v1/templates/"
    mock_api.get(url, payload=[])
    async with AsyncJobsClient(KEY, API_URL, event_hooks={"request": [trace]}) as client:
        assert await client.list_templates() == []
    (call,) = mock_api.requests[("GET", URL(url))]
    assert call.kwargs["headers"]["X-Trace"] == "attempt-1"
    assert call.kwargs["headers"]["unstructured-api-key"] == KEY


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ({"sent": []}, "unknown event 'sent'"),
        ({"retry": print}, "must be a list of callables"),
        ({"retry": ["print"]}, "holds str, not a callable"),
        ([], "must be a dict of lists"),
    ],
)
def test_bad_hooks_are_refused_at_once(hooks: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        AsyncJobsClient(KEY, "http://127.0.0.1:9", event_hooks=hooks)
    with pytest.raises(InvalidInputError, match=message):
        JobsClient(KEY, "http://127.0.0.1:9", event_hooks=hooks)


async def test_with_options_replaces_the_hooks(emu: Emulator) -> None:
    first: list[RequestEvent] = []
    second: list[RequestEvent] = []
    async with AsyncJobsClient(KEY, emu.url, event_hooks={"request": [first.append]}) as client:
        await client.list_jobs()
        copy = client.with_options(event_hooks={"request": [second.append]})
        await copy.list_jobs()
        await client.with_options(max_retries=0).list_jobs()  # keeps the hooks
        await client.with_options(event_hooks={}).list_jobs()  # none
    assert (len(first), len(second)) == (2, 1)


def test_the_sync_client_calls_hooks_on_the_loop_thread(
    unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key=KEY)
    threads: list[threading.Thread] = []
    retries: list[RetryEvent] = []
    emu.inject(Fault.status(429, retry_after="0"), method="POST", path="/api/v1/jobs/")
    doc = tmp_path / "a.txt"
    doc.write_text("hello")

    def on_request(event: RequestEvent) -> None:
        threads.append(threading.current_thread())

    hooks: Any = {"request": [on_request], "retry": [retries.append]}
    with JobsClient(KEY, emu.url, event_hooks=hooks) as client:
        job = client.create_job(template_id="t", input_files=[doc])
        copy = client.with_options(event_hooks={"request": [on_request]})
        copy.get_job(job.id)
    # create_job's two attempts and the copy's get_job, each called in the thread that runs
    # the client's loop (the client's one loop thread, shared by its copies), never the caller's.
    assert len(threads) == 3 and len(set(threads)) == 1
    assert threads[0] is not threading.main_thread()
    assert [(r.method, r.reason, r.delay) for r in retries] == [("POST", "HTTP 429", 0.0)]
    assert_no_key(list(retries))


async def test_the_key_is_in_no_frame_of_a_hook_s_error(emu: Emulator) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("hook failed")

    for name in ("request", "response"):
        async with AsyncJobsClient(KEY, emu.url, event_hooks={name: [broken]}) as client:
            with pytest.raises(RuntimeError) as info:
                await client.list_jobs()
        error: BaseException | None = info.value
        while error is not None:  # the error and whatever it carries, suppressed or not
            report = traceback.TracebackException.from_exception(error, capture_locals=True)
            text = "".join(report.format())
            assert " = " in text and KEY not in text
            error = error.__cause__ or error.__context__
