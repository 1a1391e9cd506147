"""Cases for tests/integration/test_nothing_left.py, each run in a fresh child process.

Run as ``python -W error::ResourceWarning -X dev tests/_gc_cases.py CASE``: the case runs a
client against a loopback server that misbehaves (stops reading an upload, never answers,
drops the connection), ends the call (cancel, timeout, Ctrl-C), closes the client, then
collects garbage. Every ResourceWarning and unraisable exception (a socket, transport, file or
task left to the collector) is printed and the exit status is 1; 0 when nothing was left.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from unstructured_jobs import (
    APIConnectionError,
    APITimeoutError,
    AsyncJobsClient,
    JobMayExistError,
    JobsClient,
    Timeout,
)

found: list[str] = []


def _unraisable(hook: Any) -> None:
    found.append(f"unraisable: {hook.exc_type.__name__}: {hook.exc_value} ({hook.object!r})")


class Server:
    """A loopback server in a thread: accepts, then does `behaviour` with each connection."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.arrived = threading.Event()
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.behaviour == "stop-reading":  # reads the head, never the body
                conn.recv(4096)
                self.arrived.set()
            elif self.behaviour == "silent":  # reads the request, never answers
                conn.recv(1 << 20)
                self.arrived.set()
            elif self.behaviour == "drop":  # reads the request, answers half, hangs up
                conn.recv(1 << 20)
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id"')
                conn.close()
                self.arrived.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@contextlib.contextmanager
def big_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.bin"
        path.write_bytes(bytes(32 * 1024 * 1024))  # far more than the socket buffers hold
        yield path


# -- async cases (inside asyncio.run) ------------------------------------------------------------


def async_cancelled_upload() -> None:
    server = Server("stop-reading")

    async def main() -> None:
        with big_file() as path:
            async with AsyncJobsClient("k", server.url) as client:
                task = asyncio.create_task(client.create_job(template_id="t", input_files=[path]))
                while not server.arrived.is_set():
                    await asyncio.sleep(0.01)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(main())
    server.close()


def async_read_timeout() -> None:
    server = Server("silent")

    async def main() -> None:
        async with AsyncJobsClient("k", server.url, max_retries=0) as client:
            with contextlib.suppress(APITimeoutError):
                await client.list_jobs(timeout=Timeout(read=0.2))

    asyncio.run(main())
    server.close()


def async_upload_stalled() -> None:
    server = Server("stop-reading")

    async def main() -> None:
        with big_file() as path:
            async with AsyncJobsClient("k", server.url, max_retries=0) as client:
                with contextlib.suppress(APITimeoutError, JobMayExistError):
                    await client.create_job(
                        template_id="t", input_files=[path], timeout=Timeout(write=0.3)
                    )

    asyncio.run(main())
    server.close()


def async_total_timeout() -> None:
    server = Server("silent")

    async def main() -> None:
        async with AsyncJobsClient("k", server.url) as client:
            with contextlib.suppress(APITimeoutError):
                await client.list_jobs(timeout=Timeout(total=0.3))

    asyncio.run(main())
    server.close()


def async_dropped_connection() -> None:
    server = Server("drop")

    async def main() -> None:
        async with AsyncJobsClient("k", server.url, max_retries=1) as client:
            with contextlib.suppress(APIConnectionError):
                await client.list_jobs()

    asyncio.run(main())
    server.close()


def async_task_cancelled_at_exit() -> None:
    """The whole main task is cancelled while a request waits (asyncio.run's Ctrl-C path)."""
    server = Server("silent")

    async def main() -> None:
        async with AsyncJobsClient("k", server.url) as client:
            await client.list_jobs()

    async def runner() -> None:
        task = asyncio.create_task(main())
        while not server.arrived.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(runner())
    server.close()


# -- sync cases (a fresh JobsClient) -------------------------------------------------------------


def sync_read_timeout() -> None:
    server = Server("silent")
    with JobsClient("k", server.url, max_retries=0) as client, contextlib.suppress(APITimeoutError):
        client.list_jobs(timeout=Timeout(read=0.2))
    server.close()


def sync_ctrl_c_during_upload() -> None:
    server = Server("stop-reading")

    def interrupt_when_arrived() -> None:
        server.arrived.wait(30)
        time.sleep(0.05)  # the main thread is blocked in the call by now
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: wakes the blocked main thread

    with big_file() as path, JobsClient("k", server.url) as client:
        threading.Thread(target=interrupt_when_arrived, daemon=True).start()
        with contextlib.suppress(KeyboardInterrupt):
            client.create_job(template_id="t", input_files=[path])
    server.close()


def sync_dropped_connection() -> None:
    server = Server("drop")
    with (
        JobsClient("k", server.url, max_retries=1) as client,
        contextlib.suppress(APIConnectionError),
    ):
        client.list_jobs()
    server.close()


CASES: dict[str, Callable[[], None]] = {
    f.__name__: f
    for f in (
        async_cancelled_upload,
        async_read_timeout,
        async_upload_stalled,
        async_total_timeout,
        async_dropped_connection,
        async_task_cancelled_at_exit,
        sync_read_timeout,
        sync_ctrl_c_during_upload,
        sync_dropped_connection,
    )
}


def main(name: str) -> int:
    sys.unraisablehook = _unraisable
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        CASES[name]()
        for _ in range(3):
            gc.collect()
    found.extend(f"warning: {w.category.__name__}: {w.message}" for w in caught)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
