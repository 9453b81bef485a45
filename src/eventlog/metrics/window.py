"""Windowed rates, averages and maxima over cumulative counters (pure: times are passed in).

Goals: counting on the hot paths must cost at most an integer increment, so the
clients keep only cumulative totals (records sent, bytes, latency sums, ...), and
all windowing happens here, when someone reads the metrics.

Plan (Kafka's metrics: ``metrics.sample.window.ms`` = 30 s, ``metrics.num.samples``
= 2, so a rate covers the last 30 to 60 seconds): a :class:`Window` keeps snapshots
of the totals taken when they are read, at most one per ``window_ms``, and drops a
snapshot once the next one is itself ``window_ms * samples`` old. A reading is the
difference between the totals now and the oldest snapshot kept, over the time
between them. So with regular reads (a Prometheus scrape every 15 s) a rate covers
the last 30 to 60 s, as Kafka's does; read rarely, it covers the time since the
previous reading. Before any reading it covers the time since the client started.

A maximum cannot be recovered from totals: :class:`WindowedMax` keeps one maximum
per ``window_ms`` of event time, recorded per batch by callers that already read
the clock for a latency.
"""

from __future__ import annotations

import itertools
import math
from collections import deque

__all__ = [
    "Window", "WindowedMax", "average", "max_of", "rate_per_s", "sample_window_ms", "samples",
]

sample_window_ms = 30_000  # Kafka's metrics.sample.window.ms default
samples = 2  # Kafka's metrics.num.samples default


class Window:
    """Snapshots of ``width`` cumulative totals, for windowed differences. Not
    thread-safe: the owner serialises readings (each client holds a lock)."""

    __slots__ = ("_snapshots", "samples", "window_ms")

    def __init__(self, now_ms: float, width: int, *, window_ms: float = sample_window_ms,
                 samples_kept: int = samples) -> None:
        assert width > 0
        assert window_ms > 0
        assert samples_kept >= 1
        self.window_ms = window_ms
        self.samples = samples_kept
        self._snapshots: deque[tuple[float, tuple[float, ...]]] = deque(
            [(now_ms, (0,) * width)])

    def deltas(self, now_ms: float, totals: tuple[float, ...]
               ) -> tuple[float, tuple[float, ...]]:
        """``(elapsed_ms, totals - baseline)`` over the window ending ``now_ms``.
        O(samples)."""
        snaps = self._snapshots
        assert len(totals) == len(snaps[0][1])
        if now_ms - snaps[-1][0] >= self.window_ms:
            snaps.append((now_ms, totals))
        horizon_ms = self.window_ms * self.samples
        while len(snaps) > 1 and now_ms - snaps[1][0] >= horizon_ms:
            snaps.popleft()
        start_ms, baseline = snaps[0]
        return now_ms - start_ms, tuple(a - b for a, b in zip(totals, baseline))

    def check(self) -> None:
        """Assert the invariants: snapshots in time order, each full width."""
        snaps = list(self._snapshots)
        assert snaps
        for (t0, a), (t1, b) in itertools.pairwise(snaps):
            assert t1 - t0 >= self.window_ms, (t0, t1)
            assert len(a) == len(b)


def rate_per_s(count: float, elapsed_ms: float) -> float:
    """``count`` per second over ``elapsed_ms`` (0.0 when no time has passed)."""
    return count * 1000.0 / elapsed_ms if elapsed_ms > 0 else 0.0


def average(total: float, count: float) -> float:
    """``total / count``; NaN without samples, as Kafka reports an empty Avg."""
    return total / count if count else math.nan


class WindowedMax:
    """The largest value recorded in the last ``window_ms * samples`` of event time.
    Not thread-safe: the caller holds the lock of whatever it measures."""

    __slots__ = ("_buckets", "samples", "window_ms")

    def __init__(self, *, window_ms: float = sample_window_ms,
                 samples_kept: int = samples) -> None:
        self.window_ms = window_ms
        self.samples = samples_kept
        self._buckets: deque[list[float]] = deque()  # [start_ms, max]

    def record(self, value: float, now_ms: float) -> None:
        buckets = self._buckets
        if not buckets or now_ms - buckets[-1][0] >= self.window_ms:
            buckets.append([now_ms, value])
            while len(buckets) > self.samples:
                buckets.popleft()
        elif value > buckets[-1][1]:
            buckets[-1][1] = value

    def value(self, now_ms: float) -> float:
        """The maximum recorded in the window ending ``now_ms``; NaN if none."""
        horizon_ms = self.window_ms * self.samples
        kept = [m for start, m in list(self._buckets) if now_ms - start < horizon_ms]
        return max(kept) if kept else math.nan

    def check(self) -> None:
        """Assert the invariants: at most ``samples`` buckets, in time order."""
        buckets = list(self._buckets)
        assert len(buckets) <= self.samples
        for (t0, _m0), (t1, _m1) in itertools.pairwise(buckets):
            assert t1 - t0 >= self.window_ms, (t0, t1)


def max_of(values: list[float]) -> float:
    """The largest non-NaN value; NaN if there is none."""
    kept = [v for v in values if not math.isnan(v)]
    return max(kept) if kept else math.nan
