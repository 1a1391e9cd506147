"""W9: planning a batch of 100,000 and 1,000,000 files, against the walk-and-stat floor.

    python benchmarks/w9_million.py                       # 100k and 1M, 3 repetitions (~10 min)
    python benchmarks/w9_million.py --sizes 100000 --reps 1
    python benchmarks/w9_million.py --keep-trees          # leave the trees for the next run

What is measured, each in a child process of its own (wall and CPU time of the measured block,
and the peak RSS of the whole child, imports included, from ``VmHWM``):

- **floor**: one Python thread walks the tree (``os.scandir``, recursively) and stats every
  file (``DirEntry.stat()``), summing sizes. Nothing is kept.
- **dry run**: ``plan_batch([tree], template_id=...)`` with no manifest on disk, then its
  counts, jobs and bytes read (what ``unstructured-jobs batch --dry-run`` prints by default).
- **cli dry run**: ``unstructured-jobs batch TREE --dry-run --template-id ...`` (stdout to
  a file): the whole command, interpreter start included.
- **resume start-up**: a second ``submit_batch`` over the manifest of a first run that stopped
  before sending anything (its first create-job got a 401: every file pending, in groups),
  timed up to the moment it calls ``create_job`` for the first group: the point where it would
  start sending.

The cli dry run is measured only with ``--modes floor,dry,cli-dry,resume`` (its figures depend
on how the command prints a large plan); ``dry-resume`` (``plan_batch`` over the manifest of
that interrupted first run: a dry run of a resume) only when asked too.

The ratios are ours/floor from the same run (medians of the repetitions); linearity is the
ratio at the largest size over the ratio at the smallest (1.0: cost grows as the work).
The trees (small files of 1-64 bytes, 1,000 per folder, two levels of folders) are built once
under ``--root`` (default: /tmp/uj-w9), reused by every repetition, and deleted at the end
unless ``--keep-trees``. Results go to ``results/w9.{md,json}``; figures are reported, never
asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEMPLATE_ID = "00000000-0000-4000-8000-00000000b0b0"
TAG = "W9-RESULT "
PER_FOLDER = 1000
FOLDERS_PER_TOP = 100
TARGET_RATIO = 3.0
TARGET_RSS_MIB = 256
MODES = ("floor", "dry", "cli-dry", "resume", "dry-resume")
DEFAULT_MODES = ("floor", "dry", "resume")


# ----------------------------------------------------------------------------- the trees


def tree_path(root: Path, count: int) -> Path:
    return root / f"tree-{count}"


def build_tree(root: Path, count: int) -> Path:
    """`count` small files under ``root/tree-<count>`` (kept when already complete)."""
    tree = tree_path(root, count)
    done = tree / ".complete"
    if done.exists():
        return tree
    if tree.exists():
        shutil.rmtree(tree)
    started = time.perf_counter()
    payload = bytes(range(256)) * 1
    for i in range(count):
        folder_no, j = divmod(i, PER_FOLDER)
        if j == 0:
            folder = tree / f"t{folder_no // FOLDERS_PER_TOP:03d}" / f"f{folder_no:05d}"
            folder.mkdir(parents=True)
        fd = os.open(folder / f"doc-{i:07d}.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, payload[: 1 + i % 64])
        os.close(fd)
    done.write_text("")  # hidden: never taken as an input
    log(f"built {tree} ({count} files) in {time.perf_counter() - started:.1f} s")
    return tree


# ----------------------------------------------------------------------------- children


def _peak_mib() -> float:
    """Peak RSS of this process (VmHWM). Not ``ru_maxrss``: Linux carries the RSS of the
    process that forked (here: the parent) into a child's ``ru_maxrss`` at exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """User + system CPU seconds of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_floor(tree: str) -> dict[str, Any]:
    cpu, started = _cpu(), time.perf_counter()
    files = total = 0
    stack = [tree]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    files += 1
                    total += entry.stat().st_size
    wall = time.perf_counter() - started
    return {"wall": wall, "cpu": _cpu() - cpu, "files": files, "bytes": total}


def child_dry(tree: str, manifest: str | None = None) -> dict[str, Any]:
    from unstructured_jobs.batch import PlannedAction, plan_batch

    cpu, started = _cpu(), time.perf_counter()
    plan = plan_batch([tree], template_id=TEMPLATE_ID, manifest=manifest)
    counts = plan.counts()
    jobs, size = plan.jobs, plan.upload_bytes
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    sent = counts.get(PlannedAction.SEND, 0)
    return {"wall": wall, "cpu": cpu, "files": sent, "jobs": jobs, "bytes": size}


class _Reached(BaseException):
    """The resumed run called create_job: start-up is over."""


def _client(create_job: Any) -> Any:
    from unstructured_jobs import AsyncJobsClient

    client = AsyncJobsClient(api_key="w9-key", server_url="http://127.0.0.1:9")
    client.create_job = create_job  # type: ignore[method-assign]
    return client


def child_prepare(tree: str, manifest: str) -> dict[str, Any]:
    """A first run that stops at its first create-job (a 401): everything pending, grouped."""
    import anyio

    from unstructured_jobs import AuthenticationError
    from unstructured_jobs.batch import submit_batch

    async def refuse(**_: Any) -> Any:
        raise AuthenticationError(
            "401", method="POST", url="http://127.0.0.1:9/api/v1/jobs/", status=401,
            body={"detail": "w9"}, headers={},
        )  # fmt: skip

    async def main() -> None:
        async with _client(refuse) as client:
            try:
                await submit_batch(client, [tree], template_id=TEMPLATE_ID, manifest=manifest)
            except AuthenticationError:
                return
        raise RuntimeError("the first run did not stop at its first create-job")

    started = time.perf_counter()
    anyio.run(main)
    return {"wall": time.perf_counter() - started}


def child_resume(tree: str, manifest: str) -> dict[str, Any]:
    import anyio

    from unstructured_jobs.batch import submit_batch

    reached: dict[str, float] = {}

    async def reach(**_: Any) -> Any:
        reached["at"], reached["cpu"], reached["peak"] = time.perf_counter(), _cpu(), _peak_mib()
        raise _Reached

    async def main() -> None:
        async with _client(reach) as client:
            await submit_batch(client, [tree], template_id=TEMPLATE_ID, manifest=manifest)

    cpu, started = _cpu(), time.perf_counter()
    with contextlib.suppress(_Reached, BaseExceptionGroup):
        anyio.run(main)
    if "at" not in reached:
        raise RuntimeError("the resumed run never reached create_job")
    return {
        "wall": reached["at"] - started,
        "cpu": reached["cpu"] - cpu,
        "peak_at_reach": reached["peak"],
    }


def child_main(mode: str, tree: str, manifest: str) -> None:
    if mode == "floor":
        result = child_floor(tree)
    elif mode == "dry":
        result = child_dry(tree)
    elif mode == "dry-resume":
        result = child_dry(tree, manifest)
    elif mode == "prepare":
        result = child_prepare(tree, manifest)
    elif mode == "resume":
        result = child_resume(tree, manifest)
    else:
        raise SystemExit(f"unknown mode {mode}")
    result["peak_mib"] = _peak_mib()
    print(TAG + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_child(mode: str, tree: Path, manifest: Path, timeout: float) -> dict[str, Any]:
    if mode == "cli-dry":
        return run_cli_dry(tree, manifest, timeout)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(tree), str(manifest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith(TAG):
            return dict(json.loads(line[len(TAG) :]))
    return {"error": (done.stderr.strip().splitlines() or ["no result"])[-1]}


def run_cli_dry(tree: Path, manifest: Path, timeout: float) -> dict[str, Any]:
    """The command line's dry run, whole (interpreter start and imports included)."""
    code = (
        "import sys, runpy\n"
        "sys.argv = ['unstructured-jobs'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('unstructured_jobs', run_name='__main__')\n"
        "finally:\n"
        "    hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')]\n"
        "    print('W9-PEAK', hwm[0].split()[1], file=sys.stderr)\n"
    )
    cmd = [sys.executable, "-c", code, "batch", str(tree), "--dry-run"]
    cmd += ["--template-id", TEMPLATE_ID, "--manifest", str(manifest) + ".absent"]
    out_path = Path(str(manifest) + ".stdout")
    started = time.perf_counter()
    try:
        with out_path.open("wb") as out:  # to a file: the parent holds none of it
            done = subprocess.run(
                cmd, stdout=out, stderr=subprocess.PIPE, text=True, timeout=timeout, check=False
            )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - started
    peak = [ln for ln in done.stderr.splitlines() if ln.startswith("W9-PEAK ")]
    lines, last = 0, ""
    with out_path.open(errors="replace") as out:
        for line in out:
            lines += 1
            last = line.strip() or last
    out_path.unlink()
    if done.returncode != 0 or not peak:
        return {"error": (done.stderr.strip().splitlines() or ["no result"])[-1]}
    return {
        "wall": wall,
        "peak_mib": int(peak[-1].split()[1]) / 1024,
        "stdout_lines": lines,
        "summary": last,
    }


def measure(root: Path, count: int, reps: int, modes: list[str], timeout: float) -> dict[str, Any]:
    tree = build_tree(root, count)
    manifest = root / f"manifest-{count}.sqlite"
    for leftover in root.glob(f"manifest-{count}.sqlite*"):
        leftover.unlink()
    if "resume" in modes or "dry-resume" in modes:
        log(f"{count}: preparing the interrupted first run")
        prepared = run_child("prepare", tree, manifest, timeout)
        if "error" in prepared:
            log(f"{count}: prepare failed: {prepared['error']}")
            modes = [m for m in modes if m not in ("resume", "dry-resume")]
        else:
            log(f"{count}: prepared in {prepared['wall']:.1f} s")
            shutil.copyfile(manifest, str(manifest) + ".pristine")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for rep in range(reps):
        for mode in modes:
            if mode in (
                "resume",
                "dry-resume",
            ):  # each resume starts from the first run's manifest: the
                # last one marked its first group as being sent
                for side in ("-wal", "-shm"):
                    Path(str(manifest) + side).unlink(missing_ok=True)
                shutil.copyfile(str(manifest) + ".pristine", manifest)
            result = run_child(mode, tree, manifest, timeout)
            runs[mode].append(result)
            brief = result.get("error") or f"{result['wall']:.2f} s, {result['peak_mib']:.0f} MiB"
            log(f"{count} rep {rep + 1}/{reps} {mode}: {brief}")
    out: dict[str, Any] = {"files": count}
    for mode, results in runs.items():
        good = [r for r in results if "error" not in r]
        if not good:
            out[mode] = {"error": results[-1].get("error", "no result")}
            continue
        out[mode] = {
            "wall": statistics.median(r["wall"] for r in good),
            "peak_mib": statistics.median(r["peak_mib"] for r in good),
            **({"cpu": statistics.median(r["cpu"] for r in good)} if "cpu" in good[0] else {}),
            "runs": len(good),
            **{k: v for k, v in good[-1].items() if k not in ("wall", "peak_mib", "cpu")},
        }
    floor = out.get("floor", {}).get("wall")
    floor_cpu = out.get("floor", {}).get("cpu")
    for mode in modes:
        if mode != "floor" and floor and "wall" in out[mode]:
            out[mode]["ratio"] = out[mode]["wall"] / floor
        if mode != "floor" and floor_cpu and "cpu" in out[mode]:
            out[mode]["cpu_ratio"] = out[mode]["cpu"] / floor_cpu
    for leftover in root.glob(f"manifest-{count}.sqlite*"):
        leftover.unlink()
    return out


def render(results: list[dict[str, Any]], modes: list[str]) -> str:
    lines = [
        "| files | what | wall s | ours/floor | CPU s | CPU ours/floor | peak RSS MiB |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        for mode in modes:
            m = r.get(mode, {})
            if "error" in m:
                lines.append(f"| {r['files']:,} | {mode} | error: {m['error']} | | | | |")
                continue
            ratio = f"{m['ratio']:.2f}x" if "ratio" in m else "1"
            cpu = f"{m['cpu']:.2f}" if "cpu" in m else "-"
            cpu_ratio = (
                f"{m['cpu_ratio']:.2f}x" if "cpu_ratio" in m else ("1" if "cpu" in m else "-")
            )
            lines.append(
                f"| {r['files']:,} | {mode} | {m['wall']:.2f} | {ratio} | {cpu} | {cpu_ratio} "
                f"| {m['peak_mib']:.0f} |"
            )
    if len(results) >= 2:
        small, big = results[0], results[-1]
        lines.append("")
        for mode in modes:
            if mode == "floor":
                continue
            a, b = small.get(mode, {}).get("ratio"), big.get(mode, {}).get("ratio")
            if a and b:
                lines.append(
                    f"- linearity of {mode}: ratio at {big['files']:,} / ratio at "
                    f"{small['files']:,} = {b / a:.2f}"
                )
    lines.append(
        "- CPU: user + system seconds of the measured block, all threads (the CLI row has no "
        "CPU figure: it is a whole process)"
    )
    lines.append(
        f"- targets: ours/floor <= {TARGET_RATIO:.0f}x, peak RSS <= {TARGET_RSS_MIB} MiB, "
        "linearity about 1"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", nargs=3, metavar=("MODE", "TREE", "MANIFEST"), help=argparse.SUPPRESS)
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"some of {', '.join(MODES)}")
    p.add_argument("--root", default="/tmp/uj-w9")
    p.add_argument("--keep-trees", action="store_true")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", default=str(HERE / "results" / "w9"))
    args = p.parse_args(argv)
    if args.child:
        child_main(*args.child)
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(","))
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        p.error(f"unknown modes: {', '.join(sorted(unknown))}")
    if "floor" not in modes:
        modes.insert(0, "floor")
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for count in sizes:
            results.append(measure(root, count, args.reps, modes, args.timeout))
    finally:
        if not args.keep_trees:
            shutil.rmtree(root, ignore_errors=True)
    text = render(results, modes)
    print(text)
    load = os.getloadavg()
    Path(args.out + ".md").write_text(
        f"# W9: planning 100k-1M files\n\nload average at the end: {load[0]:.2f}\n\n{text}\n"
    )
    Path(args.out + ".json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
