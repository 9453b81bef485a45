"""Timing: warm up, run a case N times, keep every run's figure.

A ``Case`` is one system on one workload. ``setup(data)`` builds whatever the runs
share (untimed) and returns a state; ``run(state)`` does one run and returns either
the seconds its timed region took for ``len(data)`` records (the harness turns that
into records/s) or a dict of named figures (latency percentiles, milliseconds, MB).
A run times only its own region with ``time.perf_counter``, so per-run preparation
(a fresh directory, a fresh queue) stays outside the figure.

Like sortedcontainers' benchmark: one warm-up run, then N runs, report
min/median/max. Slow systems are capped so that one case's runs fit a time budget:
the case's slowest rate at the smaller size predicts the cost of the larger one, and
the records actually used are recorded with a note (known-slow systems also carry a
fixed cap). Any exception from a system becomes a ``failed: <reason>`` result; the
harness goes on with the next case.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .results import Result
from .workloads import BATCH_RECORDS, Dataset

__all__ = [
    "Case",
    "Settings",
    "Skip",
    "failed",
    "forget_measurements",
    "progress",
    "run_case",
    "skipped",
    "time_in_threads",
]

Sample = float | dict[str, float]


@dataclass(frozen=True)
class _Measured:
    """One case's runs, kept so that an identical case can report them again."""

    workload: str
    size: int
    records: int
    samples: list[dict[str, float]]
    note: str


# eventlog's own rows get this many times a peer's budget: they are the subject, and
# should run at the nominal sizes whenever the run's time limit allows.
REFERENCE_BUDGET_FACTOR = 2.5

# Every measurement made in this run, keyed by (identity, records planned), where the
# identity is ``Case.share`` or else workload/system; and each identity's latest one.
# A capped case, or a case shared by two workloads, then runs once.
_measured: dict[tuple[str, int], _Measured] = {}
_latest: dict[str, _Measured] = {}


def forget_measurements() -> None:
    """Measure every case afresh from here on (a rerun under other conditions)."""
    _measured.clear()
    _latest.clear()


class Skip(Exception):
    """The system cannot run here (not installed, API missing); the message says why."""


def _identity(data: Any) -> Any:
    return data


def _nothing(state: Any) -> None:
    return None


@dataclass(frozen=True)
class Case:
    """One system's way of doing one workload."""

    system: str
    run: Callable[[Any], Sample]
    setup: Callable[[Dataset], Any] = _identity
    teardown: Callable[[Any], None] = _nothing
    reference: bool = False  # the eventlog figure that the other rows are compared with
    warmup: bool = True
    max_records: tuple[int, int] | None = None  # (quick, full): a known-slow system's cap
    note: str = ""
    share: str | None = None  # cases with the same share key are one measurement


@dataclass(frozen=True)
class Settings:
    """How big and how long: fixed by ``--quick`` or the full run."""

    quick: bool
    runs: int
    sizes: tuple[int, ...]
    case_budget_s: float  # timed seconds all runs of one case at one size may take
    warmup_records: int = 2_000
    key_mode: str = "pool"
    seed: int = 0

    @property
    def largest(self) -> int:
        return max(self.sizes)


def run_case(settings: Settings, workload: str, case: Case, data: Dataset) -> list[Result]:
    """Warm up, then time ``settings.runs`` runs of ``case`` on ``data``."""
    base = {
        "workload": workload,
        "system": case.system,
        "size": len(data),
        "reference": case.reference,
    }
    started = time.perf_counter()
    try:
        results = _measure(settings, case, data, base)
    except Skip as exc:
        results = [Result(**base, metric="", status=skipped(exc), note=case.note)]
    except Exception as exc:
        results = [Result(**base, metric="", status=failed(exc), note=case.note)]
    finally:
        gc.collect()
    progress(results, time.perf_counter() - started)
    return results


def _measure(settings: Settings, case: Case, data: Dataset, base: dict) -> list[Result]:
    records = len(data)
    notes = [case.note] if case.note else []
    if case.max_records is not None:
        cap = case.max_records[0 if settings.quick else 1]
        if cap < records:
            records = cap
            notes.append(f"capped at {cap:,} records (slow system)")
    identity = case.share or f"{base['workload']}/{case.system}"
    memo_key = (identity, records)
    if memo_key in _measured:
        return _reused(base, _measured[memo_key])
    previous = _latest.get(identity)
    rate = _rate(previous)
    if rate is not None:
        budget_s = settings.case_budget_s * (REFERENCE_BUDGET_FACTOR if case.reference else 1)
        fit = _records_in_budget(settings, rate, budget_s)
        if fit <= previous.records:
            return _reused(base, previous, "the budget allows no more records than")
        if fit < records:
            notes.append(f"capped at {fit:,} records to fit the time budget")
            records = fit
    if case.warmup:
        _one_run(case, data.head(min(records, settings.warmup_records, max(100, records // 5))))
    samples = _runs(case, data.head(records), settings.runs)
    done = _Measured(base["workload"], len(data), records, samples, "; ".join(notes))
    _measured[memo_key] = _latest[identity] = done
    return _results(base, samples, records, done.note)


def _rate(done: _Measured | None) -> float | None:
    """The slowest rate of the same case at the smaller size: what predicts the cost of
    the larger one. (A short warm-up does not: fixed costs such as a flush dominate
    it, and it flatters systems that slow down as they grow.)"""
    if done is None or "records/s" not in done.samples[0]:
        return None
    return min(s["records/s"] for s in done.samples)


def _reused(base: dict, done: _Measured, why: str = "same runs as") -> list[Result]:
    """The figures of an identical measurement made earlier in this run."""
    if done.workload == base["workload"]:
        where = f"{why} the {done.size:,} row"
    else:
        where = f"{why} {done.workload}"
    note = "; ".join(filter(None, [done.note, where]))
    return _results(base, done.samples, done.records, note)


def _one_run(case: Case, data: Dataset) -> dict[str, float]:
    return _runs(case, data, 1)[0]


def _runs(case: Case, data: Dataset, runs: int) -> list[dict[str, float]]:
    state = case.setup(data)
    try:
        return [_as_metrics(case.run(state), len(data)) for _ in range(runs)]
    finally:
        case.teardown(state)


def _as_metrics(sample: Sample, records: int) -> dict[str, float]:
    if isinstance(sample, dict):
        return sample
    assert sample >= 0, sample
    return {"records/s": records / max(sample, 1e-9)}


def _records_in_budget(settings: Settings, rate: float, budget_s: float) -> int:
    """How many records ``settings.runs`` runs can take within ``budget_s``."""
    fit = int(rate * budget_s / settings.runs)
    return max(fit - fit % BATCH_RECORDS, BATCH_RECORDS)


def _results(base: dict, samples: list[dict[str, float]], records: int, note: str):
    metrics = list(samples[0])
    return [
        Result(**base, metric=m, records=records, values=[s[m] for s in samples], note=note)
        for m in metrics
    ]


def skipped(exc: Skip) -> str:
    """The status of a skipped case: ``skipped (not installed: ...)`` or ``skipped: why``."""
    reason = str(exc)
    return f"skipped {reason}" if reason.startswith("(") else f"skipped: {reason}"


def failed(exc: BaseException) -> str:
    """The status of a failed case: its exception's type and first line."""
    return "failed: " + f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def progress(results: list[Result], seconds: float) -> None:
    for r in results:
        figure = f"median {r.median:,.1f} {r.metric}" if r.ok else r.status
        print(
            f"  {r.workload:<14} {r.system:<34} {r.size:>10,}  {figure}  [{seconds:.1f}s]",
            file=sys.stderr,
            flush=True,
        )


def time_in_threads(records: list, threads: int, send: Callable[[int, list], None],
                    finish: Callable[[], None]) -> float:
    """Seconds for ``threads`` threads to ``send(i, share)`` their shares of
    ``records`` (split in order, the last thread taking the remainder), then for
    ``finish()`` (a flush). The clock starts when every thread is ready; the first
    exception of a thread is raised after the timing."""
    share = len(records) // threads
    chunks = [records[i * share : len(records) if i == threads - 1 else (i + 1) * share]
              for i in range(threads)]
    ready = threading.Barrier(threads + 1)
    failures: list[BaseException] = []

    def work(i: int) -> None:
        ready.wait()
        try:
            send(i, chunks[i])
        except BaseException as exc:  # reported by the timing thread below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    ready.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    finish()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return elapsed
