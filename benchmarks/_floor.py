"""The floor: the least work a client can do to speak the jobs API, written by hand on aiohttp.

What our client is measured against (issue 12). It does what any client must and nothing else:

- one `aiohttp.ClientSession`, the API key as a default header; no retries, hooks, logging,
  validation or models;
- multipart bodies written by hand: boundary, part headers and ``Content-Length`` computed up
  front from `os.stat`; each file opened (``os.open``) only when its turn comes, read with
  ``os.read`` in `CHUNK`-byte pieces on the event loop's thread (no executor: the floor accepts
  a blocking read of a cold file, which our client must not), closed at once; part headers,
  text fields and small files coalesced into one write of up to `CHUNK` bytes;
- answers decoded with `json.loads` only;
- `FloorSync`: the same coroutines driven by ``loop.run_until_complete`` on a private event
  loop in the calling thread.

The body is a `FloorBody`, a `aiohttp.payload.Payload` whose size is known, writing straight to
aiohttp's stream writer. ``body="iter"`` sends the same bytes through an async generator in
`aiohttp.payload.AsyncIterablePayload` with an explicit ``Content-Length`` header instead; the
custom payload measured cheaper (see benchmarks/README.md), so it is the default.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl as ssl_module
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, TypeVar

import aiohttp
from aiohttp import payload as aiohttp_payload
from aiohttp.abc import AbstractStreamWriter

CHUNK = 256 * 1024
JOBS = "/api/v1/jobs/"
OCTET = b"application/octet-stream"
T = TypeVar("T")


def _quote(value: str) -> str:
    """A Content-Disposition parameter as browsers write it (", CR and LF percent-encoded)."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class FloorBody(aiohttp_payload.Payload):
    """A multipart/form-data body of text fields then files, streamed from disk.

    `plan` is a list of (head bytes, path or None, file size): each head is written, then the
    file's bytes; the tail (closing boundary) is the last head, with no file.
    """

    def __init__(self, plan: list[tuple[bytes, str | None, int]], size: int, ctype: str) -> None:
        super().__init__(plan, content_type=ctype)
        self._plan = plan
        self._size = size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed body cannot be decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        # The loop of `_pieces`, inlined: no generator between the disk and the writer.
        write = writer.write
        pending = bytearray()
        for head, path, size in self._plan:
            pending += head
            if path is None:
                continue
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if len(pending) + size <= CHUNK:
                    data = os.read(fd, size)
                    if len(data) != size:
                        raise RuntimeError(f"{path} changed size while being sent")
                    pending += data
                    pending += b"\r\n"
                    continue
                if pending:
                    await write(bytes(pending))
                    pending = bytearray()
                left = size
                while left:
                    data = os.read(fd, min(CHUNK, left))
                    if not data:
                        raise RuntimeError(f"{path} shrank while being sent")
                    left -= len(data)
                    await write(data)
                pending += b"\r\n"
            finally:
                os.close(fd)
        if pending:
            await write(bytes(pending))


async def _pieces(plan: list[tuple[bytes, str | None, int]]) -> AsyncIterator[bytes]:
    """The body's bytes in writes of about `CHUNK` bytes (small things coalesced)."""
    pending = bytearray()
    for head, path, size in plan:
        pending += head
        if path is None:
            continue
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if len(pending) + size <= CHUNK:  # a small file: one read, into the pending write
                data = os.read(fd, size)
                if len(data) != size:
                    raise RuntimeError(f"{path} changed size while being sent")
                pending += data
                pending += b"\r\n"
                continue
            if pending:
                yield bytes(pending)
                pending = bytearray()
            left = size
            while left:
                data = os.read(fd, min(CHUNK, left))
                if not data:
                    raise RuntimeError(f"{path} shrank while being sent")
                left -= len(data)
                yield data
            pending += b"\r\n"
        finally:
            os.close(fd)
    if pending:
        yield bytes(pending)


def multipart_plan(
    fields: Sequence[tuple[str, str]], paths: Sequence[str]
) -> tuple[list[tuple[bytes, str | None, int]], int, str]:
    """Heads, paths and sizes of a body, its exact length and its Content-Type."""
    boundary = f"{random.getrandbits(128):032x}"
    dash = b"--" + boundary.encode()
    plan: list[tuple[bytes, str | None, int]] = []
    text = b""
    for name, value in fields:
        text += (
            dash
            + f'\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    first = True
    for path in paths:
        size = os.stat(path).st_size
        filename = _quote(os.path.basename(path))
        head = (
            dash
            + b'\r\nContent-Disposition: form-data; name="input_files"; filename="'
            + filename.encode()
            + b'"\r\nContent-Type: '
            + OCTET
            + b"\r\n\r\n"
        )
        plan.append(((text + head) if first else head, path, size))
        first = False
    plan.append(((text if first else b"") + dash + b"--\r\n", None, 0))
    length = sum(len(h) + s + (2 if p is not None else 0) for h, p, s in plan)
    return plan, length, f"multipart/form-data; boundary={boundary}"


class Floor:
    """The floor's async client. Create it inside a running loop; ``await close()`` after."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        limit: int = 100,
        cafile: str | None = None,
        body: str = "payload",
    ) -> None:
        context: ssl_module.SSLContext | bool = True
        if cafile is not None:
            context = ssl_module.create_default_context(cafile=cafile)
        self.url = url.rstrip("/") + JOBS
        self.body = body
        self.session = aiohttp.ClientSession(
            headers={"unstructured-api-key": api_key},
            connector=aiohttp.TCPConnector(limit=limit, ssl=context),
        )

    async def close(self) -> None:
        await self.session.close()

    async def create_job(self, request_data: str, paths: Sequence[str]) -> Any:
        plan, length, ctype = multipart_plan([("request_data", request_data)], paths)
        data: aiohttp_payload.Payload
        if self.body == "iter":
            data = aiohttp_payload.AsyncIterablePayload(_pieces(plan), content_type=ctype)
            headers = {"Content-Length": str(length)}
            async with self.session.post(self.url, data=data, headers=headers) as resp:
                return _decode(resp.status, await resp.read())
        data = FloorBody(plan, length, ctype)
        async with self.session.post(self.url, data=data) as resp:
            return _decode(resp.status, await resp.read())

    async def list_jobs(self) -> Any:
        async with self.session.get(self.url) as resp:
            return _decode(resp.status, await resp.read())

    async def get_job(self, job_id: str) -> Any:
        async with self.session.get(self.url + job_id) as resp:
            return _decode(resp.status, await resp.read())


def _decode(status: int, body: bytes) -> Any:
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    return json.loads(body)


class FloorSync:
    """The floor's sync variant: `Floor` on a private event loop driven in the calling thread."""

    def __init__(self, url: str, api_key: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()

        async def make() -> Floor:
            return Floor(url, api_key, **kwargs)

        self._floor = self._loop.run_until_complete(make())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def create_job(self, request_data: str, paths: Sequence[str]) -> Any:
        return self._run(self._floor.create_job(request_data, paths))

    def list_jobs(self) -> Any:
        return self._run(self._floor.list_jobs())

    def get_job(self, job_id: str) -> Any:
        return self._run(self._floor.get_job(job_id))

    def close(self) -> None:
        self._run(self._floor.close())
        self._loop.close()

    def __enter__(self) -> FloorSync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
