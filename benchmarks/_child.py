"""One benchmark measurement in its own process: ``_child.py WORKLOAD CLIENT --url U --params J``.

The process does nothing but one (workload, client) pair, so its CPU time and peak RSS (VmHWM)
are the client's own. It prints one ``BENCH-RESULT {json}`` line on stdout. A failure inside
the workload is a result too (``"error": ...``): the parent decides what it means.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import traceback
from typing import Any


class AllThreadsProfile:
    """cProfile of this thread and of every thread started while it is on, merged at the end.

    A cProfile profiler only sees the thread that enabled it: `threading.setprofile` makes
    each new thread (the sync client's loop thread, the executor's file readers) enable its
    own profiler first thing, and `dump` adds them all into one stats file. The clock is each
    thread's CPU time (`time.thread_time`), so a thread waiting on a lock or in ``epoll`` costs
    nothing: the profile shows where the CPU figures come from.
    """

    def __init__(self) -> None:
        import cProfile
        import threading

        self._cprofile = cProfile
        self._threading = threading
        self._lock = threading.Lock()
        self._profilers: list[Any] = []

    def _start_in_thread(self, *_: object) -> None:
        sys.setprofile(None)  # the bootstrap hook; the profiler below installs its own
        import time

        profiler = self._cprofile.Profile(time.thread_time)
        with self._lock:
            self._profilers.append(profiler)
        profiler.enable()

    def enable(self) -> None:
        self._threading.setprofile(self._start_in_thread)
        self._start_in_thread()

    def dump(self, path: str) -> None:
        import pstats

        self._threading.setprofile(None)  # type: ignore[arg-type]
        with self._lock:
            profilers = list(self._profilers)
        profilers[0].disable()  # this thread's; the others' stats are read as they stand
        stats = pstats.Stats(profilers[0])
        for other in profilers[1:]:
            other.create_stats()
            if other.stats:
                stats.add(other)
        stats.dump_stats(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--params", default="{}", help="JSON object of workload parameters")
    parser.add_argument("--nofile", type=int, default=None, help="RLIMIT_NOFILE soft=hard")
    parser.add_argument("--profile", default=None, help="write cProfile stats to this path")
    args = parser.parse_args(argv)

    if args.nofile is not None:  # before anything opens a descriptor we do not control
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))

    from _common import describe_error, emit, proc_status_kib
    from _workloads import Ctx, run

    # Import the client's libraries before the baseline, so imports count in peak RSS only.
    if args.client.startswith("sdk"):
        import unstructured_client  # noqa: F401
    elif args.client.startswith("ours"):
        # With anyio's asyncio backend, which the client imports on its first worker-thread
        # call (~10-20 ms, once per process): an import like the others, not work per upload.
        import anyio._backends._asyncio  # noqa: F401

        import unstructured_jobs  # noqa: F401
    elif args.client.startswith("floor"):
        import _floor  # noqa: F401
    import aiohttp  # noqa: F401

    ctx = Ctx(args.url, json.loads(args.params))
    result: dict[str, Any] = {"workload": args.workload, "client": args.client}
    rss_before = proc_status_kib("VmRSS") / 1024
    profiler = AllThreadsProfile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        result.update(run(args.workload, args.client, ctx))
    except Exception as exc:
        result["error"] = describe_error(exc)
        result["traceback"] = traceback.format_exc(limit=-6)
    finally:
        if profiler is not None:
            profiler.dump(args.profile)
    result["rss_before_mib"] = rss_before
    result["peak_rss_mib"] = proc_status_kib("VmHWM") / 1024
    result["peak_rss_growth_mib"] = result["peak_rss_mib"] - rss_before
    result.setdefault("wall_s", ctx.meter.wall)
    result.setdefault("cpu_s", ctx.meter.cpu)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
