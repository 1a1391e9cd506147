"""Ratios to the floor, targets (PASS/MISS/SKIP) and the Markdown report of a benchmark run.

Every figure of our client is reported as ours/floor (the primary ratio: the floor is the least
work possible, `_floor.py`) and ours/SDK, from the same run. Sync figures compare like with
like: `JobsClient` with the floor's sync variant and the SDK's sync client.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

RSS_LIMIT_MIB = 64.0
RSS_FLAT_MIB = 4.0  # peak RSS may grow at most this much from the small to the large upload
LINEAR_LIMIT = 1.3  # CPU per listed job at 100k may be at most this times the one at 10k

# Table columns: key -> label. Sync rows put the sync clients in the same columns.
COLUMNS = {"ours": "ours", "floor": "floor", "formdata": "aiohttp FormData", "sdk": "official SDK"}
ASYNC = {"ours": "ours", "floor": "floor", "formdata": "formdata", "sdk": "sdk"}
SYNC = {"ours": "ours-sync", "floor": "floor-sync", "sdk": "sdk-sync"}


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


def _div(a: Any, b: Any) -> float | None:
    x, y = _num(a), _num(b)
    return None if x is None or y is None or y == 0 else x / y


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


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def ratio(a: Any, b: Any) -> str:
    return fmt_ratio(_div(a, b))


# ----------------------------------------------------------------------------- ratios to the floor

# key, label, workload, sub-result (upload size) or None, field, clients (ours, floor, SDK, the
# other SDK client that ours must also beat), limit (x floor) or None, and against the SDK: True
# (below it), a number (at most that share of it) or False. Targets: issue 21 (sized to the real
# service: a round trip of 50-300 ms dwarfs a few hundred microseconds per call).
RATIO_SPECS: list[
    tuple[str, str, str, str | None, str, tuple[str, ...], float | None, bool | float]
] = [
    ("upload", "a. upload {files}x{mib} MiB, CPU/GiB, async", "upload", "large", "cpu_per_gib",
     ("ours", "floor", "sdk", "sdk-sync"), 1.2, True),
    ("upload-sync", "a. upload {files}x{mib} MiB, CPU/GiB, sync", "upload", "large",
     "cpu_per_gib", ("ours-sync", "floor-sync", "sdk-sync", "sdk"), 1.2, True),
    ("creates", "b. {count:,} create_job, CPU per 1k", "creates", None, "cpu_per_1k",
     ("ours", "floor", "sdk", ""), 2.0, 0.15),
    ("list", "c. list {jobs:,} jobs, CPU", "list", None, "cpu_s",
     ("ours", "floor", "sdk", ""), 1.8, True),
    ("get-sync", "d. get_job sync, median ms", "get", None, "lat_median_ms",
     ("ours-sync", "floor-sync", "sdk-sync", ""), 2.5, 0.5),
    ("get", "d. get_job async, CPU per call", "get", None, "cpu_per_call_ms",
     ("ours", "floor", "sdk", ""), 1.3, False),
    ("many_files", "e. 1 job of {files:,} files, wall s", "many_files", None, "wall_s",
     ("ours", "floor", "sdk", ""), 1.3, False),
    ("tls-upload", "g. HTTPS upload {files}x{mib} MiB, CPU/GiB, async", "tls_upload", "large",
     "cpu_per_gib", ("ours", "floor", "sdk", "sdk-sync"), 1.2, True),
    ("tls-upload-sync", "g. HTTPS upload {files}x{mib} MiB, CPU/GiB, sync", "tls_upload",
     "large", "cpu_per_gib", ("ours-sync", "floor-sync", "sdk-sync", "sdk"), 1.2, True),
    ("tls-creates", "h. HTTPS {count:,} create_job, CPU per 1k", "tls_creates", None,
     "cpu_per_1k", ("ours", "floor", "sdk", ""), 2.0, 0.15),
    ("list_big", "c. list {jobs:,} jobs, CPU", "list_big", None, "cpu_s",
     ("ours", "floor", "sdk", ""), None, False),
]  # fmt: skip


def _value(results: dict[str, Any], workload: str, client: str, sub: str | None, field: str) -> Any:
    if not client:
        return None
    entry = _get(results, workload, client)
    if isinstance(entry, dict) and sub is not None:
        entry = entry.get(sub)
    if not isinstance(entry, dict) or "error" in entry:
        return None
    return entry.get(field)


def ratio_items(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One item per measured figure: ours, floor, SDK values and the ratios to the floor."""
    items = []
    for key, label, workload, sub, field, who, limit, beat_sdk in RATIO_SPECS:
        if workload not in results:
            continue
        ours, floor, sdk, other = (_value(results, workload, c, sub, field) for c in who)
        with contextlib.suppress(KeyError, ValueError):
            label = label.format(**(_get(results, workload, "_params") or {}))
        sdk_entry = _get(results, workload, who[2])
        if isinstance(sdk_entry, dict) and sub is not None:
            sdk_entry = sdk_entry.get(sub)
        sdk_error = sdk_entry.get("error") if isinstance(sdk_entry, dict) else None
        items.append(
            {
                "key": key,
                "label": label,
                "sdk_error": sdk_error,
                "ours": _num(ours),
                "floor": _num(floor),
                "sdk": _num(sdk),
                "sdk_other": _num(other),
                "ours_floor": _div(ours, floor),
                "sdk_floor": _div(sdk, floor),
                "ours_sdk": _div(ours, sdk),
                "limit": limit,
                "beat_sdk": beat_sdk,
                "clients": who,
            }
        )
    return items


# ----------------------------------------------------------------------------- targets


def _target(
    name: str, figure: str, limit: str, ok: bool | None, profile: str, why: str = ""
) -> dict[str, Any]:
    status = "SKIP" if ok is None else ("PASS" if ok else "MISS")
    return {
        "target": name,
        "figure": figure if ok is not None or figure else "not run",
        "limit": limit,
        "status": status,
        "profile": profile,
        "note": why,
    }


def evaluate_targets(results: dict[str, Any], with_sdk: bool) -> list[dict[str, Any]]:
    """Our client's targets (issue 21), each PASS, MISS or SKIP (not measured)."""
    targets = []
    for item in ratio_items(results):
        if item["limit"] is None:
            continue
        r = item["ours_floor"]
        ok: bool | None = None if r is None else r <= item["limit"]
        figure = f"{fmt(item['ours'])} vs floor {fmt(item['floor'])} ({fmt_ratio(r)})"
        limit = f"≤ {item['limit']:.2f}x floor"
        notes = []
        share = item["beat_sdk"]
        if share:
            bound = "< SDK" if share is True else f"≤ {share:g}x SDK"
            limit += ", " + bound + (" (sync and async)" if item["clients"][3] else "")
            sdks = [v for v in (item["sdk"], item["sdk_other"]) if v is not None]
            if sdks and item["ours"] is not None:
                best = min(sdks)
                figure += f"; SDK {fmt(best)} ({ratio(item['ours'], best)})"
                within = item["ours"] < best if share is True else item["ours"] <= best * share
                if ok is not None and not within:
                    ok = False
                    notes.append("not below the SDK" if share is True else f"over {share:g}x SDK")
            elif with_sdk:
                notes.append("SDK figure missing")
        if ok is False and r is not None and r > item["limit"]:
            notes.insert(0, f"{r:.2f}x floor")
        target = _target(item["label"], figure, limit, ok, item["key"], "; ".join(notes))
        target["item"] = item["key"]
        targets.append(target)

    for client, label in (("ours", "AsyncJobsClient"), ("ours-sync", "JobsClient")):
        big = _num(_value(results, "upload", client, "large", "peak_rss_mib"))
        small = _num(_value(results, "upload", client, "small", "peak_rss_mib"))
        ok = None
        if big is not None and small is not None:
            ok = big <= RSS_LIMIT_MIB and big - small <= RSS_FLAT_MIB
        p = _get(results, "upload", "_params") or {}
        targets.append(
            _target(
                f"a. peak RSS ≤ 64 MiB, flat in file size ({label})",
                f"{fmt(big)} MiB at {p.get('files')}x{p.get('mib')} MiB, "
                f"{fmt(small)} MiB at {p.get('files')}x{p.get('small_mib')} MiB"
                if ok is not None
                else "",
                f"≤ {RSS_LIMIT_MIB:g} MiB, growth ≤ {RSS_FLAT_MIB:g} MiB",
                ok,
                "upload" if client == "ours" else "upload-sync",
            )
        )

    many = _get(results, "many_files", "ours")
    p = _get(results, "many_files", "_params") or {}
    targets.append(
        _target(
            f"e. {fmt(p.get('files'))} files under {p.get('nofile')} descriptors succeed",
            "" if many is None else many.get("error", "ok"),
            "success",
            None if many is None else "error" not in many,
            "many_files",
        )
    )

    lin = linearity(results)
    ok = None if lin.get("ours") is None else lin["ours"] <= LINEAR_LIMIT
    figure = ""
    if ok is not None:
        small, big = results["list"]["ours"], results["list_big"]["ours"]
        figure = (
            f"{lin['ours']:.2f}x CPU per job ({fmt(lin['ours_us_small'])} → "
            f"{fmt(lin['ours_us_big'])} µs/job); peak RSS {fmt(small.get('peak_rss_mib'))} → "
            f"{fmt(big.get('peak_rss_mib'))} MiB; wall {fmt(big.get('wall_s'))} s"
        )
    targets.append(
        _target(
            "c. list 100k jobs: linear in the count (ours)",
            figure,
            f"CPU per job ≤ {LINEAR_LIMIT:g}x the 10k one",
            ok,
            "list",
        )
    )

    dupes = _get(results, "faults", "drop", "ours", "duplicates")
    targets.append(
        _target(
            "f. 0 duplicate jobs under dropped connections",
            f"{dupes} duplicates" if dupes is not None else "",
            "0",
            None if dupes is None else dupes == 0,
            "faults",
        )
    )
    return targets


def linearity(results: dict[str, Any]) -> dict[str, float | None]:
    """CPU per listed job at the big count over the one at 10k, per client."""
    out: dict[str, float | None] = {}
    small_n = _get(results, "list", "_params", "jobs")
    big_n = _get(results, "list_big", "_params", "jobs")
    if not small_n or not big_n:
        return out
    for client in ("ours", "floor", "sdk"):
        small = _num(_value(results, "list", client, None, "cpu_s"))
        big = _num(_value(results, "list_big", client, None, "cpu_s"))
        if small is None or big is None:
            out[client] = None
            continue
        out[f"{client}_us_small"] = small / small_n * 1e6
        out[f"{client}_us_big"] = big / big_n * 1e6
        out[client] = (big / big_n) / (small / small_n)
    return out


# ----------------------------------------------------------------------------- markdown


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


class _Table:
    def __init__(self, results: dict[str, Any], with_sdk: bool) -> None:
        self.res = results
        self.cols = [c for c in COLUMNS if with_sdk or c != "sdk"]
        self.with_sdk = with_sdk
        head = ["Workload", "Figure", *(COLUMNS[c] for c in self.cols), "ours/floor"]
        if with_sdk:
            head.append("ours/SDK")
        self.lines = [_row(head), _row(["---", "---"] + ["---:"] * (len(head) - 2))]

    def values(
        self,
        workload: str | tuple[str, ...],
        mapping: dict[str, str],
        field: str,
        sub: str | None = None,
    ) -> dict[str, Any]:
        path = (workload,) if isinstance(workload, str) else workload
        out: dict[str, Any] = {}
        for col, client in mapping.items():
            entry = _get(self.res, *path, client)
            if isinstance(entry, dict) and sub is not None:
                entry = entry.get(sub)
            if isinstance(entry, dict):
                out[col] = "error" if "error" in entry else entry.get(field)
        return out

    def add(self, workload: str, figure: str, values: dict[str, Any], ratios: bool = True) -> None:
        if not any(v is not None for v in values.values()):
            return
        cells = [workload, figure, *(fmt(values.get(c)) for c in self.cols)]
        cells.append(ratio(values.get("ours"), values.get("floor")) if ratios else "")
        if self.with_sdk:
            cells.append(ratio(values.get("ours"), values.get("sdk")) if ratios else "")
        self.lines.append(_row(cells))

    def fields(
        self,
        workload: str | tuple[str, ...],
        label: str,
        mapping: dict[str, str],
        fields: list[tuple[str, str]],
        sub: str | None = None,
        no_ratio: tuple[str, ...] = ("integrity", "errors"),
    ) -> None:
        for field, figure in fields:
            values = self.values(workload, mapping, field, sub)
            self.add(label, figure, values, field not in no_ratio)


UPLOAD_FIELDS = [
    ("cpu_per_gib", "client CPU s per GiB"),
    ("mb_s", "throughput MB/s"),
    ("peak_rss_mib", "peak RSS MiB (VmHWM)"),
    ("integrity", "integrity (ids, size, sha256)"),
]


def render_markdown(report: dict[str, Any]) -> str:
    res = report["results"]
    with_sdk = report.get("with_sdk", "sdk" in report["clients"])
    m = report["machine"]
    v = m["versions"]
    cfg = report["config"]
    lines = [
        f"# unstructured-jobs benchmarks ({report['mode']} run)",
        "",
        f"- Date: {report['date']} — total run time {report['elapsed_s']} s, "
        f"medians of {cfg['reps']} repetition(s) (one process per client x workload x rep)",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}"
        + (
            f"; load average {m['load_before'][0]:.2f} at the start, "
            f"{m['load_after'][0]:.2f} at the end"
            if m.get("load_before")
            else ""
        ),
        f"- Python {m['python']} ({m['implementation']}); "
        + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "- Server: the emulator (`python -m unstructured_jobs.testing`; over HTTPS "
        "`benchmarks/_tls_emulator.py`), own process, 127.0.0.1",
        "- **floor**: the least work possible on aiohttp (`benchmarks/_floor.py`); sync rows "
        "compare `JobsClient`, the floor's sync variant and the SDK's sync client",
    ]
    lines += [f"- Note: {n}" for n in report["notes"]]

    items = ratio_items(res)
    if items:
        lines += ["", "## Ratios to the floor", ""]
        if report.get("chart"):
            lines += [f"![ratios to the floor]({report['chart']})", ""]
        head = ["Figure", "ours", "floor", "ours/floor", "target"]
        if with_sdk:
            head[3:3] = ["SDK"]
            head += ["SDK/floor", "ours/SDK"]
        head.append("result")
        lines += [_row(head), _row(["---"] + ["---:"] * (len(head) - 2) + ["---"])]
        status = {t["item"]: t for t in report["targets"] if t.get("item")}
        for item in items:
            t = status.get(item["key"]) if item["limit"] is not None else None
            cells = [item["label"], fmt(item["ours"]), fmt(item["floor"])]
            if with_sdk:
                cells.append(fmt(item["sdk"]))
            cells.append(fmt_ratio(item["ours_floor"]))
            limit = "—" if item["limit"] is None else f"≤ {item['limit']:.2f}x"
            share = item["beat_sdk"]
            if share:
                limit += ", < SDK" if share is True else f", ≤ {share:g}x SDK"
            cells.append(limit)
            if with_sdk:
                cells += [fmt_ratio(item["sdk_floor"]), fmt_ratio(item["ours_sdk"])]
            cells.append(f"**{t['status']}**" if t else "")
            lines.append(_row(cells))

    table = _Table(res, with_sdk)
    if "upload" in res:
        p = res["upload"]["_params"]
        big, small = f"{p['files']}x{p['mib']} MiB", f"{p['files']}x{p['small_mib']} MiB"
        table.fields("upload", f"a. 1 job, {big}, async", ASYNC, UPLOAD_FIELDS, "large")
        table.fields("upload", f"a. 1 job, {big}, sync", SYNC, UPLOAD_FIELDS, "large")
        table.fields(
            "upload",
            f"a. 1 job, {big}, async",
            ASYNC,
            [("rss_before_mib", "RSS before upload MiB")],
            "large",
        )
        for mapping, kind in ((ASYNC, "async"), (SYNC, "sync")):
            table.fields(
                "upload",
                f"a. 1 job, {small}, {kind}",
                mapping,
                [("peak_rss_mib", "peak RSS MiB"), ("cpu_per_gib", "client CPU s per GiB")],
                "small",
            )
    if "creates" in res:
        p = res["creates"]["_params"]
        table.fields(
            "creates",
            f"b. {fmt(p['count'])} create_job x 10 kB, {p['concurrency']} at once",
            ASYNC,
            [
                ("cpu_per_1k", "client CPU s per 1,000 calls"),
                ("wall_s", "wall s"),
                ("lat_median_ms", "latency median ms"),
                ("lat_p99_ms", "latency p99 ms"),
                ("errors", "errors"),
            ],
        )
    for key in ("list", "list_big"):
        if key in res:
            p = res[key]["_params"]
            label = (
                f"c. list_jobs of {fmt(p['jobs'])} jobs ({p['body_bytes'] / 1e6:.1f} MB, "
                f"{p['nodes_min']}-{p['nodes_max']} output nodes each)"
            )
            table.fields(
                key,
                label,
                ASYNC,
                [
                    ("cpu_s", "client CPU s (fetch + parse)"),
                    ("wall_s", "wall s (fetch + parse)"),
                    ("peak_rss_mib", "peak RSS MiB"),
                ],
            )
    lin = linearity(res)
    if lin:
        vals = {c: lin.get(c) for c in ("ours", "floor", "sdk")}
        table.add("c. 100k vs 10k", "CPU per job, 100k / 10k", vals, ratios=False)
    if "get" in res:
        n = fmt(res["get"]["_params"]["calls"])
        fields = [
            ("lat_median_ms", "latency median ms"),
            ("lat_p99_ms", "latency p99 ms"),
            ("cpu_per_call_ms", "client CPU ms per call"),
        ]
        table.fields("get", f"d. {n} sequential get_job, sync", SYNC, fields)
        table.fields("get", f"d. {n} sequential get_job, async", ASYNC, fields)
    if "many_files" in res:
        p = res["many_files"]["_params"]
        label = f"e. 1 job of {fmt(p['files'])} x 1 kB, ulimit -n {p['nofile']}"
        table.fields("many_files", label, ASYNC, [("wall_s", "wall s"), ("cpu_s", "client CPU s")])
    if "tls_upload" in res:
        p = res["tls_upload"]["_params"]
        big = f"{p['files']}x{p['mib']} MiB"
        table.fields("tls_upload", f"g. HTTPS, 1 job, {big}, async", ASYNC, UPLOAD_FIELDS, "large")
        table.fields("tls_upload", f"g. HTTPS, 1 job, {big}, sync", SYNC, UPLOAD_FIELDS, "large")
    if "tls_creates" in res:
        p = res["tls_creates"]["_params"]
        table.fields(
            "tls_creates",
            f"h. HTTPS, {fmt(p['count'])} create_job x 10 kB",
            ASYNC,
            [
                ("cpu_per_1k", "client CPU s per 1,000 calls"),
                ("wall_s", "wall s"),
                ("lat_median_ms", "latency median ms"),
            ],
        )
    if "faults" in res:
        f = res["faults"]
        n = fmt(f["_params"]["calls"])
        for mode, args in f["_params"]["modes"].items():
            table.fields(
                ("faults", mode),
                f"f. {n} create_job, `{args}`",
                ASYNC,
                [
                    ("ok", "succeeded"),
                    ("errors", "errors (after retries)"),
                    ("jobs_created", "jobs created"),
                    ("duplicates", "duplicate jobs"),
                    ("failed_but_created", "errors whose job exists"),
                    ("wall_s", "wall s"),
                ],
                no_ratio=("ok", "errors", "jobs_created", "duplicates", "failed_but_created"),
            )
    if len(table.lines) > 2:
        lines += ["", "## Figures", "", *table.lines]

    lines += ["", "## Targets (our client)", "", _row(["Target", "Measured", "Limit", "Result"])]
    lines.append(_row(["---", "---", "---", "---"]))
    for t in report["targets"]:
        result = f"**{t['status']}**" + (f" ({t['note']})" if t.get("note") else "")
        lines.append(_row([t["target"], t["figure"] or "not run", t["limit"], result]))

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
        lines += [
            "",
            "## Profiles of our client for missed targets (cProfile, all threads, CPU time)",
            "",
        ]
        for key, text in report["profiles"].items():
            lines += [f"### {key}", "", "```", text, "```", ""]
    return "\n".join(lines).rstrip()


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
