"""Fetcher: records from the assigned partitions, built from decoded batches at C speed.

Records are built from a batch's decoded columns with C-level ``zip``/``map`` (no
Python code per record unless a deserializer is configured). A partition keeps the
batches decoded by its last read and serves the next polls from them, so a large
producer batch is decoded once, not once per ``max_poll_records``.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

from ..broker.partition import Partition
from ..errors import (
    ClosedError,
    CorruptLogError,
    OffsetOutOfRangeError,
    RecordDeserializationError,
    UnknownTopicError,
)
from ..records import ConsumerRecord, TimestampType, TopicPartition
from ..storage.batch import (
    BatchHeader,
    Columns,
    attr_control,
    attr_log_append_time,
    attr_transactional,
)
from .config import ConsumerConfig
from .positions import PartitionState, Positions

__all__ = ["Chunk", "Fetcher", "RecordBuilder", "committed_view", "consumer_records",
           "hidden_offsets"]

_make_record = partial(tuple.__new__, ConsumerRecord)
_no_headers: tuple = ()
_FETCH_ERRORS = (OffsetOutOfRangeError, UnknownTopicError, ClosedError,
                 RecordDeserializationError, CorruptLogError)


RecordBuilder = Callable[
    [TopicPartition, TimestampType, Sequence[int], Sequence[int], Sequence[Any], Sequence[Any],
     "Sequence[tuple] | None"],
    Iterable[Any],
]
"""Makes the records of one batch from its columns, sliced to the records taken:
``(tp, timestamp_type, offsets, timestamps, keys, values, headers)``, ``headers`` None
when no record of the batch has any. Called once per batch; returns one object per
record, in order (an iterator, so a deserializer failing at a record stops there)."""


def consumer_records(tp: TopicPartition, timestamp_type: TimestampType,
                     offsets: Sequence[int], timestamps: Sequence[int], keys: Sequence[Any],
                     values: Sequence[Any], headers: Sequence[tuple] | None
                     ) -> Iterable[ConsumerRecord]:
    """The RecordBuilder of ``Consumer.poll``: ConsumerRecords, built at C speed."""
    return map(_make_record, zip(
        repeat(tp.topic), repeat(tp.partition), offsets, timestamps, repeat(timestamp_type),
        keys, values, repeat(_no_headers) if headers is None else headers,
    ))


class Chunk(NamedTuple):
    """Records fetched from one partition and the position after them (ConsumerRecords,
    or what the fetcher's ``build`` makes)."""

    state: PartitionState
    records: list[Any]
    next_position: int
    size_bytes: int


class Fetcher:
    """Reads the fetchable partitions of :class:`Positions`; moves no position itself.

    Used by the thread holding the consumer's lock.
    """

    __slots__ = (
        "_key_de",
        "_max_bytes",
        "_max_partition_bytes",
        "_positions",
        "_read_committed",
        "_rr",
        "_value_de",
        "build",
    )

    def __init__(self, positions: Positions, config: ConsumerConfig,
                 key_de: Callable[[Any], Any] | None,
                 value_de: Callable[[Any], Any] | None) -> None:
        self._positions = positions
        self._key_de = key_de
        self._value_de = value_de
        self._read_committed = config.isolation_level == "read_committed"
        self._max_bytes = config.fetch_max_bytes
        self._max_partition_bytes = config.max_partition_fetch_bytes
        self._rr = 0
        self.build: RecordBuilder = consumer_records  # what a batch's records become

    def fetch(self, limit: int) -> list[Chunk]:
        """One pass over the fetchable partitions, starting at a rotating one.

        An error after some records were fetched is kept for the next call."""
        positions = self._positions
        states = [st for st in positions.assigned.values() if not st.paused]
        if not states:
            return []
        error = positions.fetch_error
        if error is not None:
            positions.fetch_error = None
            raise error
        start = self._rr % len(states)
        self._rr += 1
        chunks: list[Chunk] = []
        budget = self._max_bytes
        for st in itertools.chain(states[start:], states[:start]):
            try:
                chunk = self._fetch_partition(st, limit, budget)
            except _FETCH_ERRORS as exc:
                if not chunks:
                    raise
                positions.fetch_error = exc  # raised at the next poll; return what we have
                break
            if chunk is None:
                continue
            chunks.append(chunk)
            limit -= len(chunk.records)
            budget -= chunk.size_bytes
            if limit <= 0 or budget <= 0:
                break
        return chunks

    def _fetch_partition(self, st: PartitionState, limit: int, budget: int) -> Chunk | None:
        """Records of one partition: what its decoded batches still hold, then one read."""
        part = st.partition
        if part is None:
            return None
        position = st.position
        error = st.pending_error
        if error is not None:
            st.pending_error = None
            if position == error.offset:
                raise error
        if position is None:
            position = self._positions.resolve(st)
        if part.lingering:  # a producer of this log holds records for it: append them
            part.flush_lingering()
        end = part.end_offset
        if self._read_committed:  # stop at the LSO; between it and the end is in range
            end = part.last_stable_offset
            if end <= position <= part.end_offset:
                return None
        if position == end:
            return None
        if position > part.end_offset or position < part.start_offset:
            position = self._positions.reset_out_of_range(st, position)
        records: list[Any] = []
        size = 0
        fresh = False
        while position < end and limit > 0 and not fresh:
            batches = st.buffer
            if not (batches and batches[0][0].base_offset <= position
                    <= batches[-1][0].last_offset):
                max_bytes = min(self._max_partition_bytes, max(budget, 1))
                if self._read_committed:
                    # Read past what aborted transactions hide, so that one read fills
                    # the poll; keep the view: the buffer below the LSO is settled.
                    batches = committed_view(part, part.read_batches(
                        position, limit + hidden_offsets(part, position, limit), max_bytes,
                        runs=True), end)
                else:
                    batches = part.read_batches(  # runs: records wanted, not stored batches
                        position, limit, max_bytes, runs=True)
                st.buffer, fresh = batches, True
            chunk = self._records_from(st, batches, position, limit)
            if chunk is None:
                break
            records.extend(chunk.records)
            size += chunk.size_bytes
            limit -= len(chunk.records)
            position = chunk.next_position
            if st.pending_error is not None:  # stopped before a record it cannot deserialize
                break
        if not records and position == st.position:
            return None
        return Chunk(st, records, position, size)

    def _records_from(
        self, st: PartitionState, batches: list[tuple[BatchHeader, Columns]],
        position: int, limit: int,
    ) -> Chunk | None:
        """Build records at and after ``position`` from decoded batches. C-level per batch."""
        out: list[Any] = []
        size = 0
        next_position = position
        for header, cols in batches:
            last = header.last_offset
            if last < next_position:
                continue
            offsets = cols.offsets
            if header.attributes & attr_control:
                next_position = last + 1
                continue
            first = _index_of(offsets, next_position)
            available = len(offsets) - first
            take = min(available, limit)
            if take > 0:
                done = len(out)
                try:
                    out.extend(self._build(st.tp, header, cols, first, first + take))
                except Exception as exc:  # a deserializer failed: stop at that record
                    bad = offsets[first + len(out) - done]
                    error = _deserialization_error(st.tp, bad, exc)
                    if not out:
                        raise error from exc
                    st.pending_error = error  # raised when the fetch reaches it again
                    return Chunk(st, out, bad, size)
                # Bytes as Kafka's fetch counts them (fetch_min_bytes, fetch_max_bytes):
                # the stored batch, its share for the records taken. O(1) per batch.
                size += header.total_bytes * take // len(offsets)
                limit -= take
            if take < available:
                next_position = offsets[first + take - 1] + 1
                break
            next_position = last + 1  # past records compaction removed from the batch end
            if limit <= 0:
                break
        if not out and next_position == position:
            return None
        return Chunk(st, out, next_position, size)

    def _build(
        self, tp: TopicPartition, header: BatchHeader, cols: Columns, first: int, stop: int
    ) -> Iterable[Any]:
        offsets, timestamps, keys, values, headers = cols
        if first or stop != len(offsets):
            offsets, timestamps = offsets[first:stop], timestamps[first:stop]
            keys, values = keys[first:stop], values[first:stop]
            if headers is not None:
                headers = headers[first:stop]
        if self._key_de is not None:
            keys = map(self._key_de, keys)
        if self._value_de is not None:
            values = map(self._value_de, values)
        ts_type = (
            TimestampType.LOG_APPEND_TIME if header.attributes & attr_log_append_time
            else TimestampType.CREATE_TIME
        )
        return self.build(tp, ts_type, offsets, timestamps, keys, values, headers)


def _deserialization_error(tp: TopicPartition, bad: int, exc: Exception
                           ) -> RecordDeserializationError:
    error = RecordDeserializationError(
        f"cannot deserialize the record at offset {bad} of {tp.topic}-{tp.partition}: "
        f"{exc!r}; seek to offset {bad + 1} to skip it", tp, bad,
    )
    error.__cause__ = exc
    return error


def committed_view(part: Partition, batches: list[tuple[BatchHeader, Columns]], end: int
                   ) -> list[tuple[BatchHeader, Columns]]:
    """``batches`` as a read_committed consumer sees them: those below the LSO ``end``,
    the batches of aborted transactions marked as control batches (skipped, the
    position moves past them).

    Every batch below the LSO belongs to a settled transaction (or none), so the view
    stays right for as long as the batches are buffered. One index lookup for the
    aborted transactions that overlap ``batches``; the batches are found by bisection
    inside each one's offsets, so the cost is O(log batches) plus O(1) per aborted
    transaction and per batch inside its offsets, nothing per other batch; without
    any aborted transaction and below the LSO, ``batches`` itself."""
    if not batches:
        return batches
    stop = batches[-1][0].last_offset + 1
    cut = len(batches)
    if batches[-1][0].base_offset >= end:  # batches at or past the LSO: not yet settled
        cut = bisect_left(batches, end, key=_base_offset)
        stop = end
    aborted = part.aborted_transactions(batches[0][0].base_offset, stop)
    if not aborted:
        return batches if cut == len(batches) else batches[:cut]
    out = batches[:cut]
    for entry in aborted:
        pid, last = entry.producer_id, entry.last_offset
        # The producer's batches from its first offset to its marker are that
        # transaction's (a batch is never split: it starts inside it).
        i = bisect_left(out, entry.first_offset, 0, cut, key=_base_offset)
        while i < cut:
            header, cols = out[i]
            if header.base_offset > last:
                break
            attributes = header.attributes
            if (header.producer_id == pid and attributes & attr_transactional
                    and not attributes & attr_control):
                out[i] = (header._replace(attributes=attributes | attr_control), cols)
            i += 1
    return out


def hidden_offsets(part: Partition, position: int, limit: int) -> int:
    """About how many offsets from ``position`` on aborted transactions hide from a
    read of ``limit`` records: what a read_committed fetch adds to its read so that it
    still returns ``limit`` records. Each aborted transaction that overlaps the read
    counts whole (from ``position``), once; the offsets added are looked at in turn.
    An upper bound where other producers' records lie inside an aborted transaction's
    offsets (read ahead, they stay buffered for the next poll; the fetch's byte limits
    bound the read). O(aborted transactions looked at); at most four index lookups."""
    hidden = 0
    counted: set[int] = set()
    start, stop = position, position + limit
    for _ in range(4):
        extra = 0
        for entry in part.aborted_transactions(start, stop):
            last = entry.last_offset
            if last not in counted:
                counted.add(last)
                extra += last + 1 - max(entry.first_offset, position)
        if not extra:
            break
        hidden += extra
        start, stop = stop, stop + extra
    return hidden


def _base_offset(batch: tuple[BatchHeader, Columns]) -> int:
    return batch[0].base_offset


def _index_of(offsets: Any, offset: int) -> int:
    """Index of the first record at or after ``offset``. O(1) dense, O(log n) compacted."""
    if isinstance(offsets, range):
        return max(0, offset - offsets.start)
    return bisect_left(offsets, offset)
