"""The pool's clean-up of connections left closing by a cut-short upload (issue 23, item 4).

`_Connector.abort_closing` runs when a client closes. A connection can be *closing* in two
states: still holding unsent bytes (it must be aborted, or its socket outlives the client), or
already gone because its last bytes were written after `close()` (asyncio let go of its loop;
aborting it raised ``AttributeError`` from inside `aclose`, seen once in CI on a 413 upload).
Both are built here with real sockets.
"""

from __future__ import annotations

import asyncio
import socket

from unstructured_jobs._http.transport import _Connector


class _Recorder(asyncio.Protocol):
    def __init__(self, lost: asyncio.Future[Exception | None]) -> None:
        self.lost = lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


async def _closing_with_unsent_bytes() -> tuple[
    asyncio.Transport, socket.socket, asyncio.Future[Exception | None]
]:
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    lost: asyncio.Future[Exception | None] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _Recorder(lost), sock=ours)
    transport.write(b"x" * (8 << 20))  # more than the socket buffers hold: the rest waits
    transport.close()  # closing, with bytes still to write, as a cancelled upload leaves it
    peer.setblocking(False)
    return transport, peer, lost


async def test_a_connection_that_finished_closing_is_let_be() -> None:
    transport, peer, lost = await _closing_with_unsent_bytes()
    while not lost.done():  # the peer reads everything: the transport finishes on its own
        try:
            peer.recv(1 << 20)
        except BlockingIOError:
            await asyncio.sleep(0)
    connector = _Connector()
    try:
        connector._transports.add(transport)
        assert transport.is_closing()
        connector.abort_closing()  # raised AttributeError before the fix
        assert transport not in connector._transports
    finally:
        await connector.close()
        peer.close()


async def test_a_connection_still_closing_is_aborted() -> None:
    transport, peer, lost = await _closing_with_unsent_bytes()
    connector = _Connector()
    try:
        connector._transports.add(transport)
        connector.abort_closing()
        assert await asyncio.wait_for(lost, 10) is None  # its socket is closed, not left behind
        assert transport not in connector._transports
    finally:
        await connector.close()
        peer.close()
