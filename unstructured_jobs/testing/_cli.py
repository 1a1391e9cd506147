"""``python -m unstructured_jobs.testing``: serve the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys

from ._faults import FaultRates
from ._records import Schedule
from ._server import Emulator

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m unstructured_jobs.testing",
        description="Serve a local emulator of the Unstructured Platform jobs API.",
        epilog=(
            "Faults on demand: POST a JSON fault to /_emulator/faults (GET lists them with "
            "their fired counts, DELETE clears them), with the same API key header as the "
            "API; see docs/emulator.md."
        ),
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    add("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default 8765)")
    add("--api-key", default=None, help="the only API key accepted (default: any non-empty key)")
    add("--start-after", type=float, default=0.0, help="seconds a job stays SCHEDULED")
    add("--run-for", type=float, default=0.0, help="seconds a job stays IN_PROGRESS")
    add("--max-running", type=int, default=5, help="jobs running at once (0: no limit)")
    add("--fault-429", type=float, default=0.0, metavar="RATE", help="share of requests -> 429")
    add("--fault-503", type=float, default=0.0, metavar="RATE", help="share of requests -> 503")
    add("--fault-drop", type=float, default=0.0, metavar="RATE",
        help="share of requests whose connection is dropped after processing")  # fmt: skip
    add("--retry-after", default="1", help="Retry-After sent with random 429/503 (default 1)")
    add("--seed", type=int, default=None, help="seed of the random faults")
    return parser


async def _freeze_long_lived() -> None:
    """Move what the process holds to the GC's permanent generation, once a second.

    A served emulator keeps every job for its whole life; without this, full collections keep
    re-walking them and, with 10,000 jobs, made single answers 35-40 ms slower at random (which
    the benchmarks measure). Garbage is still freed by reference counting. Only the standalone
    server does this: an in-process `Emulator` never touches its host's GC.
    """
    while True:
        await asyncio.sleep(1.0)
        gc.freeze()


async def _serve(emulator: Emulator) -> None:
    freezer = asyncio.get_running_loop().create_task(_freeze_long_lived())
    try:
        await _serve_until_signal(emulator)
    finally:
        freezer.cancel()


async def _serve_until_signal(emulator: Emulator) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        print(f"unstructured-jobs emulator listening on {emulator.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the emulator from the command line; returns the exit status (0 on SIGINT/SIGTERM)."""
    args = _parser().parse_args(argv)
    rates = None
    if args.fault_429 or args.fault_503 or args.fault_drop:
        rates = FaultRates(
            status_429=args.fault_429,
            status_503=args.fault_503,
            drop_after=args.fault_drop,
            retry_after=args.retry_after,
            seed=args.seed,
        )
    try:
        emulator = Emulator(
            api_key=args.api_key,
            host=args.host,
            port=args.port,
            schedule=Schedule(start_after=args.start_after, run_for=args.run_for),
            max_running=args.max_running or None,
            fault_rates=rates,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(emulator))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
