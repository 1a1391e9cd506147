"""Targets (PASS/MISS) and the Markdown report of a benchmark run."""

from __future__ import annotations

import math
from typing import Any

RSS_LIMIT_MIB = 64.0
RSS_FLAT_MIB = 4.0  # peak RSS may grow at most this much from the small to the large upload


def _get(results: dict[str, Any], *keys: str) -> Any:
    node: Any = results
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def _target(
    name: str, figure: str, limit: str, ok: bool | None, profile: str, why: str = ""
) -> dict[str, Any]:
    status = "SKIP" if ok is None else ("PASS" if ok else "MISS")
    if ok is None and "not run" not in figure:
        figure = "not run"
    return {
        "target": name,
        "figure": figure,
        "limit": limit,
        "status": status,
        "profile": profile,
        "note": why,
    }


def fmt(value: Any, digits: int = 3) -> str:
    """Three significant digits, or the value as text."""
    number = _num(value)
    if number is None:
        return "—" if value is None else str(value)
    if number == 0:
        return "0"
    if abs(number) >= 10 ** (digits - 1):
        return f"{number:,.0f}"
    return f"{number:.{digits}g}"


def ratio(a: Any, b: Any) -> str:
    x, y = _num(a), _num(b)
    if x is None or y is None or y == 0:
        return "—"
    return f"{x / y:.2f}x"


def evaluate_targets(results: dict[str, Any], with_sdk: bool) -> list[dict[str, Any]]:
    """Our client's targets from the issue, each PASS, MISS or SKIP (not measured)."""
    targets = []

    ours = _num(_get(results, "upload", "ours", "large", "cpu_per_gib"))
    raw = _num(_get(results, "upload", "raw", "large", "cpu_per_gib"))
    ok = None if ours is None or raw is None else ours <= 1.3 * raw
    targets.append(
        _target(
            "CPU per GiB uploaded ≤ 1.3 x raw aiohttp",
            f"{fmt(ours)} s vs {fmt(raw)} s ({ratio(ours, raw)})",
            "≤ 1.30x",
            ok,
            "upload",
        )
    )

    big = _num(_get(results, "upload", "ours", "large", "peak_rss_mib"))
    small = _num(_get(results, "upload", "ours", "small", "peak_rss_mib"))
    ok = None
    if big is not None and small is not None:
        ok = big <= RSS_LIMIT_MIB and big - small <= RSS_FLAT_MIB
    p = _get(results, "upload", "_params") or {}
    targets.append(
        _target(
            "Peak RSS ≤ 64 MiB and flat in file size",
            f"{fmt(big)} MiB at {p.get('files')}x{p.get('mib')} MiB, "
            f"{fmt(small)} MiB at {p.get('files')}x{p.get('small_mib')} MiB",
            f"≤ {RSS_LIMIT_MIB:g} MiB, growth ≤ {RSS_FLAT_MIB:g} MiB",
            ok,
            "upload",
        )
    )

    ours = _num(_get(results, "creates", "ours", "cpu_per_1k"))
    raw = _num(_get(results, "creates", "raw", "cpu_per_1k"))
    sdk = _num(_get(results, "creates", "sdk", "cpu_per_1k"))
    ok = None if ours is None or raw is None else ours <= 3 * raw
    targets.append(
        _target(
            "CPU per 1,000 small create_job ≤ 3 x raw aiohttp",
            f"{fmt(ours)} s vs {fmt(raw)} s ({ratio(ours, raw)})",
            "≤ 3.00x",
            ok,
            "creates",
        )
    )
    ok = None if ours is None or sdk is None else ours <= sdk / 5
    targets.append(
        _target(
            "CPU per 1,000 small create_job ≤ 1/5 of the SDK (async)",
            f"{fmt(ours)} s vs {fmt(sdk)} s ({ratio(ours, sdk)})" if sdk else "SDK not run",
            "≤ 0.20x",
            ok,
            "creates",
        )
    )

    ours = _num(_get(results, "list", "ours", "wall_s"))
    sdk = _num(_get(results, "list", "sdk", "wall_s"))
    ok = None if ours is None or sdk is None else ours <= 0.75 * sdk
    jobs = _get(results, "list", "_params", "jobs")
    targets.append(
        _target(
            f"List of {fmt(jobs)} jobs in ≤ 0.75 x the SDK's time",
            f"{fmt(ours)} s vs {fmt(sdk)} s ({ratio(ours, sdk)})" if sdk else "SDK not run",
            "≤ 0.75x",
            ok,
            "list",
        )
    )

    sync = _num(_get(results, "get", "ours-sync", "lat_median_ms"))
    asyn = _num(_get(results, "get", "ours", "lat_median_ms"))
    overhead = None if sync is None or asyn is None else sync - asyn
    ok = None if overhead is None else overhead <= 0.3
    targets.append(
        _target(
            "Sync per-call overhead (JobsClient - AsyncJobsClient median) ≤ 0.3 ms",
            f"{fmt(overhead)} ms ({fmt(sync)} - {fmt(asyn)})",
            "≤ 0.3 ms",
            ok,
            "get-sync",
        )
    )

    many = _get(results, "many_files", "ours")
    ok = None if many is None else "error" not in many
    p = _get(results, "many_files", "_params") or {}
    targets.append(
        _target(
            f"{fmt(p.get('files'))} files under {p.get('nofile')} descriptors succeed",
            "ok" if ok else (many or {}).get("error", "not run"),
            "success",
            ok,
            "many_files",
        )
    )

    dupes = _get(results, "faults", "drop", "ours", "duplicates")
    ok = None if dupes is None else dupes == 0
    targets.append(
        _target(
            "0 duplicate jobs under dropped connections",
            f"{dupes} duplicates" if dupes is not None else "not run",
            "0",
            ok,
            "faults",
        )
    )
    return targets


# ----------------------------------------------------------------------------- markdown


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _triple(
    lines: list[str],
    workload: str,
    figure: str,
    values: dict[str, Any],
    with_sdk: bool,
    ratios: bool = True,
) -> None:
    ours, raw, sdk = values.get("ours"), values.get("raw"), values.get("sdk")
    cells = [workload, figure, fmt(ours), fmt(raw)]
    if with_sdk:
        cells.append(fmt(sdk))
    cells.append(ratio(ours, raw) if ratios else "")
    if with_sdk:
        cells.append(ratio(ours, sdk) if ratios else "")
    lines.append(_row(cells))


def _pick(results: dict[str, Any], path: tuple[str, ...], field: str) -> dict[str, Any]:
    node = _get(results, *path) or {}
    out = {}
    for client in ("ours", "raw", "sdk"):
        entry = node.get(client)
        if isinstance(entry, dict):
            out[client] = entry.get("error_short") or entry.get(field)
            if "error" in entry and field not in entry:
                out[client] = "error"
    return out


def _sub(results: dict[str, Any], path: tuple[str, ...], sub: str, field: str) -> dict[str, Any]:
    node = _get(results, *path) or {}
    out = {}
    for client in ("ours", "raw", "sdk"):
        entry = node.get(client, {}).get(sub) if isinstance(node.get(client), dict) else None
        if isinstance(entry, dict):
            out[client] = "error" if "error" in entry else entry.get(field)
    return out


def render_markdown(report: dict[str, Any]) -> str:
    res = report["results"]
    with_sdk = "sdk" in report["clients"]
    m = report["machine"]
    v = m["versions"]
    cfg = report["config"]
    lines = [
        f"# unstructured-jobs benchmarks ({report['mode']} run)",
        "",
        f"- Date: {report['date']} — total run time {report['elapsed_s']} s, "
        f"medians of {cfg['reps']} repetition(s) (one process per client x workload x rep)",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}",
        f"- Python {m['python']} ({m['implementation']}); "
        + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "- Server: `python -m unstructured_jobs.testing` (emulator, own process, 127.0.0.1)",
    ]
    lines += [f"- Note: {n}" for n in report["notes"]]
    head = ["Workload", "Figure", "ours", "raw aiohttp"]
    sep = ["---", "---", "---:", "---:"]
    if with_sdk:
        head.append("official SDK")
        sep.append("---:")
    head.append("ours/raw")
    sep.append("---:")
    if with_sdk:
        head.append("ours/SDK")
        sep.append("---:")
    lines += ["", "## Figures", "", _row(head), _row(sep)]

    if "upload" in res:
        p = res["upload"]["_params"]
        w = f"a. 1 job, {p['files']}x{p['mib']} MiB"
        for field, label in (
            ("cpu_per_gib", "client CPU s per GiB"),
            ("mb_s", "throughput MB/s"),
            ("peak_rss_mib", "peak RSS MiB (VmHWM)"),
            ("rss_before_mib", "RSS before upload MiB"),
        ):
            _triple(lines, w, label, _sub(res, ("upload",), "large", field), with_sdk)
        _triple(lines, w, "integrity (sha256, size)",
                _sub(res, ("upload",), "large", "integrity"), with_sdk, ratios=False)  # fmt: skip
        w2 = f"a. 1 job, {p['files']}x{p['small_mib']} MiB"
        _triple(
            lines, w2, "peak RSS MiB", _sub(res, ("upload",), "small", "peak_rss_mib"), with_sdk
        )
        _triple(lines, w2, "client CPU s per GiB",
                _sub(res, ("upload",), "small", "cpu_per_gib"), with_sdk)  # fmt: skip
    if "creates" in res:
        p = res["creates"]["_params"]
        w = f"b. {fmt(p['count'])} create_job x 10 KB, conc. {p['concurrency']}"
        for field, label in (
            ("wall_s", "wall s"),
            ("cpu_per_1k", "client CPU s per 1,000 calls"),
            ("lat_median_ms", "latency median ms"),
            ("lat_p99_ms", "latency p99 ms"),
            ("errors", "errors"),
        ):
            _triple(lines, w, label, _pick(res, ("creates",), field), with_sdk, field != "errors")
    if "list" in res:
        p = res["list"]["_params"]
        w = f"c. list_jobs of {fmt(p['jobs'])} jobs ({p['body_bytes'] / 1e6:.1f} MB JSON)"
        _triple(lines, w, "fetch + parse wall s", _pick(res, ("list",), "wall_s"), with_sdk)
        _triple(lines, w, "client CPU s", _pick(res, ("list",), "cpu_s"), with_sdk)
    if "get" in res:
        g = res["get"]
        n = fmt(g["_params"]["calls"])

        def val(client: str, field: str) -> Any:
            entry = g.get(client) or {}
            return "error" if "error" in entry else entry.get(field)

        w = f"d. {n} sequential get_job, sync"
        for field, label in (
            ("lat_median_ms", "latency median ms"),
            ("lat_p99_ms", "latency p99 ms"),
            ("cpu_per_call_ms", "client CPU ms per call"),
        ):
            vals = {"ours": val("ours-sync", field), "sdk": val("sdk-sync", field)}
            _triple(lines, w + ": JobsClient vs SDK sync client", label, vals, with_sdk)
        w = f"d. {n} sequential get_job, async"
        for field, label in (
            ("lat_median_ms", "latency median ms"),
            ("lat_p99_ms", "latency p99 ms"),
            ("cpu_per_call_ms", "client CPU ms per call"),
        ):
            vals = {"ours": val("ours", field), "raw": val("raw", field)}
            _triple(lines, w + ": AsyncJobsClient vs aiohttp", label, vals, with_sdk)
        s, a = _num(val("ours-sync", "lat_median_ms")), _num(val("ours", "lat_median_ms"))
        over = None if s is None or a is None else s - a
        _triple(lines, "d. sync overhead per call", "JobsClient - AsyncJobsClient median ms",
                {"ours": over}, with_sdk, ratios=False)  # fmt: skip
    if "many_files" in res:
        p = res["many_files"]["_params"]
        w = f"e. 1 job of {fmt(p['files'])} x 1 KB, ulimit -n {p['nofile']}"
        outcome = {}
        for client in ("ours", "raw", "sdk"):
            entry = res["many_files"].get(client)
            if entry is not None:
                outcome[client] = (
                    f"error ({_short(entry['error'])})"
                    if "error" in entry
                    else f"ok, {fmt(entry.get('wall_s'))} s"
                )
        _triple(lines, w, "outcome", outcome, with_sdk, ratios=False)
    if "faults" in res:
        f = res["faults"]
        n = fmt(f["_params"]["calls"])
        for mode, args in f["_params"]["modes"].items():
            w = f"f. {n} create_job, `{args}`"
            for field, label in (
                ("ok", "succeeded"),
                ("errors", "errors (after retries)"),
                ("jobs_created", "jobs created"),
                ("duplicates", "duplicate jobs"),
                ("failed_but_created", "errors whose job exists"),
                ("wall_s", "wall s"),
            ):
                _triple(lines, w, label, _pick(res, ("faults", mode), field), with_sdk,
                        ratios=field == "wall_s")  # fmt: skip

    lines += ["", "## Targets (our client)", "", _row(["Target", "Measured", "Limit", "Result"])]
    lines.append(_row(["---", "---", "---", "---"]))
    for t in report["targets"]:
        lines.append(_row([t["target"], t["figure"], t["limit"], f"**{t['status']}**"]))

    errors = _collect_errors(res)
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {where}: `{text}`" for where, text in errors]
    if "faults" in res:
        lines += ["", "## Error kinds under faults", ""]
        for mode in res["faults"]["_params"]["modes"]:
            for client, entry in res["faults"][mode].items():
                kinds = entry.get("error_kinds") or {}
                text = ", ".join(f"{k} x {c}" for k, c in kinds.items()) or "none"
                lines.append(f"- {mode}, {client}: {text}")
    if report.get("profiles"):
        lines += ["", "## Profiles of our client for missed targets (cProfile, by tottime)", ""]
        for key, text in report["profiles"].items():
            lines += [f"### {key}", "", "```", text, "```", ""]
    return "\n".join(lines).rstrip()


def _short(text: str, limit: int = 70) -> str:
    text = text.replace("|", "/")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _collect_errors(res: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key in ("error", "first_error", "rep_error"):
                if node.get(key):
                    found.append((where, str(node[key]).replace("`", "'")))
            for key, child in node.items():
                if not key.startswith("_") and isinstance(child, dict):
                    walk(child, f"{where}/{key}" if where else key)

    walk(res, "")
    return found
