"""Bytes and offsets: the batch codec, segments, indexes and the partition log.

Nothing here knows what a topic, group or client is.
"""

from .batch import BatchHeader, Columns
from .partition_log import PartitionLog, RecoveryReport
from .segment import Segment

__all__ = ["BatchHeader", "Columns", "PartitionLog", "RecoveryReport", "Segment"]
