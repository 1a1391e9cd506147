"""Behind a real nginx (issue 23): its 413, 502 and 504 pages read as one line, typed errors.

nginx runs as a child process with a temporary configuration (see ``tests/nginx.py``): one
port in front of the emulator with a small ``client_max_body_size``, one in front of a port
nothing listens on (502), and one in front of a server that accepts and never answers, with a
short ``proxy_read_timeout`` (504). A run without nginx fails, saying how to install it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from cli_support import KEY, Cli
from nginx import Route, free_port, nginx

from unstructured_jobs import (
    AsyncJobsClient,
    InternalServerError,
    JobMayExistError,
    JobsClient,
    RequestTooLargeError,
    ServiceLimits,
)
from unstructured_jobs.testing import Emulator

JOBS = "/api/v1/jobs/"


@attrs.frozen
class Gateway:
    emu: Emulator
    front: str  # nginx -> the emulator, client_max_body_size 1k
    dead: str  # nginx -> nothing: 502
    slow: str  # nginx -> a server that never answers, proxy_read_timeout 1s: 504


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with (
        Emulator(api_key=KEY).running_in_thread() as emu,
        socket.socket() as silent,  # accepts (the kernel does) and never answers
    ):
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        routes = [
            Route(emu.url.removeprefix("http://"), "client_max_body_size 1k;"),
            Route(f"127.0.0.1:{free_port()}"),
            Route(f"127.0.0.1:{silent.getsockname()[1]}", "proxy_read_timeout 1s;"),
        ]
        with nginx(routes, tmp_path_factory.mktemp("nginx")) as (front, dead, slow):
            yield Gateway(emu, front, dead, slow)


def assert_one_readable_line(text: str, *needles: str) -> None:
    assert "\n" not in text and "\r" not in text and len(text) <= 300, text
    assert "<" not in text and ">" not in text.replace("->", ""), text  # no markup
    for needle in needles:
        assert needle in text, (needle, text)


async def test_the_proxy_passes_answers_through(gateway: Gateway) -> None:
    async with AsyncJobsClient(KEY, gateway.front) as client:
        job = await client.create_job(template_id="t", input_files=[("small.txt", b"x" * 100)])
        assert (await client.get_job(job.id)).id == job.id


async def test_a_502_page_reads_as_one_line_with_its_reason(gateway: Gateway) -> None:
    async with AsyncJobsClient(KEY, gateway.dead, max_retries=0) as client:
        with pytest.raises(InternalServerError) as info:
            await client.list_jobs()
    error = info.value
    assert error.status == 502
    assert_one_readable_line(str(error), f"GET {gateway.dead}{JOBS} -> 502 Bad Gateway", "nginx")
    assert isinstance(error.body, str) and "<title>502 Bad Gateway</title>" in error.body
    assert error.detail is None


async def test_a_502_on_a_create_names_it_in_the_job_may_exist_error(gateway: Gateway) -> None:
    async with AsyncJobsClient(KEY, gateway.dead) as client:
        with pytest.raises(JobMayExistError) as info:
            await client.create_job(template_id="t", input_files=[("a.txt", b"a")])
    assert_one_readable_line(str(info.value), "POST", "502 Bad Gateway", "a job may have been")
    assert isinstance(info.value.cause, InternalServerError) and info.value.status == 502


def test_a_504_page_reads_as_one_line_with_its_reason(gateway: Gateway) -> None:
    with (
        JobsClient(KEY, gateway.slow, max_retries=0) as client,
        pytest.raises(InternalServerError) as info,
    ):
        client.list_jobs()
    assert info.value.status == 504
    assert_one_readable_line(str(info.value), "GET", JOBS, "-> 504 Gateway Timeout")
    assert "<title>504 Gateway Time-out</title>" in str(info.value.body)  # nginx's spelling


@pytest.mark.parametrize("size", [64 * 1024, 16 * 1024 * 1024], ids=["64KiB", "16MiB"])
async def test_a_413_names_the_files_and_the_size_limit(
    gateway: Gateway, tmp_path: Path, size: int
) -> None:
    # nginx answers as soon as it has read the head, while a large body is still being sent.
    big = tmp_path / "big scan.pdf"
    big.write_bytes(b"%PDF" + bytes(size))
    before = len(gateway.emu.jobs)
    async with AsyncJobsClient(KEY, gateway.front) as client:
        with pytest.raises(RequestTooLargeError) as info:
            await client.create_job(template_id="t", input_files=[big, ("small.txt", b"s")])
    error = info.value
    assert error.status == 413 and len(gateway.emu.jobs) == before  # nothing got through
    assert error.files == [f"big scan.pdf ({size + 4} bytes)", "small.txt (1 bytes)"]
    assert_one_readable_line(
        str(error), "POST", "-> 413 Request Entity Too Large", "big scan.pdf", "bytes_per_file"
    )
    assert "<title>413 Request Entity Too Large</title>" in str(error.body)


async def test_a_413_of_many_files_stays_one_short_line(gateway: Gateway) -> None:
    files = [(f"scanned-invoice-{i:03}-of-the-quarter.pdf", bytes(200)) for i in range(40)]
    lifted = ServiceLimits(files_per_job=None)  # a server of ours that takes 40 files a job
    async with AsyncJobsClient(KEY, gateway.front, limits=lifted) as client:
        with pytest.raises(RequestTooLargeError) as info:
            await client.create_job(template_id="t", input_files=files)
    assert len(info.value.files) == 40  # every name is on the error
    text = str(info.value)
    assert_one_readable_line(text, "scanned-invoice-000-of-the-quarter.pdf (200 bytes)", "more")


def test_the_cli_prints_the_same_one_line(gateway: Gateway, cli: Cli) -> None:
    env = {"UNSTRUCTURED_API_KEY": KEY, "UNSTRUCTURED_API_URL": gateway.dead}
    with (
        JobsClient(KEY, gateway.dead, max_retries=0) as client,
        pytest.raises(InternalServerError) as info,
    ):
        client.list_jobs()
    r = cli("list", "--max-retries", "0", env=env)
    assert r.returncode != 0
    assert r.stderr.splitlines() == [f"unstructured-jobs: error: {info.value}"]
    assert "502 Bad Gateway" in r.stderr and "<" not in r.stderr
