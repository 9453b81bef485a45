"""The storage layer: one partition's log as files of batches, offsets and bytes.

Nothing here knows what a group or client is; a topic only as the TopicConfig its
logs are opened with. The modules, each importing only those below it (the
import-linter contract in pyproject.toml)::

    follower, verifier    a log as another process reads it; eventlog verify
    partition_log         the writer: append, roll, sync, truncate, retention, cleaning
    cleaner, log_view     compaction runs and their swap; lock-free reads
    segment               one .log with its indexes: append, read, truncate, close
    loader                opening: segment recovery, leftovers, damage, log start
    swap, index, ...      swap recovery; the sparse indexes; reader view; batch cache;
                          the aborted-transactions index; the key index
    files, compaction,    every OS call; the compaction and retention plans (pure)
    retention
    batch                 the record batch codec (pure)
"""

from .batch import BatchHeader, Columns
from .partition_log import PartitionLog, RecoveryReport
from .segment import Segment

__all__ = ["BatchHeader", "Columns", "PartitionLog", "RecoveryReport", "Segment"]
