"""Scaling: append cost per record and random-read cost per lookup as a log grows.

One log per system grows through the sizes (10^4, 10^5, 10^6, and 10^7 in the full
run) by appending the dataset's batches over and over (untimed). At each size the
runs measure a window of appends at the end of the log (``WINDOW_RECORDS`` in
batches of 1,000) and ``LOOKUPS`` reads of one record at uniformly random offsets,
then ``LOOKUPS`` reads of one record in runs of ``RUN_READS`` consecutive offsets
from random starts (a consumer that seeks and reads on one record at a time, an
event-sourced load of neighbouring events). eventlog runs twice: a default topic, and
one with ``frame_records=16`` (framed batches: a point read decodes one frame).
A size whose build the measured rate says would overrun the build budget is skipped
with the projected time as the reason, rather than blowing the run's time limit.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from time import perf_counter
from typing import Any

from . import eventlog_bench
from .harness import Settings, Skip, failed, progress, skipped
from .peers import sqlite_table
from .results import Result
from .scratch import make_dir, remove_dir
from .workloads import Dataset

__all__ = ["WORKLOAD", "run_scaling"]

WORKLOAD = "scaling"
WINDOW_RECORDS = 10_000
LOOKUPS = 2_000
RUN_READS = 10
FRAME_RECORDS = 16  # the framed topic's frame_records
_BYTES_PER_RECORD_MAX = 400  # disk headroom check: record, index and slack


class _EventlogLog:
    system = "eventlog"
    reference = True
    first_offset = 0
    topic_config: dict[str, Any] = {}

    def __init__(self) -> None:
        self.folder = make_dir("scaling")
        with eventlog_bench.api_guard():
            self.log = eventlog_bench.open_log(self.folder)
            self.partition = self.log.create_topic(
                eventlog_bench.TOPIC, **self.topic_config).partition(0)

    def append(self, batch: list) -> None:
        with eventlog_bench.api_guard():
            self.partition.append(batch)

    def lookup(self, offsets: list[int]) -> float:
        read = self.partition.read
        start = perf_counter()
        for offset in offsets:
            records = read(offset, max_records=1)
            if not records or records[0].offset != offset:
                raise RuntimeError(f"read({offset}) returned {records[:1]}")
        return perf_counter() - start

    def close(self) -> None:
        try:
            self.log.close()
        finally:
            remove_dir(self.folder)


class _EventlogFramedLog(_EventlogLog):
    """A topic that chose framed batches (``frame_records``): a point read decodes one
    frame of 16 records instead of the whole 1,000-record batch."""

    system = "eventlog frame_records=16"
    reference = False
    topic_config = {"frame_records": FRAME_RECORDS}


class _SqliteLog:
    system = "sqlite WAL (rowid lookup)"
    reference = False
    first_offset = 1

    def __init__(self) -> None:
        self.folder = make_dir("scaling")
        self.conn = sqlite_table.connect(self.folder / "log.db")

    def append(self, batch: list) -> None:
        sqlite_table.insert_batches(self.conn, [batch])

    def lookup(self, offsets: list[int]) -> float:
        return sqlite_table.random_reads(self.conn, offsets)

    def close(self) -> None:
        self.conn.close()
        remove_dir(self.folder)


def run_scaling(settings: Settings, data: Dataset) -> list[Result]:
    """Grow each system's log through the sizes; a list of Results per size and metric."""
    sizes = [10**4, 10**5, 10**6] + ([] if settings.quick else [10**7])
    budget_s = 3.0 if settings.quick else 25.0
    results: list[Result] = []
    for factory in (_EventlogLog, _EventlogFramedLog, _SqliteLog):
        results += _scale(settings, factory, sizes, data, budget_s)
    return results


def _scale(settings: Settings, factory, sizes: list[int], data: Dataset, budget_s: float):
    base = {"workload": WORKLOAD, "system": factory.system, "reference": factory.reference}
    try:
        log = factory()
    except Skip as exc:
        return [Result(**base, size=n, metric="", status=skipped(exc)) for n in sizes]
    except Exception as exc:
        return [Result(**base, size=n, metric="", status=failed(exc)) for n in sizes]
    results: list[Result] = []
    try:
        grower = _Grower(log, data)
        for n in sizes:
            results += _at_size(settings, log, grower, n, budget_s, base)
    finally:
        log.close()
    return results


def _at_size(settings, log, grower, n: int, budget_s: float, base: dict) -> list[Result]:
    started = time.perf_counter()
    try:
        _check_fits(log, grower, n, budget_s)
        grower.grow_to(n)
        figures = _measure(settings, log, grower, n)
    except Skip as exc:
        results = [Result(**base, size=n, metric="", status=skipped(exc))]
    except Exception as exc:
        results = [Result(**base, size=n, metric="", status=failed(exc))]
    else:
        note = (f"window of {WINDOW_RECORDS:,} appends, {LOOKUPS:,} random reads and {LOOKUPS:,} "
                f"in runs of {RUN_READS} per run")
        results = [
            Result(**base, size=n, metric=metric, records=n, values=values, note=note)
            for metric, values in figures.items()
        ]
    progress(results, time.perf_counter() - started)
    return results


def _check_fits(log: Any, grower: _Grower, n: int, budget_s: float) -> None:
    missing = n - grower.count
    if grower.rate and missing / grower.rate > budget_s:
        raise Skip(
            f"building {n:,} records would take ~{missing / grower.rate:.0f} s "
            f"(budget {budget_s:.0f} s)"
        )
    free = shutil.disk_usage(log.folder).free
    if missing * _BYTES_PER_RECORD_MAX > free:
        raise Skip(f"needs ~{missing * _BYTES_PER_RECORD_MAX >> 20} MiB of disk, {free >> 20} free")


def _measure(settings: Settings, log: Any, grower: _Grower, n: int) -> dict[str, list[float]]:
    rng = random.Random(settings.seed + n)
    figures: dict[str, list[float]] = {
        "append µs/record": [], "random read µs/lookup": [], "run of 10 reads µs/lookup": [],
    }
    for run in range(settings.runs + 1):  # run 0 warms up
        window = grower.window(WINDOW_RECORDS)
        start = perf_counter()
        for batch in window:
            log.append(batch)
        append_s = perf_counter() - start
        grower.count += sum(len(batch) for batch in window)
        offsets = [log.first_offset + rng.randrange(grower.count) for _ in range(LOOKUPS)]
        lookup_s = log.lookup(offsets)
        starts = [rng.randrange(grower.count - RUN_READS) for _ in range(LOOKUPS // RUN_READS)]
        runs = [log.first_offset + s + i for s in starts for i in range(RUN_READS)]
        runs_s = log.lookup(runs)
        if run:
            figures["append µs/record"].append(append_s / WINDOW_RECORDS * 1e6)
            figures["random read µs/lookup"].append(lookup_s / LOOKUPS * 1e6)
            figures["run of 10 reads µs/lookup"].append(runs_s / len(runs) * 1e6)
    return figures


class _Grower:
    """Feeds a log the dataset's batches, repeated, and tracks its build rate."""

    def __init__(self, log: Any, data: Dataset) -> None:
        self.log = log
        self.batches: Iterator[list] = data.cycle_batches()
        self.count = 0
        self.rate = 0.0  # records/s of the last growth, for the budget check

    def window(self, records: int) -> list[list]:
        out, taken = [], 0
        while taken < records:
            batch = next(self.batches)
            out.append(batch)
            taken += len(batch)
        return out

    def grow_to(self, n: int) -> None:
        start, grown = perf_counter(), 0
        while self.count < n:
            batch = next(self.batches)[: n - self.count]
            self.log.append(batch)
            self.count += len(batch)
            grown += len(batch)
        if grown:
            self.rate = grown / max(perf_counter() - start, 1e-9)
