"""Benchmark results: one ``Result`` per (workload, system, size, metric), and JSON I/O."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["HIGHER_IS_BETTER", "Result", "load_json", "write_json"]

# Only throughputs are "higher is better"; every other metric is a cost
# (microseconds, milliseconds, megabytes).
HIGHER_IS_BETTER = frozenset({"records/s"})


@dataclass
class Result:
    """The runs of one system on one workload at one size, for one metric.

    ``status`` is ``"ok"``, ``"skipped: <reason>"`` or ``"failed: <reason>"``;
    ``values`` holds one figure per timed run (empty unless ok). ``records`` is the
    number of records actually used, which is below ``size`` when a slow system was
    capped to fit the time budget (``note`` then says so).
    """

    workload: str
    system: str
    size: int
    metric: str = "records/s"
    records: int = 0
    values: list[float] = field(default_factory=list)
    status: str = "ok"
    note: str = ""
    reference: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        if self.ok:
            out.update(median=self.median, min=self.low, max=self.high)
        out["higher_is_better"] = self.metric in HIGHER_IS_BETTER
        return out


def write_json(path: Path, document: dict[str, object]) -> None:
    """Write ``document`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def load_json(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())
