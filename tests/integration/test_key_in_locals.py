"""The API key never reaches a frame that an error's traceback carries.

`pytest -l`, rich's ``show_locals`` and error trackers that capture locals (Sentry's default)
print every local variable of every frame of an exception, its ``__cause__`` and its
``__context__``. Each error kind below is raised the way a user meets it, then formatted with
``capture_locals=True``; the key must not appear.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import (
    APIConnectionError,
    APITimeoutError,
    AsyncJobsClient,
    AuthenticationError,
    InputFileError,
    InvalidInputError,
    JobMayExistError,
    JobsClient,
    NotFoundError,
    ResponseValidationError,
    Timeout,
)
from unstructured_jobs.batch import run_batch
from unstructured_jobs.testing import Emulator, FakeClock, Fault

KEY = "sk-locals-0123456789abcdefSECRET"
MISSING = "00000000-0000-4000-8000-000000000000"


def shown(exc: BaseException) -> str:
    """What a locals-capturing error reporter shows: every frame's locals, the whole chain."""
    report = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return "".join(report.format())


def assert_no_key(exc: BaseException) -> None:
    text = shown(exc)
    assert " = " in text  # locals were captured: the check means something
    assert KEY not in text, text[text.index(KEY) - 300 : text.index(KEY) + 50]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncJobsClient]:
    async with AsyncJobsClient(KEY, emu.url, max_retries=1, clock=FakeClock()) as c:
        yield c


async def raised(call: Awaitable[Any]) -> BaseException:
    try:
        await call
    except BaseException as exc:  # CancelledError included, on purpose
        return exc
    raise AssertionError("nothing was raised")


async def test_a_file_that_changes_during_its_upload(
    client: AsyncJobsClient, tmp_path: Path
) -> None:
    path = tmp_path / "moving.bin"
    path.write_bytes(os.urandom(2 * 1024 * 1024))

    def shrink(_: int) -> None:
        os.truncate(path, 1024)

    exc = await raised(
        client.create_job(template_id="t", input_files=[path], on_upload_progress=shrink)
    )
    assert isinstance(exc, InputFileError)
    assert_no_key(exc)


async def test_a_cancelled_upload(client: AsyncJobsClient, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(4 * 1024 * 1024))
    task: asyncio.Task[Any] | None = None

    def cancel(_: int) -> None:
        assert task is not None
        task.cancel()

    task = asyncio.create_task(
        client.create_job(template_id="t", input_files=[path], on_upload_progress=cancel)
    )
    exc = await raised(task)
    assert isinstance(exc, asyncio.CancelledError)
    assert_no_key(exc)


@pytest.mark.parametrize(
    ("fault", "path", "expected"),
    [
        (Fault.status(500), "/api/v1/jobs/", JobMayExistError),
        (Fault.drop_after(), "/api/v1/jobs/", JobMayExistError),
        (Fault.raw(200, b"{not json"), "/api/v1/jobs/", JobMayExistError),
    ],
)
async def test_errors_of_a_create(
    emu: Emulator, client: AsyncJobsClient, fault: Fault, path: str, expected: type[Exception]
) -> None:
    emu.inject(fault, method="POST", path=path)
    exc = await raised(client.create_job(template_id="t", input_files=[("a.txt", b"a")]))
    assert isinstance(exc, expected)
    assert_no_key(exc)


async def test_errors_of_reads(emu: Emulator, client: AsyncJobsClient) -> None:
    exc = await raised(client.get_job(MISSING))
    assert isinstance(exc, NotFoundError)
    assert_no_key(exc)
    emu.inject(Fault.raw(200, b"[1, 2]"), method="GET", path="*")
    exc = await raised(client.list_jobs())
    assert isinstance(exc, ResponseValidationError)
    assert_no_key(exc)
    emu.inject(Fault.drop_before(), method="GET", path="*", times=None)
    exc = await raised(client.list_jobs())
    assert isinstance(exc, APIConnectionError)
    assert_no_key(exc)
    emu.clear_faults()
    emu.inject(Fault.delay(5), method="GET", path="*", times=None)
    exc = await raised(client.list_jobs(timeout=Timeout(read=0.05), max_retries=0))
    assert isinstance(exc, APITimeoutError)
    assert_no_key(exc)


async def test_a_refused_connection() -> None:
    async with AsyncJobsClient(KEY, "http://127.0.0.1:9", max_retries=0) as client:
        exc = await raised(client.list_jobs())
    assert isinstance(exc, APIConnectionError)
    assert_no_key(exc)


async def test_a_wrong_key_from_a_copy(emu: Emulator, client: AsyncJobsClient) -> None:
    exc = await raised(client.with_options(api_key=KEY + "-old").list_jobs())
    assert isinstance(exc, AuthenticationError)
    assert_no_key(exc)


def construct(make: Callable[[], object]) -> BaseException:
    try:
        make()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing was raised")


@pytest.mark.parametrize(
    "make",
    [
        lambda: AsyncJobsClient(KEY, "ftp://example.com"),
        lambda: AsyncJobsClient(KEY + "\n", "http://127.0.0.1:9"),
        lambda: AsyncJobsClient(KEY, "https://h", ssl="/no/such/ca.pem"),
        lambda: AsyncJobsClient(KEY, "http://127.0.0.1:9").with_options(api_key=KEY + "\r\n"),
        lambda: AsyncJobsClient(KEY, "http://127.0.0.1:9").with_options(timeout=-1),
        lambda: JobsClient(KEY, "ftp://example.com"),
        lambda: JobsClient(KEY + "\n", "http://127.0.0.1:9"),
    ],
    ids=["url", "key", "ca", "copy-key", "copy-timeout", "sync-url", "sync-key"],
)
def test_refused_arguments(make: Callable[[], object]) -> None:
    exc = construct(make)
    assert isinstance(exc, InvalidInputError)
    assert_no_key(exc)


def test_errors_of_the_sync_client(unstructured_emulator_factory: Callable[..., Emulator]) -> None:
    emu = unstructured_emulator_factory(api_key=KEY)
    with JobsClient(KEY, emu.url, max_retries=0) as client:
        exc = construct(lambda: client.get_job(MISSING))
        assert isinstance(exc, NotFoundError)
        assert_no_key(exc)
        exc = construct(lambda: client.with_options(timeout=-1))
        assert isinstance(exc, InvalidInputError)
        assert_no_key(exc)
        emu.inject(Fault.status(500), method="POST", path="/api/v1/jobs/")
        exc = construct(lambda: client.create_job(template_id="t"))
        assert isinstance(exc, JobMayExistError)
        assert_no_key(exc)


def test_a_batch_stopped_by_a_wrong_key(
    unstructured_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = unstructured_emulator_factory(api_key="the-right-key-0123456789")
    (tmp_path / "a.txt").write_text("a")
    exc = construct(
        lambda: run_batch(
            [tmp_path / "a.txt"],
            api_key=KEY,
            server_url=emu.url,
            template_id="t",
            manifest=tmp_path / "m.sqlite",
        )
    )
    assert isinstance(exc, AuthenticationError)
    assert_no_key(exc)
