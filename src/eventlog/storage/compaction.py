"""Compaction as a pure plan: which range of a log is cleanable, when it is due, how
segments group, and what the cleaner keeps of each batch.

Kafka's rules (LogCleanerManager, LogCleaner; KAFKA_SEMANTICS 6), on values in,
values out: no files, clock or locks. storage/cleaner.py applies the plan; its
module docstring is the theory of operation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from . import batch as codec
from .batch import BatchHeader, Columns

__all__ = [
    "CleanableRange",
    "SegmentInfo",
    "clean_batch",
    "cleanable_range",
    "compaction_due",
    "group_segments",
    "retained_indexes",
]


class SegmentInfo(NamedTuple):
    """What the planning needs of one segment."""

    base_offset: int
    next_offset: int
    size: int
    first_timestamp: int  # the first batch's max timestamp, -1 if the segment is empty
    max_timestamp: int  # -1 if the segment is empty


class CleanableRange(NamedTuple):
    """KAFKA_SEMANTICS 6.2: ``[first_dirty, first_uncleanable)`` and the bytes around it."""

    first_dirty: int
    first_uncleanable: int
    clean_bytes: int  # segments wholly below first_dirty
    dirty_bytes: int  # segments overlapping [first_dirty, first_uncleanable)

    @property
    def dirty_ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


def cleanable_range(
    segments: Sequence[SegmentInfo],
    *,
    checkpoint: int,
    log_start_offset: int,
    now_ms: int,
    min_compaction_lag_ms: int,
) -> CleanableRange:
    """The cleanable range of a log (LogCleanerManager.cleanableOffsets). O(segments).

    ``segments`` are the log's, oldest first, the last being the active one. A
    checkpoint outside ``[log_start_offset, log end]`` (the log was truncated or
    its head deleted) restarts at the log start offset, as Kafka does.
    """
    assert segments, "a log has at least one segment"
    active = segments[-1]
    first_dirty = checkpoint
    if not log_start_offset <= checkpoint <= active.next_offset:
        first_dirty = log_start_offset
    uncleanable = active.base_offset
    if min_compaction_lag_ms > 0:
        for seg in segments[:-1]:
            if seg.next_offset > first_dirty and seg.max_timestamp > now_ms - min_compaction_lag_ms:
                uncleanable = seg.base_offset
                break
    uncleanable = max(uncleanable, first_dirty)
    clean = sum(s.size for s in segments if s.next_offset <= first_dirty)
    dirty = sum(
        s.size for s in segments
        if s.next_offset > first_dirty and s.base_offset < uncleanable
    )
    return CleanableRange(first_dirty, uncleanable, clean, dirty)


def compaction_due(
    cleanable: CleanableRange,
    segments: Sequence[SegmentInfo],
    *,
    now_ms: int,
    min_cleanable_dirty_ratio: float,
    max_compaction_lag_ms: int,
) -> str | None:
    """Why the log should be cleaned now ("dirty ratio", "max compaction lag"), or None.

    The dirty ratio must EXCEED the minimum (LogCleanerManager.grabFilthiestCompactedLog);
    a dirty segment whose first batch is older than ``max_compaction_lag_ms`` forces a
    cleaning whatever the ratio (KIP-354). O(segments).
    """
    if cleanable.dirty_bytes == 0:
        return None
    if cleanable.dirty_ratio > min_cleanable_dirty_ratio:
        return "dirty ratio"
    for seg in segments:
        dirty = (seg.next_offset > cleanable.first_dirty
                 and seg.base_offset < cleanable.first_uncleanable)
        if dirty and seg.first_timestamp >= 0 and (
            now_ms - seg.first_timestamp > max_compaction_lag_ms
        ):
            return "max compaction lag"
    return None


def group_segments(
    segments: Sequence[SegmentInfo], *, segment_bytes: int, relative_offset_max: int
) -> list[list[SegmentInfo]]:
    """Split consecutive segments into groups that are each cleaned into one segment:
    sizes add up to at most ``segment_bytes`` and offsets fit the index's relative
    offsets (at most ``relative_offset_max`` past the group's base: Kafka's
    groupSegmentsBySize). Every group has at least one segment. O(segments).
    """
    groups: list[list[SegmentInfo]] = []
    current: list[SegmentInfo] = []
    size = 0
    for seg in segments:
        if current and (
            size + seg.size > segment_bytes
            or seg.next_offset - 1 - current[0].base_offset > relative_offset_max
        ):
            groups.append(current)
            current, size = [], 0
        current.append(seg)
        size += seg.size
    if current:
        groups.append(current)
    return groups


def retained_indexes(
    columns: Columns,
    *,
    latest: Mapping[bytes | None, int],
    map_end: int,
    now_ms: int,
    delete_horizon_ms: int,
) -> list[int]:
    """Indexes of the records of one batch the cleaner keeps (KAFKA_SEMANTICS 6.3).

    A record is kept iff it is past the key map (``offset >= map_end``), or keyless,
    or no later record of its key is in the map, and it has a value or its batch's
    delete horizon (-1: none yet) has not passed. O(records).
    """
    drop_tombstones = 0 <= delete_horizon_ms <= now_ms
    get = latest.get
    kept = []
    for i, (offset, key, value) in enumerate(zip(columns.offsets, columns.keys, columns.values)):
        if offset >= map_end or key is None:
            kept.append(i)
        elif offset < get(key, -1):
            continue  # obsolete: a later record of the key exists
        elif value is None and drop_tombstones:
            continue  # a tombstone past its delete horizon
        else:
            kept.append(i)
    return kept


def _subset(columns: Columns, kept: list[int]) -> Columns:
    offsets, timestamps, keys, values, headers = columns
    return Columns(
        [offsets[i] for i in kept],
        [timestamps[i] for i in kept],
        [keys[i] for i in kept],
        [values[i] for i in kept],
        None if headers is None else [headers[i] for i in kept],
    )


def clean_batch(
    header: BatchHeader,
    data: bytes,
    columns: Columns,
    *,
    latest: Mapping[bytes | None, int],
    map_end: int,
    now_ms: int,
    delete_retention_ms: int,
    keep_empty: bool,
) -> tuple[bytes | None, int]:
    """What the cleaner writes for one batch (``data``, decoded as ``columns``), and
    how many records it removed. Pure.

    Returns ``data`` itself when nothing changes, new bytes when records go or the
    compacted bit or a delete horizon must be set, or None when the batch keeps no
    record and ``keep_empty`` is false (a batch that must survive empty: a
    producer's last batch, a segment's last batch).
    """
    count = len(columns.offsets)
    if header.attributes & codec.attr_control:  # transaction markers: kept as they are
        if header.attributes & codec.attr_compacted:
            return data, 0
        return _mark(data, header, header.base_timestamp), 0
    horizon = codec.delete_horizon_ms(header)
    kept = retained_indexes(
        columns, latest=latest, map_end=map_end, now_ms=now_ms, delete_horizon_ms=horizon
    )
    removed = count - len(kept)
    if not kept and not keep_empty:
        return None, removed
    values = columns.values
    if any(values[i] is None for i in kept):
        new_horizon = horizon if horizon >= 0 else now_ms + delete_retention_ms
    else:
        new_horizon = -1  # no tombstone left: nothing to time out
    if removed == 0:
        if new_horizon == horizon and header.attributes & codec.attr_compacted:
            return data, 0
        if new_horizon >= 0:
            return _mark(data, header, new_horizon, horizon=True), 0
        first_ts = columns.timestamps[0] if count else header.max_timestamp
        return _mark(data, header, first_ts), 0
    kept_columns = _subset(columns, kept)
    return codec.encode_retained(header, kept_columns, delete_horizon_ms=new_horizon), removed


def _mark(data: bytes, header: BatchHeader, base_timestamp: int, *, horizon: bool = False) -> bytes:
    attributes = (header.attributes | codec.attr_compacted) & ~codec.attr_delete_horizon
    if horizon:
        attributes |= codec.attr_delete_horizon
    return codec.restamp(data, attributes=attributes, base_timestamp=base_timestamp)
