"""The run's ratios to the floor as one PNG (matplotlib, from the ``bench`` extra).

One row per figure: a bar for ours/floor and one for SDK/floor (lower is better; 1 is the
floor), on a log scale, with the target marked on our bar. Without matplotlib the chart is
skipped and the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _report import fmt_ratio, ratio_items

OURS, SDK, TARGET = "#1f77b4", "#ff7f0e", "#d62728"


def draw_chart(report: dict[str, Any], path: Path) -> str | None:
    """Write the chart to `path`; return why not (text) or None once written."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed (pip install 'unstructured-jobs[bench]')"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    items = [i for i in ratio_items(report["results"]) if i["ours_floor"] is not None]
    if not items:
        return "no figure to draw"
    with_sdk = any(i["sdk_floor"] is not None for i in items)
    height = 0.38 if with_sdk else 0.6
    fig, ax = plt.subplots(figsize=(10, 0.62 * len(items) + 1.9), dpi=110)
    values = [i["ours_floor"] for i in items] + [
        i["sdk_floor"] for i in items if i["sdk_floor"] is not None
    ]
    right = max(max(values) * 1.9, 3.0)
    for row, item in enumerate(items):
        y = -row
        ours_y = y + (height / 2 if with_sdk else 0)
        ok = item["limit"] is None or item["ours_floor"] <= item["limit"]
        ax.barh(ours_y, item["ours_floor"], height=height, color=OURS, alpha=1 if ok else 0.55,
                hatch=None if ok else "//", edgecolor=OURS)  # fmt: skip
        at = max(item["ours_floor"], item["limit"] or 0)
        ax.text(at * 1.03, ours_y, fmt_ratio(item["ours_floor"]), va="center",
                fontsize=8)  # fmt: skip
        if item["limit"] is not None:
            ax.plot([item["limit"]] * 2, [ours_y - height / 2, ours_y + height / 2],
                    color=TARGET, linewidth=2.2)  # fmt: skip
        if item["sdk_floor"] is None and item["sdk_error"]:
            reason = str(item["sdk_error"]).split(":")[0]
            ax.text(0.52, y - height / 2, f"SDK failed ({reason})", va="center", fontsize=8,
                    color=SDK)  # fmt: skip
        if item["sdk_floor"] is not None:
            sdk_y = y - height / 2
            ax.barh(sdk_y, item["sdk_floor"], height=height, color=SDK)
            ax.text(item["sdk_floor"] * 1.03, sdk_y, fmt_ratio(item["sdk_floor"]), va="center",
                    fontsize=8)  # fmt: skip
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(0.5, right)
    ticks = [t for t in (0.5, 1, 1.2, 1.5, 2, 3, 5, 10, 20, 50, 100) if t <= right]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks([-row for row in range(len(items))])
    ax.set_yticklabels([i["label"] for i in items], fontsize=9)
    ax.set_xlabel("client cost / the floor's cost, same run (lower is better; 1x = the floor)")
    m = report["machine"]
    ax.set_title(
        f"unstructured-jobs vs the floor ({report['mode']} run, {report['date'][:10]}, "
        f"{m['cores']} cores, medians of {report['config']['reps']})",
        fontsize=10,
    )
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=OURS, label="ours / floor"),
        plt.Rectangle(
            (0, 0),
            1,
            1,
            facecolor=OURS,
            alpha=0.55,
            hatch="//",
            edgecolor=OURS,
            label="ours / floor, target missed",
        ),
        plt.Line2D([], [], color=TARGET, linewidth=2.2, label="target"),
    ]
    if with_sdk:
        handles.insert(2, plt.Rectangle((0, 0), 1, 1, color=SDK, label="official SDK / floor"))
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None
