"""W7: the end-to-end batch against an emulator that enforces the service's published limits.

    python benchmarks/w7_batch_limits.py            # 300 files, jobs of 4 s and 10 s (~6 min)
    python benchmarks/w7_batch_limits.py --quick    # 50 files, jobs of 4 s (~1 min)
    python benchmarks/w7_batch_limits.py --clients run_batch --run-for 10 --reps 3

The emulator runs in its own process (``python -m unstructured_jobs.testing --service-limits
--run-for R``): a launch arriving less than 1 s after the last accepted one gets 429 with
``Retry-After``, at most 5 jobs run (the rest stay SCHEDULED), at most 10 files per job, and each
job stays IN_PROGRESS for R seconds once started. Each client sends the same N files of 10 kB
(J = N / 10 jobs) in a process of its own, against a fresh emulator:

- ``run_batch``: ``unstructured_jobs.batch.run_batch`` with its defaults (no download);
- ``cli``: ``unstructured-jobs batch DIR --template-id ... --manifest ...`` (its wall time
  includes the interpreter's start-up, as a user's does). The package's modules are compiled
  first (``compileall``, into their ignored ``__pycache__``), as ``pip install`` does: a checkout
  run under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile sixty modules at every start
  (~0.2 s), a cost no installed copy has (``--no-compile`` measures it so);
- ``sdk_loop``: the issue's baseline, ten lines over the official SDK: create each job, and on a
  429 sleep ``Retry-After`` and try again; then list the jobs once a second until all ended.

Figures (see README.md, "W7"): wall time over the theoretical minimum
(the last end of J jobs launched one per i = 1 s, 5 running at once, each r s long: about
``max((J-1)*i + r, ceil(J/5)*r)``, see `minimum`) + first upload (measured here: one
10-file create-job to an emulator without limits, median of 3), the 429 refusals the client
caused (``GET /_emulator/limits``) and per 20 launches, jobs created beyond J (duplicates),
files lost (not in a COMPLETED job) or sent twice, whether every job COMPLETED, and how late the
client ended after the last job completed (an observer lists the jobs every 0.2 s). The results
go to ``results/w7.{md,json}`` (``--quick``: ``results/quick-w7.*``, not committed). It exits 0
whatever the figures are.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import API_KEY, RESULT_PREFIX  # noqa: E402
from _emulator import HEADERS, EmulatorProcess, machine_description  # noqa: E402

TEMPLATE = "hi_res_partition"
INTERVAL = 1.0  # the published launch interval
RUNNING = 5  # the published running cap
PER_JOB = 10  # the published files per job
FILE_BYTES = 10_000
CLIENTS = ("run_batch", "cli", "sdk_loop")
TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def minimum(jobs: int, run_for: float, first_upload: float) -> float:
    """The theoretical minimum wall time of `jobs` jobs at the published limits.

    Job k can be launched at ``k * i`` at the earliest and starts running once it is launched
    and one of the `RUNNING` slots is free (the job k - RUNNING has ended); it ends `run_for`
    later. The last end is the minimum. It is the issue's ``max((J-1)*i + r, ceil(J/5)*r)``
    when the launches are not what staggers the waves (4 s jobs: 33 s for 30 jobs), and more
    when they are: 10 s jobs end at 64 s, not 60 s, since the last wave starts at 50 + 4 s
    (as ``shared/notes/service.md`` says: "about 64 s with 10 s jobs").
    """
    ends: list[float] = []
    for k in range(jobs):
        start = k * INTERVAL
        if k >= RUNNING:
            start = max(start, ends[k - RUNNING])
        ends.append(start + run_for)
    return (ends[-1] if ends else 0.0) + first_upload


# ----------------------------------------------------------------------------- the clients


def child_run_batch(url: str, folder: str, manifest: str) -> dict[str, Any]:
    from unstructured_jobs.batch import run_batch

    started = time.monotonic()
    try:
        report = run_batch(
            [folder], api_key=API_KEY, server_url=url, template_id=TEMPLATE, manifest=manifest
        )
    except Exception as exc:  # reported, not raised: the harness goes on
        return {"t0": started, "t1": time.monotonic(), "error": f"{type(exc).__name__}: {exc}"}
    return {"t0": started, "t1": time.monotonic(), "ok": report.ok, "counts": report.counts()}


def child_sdk_loop(url: str, folder: str, manifest: str) -> dict[str, Any]:
    """The reference loop: the official SDK, Retry-After slept on a 429, a poll once a second."""
    from unstructured_client import UnstructuredClient
    from unstructured_client.models import errors, operations, shared

    paths = sorted(os.path.join(folder, name) for name in os.listdir(folder))
    groups = [paths[i : i + PER_JOB] for i in range(0, len(paths), PER_JOB)]
    client = UnstructuredClient(api_key_auth=API_KEY, server_url=url)
    started = time.monotonic()
    # -- the ten lines -----------------------------------------------------------------------
    ids = []
    for group in groups:
        while True:
            try:
                files = [shared.InputFiles(content=open(p, "rb"), file_name=os.path.basename(p))  # noqa: SIM115
                         for p in group]  # fmt: skip
                body = shared.BodyCreateJob(request_data=json.dumps({"template_id": TEMPLATE}),
                                            input_files=files)  # fmt: skip
                res = client.jobs.create_job(
                    request=operations.CreateJobRequest(body_create_job=body)
                )
                ids.append(res.job_information.id)
                break
            except errors.SDKError as exc:
                if exc.status_code != 429:
                    raise
                time.sleep(float(exc.raw_response.headers.get("Retry-After", "1")))
            finally:
                for f in files:
                    f.content.close()  # type: ignore[union-attr]
    while ids:
        time.sleep(1.0)
        listed = client.jobs.list_jobs(request=operations.ListJobsRequest()).response_list_jobs
        ended = {j.id for j in listed or [] if j.status in TERMINAL}
        ids = [i for i in ids if i not in ended]
    # ----------------------------------------------------------------------------------------
    return {"t0": started, "t1": time.monotonic(), "ok": True}


CHILDREN = {"run_batch": child_run_batch, "sdk_loop": child_sdk_loop}


def run_child(kind: str, url: str, folder: str, manifest: str, timeout: float) -> dict[str, Any]:
    """One client in a process of its own; its result (times are `time.monotonic`, which is
    the same clock in every process of the machine)."""
    if kind == "cli":
        cmd = [sys.executable, "-m", "unstructured_jobs", "batch", folder, "--template-id",
               TEMPLATE, "--manifest", manifest, "--server-url", url,
               "--api-key", API_KEY]  # fmt: skip
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)  # fmt: skip
        ended = time.monotonic()
        lines = proc.stderr.splitlines()
        return {
            "t0": started,
            "t1": ended,
            "ok": proc.returncode == 0,
            "exit": proc.returncode,
            "lines_429": sum("429" in line for line in lines),
            "stderr_lines": len(lines),
            "tail": lines[-3:],
        }
    cmd = [sys.executable, __file__, "--child", kind, "--url", url, "--folder", folder,
           "--manifest", manifest]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"child exited {proc.returncode}: " + " | ".join(tail)}


# ----------------------------------------------------------------------------- the harness


def get_json(url: str, path: str) -> Any:
    request = urllib.request.Request(url + path, headers=HEADERS)
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


class Observer(threading.Thread):
    """Lists the jobs every 0.2 s: when was a job last seen to have completed?"""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.completed = 0
        self.last_completion: float | None = None

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                jobs = get_json(self.url, "/api/v1/jobs/")
            except OSError:
                continue
            done = sum(j["status"] in TERMINAL for j in jobs)
            if done > self.completed:
                self.completed, self.last_completion = done, time.monotonic()


def first_upload(folder: Path, log_path: str) -> float:
    """Seconds one 10-file create-job takes against an emulator without limits (median of 3)."""
    import aiohttp

    names = sorted(os.listdir(folder))[:PER_JOB]

    async def one(url: str) -> float:
        async with aiohttp.ClientSession() as session:
            form = aiohttp.FormData()
            form.add_field("request_data", json.dumps({"template_id": TEMPLATE}))
            for name in names:
                form.add_field("input_files", (folder / name).read_bytes(), filename=name)
            started = time.monotonic()
            async with session.post(url + "/api/v1/jobs/", data=form, headers=HEADERS) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            return time.monotonic() - started

    with EmulatorProcess([], log_path=log_path) as emu:
        asyncio.run(one(emu.url))  # warm-up
        return statistics.median(asyncio.run(one(emu.url)) for _ in range(3))


def measure(
    kind: str, run_for: float, folder: Path, tmp: Path, upload: float, timeout: float
) -> dict[str, Any]:
    names = sorted(os.listdir(folder))
    jobs_needed = math.ceil(len(names) / PER_JOB)
    manifest = str(tmp / f"manifest-{kind}-{time.monotonic_ns()}.sqlite")
    args = ["--service-limits", "--run-for", str(run_for), "--api-key", API_KEY]
    with EmulatorProcess(args, log_path=str(tmp / "emulator.log")) as emu:
        observer = Observer(emu.url)
        observer.start()
        try:
            result = run_child(kind, emu.url, str(folder), manifest, timeout)
        finally:
            time.sleep(0.3)  # one more look by the observer
            observer.stop.set()
            observer.join()
        jobs = get_json(emu.url, "/api/v1/jobs/")
        limits = get_json(emu.url, "/_emulator/limits")
    received: dict[str, int] = {}
    for job in jobs:
        for name in job["input_file_ids"] or []:
            received[name] = received.get(name, 0) + 1
    completed = {
        name for job in jobs if job["status"] == "COMPLETED" for name in job["input_file_ids"] or []
    }
    floor = minimum(jobs_needed, run_for, upload)
    out: dict[str, Any] = {
        "client": kind,
        "run_for": run_for,
        "files": len(names),
        "jobs_needed": jobs_needed,
        "minimum_s": round(floor, 3),
        "jobs_created": len(jobs),
        "duplicate_jobs": max(0, len(jobs) - jobs_needed),
        "refusals_429": limits["refused"]["launch_interval"],
        "refusals_per_20_launches": round(
            20 * limits["refused"]["launch_interval"] / jobs_needed, 2
        ),
        "files_lost": len(set(names) - completed),
        "files_sent_twice": sum(n - 1 for n in received.values() if n > 1),
        "all_completed": all(job["status"] == "COMPLETED" for job in jobs),
    }
    if "error" in result:
        out["error"] = result["error"]
    if "t0" in result:
        wall = result["t1"] - result["t0"]
        out["wall_s"] = round(wall, 3)
        out["ratio"] = round(wall / floor, 3)
        if observer.last_completion is not None:
            out["ended_after_last_completion_s"] = round(result["t1"] - observer.last_completion, 2)
    for key in ("ok", "exit", "lines_429", "stderr_lines", "counts", "tail"):
        if key in result:
            out[key] = result[key]
    return out


def render(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# W7: the batch at the service's published limits",
        "",
        f"{meta['when']}; {meta['machine']['cpu']}, {meta['machine']['cores']} cores; "
        f"Python {meta['machine']['python']}; unstructured-jobs "
        f"{meta['machine']['versions'].get('unstructured-jobs')}, unstructured-client "
        f"{meta['machine']['versions'].get('unstructured-client')}; load average "
        f"{meta['load_start']} at the start, {meta['load_end']} at the end.",
        "",
        f"Emulator: `--service-limits --run-for R` (launch interval {INTERVAL:g} s, strict, from "
        f"arrival; {RUNNING} running; {PER_JOB} files per job); {meta['files']} files of "
        f"{FILE_BYTES // 1000} kB; first upload (one 10-file job, no limits, median of 3): "
        f"{meta['first_upload_s']:.3f} s. Minimum = the last end of J jobs launched one per i, "
        "5 running (about max((J-1)*i + r, ceil(J/5)*r)) + first "
        f"upload. Medians of {meta['reps']} run(s) per row. The CLI's modules were "
        + ("compiled first, as pip does." if meta.get("compiled") else "not compiled first."),
        "",
        "| client | r (s) | J | wall (s) | minimum (s) | wall / minimum | 429s | 429s per 20 "
        "launches | duplicate jobs | files lost | files sent twice | all COMPLETED | ended after "
        "last completion (s) | CLI lines with 429 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|",
    ]
    for r in results:
        if "wall_s" not in r:
            lines.append(f"| {r['client']} | {r['run_for']:g} | {r['jobs_needed']} | ERROR: "
                         f"{r.get('error', '?')} |||||||||||")  # fmt: skip
            continue
        lines.append(
            f"| {r['client']} | {r['run_for']:g} | {r['jobs_needed']} | {r['wall_s']:.1f} | "
            f"{r['minimum_s']:.1f} | **{r['ratio']:.2f}x** | {r['refusals_429']:g} | "
            f"{r['refusals_per_20_launches']:g} | {r['duplicate_jobs']:g} | {r['files_lost']:g} | "
            f"{r['files_sent_twice']:g} | {'yes' if r['all_completed'] else 'NO'} | "
            f"{r.get('ended_after_last_completion_s', float('nan')):.1f} | "
            f"{r.get('lines_429', '')} |"
        )
    lines += [
        "",
        "Targets (issue 20): wall / minimum <= 1.05, at most 1 refusal per 20 launches, 0 "
        "duplicate jobs, 0 files lost or sent twice, for `run_batch` and the CLI. `sdk_loop` is "
        "the reference: the official SDK, sleeping `Retry-After` on each 429.",
        "",
    ]
    return "\n".join(lines)


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in rows if "wall_s" in r] or rows
    merged = dict(good[0])
    for key in good[0]:
        values = [r.get(key) for r in good]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            merged[key] = statistics.median(values)  # type: ignore[type-var]
    merged["all_completed"] = all(r.get("all_completed") for r in rows)
    merged["runs"] = len(rows)
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 files, jobs of 4 s")
    parser.add_argument("--files", type=int, default=None, help="files to send (default 300)")
    parser.add_argument("--run-for", default=None, help="job run times, e.g. 4,10")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="run_batch,cli,sdk_loop")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument(
        "--no-compile", action="store_true", help="do not compile the package first (cli)"
    )
    parser.add_argument("--out", default=None, help="results/STEM.{md,json}")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--manifest", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = CHILDREN[args.child](args.url, args.folder, args.manifest)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    files = args.files or (50 if args.quick else 300)
    run_fors = [float(x) for x in (args.run_for or ("4" if args.quick else "4,10")).split(",")]
    clients = [c for c in args.clients.split(",") if c]
    for client in clients:
        if client not in CLIENTS:
            parser.error(f"unknown client {client!r}: {', '.join(CLIENTS)}")
    stem = args.out or ("quick-w7" if args.quick else "w7")
    if "cli" in clients and not args.no_compile:
        import compileall

        import unstructured_jobs

        compileall.compile_dir(os.path.dirname(unstructured_jobs.__file__), quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="w7-"))
    try:
        folder = tmp / "in"
        folder.mkdir()
        for i in range(files):
            (folder / f"doc-{i:05d}.pdf").write_bytes(os.urandom(FILE_BYTES))
        load_start = os.getloadavg()[0]
        upload = first_upload(folder, str(tmp / "emulator.log"))
        log(f"first upload: {upload:.3f} s")
        results = []
        for run_for in run_fors:
            jobs = math.ceil(files / PER_JOB)
            timeout = 10 * minimum(jobs, run_for, upload) + 120
            for client in clients:
                rows = []
                for rep in range(args.reps):
                    row = measure(client, run_for, folder, tmp, upload, timeout)
                    rows.append(row)
                    log(f"  r={run_for:g} {client:<9} rep {rep + 1}: " + json.dumps(
                        {k: row.get(k) for k in ("wall_s", "ratio", "refusals_429",
                         "duplicate_jobs", "files_lost", "files_sent_twice", "all_completed",
                         "ended_after_last_completion_s", "lines_429", "error")}))  # fmt: skip
                results.append(median_row(rows))
        meta = {
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_description(),
            "files": files,
            "reps": args.reps,
            "compiled": "cli" in clients and not args.no_compile,
            "first_upload_s": upload,
            "load_start": round(load_start, 2),
            "load_end": round(os.getloadavg()[0], 2),
        }
        report = render(results, meta)
        print(report)
        out = HERE / "results"
        (out / f"{stem}.md").write_text(report)
        (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
        log(f"wrote {out / stem}.md and .json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
