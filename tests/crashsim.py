"""Simulating a killed process in tests (shared by the crash and property tests)."""

from __future__ import annotations

from eventlog.storage.partition_log import PartitionLog


def abandon(log: PartitionLog) -> None:
    """Drop ``log`` as a killed process would: close its maps and index files without
    trimming, flushing or writing anything, so the files keep what the page cache had.
    Index entries still pending in memory are lost, as they are in a crash."""
    for seg in log.segments:
        seg._log.close()  # no trim_to: the file keeps its preallocated size
        seg.index._file.close()  # not index.close(), which writes the pending entries
        if seg._time_index is not None:
            seg._time_index._file.close()
