"""W8: outputs of a long document with embeddings (issue 25), against the floor.

    python benchmarks/w8_outputs.py             # 160 MB and 323 MB outputs, 3 reps (~4 min)
    python benchmarks/w8_outputs.py --quick     # a 16 MB output, 1 rep (~20 s)
    python benchmarks/w8_outputs.py --reps 5

The emulator runs in its own process (``python -m unstructured_jobs.testing --output-elements N
--embedding-dim 1536``): each file's output is N elements with a 1,536-float embedding each,
8,000 (about 160 MB) and 16,000 (about 320 MB, the issue's long PDF). Every measurement runs in a
fresh child process of its own, writing to a memory-backed folder (/dev/shm when it exists, so
that disk writeback does not decide the figures), interleaved rep by rep:

- ``floor``: the least a client can do to save an output: one ``aiohttp.ClientSession``, the
  GET, ``resp.content.iter_chunked(64 KiB)`` written to a file opened with ``open(..., "wb")``;
- ``ours``: ``AsyncJobsClient.download_job_output_to`` with its defaults (the child imports
  anyio's asyncio backend first, which the first worker-thread trip of a process would do:
  about 30 ms of CPU once per process, an import like the others not counted);
- ``parse``: ``json.loads`` of the whole saved output (what holding it in memory costs);
- ``iterate``: ``unstructured_jobs.iter_elements`` over the saved output, touching each element;
- ``iter_job_output``: ``AsyncJobsClient.iter_job_output`` (download to a temporary file, then
  iterate), touching each element;
- ``run_job``: ``AsyncJobsClient.run_job`` with its defaults (one 16-byte input; the output is
  the emulator's), up to the `JobRun`, before any element is touched.

Per child: wall and CPU seconds of the operation, and its peak RSS growth (VmHWM at the end minus
VmRSS just before the operation, the peak reset there: imports, the session and the client are
not counted). Medians
over the reps. Results: ``results/w8.{md,json}`` (``--quick``: ``results/quick-w8.*``). It exits
0 whatever the figures are.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import API_KEY, MIB, RESULT_PREFIX, Meter, proc_status_kib  # noqa: E402
from _emulator import EmulatorProcess, machine_description  # noqa: E402

DIM = 1536
SIZES = {"160 MB": 8_000, "323 MB": 16_000}
KINDS = ("floor", "ours", "parse", "iterate", "iter_job_output", "run_job")
CHUNK = 64 * 1024


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the children


def _rss_mib() -> float:
    """The current RSS, after resetting the peak to it (``5`` to clear_refs, Linux >= 4.0):
    the peak read at the end is then the operation's own, not the imports'."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    return proc_status_kib("VmRSS") / 1024


def _peak_mib() -> float:
    return proc_status_kib("VmHWM") / 1024


async def _floor(url: str, job: str, file_id: str, target: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession(headers={"unstructured-api-key": API_KEY}) as session:
        before = _rss_mib()
        with Meter() as meter:
            async with session.get(
                f"{url}/api/v1/jobs/{job}/download", params={"file_id": file_id}
            ) as resp:
                resp.raise_for_status()
                with open(target, "wb") as fh:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        fh.write(chunk)
    return _report(meter, before, size=os.path.getsize(target))


async def _ours(url: str, job: str, file_id: str, target: str) -> int:
    import anyio.to_thread

    from unstructured_jobs import AsyncJobsClient

    async with AsyncJobsClient(API_KEY, url) as client:
        await client.get_job(job)  # the connection and the client's lazy parts, not measured
        # The first worker-thread trip of a process imports anyio's asyncio backend (about
        # 30 ms of CPU, once per process): an import, not counted, like the others.
        await anyio.to_thread.run_sync(lambda: None)
        before = _rss_mib()
        with Meter() as meter:
            path = await client.download_job_output_to(job, target, file_id=file_id)
    return _report(meter, before, size=path.stat().st_size)


def _parse(target: str) -> int:
    before = _rss_mib()
    with Meter() as meter, open(target, "rb") as fh:
        data = json.loads(fh.read())
    return _report(meter, before, elements=len(data))


def _iterate(target: str) -> int:
    from unstructured_jobs import iter_elements

    before = _rss_mib()
    n = 0
    with Meter() as meter:
        for element in iter_elements(target):
            n += len(element["embeddings"]) > 0
    return _report(meter, before, elements=n)


async def _iter_job_output(url: str, job: str, file_id: str) -> int:
    from unstructured_jobs import AsyncJobsClient

    async with AsyncJobsClient(API_KEY, url) as client:
        await client.get_job(job)
        before = _rss_mib()
        n = 0
        with Meter() as meter:
            async for element in client.iter_job_output(job, file_id=file_id):
                n += len(element["embeddings"]) > 0
    return _report(meter, before, elements=n)


async def _run_job(url: str) -> int:
    from unstructured_jobs import AsyncJobsClient

    async with AsyncJobsClient(API_KEY, url) as client:
        await client.list_templates()  # the connection and the client's lazy parts
        before = _rss_mib()
        with Meter() as meter:
            run = await client.run_job(
                template_id="hi_res_partition", input_files=[("long.pdf", b"%PDF-1.7 " * 2)]
            )
        (f,) = run.files
        spilled = f.spilled is not None
        run.close()
    return _report(meter, before, ok=run.ok, spilled=spilled)


def _report(meter: Meter, before: float, **extra: Any) -> int:
    result = {"wall": meter.wall, "cpu": meter.cpu, "growth_mib": _peak_mib() - before, **extra}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def child(args: argparse.Namespace) -> int:
    kind = args.child
    if kind == "floor":
        return asyncio.run(_floor(args.url, args.job, args.file_id, args.target))
    if kind == "ours":
        return asyncio.run(_ours(args.url, args.job, args.file_id, args.target))
    if kind == "parse":
        return _parse(args.target)
    if kind == "iterate":
        return _iterate(args.target)
    if kind == "iter_job_output":
        return asyncio.run(_iter_job_output(args.url, args.job, args.file_id))
    return asyncio.run(_run_job(args.url))


# ----------------------------------------------------------------------------- the orchestrator


def run_child(kind: str, url: str, job: str, file_id: str, target: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--url", url, "--job", job,
           "--file-id", file_id, "--target", target]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    return {"error": (proc.stderr.strip().splitlines() or ["no result"])[-1]}


def measure(label: str, elements: int, reps: int, folder: Path, logs: str) -> dict[str, Any]:
    from unstructured_jobs import JobsClient

    args = ["--max-running", "0", "--output-elements", str(elements), "--embedding-dim", str(DIM)]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    with EmulatorProcess(args, log_path=logs) as emu:
        with JobsClient(API_KEY, emu.url) as client:
            job = client.create_job(template_id="t", input_files=[("long.pdf", b"x")])
        saved = str(folder / "saved.json")
        for rep in range(reps):
            for kind in KINDS:
                target = saved if kind in ("parse", "iterate") else str(folder / f"{kind}.json")
                result = run_child(kind, emu.url, job.id, "long.pdf", target)
                runs[kind].append(result)
                if kind == "floor" and "error" not in result and not os.path.exists(saved):
                    shutil.copyfile(target, saved)
                for name in ("floor.json", "ours.json"):
                    if kind != "floor" and (folder / name).exists():
                        (folder / name).unlink()
                log(f"{label} rep {rep + 1}/{reps} {kind}: {_short(result)}")
        size = os.path.getsize(saved)
    summary: dict[str, Any] = {"label": label, "elements": elements, "bytes": size, "runs": runs}
    for kind, results in runs.items():
        good = [r for r in results if "error" not in r]
        summary[kind] = {
            key: statistics.median(r[key] for r in good) if good else None
            for key in ("wall", "cpu", "growth_mib")
        }
    return summary


def _short(result: dict[str, Any]) -> str:
    if "error" in result:
        return str(result["error"])
    return f"wall {result['wall']:.3f}s cpu {result['cpu']:.3f}s +{result['growth_mib']:.0f} MiB"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def report(
    results: list[dict[str, Any]], reps: int, machine: dict[str, Any], load: list[float]
) -> str:
    lines = [
        "# W8: outputs of any size",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {machine['cpu']}, {machine['cores']} "
        f"cores, Python {machine['python']}, aiohttp {machine['versions'].get('aiohttp')}; "
        f"medians of {reps} interleaved runs, each in a fresh process, to a memory-backed "
        "folder; the emulator in its own process. See `w8_outputs.py` for what each row does. "
        f"Load average (1 min) at the start and the end: {load[0]:.1f}, {load[-1]:.1f} (a "
        "shared machine: wall times vary with it; the ratios come from interleaved runs).",
        "",
        "| output | operation | wall s | CPU s | peak RSS growth MiB | ours/floor wall | "
        "ours/floor CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {
        "floor": "stream to disk: floor (iter_chunked 64 KiB)",
        "ours": "stream to disk: download_job_output_to",
        "parse": "json.loads of the whole",
        "iterate": "iter_elements",
        "iter_job_output": "iter_job_output (download + iterate)",
        "run_job": "run_job, defaults (before touching elements)",
    }
    for r in results:
        size = f"{r['label']} ({r['bytes'] / 1e6:.0f} MB, {r['elements']:,} el.)"
        floor = r["floor"]
        for kind in KINDS:
            m = r[kind]
            if m["wall"] is None:
                lines.append(f"| {size} | {names[kind]} | failed | | | | |")
                continue
            wall_ratio = _ratio(m["wall"], floor["wall"]) if kind == "ours" else ""
            cpu_ratio = _ratio(m["cpu"], floor["cpu"]) if kind == "ours" else ""
            lines.append(
                f"| {size} | {names[kind]} | {m['wall']:.3f} | {m['cpu']:.3f} | "
                f"{m['growth_mib']:.0f} | {wall_ratio} | {cpu_ratio} |"
            )
    lines += [
        "",
        "Targets (issue 25): stream to disk within 1.2x the floor's wall and CPU, memory flat; "
        "iter_elements peak growth <= 64 MiB over 323 MB; run_job with defaults <= 512 MiB.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 16 MB output, one rep")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--job", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--file-id", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--target", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    sizes = {"16 MB": 800} if args.quick else SIZES
    reps = args.reps or (1 if args.quick else 3)
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    out = HERE / "results" / ("quick-w8" if args.quick else "w8")
    results = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="w8-", dir=base) as tmp:
        for label, elements in sizes.items():
            folder = Path(tmp) / label.replace(" ", "")
            folder.mkdir()
            results.append(measure(label, elements, reps, folder, str(Path(tmp) / "emu.log")))
            shutil.rmtree(folder)
    load.append(os.getloadavg()[0])
    machine = machine_description()
    text = report(results, reps, machine, load)
    print(text)
    out.with_suffix(".md").write_text(text)
    payload = {"machine": machine, "reps": reps, "load": load, "results": results, "mib": MIB}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
