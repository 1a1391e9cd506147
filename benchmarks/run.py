"""Benchmarks of unstructured-jobs against the floor, aiohttp FormData and the official SDK.

    python benchmarks/run.py                 # full run (several minutes), writes results/latest.*
    python benchmarks/run.py --quick         # CI smoke test (< 1 minute), writes results/quick.*
    python benchmarks/run.py --quick --no-sdk

Every (workload, client, repetition) runs in its own child process (`_child.py`) against an
emulator (``python -m unstructured_jobs.testing``) running in another process, so the CPU time
and peak RSS measured are the client's own. See README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _chart import draw_chart  # noqa: E402
from _common import MIB, RESULT_PREFIX  # noqa: E402
from _emulator import EmulatorProcess, machine_description  # noqa: E402
from _report import evaluate_targets, render_markdown  # noqa: E402

CHILD = HERE / "_child.py"

FULL: dict[str, Any] = {
    "reps": 5,
    "upload_files": 4,
    "upload_mib": 256,
    "upload_small_mib": 16,  # the same job with smaller files: is peak RSS flat in file size?
    "creates": 2000,
    "creates_concurrency": 64,
    "small_kb": 10,
    "list_jobs": 10_000,
    "list_calls": 3,
    "list_big_jobs": 100_000,  # is listing linear in the count?
    "get_calls": 500,
    "get_warmup": 20,
    "many_files": 2000,
    "many_files_kb": 1,
    "nofile": 256,
    "fault_calls": 300,
    "fault_concurrency": 32,
    "child_timeout": 1200,
}
QUICK: dict[str, Any] = {
    **FULL,
    "reps": 1,
    "upload_mib": 16,
    "upload_small_mib": 4,
    "creates": 300,
    "list_jobs": 1000,
    "list_calls": 2,
    "list_big_jobs": 5000,
    "get_calls": 100,
    "get_warmup": 5,
    "fault_calls": 60,
    "child_timeout": 120,
}
# Input files per seeded job: 2-6 output_node_files each, 2.8 on average, as in the issue's
# "10,000 jobs (each with 2-6 output_node_files, ~7-8 MB)".
SEED_FILES = (2, 2, 3, 2, 2, 4, 2, 2, 3, 2, 5, 2, 6, 2, 3)
# The clients of each workload (SDK columns dropped without the SDK).
CLIENTS = {
    "upload": ["ours", "ours-sync", "floor", "floor-sync", "formdata", "sdk", "sdk-sync"],
    "creates": ["ours", "floor", "formdata", "sdk"],
    "list": ["ours", "floor", "sdk"],
    "get": ["ours-sync", "ours", "floor-sync", "floor", "sdk-sync", "sdk"],
    "many_files": ["ours", "floor", "formdata", "sdk"],
    "tls_upload": ["ours", "ours-sync", "floor", "floor-sync", "sdk", "sdk-sync"],
    "tls_creates": ["ours", "floor", "sdk"],
    "faults": ["ours", "formdata", "sdk"],
}
WORKLOADS = "upload,creates,list,get,many_files,tls,list100k,faults"
FAULT_MODES = {
    "429/503": ["--fault-429", "0.1", "--fault-503", "0.1"],
    "drop": ["--fault-drop", "0.1"],
}


class Interrupted(Exception):
    pass


def _on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted(f"signal {signum}")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- children


class Runner:
    def __init__(self, cfg: dict[str, Any], tmp: Path, profile_dir: Path | None) -> None:
        self.cfg = cfg
        self.tmp = tmp
        self.profile_dir = profile_dir
        self.emulator_log = str(tmp / "emulator.log")

    def child(
        self,
        workload: str,
        client: str,
        url: str,
        params: dict[str, Any],
        *,
        nofile: int | None = None,
        profile: str | None = None,
    ) -> dict[str, Any]:
        cmd = [sys.executable, str(CHILD), workload, client, "--url", url]
        cmd += ["--params", json.dumps(params)]
        if nofile is not None:
            cmd += ["--nofile", str(nofile)]
        if profile is not None:
            cmd += ["--profile", profile]
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=self.cfg["child_timeout"],
                cwd=HERE,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {self.cfg['child_timeout']} s"}
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
                break
        else:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            result = {"error": f"child exited {proc.returncode}: " + " | ".join(tail)}
        log(
            f"  {workload:<10} {client:<9} {time.perf_counter() - started:6.1f}s  "
            + (f"ERROR {result['error']}" if "error" in result else _brief(result))
        )
        return result

    def emulator(self, *extra: str, tls: tuple[str, str] | None = None) -> EmulatorProcess:
        args = ["--max-running", "0", *extra]
        return EmulatorProcess(args, log_path=self.emulator_log, tls=tls)


def _brief(result: dict[str, Any]) -> str:
    keys = (
        "cpu_per_gib",
        "mb_s",
        "cpu_per_1k",
        "lat_median_ms",
        "lat_p99_ms",
        "cpu_per_call_ms",
        "cpu_s",
        "ok",
        "errors",
        "peak_rss_mib",
    )
    parts = []
    for key in keys:
        if key in result and result[key] is not None:
            value = result[key]
            parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    if "wall_s" in result:
        parts.append(f"wall_s={result['wall_s']:.3g}")
    return " ".join(parts)


def median_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise median of numeric figures over repetitions; errors and the rest kept."""
    good = [r for r in results if "error" not in r]
    merged: dict[str, Any] = {"reps": len(results), "failed_reps": len(results) - len(good)}
    if not good:
        merged["error"] = results[0].get("error", "no result") if results else "not run"
        merged["traceback"] = results[0].get("traceback") if results else None
        return merged
    for key in good[0]:
        values = [r.get(key) for r in good]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            merged[key] = statistics.median(values)  # type: ignore[type-var]
        else:
            merged[key] = values[0]
    if len(good) < len(results):
        merged["rep_error"] = next(r["error"] for r in results if "error" in r)
    return merged


# ----------------------------------------------------------------------------- data files


def make_files(folder: Path, prefix: str, count: int, size: int) -> tuple[list[str], list[str]]:
    """`count` files of `size` bytes of random-ish data (repeated urandom blocks, no holes)."""
    folder.mkdir(parents=True, exist_ok=True)
    block_size = min(size, 4 * MIB)
    paths, digests = [], []
    for i in range(count):
        path = folder / f"{prefix}-{i:05d}.bin"
        digest = hashlib.sha256()
        block = os.urandom(block_size)
        with open(path, "wb") as out:
            left = size
            while left:
                piece = block[: min(left, block_size)]
                out.write(piece)
                digest.update(piece)
                left -= len(piece)
        paths.append(str(path))
        digests.append(digest.hexdigest())
    return paths, digests


def check_integrity(
    emu: EmulatorProcess, result: dict[str, Any], names: list[str], digests: list[str], size: int
) -> str:
    """Compare what the emulator received (sha256, size per file) with the local files."""
    if "error" in result:
        return "n/a"
    job = emu.get_json(f"/api/v1/jobs/{result['job_id']}")
    received = job.get("input_file_ids") or []
    if received != names:
        return f"FAIL: files {received} != {names}"
    for name, digest in zip(names, digests, strict=True):
        elements = emu.get_json(f"/api/v1/jobs/{result['job_id']}/download", {"file_id": name})
        meta = elements[0]["metadata"]
        if meta["sha256"] != digest or meta["size"] != size:
            return f"FAIL: {name} arrived as {meta['size']} bytes sha256 {meta['sha256'][:12]}"
    return "ok"


# ----------------------------------------------------------------------------- workloads


def _reps(r: Runner, clients: list[str], run_one: Any) -> dict[str, list[dict[str, Any]]]:
    """`run_one(client)` for each repetition, clients interleaved; results per client."""
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    for _ in range(r.cfg["reps"]):
        for client in clients:
            runs[client].append(run_one(client))
    return runs


def bench_upload(
    r: Runner, clients: list[str], data: Path, tls: tuple[str, str] | None = None
) -> dict[str, Any]:
    cfg = r.cfg
    out: dict[str, Any] = {}
    sizes = [("large", cfg["upload_mib"])]
    if tls is None:  # memory flat in file size: measured over plain HTTP only
        sizes.append(("small", cfg["upload_small_mib"]))
    for label, mib in sizes:
        size = mib * MIB
        log(f"a. upload{' over TLS' if tls else ''}: {cfg['upload_files']} x {mib} MiB")
        paths, digests = make_files(data / f"up{mib}", f"up{mib}", cfg["upload_files"], size)
        names = [os.path.basename(p) for p in paths]
        params: dict[str, Any] = {"paths": paths, "sizes": [size] * len(paths)}
        if tls is not None:
            params["ca"] = tls[1]
        with r.emulator(tls=tls) as emu:

            def one(
                client: str, params: dict[str, Any] = params, expect: Any = (names, digests, size)
            ) -> dict[str, Any]:
                res = r.child("upload", client, emu.url, params)
                res["integrity"] = check_integrity(emu, res, *expect)
                return res

            runs = _reps(r, clients, one)
        for client in clients:
            merged = median_result(runs[client])
            checks = [res["integrity"] for res in runs[client]]
            bad = [v for v in checks if v not in ("ok", "n/a")]
            merged["integrity"] = bad[0] if bad else checks[0]
            out.setdefault(client, {})[label] = merged
        for path in paths:
            os.unlink(path)
    out["_params"] = {
        "files": cfg["upload_files"],
        "mib": cfg["upload_mib"],
        "small_mib": cfg["upload_small_mib"],
        "tls": tls is not None,
    }
    return out


def bench_creates(
    r: Runner, clients: list[str], data: Path, tls: tuple[str, str] | None = None
) -> dict[str, Any]:
    cfg = r.cfg
    path = data / "small-10k.bin"
    if not path.exists():
        path.write_bytes(os.urandom(cfg["small_kb"] * 1000))
    params: dict[str, Any] = {
        "path": str(path),
        "count": cfg["creates"],
        "concurrency": cfg["creates_concurrency"],
    }
    if tls is not None:
        params["ca"] = tls[1]
    log(
        f"b. {cfg['creates']} create_job calls, concurrency {cfg['creates_concurrency']}"
        + (" over TLS" if tls else "")
    )
    with r.emulator(tls=tls) as emu:
        runs = _reps(r, clients, lambda c: r.child("creates", c, emu.url, params))
    out: dict[str, Any] = {c: median_result(runs[c]) for c in clients}
    out["_params"] = {**params, "tls": tls is not None}
    return out


def seed_listing(emu: EmulatorProcess, count: int) -> dict[str, Any]:
    """Seed `count` jobs of 2-6 files; check the listing's shape; its size and node counts."""
    emu.seed_jobs(count, concurrency=64, files=lambda i: SEED_FILES[i % len(SEED_FILES)])
    raw = emu.get_bytes("/api/v1/jobs/")
    jobs = json.loads(raw)
    nodes = [len(job.get("output_node_files") or ()) for job in jobs]
    if len(jobs) != count or min(nodes) < 2 or max(nodes) > 6:
        raise RuntimeError(
            f"seeded listing has {len(jobs)} jobs, {min(nodes)}-{max(nodes)} output nodes"
        )
    return {
        "body_bytes": len(raw),
        "nodes_min": min(nodes),
        "nodes_max": max(nodes),
        "nodes_total": sum(nodes),
    }


def bench_list(
    r: Runner, clients: list[str], jobs: int, calls: int, warmup: int = 1
) -> dict[str, Any]:
    params = {"jobs": jobs, "calls": calls, "warmup": warmup}
    with r.emulator() as emu:
        log(f"c. list: seeding {jobs:,} jobs")
        shape = seed_listing(emu, jobs)
        log(
            f"   listing: {shape['body_bytes'] / 1e6:.1f} MB, {shape['nodes_total']:,} output nodes"
        )
        runs = _reps(r, clients, lambda c: r.child("list", c, emu.url, params))
    out: dict[str, Any] = {c: median_result(runs[c]) for c in clients}
    out["_params"] = {**params, **shape}
    return out


def bench_get(r: Runner, clients: list[str]) -> dict[str, Any]:
    cfg = r.cfg
    log(f"d. {cfg['get_calls']} sequential get_job calls")
    with r.emulator() as emu:
        job_id = emu.seed_jobs(1)[0]
        params = {"job_id": job_id, "calls": cfg["get_calls"], "warmup": cfg["get_warmup"]}
        runs = _reps(r, clients, lambda c: r.child("get", c, emu.url, params))
    out: dict[str, Any] = {c: median_result(runs[c]) for c in clients}
    out["_params"] = params
    return out


def bench_many_files(r: Runner, clients: list[str], data: Path) -> dict[str, Any]:
    cfg = r.cfg
    count, size = cfg["many_files"], cfg["many_files_kb"] * 1000
    log(f"e. one job of {count} files of {size} bytes under RLIMIT_NOFILE={cfg['nofile']}")
    folder = data / "many"
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"m-{i:05d}.txt"
        path.write_bytes(os.urandom(size))
        paths.append(str(path))
    with r.emulator() as emu:

        def one(client: str) -> dict[str, Any]:
            res = r.child("many_files", client, emu.url, {"paths": paths}, nofile=cfg["nofile"])
            if "error" not in res and res.get("files_recorded") != count:
                res["error"] = f"job recorded {res.get('files_recorded')} of {count} files"
            return res

        runs = _reps(r, clients, one)
    out: dict[str, Any] = {c: median_result(runs[c]) for c in clients}
    shutil.rmtree(folder)
    out["_params"] = {"files": count, "bytes_each": size, "nofile": cfg["nofile"]}
    return out


def make_tls(folder: Path) -> tuple[str, str] | None:
    """A throwaway CA and a certificate for 127.0.0.1: (server PEM, CA PEM), or None."""
    try:
        import trustme
    except ImportError:
        return None
    ca = trustme.CA()
    server, ca_pem = folder / "server.pem", folder / "ca.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(server)
    ca.cert_pem.write_to_path(ca_pem)
    return str(server), str(ca_pem)


def bench_faults(r: Runner, clients: list[str]) -> dict[str, Any]:
    cfg = r.cfg
    out: dict[str, Any] = {}
    for mode, args in FAULT_MODES.items():
        log(f"f. {cfg['fault_calls']} create_job calls under faults {mode} ({' '.join(args)})")
        for client in clients:
            prefix = f"{client}-{mode.replace('/', '-')}"
            params = {
                "count": cfg["fault_calls"],
                "concurrency": cfg["fault_concurrency"],
                "prefix": prefix,
            }
            with r.emulator(*args, "--seed", "1") as emu:
                res = r.child("faults", client, emu.url, params)
                if "error" not in res:
                    per_name = Counter(
                        name
                        for job in emu.list_jobs()
                        for name in (job.get("input_file_ids") or [])
                        if name.startswith(prefix)
                    )
                    failed = set(res.pop("failed_names", []))
                    res["jobs_created"] = sum(per_name.values())
                    res["duplicates"] = sum(n - 1 for n in per_name.values() if n > 1)
                    res["duplicated_requests"] = sum(1 for n in per_name.values() if n > 1)
                    res["failed_but_created"] = len(failed & set(per_name))
                    res["missing_after_ok"] = (
                        cfg["fault_calls"] - len(failed) - len(set(per_name) - failed)
                    )
            out.setdefault(mode, {})[client] = res
    out["_params"] = {
        "calls": cfg["fault_calls"],
        "concurrency": cfg["fault_concurrency"],
        "modes": {m: " ".join(a) for m, a in FAULT_MODES.items()},
    }
    return out


# ----------------------------------------------------------------------------- profiling


PROFILE_SPECS: dict[str, tuple[str, str, bool]] = {  # key -> workload, client, over TLS
    "upload": ("upload", "ours", False),
    "upload-sync": ("upload", "ours-sync", False),
    "creates": ("creates", "ours", False),
    "list": ("list", "ours", False),
    "get-sync": ("get", "ours-sync", False),
    "get": ("get", "ours", False),
    "many_files": ("many_files", "ours", False),
    "tls-upload": ("upload", "ours", True),
    "tls-upload-sync": ("upload", "ours-sync", True),
    "tls-creates": ("creates", "ours", True),
}


def profile_misses(
    r: Runner,
    results: dict[str, Any],
    targets: list[dict[str, Any]],
    data: Path,
    tls: tuple[str, str] | None,
) -> dict[str, str]:
    """Re-run our client under cProfile (all threads) for each missed target; the top lines."""
    assert r.profile_dir is not None
    r.profile_dir.mkdir(parents=True, exist_ok=True)
    cfg = r.cfg
    keys = [
        t["profile"] for t in targets if t["status"] == "MISS" and t["profile"] in PROFILE_SPECS
    ]
    texts: dict[str, str] = {}
    prof_data = data / "prof"
    upload_paths: list[str] = []
    many_paths: list[str] = []
    for key in dict.fromkeys(keys):
        workload, client, over_tls = PROFILE_SPECS[key]
        if over_tls and tls is None:
            continue
        log(f"profiling our client: {key}")
        prof_path = str(r.profile_dir / f"{key}.prof")
        params: dict[str, Any] = {}
        nofile = None
        if workload == "upload":
            if not upload_paths:
                size = cfg["upload_mib"] * MIB
                upload_paths, _ = make_files(prof_data, "prof", cfg["upload_files"], size)
            params = {"paths": upload_paths, "sizes": [os.path.getsize(p) for p in upload_paths]}
        elif workload == "creates":
            params = {
                k: v for k, v in results["creates"]["_params"].items() if k not in ("tls", "ca")
            }
        elif workload == "list":
            params = {"jobs": cfg["list_jobs"], "calls": cfg["list_calls"], "warmup": 1}
        elif workload == "many_files":
            if not many_paths:
                prof_data.mkdir(parents=True, exist_ok=True)
                for i in range(cfg["many_files"]):
                    path = prof_data / f"m-{i:05d}.txt"
                    path.write_bytes(os.urandom(cfg["many_files_kb"] * 1000))
                    many_paths.append(str(path))
            params = {"paths": many_paths}
            nofile = cfg["nofile"]
        if over_tls and tls is not None:
            params["ca"] = tls[1]
        with r.emulator(tls=tls if over_tls else None) as emu:
            if workload == "list":
                seed_listing(emu, cfg["list_jobs"])
            elif workload == "get":
                ids = emu.seed_jobs(1)
                params = {"job_id": ids[0], "calls": cfg["get_calls"], "warmup": cfg["get_warmup"]}
            res = r.child(workload, client, emu.url, params, nofile=nofile, profile=prof_path)
        if "error" in res or not os.path.exists(prof_path):
            texts[key] = f"profiling failed: {res.get('error')}"
            continue
        texts[key] = _profile_text(prof_path)
    shutil.rmtree(prof_data, ignore_errors=True)
    return texts


def _profile_text(prof_path: str) -> str:
    import pstats
    from io import StringIO

    out = []
    for order, count in (("tottime", 20), ("cumulative", 12)):
        buf = StringIO()
        stats = pstats.Stats(prof_path, stream=buf)
        stats.strip_dirs().sort_stats(order).print_stats(count)
        out.append(f"-- by {order} --\n" + _trim_pstats(buf.getvalue()))
    return "\n\n".join(out)


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("ncalls"):
            head = [x for x in lines[:i] if "function calls" in x]
            return "\n".join(head + lines[i:]).rstrip()
    return text.rstrip()


# ----------------------------------------------------------------------------- main


def redraw(path: Path) -> int:
    """Rewrite the Markdown report and the chart of an earlier run from its JSON."""
    report = json.loads(path.read_text())
    report["targets"] = evaluate_targets(report["results"], report.get("with_sdk", True))
    problem = draw_chart(report, path.with_suffix(".png"))
    if problem:
        log(f"no chart: {problem}")
    path.with_suffix(".md").write_text(render_markdown(report) + "\n")
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"rewritten {path.with_suffix('.md')} and .png from {path.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 repetition (CI)")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK columns")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (median reported)")
    parser.add_argument(
        "--only", default=WORKLOADS, help=f"comma-separated workloads to run (default: {WORKLOADS})"
    )
    parser.add_argument("--no-profile", action="store_true", help="do not profile misses")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
    parser.add_argument("--out", default=None, help="result file stem (default: results/latest)")
    parser.add_argument(
        "--redraw",
        metavar="JSON",
        default=None,
        help="measure nothing: rewrite the .md and .png of an earlier run from its .json",
    )
    args = parser.parse_args(argv)
    if args.redraw:
        return redraw(Path(args.redraw))

    cfg = dict(QUICK if args.quick else FULL)
    if args.reps is not None:
        cfg["reps"] = max(1, args.reps)
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = only - set(WORKLOADS.split(","))
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    notes: list[str] = []
    with_sdk = not args.no_sdk
    if with_sdk and importlib.util.find_spec("unstructured_client") is None:
        with_sdk = False
        notes.append(
            "unstructured_client is not importable: SDK columns skipped "
            "(pip install 'unstructured-jobs[bench]')."
        )
    elif not with_sdk:
        notes.append("--no-sdk: SDK columns skipped.")
    clients = {
        w: [c for c in cs if with_sdk or not c.startswith("sdk")] for w, cs in CLIENTS.items()
    }
    stem = Path(args.out) if args.out else HERE / "results" / ("quick" if args.quick else "latest")

    signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="uj-bench-"))
    profile_dir = None if args.quick or args.no_profile else HERE / "results" / "profiles"
    runner = Runner(cfg, tmp, profile_dir)
    results: dict[str, Any] = {}
    profiles: dict[str, str] = {}
    load_before = os.getloadavg()
    try:
        data = tmp / "data"
        data.mkdir()
        tls = make_tls(tmp) if "tls" in only else None
        if "tls" in only and tls is None:
            notes.append("trustme is not importable: the HTTPS workloads were skipped.")
        if "upload" in only:
            results["upload"] = bench_upload(runner, clients["upload"], data)
        if "creates" in only:
            results["creates"] = bench_creates(runner, clients["creates"], data)
        if "list" in only:
            results["list"] = bench_list(
                runner, clients["list"], cfg["list_jobs"], cfg["list_calls"]
            )
        if "get" in only:
            results["get"] = bench_get(runner, clients["get"])
        if "many_files" in only:
            results["many_files"] = bench_many_files(runner, clients["many_files"], data)
        if tls is not None:
            results["tls_upload"] = bench_upload(runner, clients["tls_upload"], data, tls)
            results["tls_creates"] = bench_creates(runner, clients["tls_creates"], data, tls)
        if "list100k" in only:
            results["list_big"] = bench_list(
                runner, clients["list"], cfg["list_big_jobs"], calls=1, warmup=1
            )
        if "faults" in only:
            results["faults"] = bench_faults(runner, clients["faults"])
        targets = evaluate_targets(results, with_sdk)
        if profile_dir is not None and any(t["status"] == "MISS" for t in targets):
            profiles = profile_misses(runner, results, targets, data, tls)
    except (KeyboardInterrupt, Interrupted) as exc:
        log(f"interrupted ({exc or 'Ctrl-C'}): cleaning up")
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    machine = machine_description()
    machine["load_before"] = [round(x, 2) for x in load_before]
    machine["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "config": cfg,
        "machine": machine,
        "clients": sorted({c for cs in clients.values() for c in cs}),
        "with_sdk": with_sdk,
        "notes": notes,
        "results": results,
        "targets": targets,
        "profiles": profiles,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    stem.parent.mkdir(parents=True, exist_ok=True)
    chart_path = stem.with_suffix(".png")
    if not args.no_chart:
        problem = draw_chart(report, chart_path)
        if problem:
            notes.append(f"no chart: {problem}")
        else:
            report["chart"] = chart_path.name
    markdown = render_markdown(report)
    print(markdown)
    stem.with_suffix(".md").write_text(markdown + "\n")
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"written {stem.with_suffix('.md')} and .json in {report['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
