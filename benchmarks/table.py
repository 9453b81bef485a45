"""The results as a plain-text table, one row per (workload, size, system, metric).

The last column compares a row with the eventlog row of the same workload, size and
metric: ``system / eventlog``. For records/s above 1 means faster than eventlog;
for costs (µs, ms, MB) above 1 means more expensive than eventlog.
"""

from __future__ import annotations

from .results import Result

__all__ = ["format_table", "human"]

_HEADER = ("workload", "system", "records", "metric", "median", "min-max", "vs eventlog")


def human(value: float) -> str:
    """A compact figure: 1.23M, 456k, 78.9, 0.123."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.2f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.0f}k"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".") if magnitude < 10 else f"{value:.1f}"
    return f"{value:.3g}"


def _references(results: list[Result]) -> dict[tuple, float]:
    refs: dict[tuple, float] = {}
    for r in results:
        key = (r.workload, r.size, r.metric)
        if r.reference and r.ok and key not in refs:
            refs[key] = r.median
    return refs


def _row(r: Result, refs: dict[tuple, float]) -> tuple[str, ...]:
    records = f"{r.records or r.size:,}"
    if not r.ok:
        return (r.workload, r.system, f"{r.size:,}", "", r.status, "", "")
    ref = refs.get((r.workload, r.size, r.metric))
    if ref is None:
        ratio = "-"
    elif r.reference and r.median == ref:
        ratio = "1 (ref)"
    else:
        ratio = f"{r.median / ref:.2f}x" if ref else "-"
    spread = f"{human(r.low)}-{human(r.high)}"
    return (r.workload, r.system, records, r.metric, human(r.median), spread, ratio)


def format_table(results: list[Result]) -> str:
    refs = _references(results)
    rows = [_HEADER] + [_row(r, refs) for r in results]
    measured = [row for row in rows if row[3]]  # skipped/failed rows overflow instead
    widths = [max(len(row[i]) for row in measured) for i in range(len(_HEADER))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i < 2 or i == 3 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        if not row[3] and n:  # skipped or failed: the status runs on past the columns
            cells = [*cells[:3], row[4]]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
