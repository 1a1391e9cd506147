"""Serving the emulator from the command line: ``unstructured-jobs serve`` and
``python -m unstructured_jobs.testing`` (the same options, the same behaviour).

It prints the URL it listens on, then the ``export`` line to paste into another shell, and
serves until SIGINT (Ctrl-C) or SIGTERM, then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fnmatch
import gc
import re
import shlex
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._constants import ENV_API_KEY, ENV_SERVER_URL

if TYPE_CHECKING:
    from ._limits import EmulatorLimits
    from ._server import Emulator

__all__ = ["add_serve_arguments", "fail_files_from", "limits_from", "main", "serve"]

DESCRIPTION = (
    "Serve a local emulator of the Unstructured Platform jobs API on 127.0.0.1, with faults on "
    "demand. It prints the export line to paste into another shell; Ctrl-C stops it."
)
EPILOG = (
    "Faults on demand: POST a JSON fault to /_emulator/faults (GET lists them with their fired "
    "counts, DELETE clears them), with the same API key header as the API; see docs/emulator.md."
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options: where it listens, its key, its pace and its random faults."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    add("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default 8765)")
    add("--api-key", default=None, help="the only API key accepted (default: any non-empty key)")
    pace = parser.add_argument_group("how jobs move")
    pace.add_argument(
        "--start-after", type=float, default=0.0, help="seconds a job stays SCHEDULED"
    )
    pace.add_argument("--run-for", type=float, default=0.0, help="seconds a job stays IN_PROGRESS")
    pace.add_argument(
        "--max-running",
        type=int,
        default=None,
        help="jobs running at once (default 5; 0: no limit)",
    )
    limits = parser.add_argument_group(
        "service limits (off by default; each flag overrides --service-limits)"
    )
    limits.add_argument(
        "--service-limits",
        action="store_true",
        help="enforce the published limits: 1 launch/s, 5 running, 10 files per job, 10 MB "
        "per file",
    )
    limits.add_argument(
        "--launch-interval",
        type=_seconds,
        default=None,
        metavar="S",
        help="a launch sooner than S seconds after the last accepted one gets 429 (0: off)",
    )
    limits.add_argument(
        "--max-files-per-job",
        type=_count,
        default=None,
        metavar="N",
        help="files one job may carry; more gets 400 (0: off)",
    )
    limits.add_argument(
        "--max-file-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="a larger file gets 413, e.g. 10MB, 50MB (0: off)",
    )
    limits.add_argument(
        "--quota-files",
        type=_count,
        default=None,
        metavar="N",
        help="files the account may send; then 402 (default: no quota)",
    )
    parser.add_argument(
        "--fail-files",
        action="append",
        default=[],
        metavar="GLOB",
        help="input files whose name matches GLOB (fnmatch, e.g. '*.bad.pdf') fail processing: "
        "their job ends COMPLETED with errors, or FAILED when every file fails (repeatable)",
    )
    outputs = parser.add_argument_group("outputs (default: two short elements per file)")
    outputs.add_argument(
        "--output-elements",
        type=_count,
        default=None,
        metavar="N",
        help="elements in each file's output, e.g. 16000 for a long PDF",
    )
    outputs.add_argument(
        "--embedding-dim",
        type=_count,
        default=0,
        metavar="D",
        help="an embedding of D floats per element, e.g. 1536 (16000 x 1536: a 323 MB output)",
    )
    faults = parser.add_argument_group("random faults (shares of the API's requests, 0 to 1)")
    for flag, what in (
        ("--fault-429", "answered 429 (rate limited)"),
        ("--fault-503", "answered 503 (unavailable)"),
        ("--fault-drop", "whose connection is dropped after processing (a lost answer)"),
        ("--fault-drop-before", "whose connection is dropped before processing (no job)"),
    ):
        faults.add_argument(flag, type=float, default=0.0, metavar="RATE", help=what)
    faults.add_argument(
        "--latency", type=float, default=0.0, metavar="S", help="random delay up to S seconds"
    )
    faults.add_argument(
        "--retry-after", default="1", help="Retry-After sent with random 429/503 (default 1)"
    )
    faults.add_argument("--seed", type=int, default=None, help="seed of the random faults")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"not a number of seconds >= 0: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {text!r}")
    return value


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def _size(text: str) -> int:
    """A byte size: ``10MB`` (10,000,000), ``512KiB``, ``1000``; 0 turns the limit off."""
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10MB, 512KiB, 1000, 0)")
    return int(float(match[1]) * _UNITS[(match[2] or "").lower()])


def limits_from(args: argparse.Namespace) -> EmulatorLimits:
    """The `EmulatorLimits` the options describe: the preset, then each flag given (0: off)."""
    from ._limits import EmulatorLimits

    base = EmulatorLimits.published() if args.service_limits else EmulatorLimits()
    changes: dict[str, Any] = {}
    for name in ("launch_interval", "max_files_per_job", "max_file_size", "quota_files"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value or (0 if name == "quota_files" else None)
    if args.max_running is not None:
        changes["max_running"] = args.max_running or None
    return dataclasses.replace(base, **changes)


def fail_files_from(globs: list[str]) -> Callable[[str], bool] | None:
    """The ``fail_files`` predicate of ``--fail-files GLOB`` (any glob matching, case-sensitive),
    or None without one."""
    if not globs:
        return None
    patterns = tuple(globs)
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def export_line(url: str, api_key: str) -> str:
    """The shell line that points the client and the command line at this emulator."""
    return f"export {ENV_SERVER_URL}={shlex.quote(url)} {ENV_API_KEY}={shlex.quote(api_key)}"


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
        print(export_line(emulator.url, emulator.api_key), flush=True)
        await stop.wait()


def serve(args: argparse.Namespace) -> int:
    """Serve the emulator the options describe until SIGINT/SIGTERM; the exit status (0, or 2
    for a bad option, 1 when the address cannot be bound)."""
    from ._faults import FaultRates
    from ._records import Schedule
    from ._server import Emulator

    rates = None
    shares = (args.fault_429, args.fault_503, args.fault_drop, args.fault_drop_before)
    try:
        if any(shares) or args.latency:
            rates = FaultRates(
                status_429=args.fault_429,
                status_503=args.fault_503,
                drop_after=args.fault_drop,
                drop_before=args.fault_drop_before,
                latency=args.latency,
                retry_after=args.retry_after,
                seed=args.seed,
            )
        emulator = Emulator(
            api_key=args.api_key,
            host=args.host,
            port=args.port,
            schedule=Schedule(start_after=args.start_after, run_for=args.run_for),
            limits=limits_from(args),
            fault_rates=rates,
            fail_files=fail_files_from(getattr(args, "fail_files", None) or []),
            output_elements=args.output_elements,
            embedding_dim=args.embedding_dim,
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


def main(argv: list[str] | None = None) -> int:
    """``python -m unstructured_jobs.testing``: serve until SIGINT/SIGTERM; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m unstructured_jobs.testing", description=DESCRIPTION, epilog=EPILOG
    )
    add_serve_arguments(parser)
    return serve(parser.parse_args(argv))
