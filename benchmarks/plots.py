"""PNG plots of a result set (matplotlib, Agg backend: no display needed).

- ``throughput-<size>.png``: records/s per system, one panel of bars per workload
  (log scale; eventlog's bar in a strong colour, floors hatched).
- ``scaling.png``: append µs/record and random-read µs/lookup against log size.
- ``latency.png``: end-to-end p50/p99/p99.9 per system.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

from .results import Result
from .table import human

__all__ = ["write_plots"]

_EVENTLOG_COLOUR = "#d62728"
_PEER_COLOUR = "#4c72b0"
_FLOOR_COLOUR = "#999999"


def write_plots(results: list[Result], folder: Path) -> list[Path]:
    """Write every plot the results allow; return the paths written."""
    try:
        import matplotlib
    except ImportError:
        print("plots skipped (not installed: pip install -e .[bench])", file=sys.stderr)
        return []
    matplotlib.use("Agg")
    written = []
    for size in sorted({r.size for r in results if r.ok and r.metric == "records/s"}):
        path = _throughput(results, size, folder / f"throughput-{size}.png")
        if path:
            written.append(path)
    for path in (
        _scaling(results, folder / "scaling.png"),
        _latency(results, folder / "latency.png"),
    ):
        if path:
            written.append(path)
    return written


def _colour(system: str) -> str:
    if system.startswith("eventlog"):
        return _EVENTLOG_COLOUR
    return _FLOOR_COLOUR if system.startswith("floor") else _PEER_COLOUR


def _throughput(results: list[Result], size: int, path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        if r.ok and r.metric == "records/s" and r.size == size:
            groups[r.workload].append(r)
    if not groups:
        return None
    cols = 2
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(14, 2.2 + 0.32 * _bars(groups) / cols), squeeze=False
    )
    for ax, (workload, group) in zip(axes.flat, groups.items()):
        _bar_panel(ax, workload, group)
    for ax in list(axes.flat)[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle(f"Throughput at {size:,} records (records/s, log scale; higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(groups: dict[str, list[Result]]) -> int:
    return sum(len(g) + 1 for g in groups.values())


def _bar_panel(ax, workload: str, group: list[Result]) -> None:
    group = sorted(group, key=lambda r: r.median)
    names = [r.system for r in group]
    medians = [r.median for r in group]
    low = [r.median - r.low for r in group]
    high = [r.high - r.median for r in group]
    bars = ax.barh(names, medians, xerr=[low, high], color=[_colour(n) for n in names])
    for bar, name in zip(bars, names):
        if name.startswith("floor"):
            bar.set_hatch("//")
    ax.set_xscale("log")
    # Whole decades, with room on the right for the labels.
    ax.set_xlim(
        10 ** math.floor(math.log10(min(r.low for r in group))),
        10 ** (math.ceil(math.log10(max(r.high for r in group))) + 0.6),
    )
    ax.set_title(workload, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    for bar, r in zip(bars, group):
        label = f" {human(r.median)}"
        if r.records and r.records < r.size:
            label += f" ({r.records:,} records)"
        ax.text(r.high, bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=7)


def _scaling(results: list[Result], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.ok and r.workload == "scaling"]
    if not rows:
        return None
    metrics = sorted({r.metric for r in rows})
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        by_system: dict[str, list[Result]] = defaultdict(list)
        for r in rows:
            if r.metric == metric:
                by_system[r.system].append(r)
        for system, series in by_system.items():
            series.sort(key=lambda r: r.size)
            ax.plot(
                [r.size for r in series],
                [r.median for r in series],
                marker="o",
                label=system,
                color=_colour(system) if system == "eventlog" else None,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("records in the log")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} (lower is better)")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency(results: list[Result], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.ok and r.workload == "e2e_latency"]
    if not rows:
        return None
    systems = list(dict.fromkeys(r.system for r in rows))
    metrics = list(dict.fromkeys(r.metric for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        values = {r.metric: r.median for r in rows if r.system == system}
        xs = [m + i * width for m in range(len(metrics))]
        ax.bar(
            xs,
            [values.get(m, 0) for m in metrics],
            width,
            label=system,
            color=_colour(system) if system.startswith("eventlog") else None,
        )
    ax.set_xticks([m + width * (len(systems) - 1) / 2 for m in range(len(metrics))], metrics)
    ax.set_yscale("log")
    ax.set_ylabel("microseconds (lower is better)")
    ax.set_title("End-to-end latency: send in one thread, poll in another")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
