"""The consumer's metrics: cumulative totals, windowed into Kafka's metric names when read."""

from __future__ import annotations

import threading

from ..metrics.window import Window, WindowedMax, average, rate_per_s

__all__ = ["ConsumerStats"]


class ConsumerStats:
    """A consumer's cumulative totals for metrics(): updated per poll, per commit and
    per rebalance by the thread holding the consumer's lock; windowed when read."""

    __slots__ = (
        "commit_max", "commit_ms", "commits", "fetch_max", "fetch_ms", "fetches",
        "last_poll_ms", "last_rebalance_ms", "lock", "rebalances", "records", "size",
        "window",
    )

    def __init__(self, now_ms: float) -> None:
        self.records = self.size = self.fetches = self.commits = self.rebalances = 0
        self.fetch_ms = self.commit_ms = 0.0
        self.fetch_max = WindowedMax()
        self.commit_max = WindowedMax()
        self.last_poll_ms: float | None = None
        self.last_rebalance_ms: float | None = None
        self.lock = threading.Lock()  # serialises readings of the window
        self.window = Window(now_ms, 7)

    def fetched(self, records: int, size: int, started_ms: float, now_ms: float) -> None:
        self.records += records
        self.size += size
        self.fetches += 1
        self.fetch_ms += now_ms - started_ms
        self.fetch_max.record(now_ms - started_ms, now_ms)

    def committed(self, started_ms: float, now_ms: float) -> None:
        self.commits += 1
        self.commit_ms += now_ms - started_ms
        self.commit_max.record(now_ms - started_ms, now_ms)

    def rebalanced(self, now_ms: float) -> None:
        self.rebalances += 1
        self.last_rebalance_ms = now_ms

    def totals(self) -> tuple[float, ...]:
        return (self.records, self.size, self.fetches, self.fetch_ms, self.commits,
                self.commit_ms, self.rebalances)

    def metrics(self, now_ms: float, lags: list[int], assigned: int) -> dict[str, float]:
        """Kafka's consumer metrics by Kafka's names (see ``Consumer.metrics``)."""
        totals = self.totals()
        with self.lock:
            elapsed_ms, d = self.window.deltas(now_ms, totals)
        records, size, fetches, fetch_ms, commits, commit_ms, rebalances = d
        return {
            "records-consumed-total": totals[0],
            "records-consumed-rate": rate_per_s(records, elapsed_ms),
            "bytes-consumed-total": totals[1],
            "bytes-consumed-rate": rate_per_s(size, elapsed_ms),
            "fetch-total": totals[2],
            "fetch-rate": rate_per_s(fetches, elapsed_ms),
            "fetch-latency-avg": average(fetch_ms, fetches),
            "fetch-latency-max": self.fetch_max.value(now_ms),
            "fetch-size-avg": average(size, fetches),
            "records-per-request-avg": average(records, fetches),
            "records-lag-max": float(max(lags)) if lags else float("nan"),
            "commit-total": totals[4],
            "commit-rate": rate_per_s(commits, elapsed_ms),
            "commit-latency-avg": average(commit_ms, commits),
            "commit-latency-max": self.commit_max.value(now_ms),
            "assigned-partitions": assigned,
            "rebalance-total": totals[6],
            "rebalance-rate-per-hour": rate_per_s(rebalances, elapsed_ms) * 3600.0,
            "last-rebalance-seconds-ago": (now_ms - self.last_rebalance_ms) / 1000.0
            if self.last_rebalance_ms is not None else float("nan"),
            "last-poll-seconds-ago": (now_ms - self.last_poll_ms) / 1000.0
            if self.last_poll_ms is not None else float("nan"),
        }
