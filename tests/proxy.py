"""A real forward proxy on 127.0.0.1 for tests: CONNECT tunnels (https) and absolute-URI
forwarding (plain http). Whatever host a client asks for, it connects to 127.0.0.1:`upstream`
(an emulator), so a test can use an unresolvable name and succeed only through the proxy.

It records each CONNECT target (``"api.unstructured.test:443"``), each forwarded request line
(``"GET http://api.unstructured.test/api/v1/jobs/ HTTP/1.1"``) and the Proxy-Authorization
header of each (None when absent). Plain-http requests are sent upstream with
``Connection: close``: one request per proxied connection, so every request line is seen.

Also here: `clear_network_env` (forget the machine's proxy and CA variables), `guard_dns` (record
every name looked up and refuse all but loopback) and `server_tls` (a certificate from a CA).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def clear_network_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget every proxy and CA-bundle variable of the machine running the tests."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name in ("REQUEST_METHOD", "SSL_CERT_DIR"):
            monkeypatch.delenv(name)
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def guard_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every name looked up; refuse all but loopback (no DNS query leaves the machine)."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        looked_up.append(name)
        if name not in LOOPBACK_NAMES:
            raise socket.gaierror(socket.EAI_NONAME, f"tests do no DNS ({name})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def server_tls(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """A server-side context with a certificate for `names`, issued by `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


class ForwardProxy:
    """`refuse`: answer every CONNECT with this status instead (407, 403, 502...)."""

    def __init__(self, upstream: int, *, refuse: int | None = None) -> None:
        self.upstream = upstream
        self.refuse = refuse
        self.connects: list[str] = []
        self.requests: list[str] = []
        self.auth: list[str | None] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def __aenter__(self) -> ForwardProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            line, *fields = head.split("\r\n")[:-2]
            method, target, version = line.split(" ")
            headers = dict(f.split(": ", 1) for f in fields)
            auth = [k for k in headers if k.lower() == "proxy-authorization"]
            self.auth.append(headers.pop(auth[0]) if auth else None)
            if method == "CONNECT" and self.refuse is not None:
                self.connects.append(target)
                writer.write(
                    f"HTTP/1.1 {self.refuse} Refused\r\nContent-Length: 0\r\n\r\n".encode()
                )
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            self._writers.add(up_writer)
            if method == "CONNECT":
                self.connects.append(target)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:  # absolute-form: send it upstream in origin-form, one request per connection
                self.requests.append(line)
                parts = urlsplit(target)
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                headers = {k: v for k, v in headers.items() if "connection" not in k.lower()}
                fields = [f"{k}: {v}" for k, v in {**headers, "Connection": "close"}.items()]
                up_writer.write(
                    "\r\n".join([f"{method} {path} {version}", *fields, "", ""]).encode("latin-1")
                )
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[ForwardProxy]:
        """Serve from a daemon thread with its own loop, for sync clients and the CLI."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
