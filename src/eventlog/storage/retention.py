"""Retention as a pure plan: which whole segments ``cleanup_policy=delete`` removes.

Kafka's rules (UnifiedLog.deleteOldSegments, KAFKA_SEMANTICS 5.6), applied to
segment summaries, oldest first, stopping at the first segment that does not
qualify:

* time: ``now - segment.max_timestamp > retention_ms`` (``-1``: never);
* size: while ``total - segment.size >= retention_bytes`` (``-1``: never);
* only segments wholly below the high watermark (here: the log end) go;
* at least one segment always remains: if every segment qualifies, the log
  first rolls an empty segment at the log end, then deletes all the old ones
  (so the log start offset becomes the log end offset).

No clock, files or locks here: PartitionLog applies the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

__all__ = ["RetentionPlan", "SegmentSummary", "plan_retention"]


class SegmentSummary(NamedTuple):
    base_offset: int
    next_offset: int
    size: int
    max_timestamp: int  # -1 if the segment holds no timestamps (empty)
    created_ms: int


class RetentionPlan(NamedTuple):
    delete_base_offsets: tuple[int, ...]
    roll_first: bool  # every segment qualified: roll an empty one at the log end first


def _expired(seg: SegmentSummary, now_ms: int, retention_ms: int) -> bool:
    if retention_ms < 0:
        return False
    newest = seg.max_timestamp if seg.max_timestamp >= 0 else seg.created_ms
    return now_ms - newest > retention_ms


def plan_retention(
    segments: Sequence[SegmentSummary],
    *,
    now_ms: int,
    retention_ms: int,
    retention_bytes: int,
    log_start_offset: int,
    high_watermark: int,
) -> RetentionPlan:
    """Decide which segments retention deletes. O(segments).

    Three passes in Kafka's order, each deleting a further prefix: segments wholly
    below the log start offset, then by size, then by time.
    """
    remaining = list(segments)
    doomed: list[int] = []

    def take_while(qualifies: Callable[[SegmentSummary, int], bool]) -> None:
        total = sum(s.size for s in remaining)
        while remaining:
            seg = remaining[0]
            if seg.next_offset > high_watermark:
                return
            if seg.size == 0 and len(remaining) == 1:
                return  # an empty last segment is never deleted
            if not qualifies(seg, total):
                return
            doomed.append(seg.base_offset)
            total -= seg.size
            remaining.pop(0)

    take_while(lambda seg, total: seg.next_offset <= log_start_offset)
    if retention_bytes >= 0:
        take_while(lambda seg, total: total - seg.size >= retention_bytes)
    take_while(lambda seg, total: _expired(seg, now_ms, retention_ms))
    return RetentionPlan(tuple(doomed), roll_first=bool(doomed) and not remaining)
