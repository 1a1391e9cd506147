"""The client's `ServiceLimits`: checked before any byte is sent; 402 and 413 as typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unstructured_jobs import (
    AsyncJobsClient,
    InvalidInputError,
    JobsClient,
    QuotaExceededError,
    RequestTooLargeError,
    ServiceLimitError,
    ServiceLimits,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault

WF_ID = "f0a1b2c3-4d5e-6f7a-8b9c-0d1e2f3a4b5c"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


def files(folder: Path, count: int, size: int = 10) -> list[Path]:
    folder.mkdir(exist_ok=True)
    out = []
    for i in range(count):
        path = folder / f"f{i:02d}.txt"
        path.write_bytes(b"x" * size)
        out.append(path)
    return out


def test_the_defaults_are_the_published_limits() -> None:
    limits = ServiceLimits()
    assert (limits.files_per_job, limits.bytes_per_file) == (10, 50_000_000)
    assert (limits.launch_interval, limits.running_jobs) == (1.0, 5)
    for bad in ({"files_per_job": 0}, {"bytes_per_file": -1}, {"launch_interval": 0}):
        with pytest.raises(InvalidInputError):
            ServiceLimits(**bad)  # type: ignore[arg-type]


async def test_an_eleventh_file_is_refused_before_any_byte_is_sent(
    emu: Emulator, tmp_path: Path
) -> None:
    paths = files(tmp_path / "in", 11)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        assert client.limits == ServiceLimits()
        for call in (
            client.create_job(template_id="t", input_files=paths),
            client.run_workflow(WF_ID, input_files=paths),
        ):
            with pytest.raises(ServiceLimitError) as info:
                await call
            error = info.value
            assert (error.limit, error.allowed, error.found) == ("files_per_job", 10, 11)
            assert "files_per_job=None" in str(error)  # how to lift it
            assert isinstance(error, InvalidInputError)
        assert emu.requests == [] and emu.jobs == {}
        # Ten is within the limit; lifting the limit lets eleven through.
        await client.create_job(template_id="t", input_files=paths[:10])
    lifted = ServiceLimits(files_per_job=None)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, limits=lifted) as client:
        job = await client.create_job(template_id="t", input_files=paths)
    assert len(emu.jobs[job.id].files) == 11


async def test_a_file_over_bytes_per_file_is_refused_before_sending(
    emu: Emulator, tmp_path: Path
) -> None:
    small, big = files(tmp_path / "in", 2, 10)
    big.write_bytes(b"y" * 101)
    limits = ServiceLimits(bytes_per_file=100)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url, limits=limits) as c:
        with pytest.raises(ServiceLimitError) as info:
            await c.create_job(template_id="t", input_files=[small, big])
    assert (info.value.limit, info.value.allowed, info.value.found) == ("bytes_per_file", 100, 101)
    assert "f01.txt" in str(info.value) and "bytes_per_file=None" in str(info.value)
    assert emu.requests == []


def test_the_sync_client_takes_the_limits_too(
    unstructured_emulator: Emulator, tmp_path: Path
) -> None:
    emu_thread = unstructured_emulator
    paths = files(tmp_path / "in", 3)
    limits = ServiceLimits(files_per_job=2)
    with (
        JobsClient(api_key=emu_thread.api_key, server_url=emu_thread.url, limits=limits) as c,
        pytest.raises(ServiceLimitError, match="over the limit of 2 files per job"),
    ):
        c.create_job(template_id="t", input_files=paths)


async def test_402_is_a_quota_error_never_retried(emu: Emulator, tmp_path: Path) -> None:
    emu.inject(Fault.status(402, detail="Insufficient API quota"), method="POST", times=None)
    async with AsyncJobsClient(
        api_key=emu.api_key, server_url=emu.url, max_retries=5, clock=FakeClock()
    ) as client:
        with pytest.raises(QuotaExceededError, match="Insufficient API quota") as info:
            await client.create_job(template_id="t", input_files=files(tmp_path / "in", 1))
    assert info.value.status == 402
    assert len([r for r in emu.requests if r.method == "POST"]) == 1


async def test_413_names_the_files_and_the_size_option(emu: Emulator, tmp_path: Path) -> None:
    emu.inject(
        Fault.status(413, detail="Request Entity Too Large"), method="POST", path="/api/v1/jobs/"
    )
    paths = files(tmp_path / "in", 2, 7)
    async with AsyncJobsClient(api_key=emu.api_key, server_url=emu.url) as client:
        with pytest.raises(RequestTooLargeError) as info:
            await client.create_job(template_id="t", input_files=paths)
    error = info.value
    assert error.status == 413
    assert error.files == ["f00.txt (7 bytes)", "f01.txt (7 bytes)"]
    assert "f00.txt (7 bytes), f01.txt (7 bytes)" in str(error)
    assert "bytes_per_file" in str(error)
    assert len(emu.requests) == 1  # a 413 is not retried
