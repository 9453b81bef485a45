"""MaintenanceCounters: what the log's retention and cleaner runs did, for log.metrics()."""

from __future__ import annotations

import threading

__all__ = ["MaintenanceCounters"]


class MaintenanceCounters:
    """Cumulative counts of retention and cleaner work on one EventLog. Thread-safe
    (the background maintenance thread and callers of run_retention/run_compaction
    both count): one lock per run, never per record."""

    __slots__ = (
        "_lock", "cleaner_bytes_read", "cleaner_bytes_written", "cleaner_max_ms",
        "cleaner_partitions_cleaned", "cleaner_records_removed", "cleaner_runs",
        "retention_runs", "retention_segments_deleted",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retention_runs = 0
        self.retention_segments_deleted = 0
        self.cleaner_runs = 0
        self.cleaner_partitions_cleaned = 0
        self.cleaner_records_removed = 0
        self.cleaner_bytes_read = 0
        self.cleaner_bytes_written = 0
        self.cleaner_max_ms = 0.0  # the longest run, as Kafka's max-clean-time-secs

    def retention_ran(self, segments_deleted: int) -> None:
        with self._lock:
            self.retention_runs += 1
            self.retention_segments_deleted += segments_deleted

    def cleaner_ran(self, stats: list, duration_ms: float) -> None:
        """One run over the compacted partitions; ``stats`` their CleanerStats."""
        with self._lock:
            self.cleaner_runs += 1
            for s in stats:
                if s.cleaned:
                    self.cleaner_partitions_cleaned += 1
                self.cleaner_records_removed += s.records_removed
                self.cleaner_bytes_read += s.bytes_read
                self.cleaner_bytes_written += s.bytes_written
            self.cleaner_max_ms = max(self.cleaner_max_ms, duration_ms)
