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
        import unstructured_jobs  # noqa: F401
    import aiohttp  # noqa: F401

    ctx = Ctx(args.url, json.loads(args.params))
    result: dict[str, Any] = {"workload": args.workload, "client": args.client}
    rss_before = proc_status_kib("VmRSS") / 1024
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        result.update(run(args.workload, args.client, ctx))
    except Exception as exc:
        result["error"] = describe_error(exc)
        result["traceback"] = traceback.format_exc(limit=-6)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    result["rss_before_mib"] = rss_before
    result["peak_rss_mib"] = proc_status_kib("VmHWM") / 1024
    result["peak_rss_growth_mib"] = result["peak_rss_mib"] - rss_before
    result.setdefault("wall_s", ctx.meter.wall)
    result.setdefault("cpu_s", ctx.meter.cpu)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
