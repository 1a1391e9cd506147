"""The emulator's service limits (issue 20, item 9), over loopback: the strict launch interval
(429 with Retry-After, measured between arrivals), the running cap, files per job (400), bytes
per file (413), the quota (402), the published preset and the ``serve`` flags. Time is a
`FakeClock`: nothing sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.request
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cli_support import Start

from unstructured_jobs.testing import Emulator, EmulatorLimits, FakeClock, Schedule
from unstructured_jobs.testing._cli import add_serve_arguments, limits_from

JOBS = "/api/v1/jobs/"
WORKFLOW = "5a0c2e0e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
TEMPLATE = {"template_id": "hi_res_partition"}


def form(files: Sequence[tuple[str, bytes]] = (), request_data: Any = TEMPLATE) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    if request_data is not None:
        data.add_field("request_data", json.dumps(request_data))
    for name, content in files:
        data.add_field("input_files", content, filename=name)
    return data


def files(n: int, size: int = 1) -> list[tuple[str, bytes]]:
    return [(f"f{i:02d}.pdf", b"x" * size) for i in range(n)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
async def http_for() -> AsyncIterator[Any]:
    sessions: list[aiohttp.ClientSession] = []

    def make(emu: Emulator) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(base_url=emu.url, headers=emu.headers)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.close()


async def post(
    http: aiohttp.ClientSession, data: Any = None, path: str = JOBS
) -> tuple[int, dict[str, str], Any]:
    async with http.post(path, data=form() if data is None else data) as resp:
        return resp.status, dict(resp.headers), await resp.json()


# -- launch interval ------------------------------------------------------------------------


async def test_a_launch_sooner_than_the_interval_is_refused_strictly(
    clock: FakeClock, http_for: Any
) -> None:
    async with Emulator(clock=clock, launch_interval=1.0) as emu:
        http = http_for(emu)
        assert (await post(http))[0] == 200  # accepted at 1000.0
        clock.advance(0.999)
        status, headers, body = await post(http)
        assert (status, headers["Retry-After"], body) == (
            429,
            "1",
            {"detail": "Rate limit exceeded"},
        )
        assert headers["Content-Type"].startswith("application/json")
        clock.advance(0.001)  # 1.000 s after the accepted one, not after the refused one
        status, _, _ = await post(http, path=f"/api/v1/workflows/{WORKFLOW}/run")
        assert status == 202  # run-workflow is a launch too
        clock.advance(0.5)
        status, headers, _ = await post(http)
        assert (status, headers["Retry-After"]) == (429, "1")
        assert len(emu.jobs) == 2 and emu.refusals["launch_interval"] == 2


async def test_retry_after_is_whole_seconds_rounded_up(clock: FakeClock, http_for: Any) -> None:
    async with Emulator(clock=clock, launch_interval=2.5) as emu:
        http = http_for(emu)
        assert (await post(http))[0] == 200
        clock.advance(0.2)  # 2.3 s to wait: 3
        assert (await post(http))[1]["Retry-After"] == "3"
        clock.advance(2.29)  # 0.01 s to wait: 1, never 0
        assert (await post(http))[1]["Retry-After"] == "1"
        clock.advance(0.01)
        assert (await post(http))[0] == 200


async def test_the_interval_is_measured_from_arrival_not_from_the_end_of_the_upload(
    clock: FakeClock, http_for: Any
) -> None:
    read = asyncio.Event()

    def watched() -> float:  # the emulator's clock, telling when the server reads it
        read.set()
        return clock()

    async with Emulator(clock=watched, launch_interval=1.0) as emu:
        http = http_for(emu)
        assert (await post(http))[0] == 200  # arrived at 1000.0
        clock.advance(0.5)
        read.clear()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b"x" * 10
            await asyncio.wait_for(read.wait(), 30)  # the server saw the request arrive
            clock.advance(1.5)  # the upload ends at 1002.0, but it arrived at 1000.5
            yield b"y" * 10

        data = form()
        data.add_field("input_files", slow_body(), filename="slow.pdf")
        status, headers, _ = await post(http, data)
        assert (status, headers.get("Retry-After")) == (429, "1")
        assert len(emu.jobs) == 1


async def test_launch_rate_still_means_one_over_the_interval(clock: FakeClock) -> None:
    async with Emulator(clock=clock, launch_rate=2.0) as emu:
        assert emu.limits.launch_interval == 0.5
    with pytest.raises(ValueError, match="not both"):
        Emulator(launch_rate=1.0, launch_interval=1.0)


# -- running cap ----------------------------------------------------------------------------


async def test_at_most_five_jobs_run_and_the_rest_stay_scheduled(
    clock: FakeClock, http_for: Any
) -> None:
    emulator = Emulator(
        clock=clock, schedule=Schedule(run_for=10), limits=EmulatorLimits.published()
    )
    async with emulator as emu:
        http = http_for(emu)
        for _ in range(7):
            assert (await post(http, form(files(1))))[0] == 200  # no error beyond the cap
            clock.advance(1.0)
        statuses = [j.status for j in emu.jobs.values()]
        assert statuses == ["IN_PROGRESS"] * 5 + ["SCHEDULED"] * 2
        clock.advance(10.0 - 7.0)  # the first job (started at 1000) ends at 1010
        statuses = [j.status for j in emu.jobs.values()]
        assert statuses == ["COMPLETED"] + ["IN_PROGRESS"] * 5 + ["SCHEDULED"]


# -- files per job, bytes per file ----------------------------------------------------------


async def test_more_files_than_a_job_takes_is_400_and_creates_nothing(http_for: Any) -> None:
    async with Emulator(max_files_per_job=10) as emu:
        http = http_for(emu)
        status, _, body = await post(http, form(files(11)))
        assert (status, body) == (400, {"detail": "Too many files: 11 (limit 10 per job)"})
        assert emu.jobs == {} and emu.refusals["max_files_per_job"] == 1
        assert (await post(http, form(files(10))))[0] == 200


async def test_a_file_over_the_size_limit_is_413_naming_it(http_for: Any) -> None:
    async with Emulator(max_file_size=100) as emu:
        http = http_for(emu)
        sent = [("ok.pdf", b"x" * 100), ("big.pdf", b"x" * 101), ("ok2.pdf", b"x")]
        status, headers, body = await post(http, form(sent))
        assert status == 413 and headers["Content-Type"].startswith("application/json")
        assert body == {
            "detail": "File too large: 'big.pdf' (101 bytes); the limit is 100 bytes per file"
        }
        status, _, _ = await post(http, form(sent), path=f"/api/v1/workflows/{WORKFLOW}/run")
        assert status == 413
        assert emu.jobs == {} and emu.refusals["max_file_size"] == 2
        assert (await post(http, form(sent[:1])))[0] == 200


# -- quota ----------------------------------------------------------------------------------


async def test_the_quota_refuses_with_402_once_spent_and_can_be_restored(http_for: Any) -> None:
    async with Emulator(quota_files=15) as emu:
        http = http_for(emu)
        assert (await post(http, form(files(10))))[0] == 200
        status, _, body = await post(http, form(files(10)))  # 10 > 5 left: nothing is spent
        assert (status, body) == (402, {"detail": "Insufficient API quota"})
        assert emu.quota_left == 5
        assert (await post(http, form(files(5))))[0] == 200
        assert emu.quota_left == 0
        assert (await post(http, form()))[0] == 402  # nothing left: even a job without files
        assert len(emu.jobs) == 2 and emu.refusals["quota"] == 2
        emu.set_quota(10)  # the quota is restored
        assert (await post(http, form(files(10))))[0] == 200
        assert emu.quota_left == 0
        emu.reset()
        assert emu.quota_left == 15 and emu.refusals["quota"] == 0


async def test_checks_run_in_order_and_a_refused_launch_spends_nothing(
    clock: FakeClock, http_for: Any
) -> None:
    limits = dataclasses.replace(EmulatorLimits.published(max_file_size=10), quota_files=1)
    async with Emulator(clock=clock, limits=limits) as emu:
        http = http_for(emu)
        assert (await post(http, form(files(1, size=11))))[0] == 413  # before the interval
        assert (await post(http, form(files(1))))[0] == 200
        assert (await post(http, form(files(1))))[0] == 429  # the interval before the quota
        clock.advance(1.0)
        assert (await post(http, form(files(1))))[0] == 402
        assert emu.refusals == {
            "launch_interval": 1, "max_files_per_job": 0, "max_file_size": 1, "quota": 1
        }  # fmt: skip


# -- the preset, the settings, the control endpoint, the serve flags ------------------------


def test_the_published_preset_and_the_settings_checks() -> None:
    published = EmulatorLimits.published()
    assert (published.launch_interval, published.max_running, published.max_files_per_job,
            published.max_file_size, published.quota_files) == (1.0, 5, 10, 10_000_000, None)  # fmt: skip
    assert EmulatorLimits.published(max_file_size=50_000_000).max_file_size == 50_000_000
    assert Emulator().limits == EmulatorLimits()  # nothing but the cap of 5 running by default
    assert Emulator(limits=published).limits == published
    with pytest.raises(ValueError, match="not both"):
        Emulator(limits=published, max_file_size=5)
    for bad in ({"launch_interval": 0}, {"max_files_per_job": 0}, {"quota_files": -1}):
        with pytest.raises(ValueError):
            EmulatorLimits(**bad)


async def test_the_limits_endpoint_tells_what_was_refused(http_for: Any) -> None:
    async with Emulator(limits=EmulatorLimits.published(), quota_files=None) as emu:
        http = http_for(emu)
        assert (await post(http))[0] == 200
        assert (await post(http))[0] == 429
        async with http.get("/_emulator/limits") as resp:
            state = await resp.json()
        assert state == {
            "limits": {"launch_interval": 1.0, "max_running": 5, "max_files_per_job": 10,
                       "max_file_size": 10_000_000, "quota_files": None},
            "quota_left": None,
            "launches": 1,
            "refused": {"launch_interval": 1, "max_files_per_job": 0, "max_file_size": 0,
                        "quota": 0},
        }  # fmt: skip
        assert [r.path for r in emu.requests] == [JOBS, JOBS]  # control calls are not recorded


def _parsed(*argv: str) -> EmulatorLimits:
    import argparse

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return limits_from(parser.parse_args(list(argv)))


def test_serve_flags_make_the_limits() -> None:
    assert _parsed() == EmulatorLimits()
    assert _parsed("--max-running", "0") == EmulatorLimits(max_running=None)
    assert _parsed("--service-limits") == EmulatorLimits.published()
    assert _parsed("--service-limits", "--max-file-size", "50MB", "--quota-files", "0") == (
        dataclasses.replace(EmulatorLimits.published(), max_file_size=50_000_000, quota_files=0)
    )
    assert _parsed("--service-limits", "--launch-interval", "0") == dataclasses.replace(
        EmulatorLimits.published(), launch_interval=None
    )
    assert _parsed("--launch-interval", "2", "--max-files-per-job", "3") == EmulatorLimits(
        launch_interval=2.0, max_files_per_job=3
    )


def test_serve_enforces_the_published_limits(start: Start, tmp_path: Path) -> None:
    proc = start("serve", "--port", "0", "--service-limits", "--quota-files", "7",
                 env={}, cwd=tmp_path)  # fmt: skip
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[-1]
    request = urllib.request.Request(
        url + "/_emulator/limits", headers={"unstructured-api-key": "k"}
    )
    with urllib.request.urlopen(request) as resp:
        state = json.loads(resp.read())
    assert state["limits"] == {"launch_interval": 1.0, "max_running": 5, "max_files_per_job": 10,
                               "max_file_size": 10_000_000, "quota_files": 7}  # fmt: skip
    assert state["quota_left"] == 7
    proc.terminate()
    assert proc.wait(timeout=30) == 0
