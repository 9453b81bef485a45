"""Compaction as a pure plan: which range of a log is cleanable, when it is due, how
segments group, and what the cleaner keeps of each batch.

Kafka's rules (LogCleanerManager, LogCleaner; KAFKA_SEMANTICS 6), on values in,
values out: no files, clock or locks. storage/cleaner.py applies the plan; its
module docstring is the theory of operation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from . import batch as codec
from .batch import BatchHeader, Columns

__all__ = [
    "AbortedRange",
    "CleanableRange",
    "SegmentInfo",
    "TransactionFilter",
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
    last_stable_offset: int | None = None,
) -> CleanableRange:
    """The cleanable range of a log (LogCleanerManager.cleanableOffsets). O(segments).

    ``segments`` are the log's, oldest first, the last being the active one. A
    checkpoint outside ``[log_start_offset, log end]`` (the log was truncated or
    its head deleted) restarts at the log start offset, as Kafka does. Nothing at
    or past ``last_stable_offset`` (the first offset of the earliest open
    transaction; None: no transactions) is cleanable, as in Kafka, so every
    transaction the cleaner sees is decided: the segment holding it is the first
    uncleanable one (segments are cleaned whole).
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
    if last_stable_offset is not None:
        for seg in segments:
            if seg.next_offset > last_stable_offset:
                uncleanable = min(uncleanable, seg.base_offset)
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
    aborted: bool = False,
    marker_removable: bool = False,
) -> tuple[bytes | None, int]:
    """What the cleaner writes for one batch (``data``, decoded as ``columns``), and
    how many records it removed. Pure.

    Returns ``data`` itself when nothing changes, new bytes when records go or the
    compacted bit or a delete horizon must be set, or None when the batch keeps no
    record and ``keep_empty`` is false (a batch that must survive empty: a
    producer's last batch, a segment's last batch).

    ``aborted``: a data batch of an aborted transaction (``TransactionFilter``):
    every record goes, whatever its key. A control batch (a transaction marker) is
    ``_clean_marker``'s: ``marker_removable`` says no data of its transaction
    remains before it.
    """
    count = len(columns.offsets)
    if header.attributes & codec.attr_control:
        return _clean_marker(header, data, now_ms=now_ms, keep_empty=keep_empty,
                             delete_retention_ms=delete_retention_ms,
                             removable=marker_removable)
    if aborted:
        if not keep_empty:
            return None, count
        if count == 0 and header.attributes & codec.attr_compacted:
            return data, 0
        return codec.encode_retained(header, _subset(columns, [])), count
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
        if header.attributes & codec.attr_kafka_records:
            # Its records' timestamps are deltas from base_timestamp: keep that, and
            # re-encode (as msgpack) rather than overwrite it with a delete horizon.
            if new_horizon < 0:
                return _mark(data, header, header.base_timestamp), 0
            return codec.encode_retained(header, _subset(columns, list(range(count))),
                                         delete_horizon_ms=new_horizon), 0
        if new_horizon >= 0:
            return _mark(data, header, new_horizon, horizon=True), 0
        first_ts = columns.timestamps[0] if count else header.max_timestamp
        return _mark(data, header, first_ts), 0
    kept_columns = _subset(columns, kept)
    return codec.encode_retained(header, kept_columns, delete_horizon_ms=new_horizon), removed


def _clean_marker(header: BatchHeader, data: bytes, *, now_ms: int, delete_retention_ms: int,
                  keep_empty: bool, removable: bool) -> tuple[bytes | None, int]:
    """A transaction marker (Kafka's LogCleaner): kept while data of its transaction
    remains; once none does (``removable``), stamped with the delete horizon ``now +
    delete_retention_ms`` (as a tombstone is, so a read_committed reader that read
    the data before it was removed still meets the marker), and removed by the first
    cleaning at or after the horizon, unless it is its producer's last batch
    (``keep_empty``: it carries the producer's epoch), which is kept whole."""
    horizon = codec.delete_horizon_ms(header)
    if removable and horizon < 0:
        return _mark(data, header, now_ms + delete_retention_ms, horizon=True), 0
    if removable and horizon <= now_ms and not keep_empty:
        return None, header.record_count
    if header.attributes & codec.attr_compacted:
        return data, 0
    return _mark(data, header, header.base_timestamp), 0


def _mark(data: bytes, header: BatchHeader, base_timestamp: int, *, horizon: bool = False) -> bytes:
    attributes = (header.attributes | codec.attr_compacted) & ~codec.attr_delete_horizon
    if horizon:
        attributes |= codec.attr_delete_horizon
    return codec.restamp(data, attributes=attributes, base_timestamp=base_timestamp)


class AbortedRange(Protocol):
    """An aborted transaction as the aborted-transactions index records it."""

    @property
    def producer_id(self) -> int: ...
    @property
    def first_offset(self) -> int: ...
    @property
    def last_offset(self) -> int: ...  # the abort marker's offset


class TransactionFilter:
    """One cleaning pass's view of the transactions it walks through (Kafka's
    CleanedTransactionMetadata), fed every batch in offset order.

    Built from the aborted transactions of the cleaned range (the index: every one
    is decided, since the range ends before the last stable offset). A data batch of
    a producer whose aborted transaction has begun (first offset at or below the
    batch) is aborted; a transactional batch of any other producer belongs to a
    committed transaction. A marker is removable when no batch of its transaction
    was seen in this pass: an abort whose data went in earlier passes, a commit
    whose records were all compacted away. Pure; O(log n) a batch.
    """

    def __init__(self, aborted: Sequence[AbortedRange]) -> None:
        self._pending = sorted(aborted, key=lambda e: e.first_offset, reverse=True)
        # producer id -> [its abort marker's offset, a data batch of it was seen]
        self._aborting: dict[int, list] = {}
        self._committing: set[int] = set()  # producers with committed data seen

    def _aborting_at(self, pid: int, offset: int) -> list | None:
        """The aborted transaction of ``pid`` open at ``offset``, if any. Begins every
        one whose first offset is at or below ``offset``; forgets one whose marker lies
        below it (an index entry that outlived its removed marker must not turn that
        producer's later transactions into aborted ones)."""
        pending = self._pending
        while pending and pending[-1].first_offset <= offset:
            entry = pending.pop()
            self._aborting[entry.producer_id] = [entry.last_offset, False]
        found = self._aborting.get(pid)
        if found is not None and offset > found[0]:
            del self._aborting[pid]
            return None
        return found

    def data_batch(self, header: BatchHeader) -> bool:
        """True if the data batch belongs to an aborted transaction."""
        last = header.base_offset + header.last_offset_delta
        pid = header.producer_id
        found = self._aborting_at(pid, last)
        if not header.attributes & codec.attr_transactional:
            return False
        if found is not None:
            found[1] = True
            return True
        self._committing.add(pid)
        return False

    def marker(self, header: BatchHeader, kind: int | None) -> bool:
        """A control batch of type ``kind`` (``codec.control_abort``/``control_commit``;
        None: it holds no record): True if it may be removed."""
        pid = header.producer_id
        found = self._aborting_at(pid, header.base_offset)
        if kind == codec.control_abort:
            if found is not None:
                del self._aborting[pid]
            return not (found is not None and found[1])
        if kind == codec.control_commit:
            if pid in self._committing:
                self._committing.discard(pid)
                return False
            return True
        return kind is None  # an empty control batch was cleaned before: it may go
