"""The emulator over HTTPS: ``_tls_emulator.py --cert SERVER.pem [--port 0]``.

``python -m unstructured_jobs.testing`` serves plain HTTP only; the `Emulator` class takes a
server-side `ssl.SSLContext`. This script serves it with a certificate (and its key) from one
PEM file, made by the orchestrator from a throwaway CA (trustme) for 127.0.0.1 and localhost.
It prints the same "listening on URL" line as the command-line emulator, and like it moves its
long-lived objects to the GC's permanent generation once a second (see the emulator's
``_freeze_long_lived``), so that the server side is the same as in the plain-HTTP workloads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import ssl
import sys

from unstructured_jobs.testing import Emulator


async def serve(emulator: Emulator) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    async def freeze() -> None:
        while True:
            await asyncio.sleep(1.0)
            gc.freeze()

    freezer = loop.create_task(freeze())
    try:
        async with emulator:
            print(f"unstructured-jobs emulator listening on {emulator.url}", flush=True)
            await stop.wait()
    finally:
        freezer.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True, help="PEM file: private key and certificate chain")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-running", type=int, default=0, help="0: no limit")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert)
    emulator = Emulator(port=args.port, max_running=args.max_running or None, ssl_context=context)
    asyncio.run(serve(emulator))
    return 0


if __name__ == "__main__":
    sys.exit(main())
