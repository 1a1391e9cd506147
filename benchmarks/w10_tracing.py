"""W10: what tracing adds to each request, in microseconds per call.

    python benchmarks/w10_tracing.py              # 20 000 calls per mode, median of 5
    python benchmarks/w10_tracing.py --calls 2000 --reps 3

The work `_http.tracing` adds to one request (wrapping the transport's awaitable, and noting one
attempt from the retry loop) is timed around an awaitable that does nothing, against awaiting
that awaitable bare, each mode in a fresh interpreter:

- ``absent``: OpenTelemetry never imported (or not installed): the package's default;
- ``api, no provider``: ``opentelemetry.trace`` imported, no tracer provider set;
- ``sdk, no processor``: the SDK's ``TracerProvider`` set, no span processor (spans are made and
  dropped: the cost of making them);
- ``sdk, in-memory``: the SDK provider exporting every span to ``InMemorySpanExporter`` through
  a ``SimpleSpanProcessor`` (the tests' set-up).

A request over loopback to the emulator takes about 1 ms, one to the service about 50 ms: the
figures are to be read against those. Prints a table; exits 0 whatever the figures are.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap

MODES = ("absent", "api, no provider", "sdk, no processor", "sdk, in-memory")

CHILD = """
import asyncio, json, sys, time

mode, calls, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if mode != "absent":
    from opentelemetry import trace
if mode.startswith("sdk"):
    from opentelemetry.sdk.trace import TracerProvider
    provider = TracerProvider()
    if mode == "sdk, in-memory":
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

from unstructured_jobs._core import Request, Safety, api_path
from unstructured_jobs._http.tracing import note_attempt, traced

BASE = "http://127.0.0.1:8765"
JOB = "0f8e1c2a-0000-4000-8000-000000000001"
REQUEST = Request("GET", api_path("jobs", JOB), Safety.IDEMPOTENT)


async def attempt() -> int:
    note_attempt(1, 200, 0.001, "rid-1")
    return 1


async def bare() -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await attempt()
    return time.perf_counter() - started


async def wrapped() -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await traced(BASE, REQUEST, attempt())
        if mode == "sdk, in-memory" and len(exporter._finished_spans) > 1000:
            exporter.clear()
    return time.perf_counter() - started


async def main() -> None:
    await bare(), await wrapped()  # warm up
    added = []
    for _ in range(reps):
        added.append((await wrapped() - await bare()) / calls * 1e6)
    print(json.dumps(added))


asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"| mode | µs added per call (median of {args.reps}) | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for mode in MODES:
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(CHILD), mode, str(args.calls), str(args.reps)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(f"| {mode} | failed: {out.stderr.strip().splitlines()[-1]} | | |")
            continue
        added = json.loads(out.stdout)
        print(f"| {mode} | {statistics.median(added):.2f} | {min(added):.2f} | {max(added):.2f} |")


if __name__ == "__main__":
    main()
