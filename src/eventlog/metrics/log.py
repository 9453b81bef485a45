"""log_metrics(log): a data directory's metrics by Kafka's names (kafka.log:type=Log,
LogCleaner, LogManager), computed from what the log already keeps: nothing is counted
on the append or read paths.

Kafka tags its per-log metrics with topic and partition; here they sit under
``"partitions"``, keyed by TopicPartition, each with Kafka's per-log names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from ..records import TopicPartition

__all__ = ["log_metrics", "partition_metrics"]


class _Partition(Protocol):
    """What log_metrics reads of a Partition."""

    topic: str
    index: int
    start_offset: int
    end_offset: int
    size_bytes: int
    closed: bool
    segment_count: int


class _Log(Protocol):
    """What log_metrics reads of an EventLog."""

    recovery: Any
    maintenance_counters: Any

    def partitions(self) -> Iterable[Any]: ...

    def topics(self, *, include_internal: bool = False) -> list[str]: ...


def partition_metrics(p: _Partition) -> dict[str, int]:
    """Kafka's kafka.log:type=Log metrics of one partition. O(1)."""
    return {
        "log-size": p.size_bytes,
        "num-log-segments": p.segment_count,
        "log-start-offset": p.start_offset,
        "log-end-offset": p.end_offset,
    }


def log_metrics(log: _Log) -> dict[str, Any]:
    """The whole log's metrics; see docs/operations.md for each. O(partitions)."""
    per: dict[TopicPartition, dict[str, int]] = {}
    for p in log.partitions():
        if not p.closed:  # a topic deleted meanwhile
            per[TopicPartition(p.topic, p.index)] = partition_metrics(p)
    counters = log.maintenance_counters
    recovery = log.recovery
    return {
        "topic-count": len(log.topics(include_internal=True)),
        "partition-count": len(per),
        "log-size": sum(m["log-size"] for m in per.values()),
        "num-log-segments": sum(m["num-log-segments"] for m in per.values()),
        "retention-runs-total": counters.retention_runs,
        "retention-segments-deleted-total": counters.retention_segments_deleted,
        "cleaner-runs-total": counters.cleaner_runs,
        "cleaner-partitions-cleaned-total": counters.cleaner_partitions_cleaned,
        "cleaner-records-removed-total": counters.cleaner_records_removed,
        "cleaner-bytes-read-total": counters.cleaner_bytes_read,
        "cleaner-bytes-written-total": counters.cleaner_bytes_written,
        "max-clean-time-secs": counters.cleaner_max_ms / 1000.0,
        "recovery-clean-shutdown": int(recovery.clean),
        "recovery-segments-checked": recovery.segments_checked,
        "recovery-batches-checked": recovery.batches_checked,
        "recovery-bytes-truncated": recovery.bytes_truncated,
        "recovery-duration-ms": recovery.duration_ms,
        "recovery-damaged-partitions": len(recovery.damaged),
        "partitions": per,
    }
