"""A benchmark run: the selected workloads over one dataset, into a result document."""

from __future__ import annotations

import dataclasses
import gc
import sys
import threading
import time
from datetime import datetime, timezone

from . import machine
from .catalog import WORKLOADS, Workload, shutdown_peers
from .harness import Settings, forget_measurements, run_case
from .results import Result
from .workloads import make_dataset

__all__ = ["run_suite", "select"]


def select(names: list[str] | None, settings: Settings) -> tuple[list[Workload], list[str]]:
    """The workloads to run, and notes on the ones left out."""
    known = {w.name for w in WORKLOADS}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; known: {sorted(known)}")
    chosen, notes = [], []
    for workload in WORKLOADS:
        if names and workload.name not in names:
            continue
        if workload.full_only and settings.quick:
            notes.append(f"{workload.name}: full run only (takes seconds per run)")
            continue
        chosen.append(workload)
    return chosen, notes


def run_suite(settings: Settings, workloads: list[Workload]) -> tuple[dict, list[Result]]:
    started = time.perf_counter()
    info = machine.describe()
    print(f"# {machine.summary(info)}", file=sys.stderr)
    data = make_dataset(settings.largest, key_mode=settings.key_mode, seed=settings.seed)
    print(
        f"# {len(data):,} records generated ({settings.key_mode} keys) "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    live = [_with_live_collector(w) for w in workloads if w.reads]
    results: list[Result] = []
    try:
        for workload in workloads:
            results += _run_workload(settings, workload, data)
        results += _run_with_live_collector(settings, live, data)
    finally:
        shutdown_peers()
    leftovers = _live_threads()
    if leftovers:
        print(f"# warning: threads still running after the run: {leftovers}", file=sys.stderr)
    document = {
        "schema": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if settings.quick else "full",
        "runs": settings.runs,
        "sizes": list(settings.sizes),
        "case_budget_s": settings.case_budget_s,
        "dataset": data.describe(),
        "machine": info,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "workloads": {w.name: w.description for w in [*workloads, *live]},
        "threads_left_running": leftovers,
        "results": [r.to_dict() for r in results],
    }
    return document, results


def _run_workload(settings: Settings, workload: Workload, data) -> list[Result]:
    print(f"# {workload.name}: {workload.description}", file=sys.stderr, flush=True)
    if workload.custom is not None:
        return workload.custom(settings, data)
    results: list[Result] = []
    for size in workload.sizes(settings):
        sized = data.head(size)
        for case in workload.cases():
            results += run_case(settings, workload.name, case, sized)
    return results


def _with_live_collector(workload: Workload) -> Workload:
    """``workload`` as its rerun with the collector live reports it: ``NAME (gc live)``."""
    return dataclasses.replace(
        workload,
        name=f"{workload.name} (gc live)",
        description=f"{workload.description}; without gc.freeze()",
    )


def _run_with_live_collector(settings: Settings, reads: list[Workload], data) -> list[Result]:
    """The read workloads again, with the dataset and everything else back under the
    cyclic collector: an application's heap is not frozen, and a reader that allocates
    many objects pays for the collector walking it."""
    if not reads:
        return []
    gc.unfreeze()
    forget_measurements()
    results: list[Result] = []
    try:
        for workload in reads:
            results += _run_workload(settings, workload, data)
    finally:
        gc.collect()
        gc.freeze()
    return results


def _live_threads() -> list[str]:
    """Threads a system left behind (a leak the next workload would pay for)."""
    return [t.name for t in threading.enumerate() if t is not threading.main_thread()]
