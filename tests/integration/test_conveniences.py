"""`with_options`, `with_raw_response` and the public clock, on both clients, against the emulator."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from helpers import public_async_methods, raw_methods

from unstructured_jobs import (
    AsyncJobsClient,
    AuthenticationError,
    ClientClosedError,
    InternalServerError,
    InvalidInputError,
    JobInformation,
    JobsClient,
    JobStatus,
    ResponseValidationError,
    Timeout,
)
from unstructured_jobs._sync.client import RawResponses
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

JOBS = "/api/v1/jobs/"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key="the-key") as emulator:
        yield emulator


def counting_factory(made: list[aiohttp.ClientSession]) -> Callable[[], aiohttp.ClientSession]:
    def factory() -> aiohttp.ClientSession:
        made.append(aiohttp.ClientSession())
        return made[-1]

    return factory


# ---------------------------------------------------------------- with_options


async def test_with_options_overrides_for_the_copy_only_and_shares_the_pool(emu: Emulator) -> None:
    made: list[aiohttp.ClientSession] = []
    clock = FakeClock()
    client = AsyncJobsClient(
        "the-key", emu.url, max_retries=3, clock=clock, session_factory=counting_factory(made)
    )
    async with client:
        eager = client.with_options(max_retries=0, timeout=Timeout(connect=1, read=2))
        emu.inject(Fault.status(500), method="GET", path=JOBS, times=1)
        with pytest.raises(InternalServerError):
            await eager.list_jobs()  # no retry on the copy
        emu.inject(Fault.status(500), method="GET", path=JOBS, times=1)
        assert await client.list_jobs() == []  # the original still retries
        assert [r.status for r in emu.requests] == [500, 500, 200]
        assert len(clock.sleeps) == 1  # the copy shares the clock too
        assert len(made) == 1  # one session, one connection pool, for both
    assert made[0].closed
    with pytest.raises(ClientClosedError):
        await eager.list_jobs()  # closing the original closed the copy's connections


async def test_with_options_can_change_the_key_and_checks_what_it_is_given(emu: Emulator) -> None:
    async with AsyncJobsClient("the-key", emu.url) as client:
        with pytest.raises(InvalidInputError, match="control characters"):
            client.with_options(api_key="k\r\nx-evil: 1")
        with pytest.raises(InvalidInputError):
            client.with_options(timeout=-1)
        with pytest.raises(AuthenticationError):
            await client.with_options(api_key="another-key").list_jobs()
        assert await client.list_jobs() == []
        assert "another-key" not in repr(client.with_options(api_key="another-key"))


def test_sync_with_options_shares_the_thread_and_the_pool(emu_thread: Emulator) -> None:
    made: list[aiohttp.ClientSession] = []
    with JobsClient(
        "the-key", emu_thread.url, clock=FakeClock(), session_factory=counting_factory(made)
    ) as client:
        eager = client.with_options(max_retries=0).with_options(retry_budget=5)
        emu_thread.inject(Fault.status(503), method="GET", path=JOBS, times=1)
        with pytest.raises(Exception, match="503"):
            eager.list_jobs()
        emu_thread.inject(Fault.status(503), method="GET", path=JOBS, times=1)
        assert client.list_jobs() == []
        assert len(made) == 1 and eager.server_url == client.server_url
        del client  # the copy keeps the original (and its thread) alive
        assert eager.list_jobs() == []
        eager.close()  # closes the original and every copy
    assert made[0].closed


@pytest.fixture
def emu_thread(unstructured_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return unstructured_emulator_factory(api_key="the-key")


# ---------------------------------------------------------------- with_raw_response


async def test_raw_response_carries_the_answer_and_parses_to_the_record(emu: Emulator) -> None:
    emu.inject(Fault.status(503, retry_after="0"), method="POST", path=JOBS, times=1)
    async with AsyncJobsClient("the-key", emu.url, clock=FakeClock()) as client:
        raw = await client.with_raw_response.create_job(
            template_id="t", input_files=[("x.txt", b"x")]
        )
        assert raw.status == 200 and raw.method == "POST" and raw.url == emu.url + JOBS
        assert raw.retries_taken == 1  # the 503 was retried once
        assert raw.headers["Content-Type"].startswith("application/json")
        assert isinstance(raw.elapsed, timedelta) and raw.elapsed > timedelta(0)
        job = raw.parse()
        assert isinstance(job, JobInformation) and raw.parse() is job  # parsed once
        assert raw.json()["id"] == job.id and job.id in raw.text()
        assert list(emu.jobs) == [job.id]

        plain = await client.get_job(job.id)  # the plain client is unchanged
        assert isinstance(plain, JobInformation)
        got = await client.with_raw_response.get_job(job.id)
        assert got.retries_taken == 0 and got.parse().id == job.id


async def test_a_bad_answer_fails_in_parse_while_status_and_headers_stay_readable(
    emu: Emulator,
) -> None:
    body = json.dumps([{"id": "x"}]).encode()
    emu.inject(Fault.raw(200, body, headers={"x-request-id": "req-42"}), method="GET", path=JOBS)
    async with AsyncJobsClient("the-key", emu.url) as client:
        raw = await client.with_raw_response.list_jobs()
        assert (raw.status, raw.request_id, raw.content) == (200, "req-42", body)
        with pytest.raises(ResponseValidationError, match="created_at") as info:
            raw.parse()
    assert info.value.request_id == "req-42"


async def test_raw_download_to_a_file(emu: Emulator, tmp_path: Path) -> None:
    async with AsyncJobsClient("the-key", emu.url) as client:
        job = await client.create_job(template_id="t", input_files=[("a.txt", b"hello")])
        job = await client.wait_for_job(job.id, poll_interval=0.01)
        raw = await client.with_raw_response.download_job_output_to(
            job.id, tmp_path / "a.json", file_id="a.txt"
        )
    assert raw.status == 200 and raw.content == b""
    assert raw.parse() == tmp_path / "a.json" and json.loads(raw.parse().read_text())


def test_sync_raw_response(emu_thread: Emulator) -> None:
    with JobsClient("the-key", emu_thread.url) as client:
        raw = client.with_raw_response.create_job(template_id="t")
        job = raw.parse()
        assert raw.status == 200 and job.status in set(JobStatus)
        cancel = client.with_options(max_retries=0).with_raw_response.cancel_job(job.id)
        assert cancel.parse().raw["id"] == job.id


def test_every_single_request_method_has_a_raw_twin_with_its_signature() -> None:
    waits = {"wait_for_job", "watch_job", "run_job", "iter_notifications"}  # many requests each
    streams = {"iter_job_output"}  # an iterator of elements: no one parsed answer to show
    assert set(raw_methods()) == set(public_async_methods()) - waits - streams
    async_raw = type(AsyncJobsClient("k", "http://127.0.0.1:9").with_raw_response)
    for name in raw_methods():
        method = inspect.signature(getattr(AsyncJobsClient, name))
        for twin in (getattr(RawResponses, name), getattr(async_raw, name)):
            signature = inspect.signature(twin)
            assert list(signature.parameters.values()) == list(method.parameters.values())
            assert signature.return_annotation == f"RawResponse[{method.return_annotation}]"


# ---------------------------------------------------------------- time as a seam


async def test_one_fake_clock_drives_client_and_emulator_without_real_sleeping() -> None:
    clock = FakeClock()
    async with (
        Emulator(schedule=Schedule(start_after=20, run_for=600), clock=clock) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=clock) as client,
    ):
        emu.inject(Fault.status(503, retry_after="30"), method="POST", path=JOBS)
        job = await client.create_job(template_id="t")
        done = await client.wait_for_job(job.id, timeout=3600, poll_interval=5)
    assert done.status is JobStatus.COMPLETED
    # Ten virtual minutes of retry and polling; really sleeping them would time the test out.
    assert clock.sleeps[0] == 30.0 and clock.now() >= 620


def test_a_clock_without_sleep_is_refused_up_front() -> None:
    with pytest.raises(InvalidInputError, match="clock must have now"):
        AsyncJobsClient("k", "http://127.0.0.1:9", clock=time.monotonic)  # type: ignore[arg-type]


def test_with_options_takes_the_same_arguments_on_both_clients() -> None:
    sync = inspect.signature(JobsClient.with_options).parameters
    both = inspect.signature(AsyncJobsClient.with_options).parameters
    assert [(p.name, p.kind, p.default, p.annotation) for p in sync.values()] == [
        (p.name, p.kind, p.default, p.annotation) for p in both.values()
    ]
