"""Odd error answers over loopback (issue 23, item 2): typed errors, in calls and in a batch.

The emulator answers with exactly the bytes given (``Fault.raw``): a ``detail`` nesting
100,000 arrays, a body that is not an object, invalid UTF-8, a megabyte of detail, gzip. Each
gives the error class of its status with a one-line message, never a `RecursionError`, and a
batch records its files with a readable reason.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import (
    AsyncJobsClient,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from unstructured_jobs.batch import submit_batch
from unstructured_jobs.testing import Emulator, FakeClock, Fault

JOBS = "/api/v1/jobs/"
DEEP = b'{"detail": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
HUGE = b'{"detail": "' + b"far too long\\n " * 60_000 + b'"}'
FAST: dict[str, Any] = {"launch_rate": None, "poll_interval": 0.01, "reconcile_grace": 0}


@pytest.fixture
async def emu_client(
    unstructured_emulator_factory: Callable[..., Emulator],
) -> AsyncIterator[tuple[Emulator, AsyncJobsClient]]:
    emu = unstructured_emulator_factory(max_running=None)
    async with AsyncJobsClient(
        api_key=emu.api_key, server_url=emu.url, max_retries=2, clock=FakeClock()
    ) as client:
        yield emu, client


def short(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and len(text) <= 300, text
    return text


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (422, DEEP, UnprocessableEntityError),
        (404, DEEP, NotFoundError),
        (500, DEEP, InternalServerError),
        (400, b"[1, 2, 3]", BadRequestError),
        (400, b'{"detail": "caf\xe9 \xff\xfe"}', BadRequestError),
        (422, HUGE, UnprocessableEntityError),
        (404, b"null", NotFoundError),
    ],
    ids=["deep-422", "deep-404", "deep-500", "a-list", "bad-utf8", "huge-detail", "null"],
)
async def test_odd_error_answers_are_the_typed_error_of_their_status(
    emu_client: tuple[Emulator, AsyncJobsClient], status: int, body: bytes, cls: type
) -> None:
    emu, client = emu_client
    tries = 3 if status >= 500 else 1  # a GET's 5xx is retried (max_retries=2)
    emu.inject(Fault.raw(status, body), method="GET", path=JOBS, times=tries)
    with pytest.raises(cls) as info:
        await client.list_jobs()
    assert info.value.status == status
    assert short(info.value).startswith(f"GET {emu.url}{JOBS} -> {status}")
    assert len(str(info.value.body)) >= min(len(body), 1024 * 1024) // 2  # kept, not a snippet


async def test_a_gzipped_error_page_is_read_like_any_other(
    emu_client: tuple[Emulator, AsyncJobsClient],
) -> None:
    emu, client = emu_client
    page = b"<html><head><title>403 Forbidden</title></head><body>blocked</body></html>"
    emu.inject(
        Fault.raw(403, gzip.compress(page), "text/html", {"Content-Encoding": "gzip"}),
        method="GET",
        path=JOBS,
    )
    with pytest.raises(PermissionDeniedError) as info:
        await client.list_jobs()
    assert "-> 403 Forbidden: HTML page from" in short(info.value)
    assert info.value.body == page.decode()


async def test_an_error_page_cut_off_is_still_the_error_of_its_status() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n"
            b"\r\n<html><head><title>502 Bad Gateway</title></head><body>upstream"
        )
        await writer.drain()
        writer.transport.abort()  # reset, 4,900 bytes short

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with AsyncJobsClient("k", url, max_retries=0) as client:
            with pytest.raises(InternalServerError) as info:
                await client.list_jobs()
    finally:
        server.close()
        await server.wait_closed()
    short(info.value)
    assert "502 Bad Gateway" in str(info.value) and info.value.status == 502
    assert str(info.value.body).endswith("upstream")


@pytest.mark.parametrize(("status", "body"), [(422, DEEP), (500, DEEP), (422, HUGE)])
async def test_a_batch_records_odd_create_answers_with_a_readable_reason(
    emu_client: tuple[Emulator, AsyncJobsClient], tmp_path: Path, status: int, body: bytes
) -> None:
    emu, client = emu_client
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text(name)
    emu.inject(Fault.raw(status, body), method="POST", path=JOBS, times=None)  # every create
    report = await submit_batch(
        client,
        [folder],
        template_id="t",
        manifest=tmp_path / "m.sqlite",
        output_dir=tmp_path / "out",
        **FAST,
    )
    assert not report.ok and emu.jobs == {}
    for f in report.files:
        assert f.state in ("failed", "pending"), f
        assert f.error is not None and "\n" not in f.error and len(f.error) <= 400, f.error
        assert f"{status}" in f.error and "Recursion" not in f.error
