"""Partition: one partition's log, its lock, its idempotent-producer state and its waiters.

Appends are serialised by the partition lock; reads take no lock and never see
a partly written batch (the storage layer publishes a batch only once all its
bytes are in the map). The high watermark is the log end offset: with one
in-process replica every appended record is committed at once (KAFKA_SEMANTICS
11.6).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

from .clock import Clock
from .config import TopicConfig
from .errors import (
    ClosedError,
    InvalidConfigError,
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTopicError,
    KeyVersionConflictError,
    OffsetConflictError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    RecordTooLargeError,
    StorageError,
)
from .records import Record, TopicPartition
from .storage import batch as codec
from .storage.batch import BatchHeader, Columns
from .storage.cleaner import CleanerStats
from .storage.key_index import KeyIndex, index_batches
from .storage.partition_log import PartitionLog
from .storage.txn_index import AbortedTxn, PartitionTxns, encode_marker

__all__ = ["AppendResult", "DataSignal", "InternalPartition", "Partition"]

_NONE_TYPE = type(None)
_KEY_TYPES = frozenset((bytes, _NONE_TYPE))
_make_record = partial(tuple.__new__, Record)
_transactional = codec.attr_transactional
key_index_read_records = 4096  # records per read when (re)building a key index
iter_batch_records = 500  # records per read in Partition.iter()
producer_batches_retained = 5  # Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN
sequence_max = 2**31 - 1
sequence_modulus = sequence_max + 1  # sequences wrap after Integer.MAX_VALUE


class AppendResult(NamedTuple):
    """Where a batch landed: what the producer's futures resolve from."""

    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 for CreateTime topics
    duplicate: bool = False
    # The batch's bytes in the log, and before compression (equal when uncompressed);
    # 0 for a duplicate, which appended nothing. What producer metrics average.
    size_bytes: int = 0
    uncompressed_bytes: int = 0


_new_result = partial(tuple.__new__, AppendResult)


@dataclass
class _ProducerEntry:
    epoch: int
    last_sequence: int
    batches: deque = field(default_factory=lambda: deque(maxlen=producer_batches_retained))


def _first_bad(column: Sequence[Any], allowed: frozenset) -> tuple[int, Any]:
    for i, item in enumerate(column):
        if type(item) not in allowed:
            return i, item
    raise AssertionError("no bad item in column")


_GETTERS = tuple(itemgetter(i) for i in range(4))


def split_columns(records: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Transpose records (tuples of ``width``) into ``width`` column lists.

    ``map(itemgetter(i))`` per column: ``zip(*records)`` would build one iterator
    per record, about five times slower for a batch of 1,000.
    """
    return [list(map(_GETTERS[i], records)) for i in range(width)]


def check_bytes_column(column: Sequence[Any], name: str) -> set[type]:
    """Raise InvalidRecordError unless every item is bytes or None. O(n), C-level.

    Returns the types found (``{bytes}``, ``{bytes, NoneType}``...).
    """
    types = set(map(type, column))
    if not types <= _KEY_TYPES:
        i, item = _first_bad(column, _KEY_TYPES)
        raise InvalidRecordError(
            f"record {i}: {name} must be bytes or None, got {type(item).__name__}; "
            f"encode it first (e.g. .encode()) or give the producer a {name}_serializer"
        )
    return types


def normalise_headers(column: Sequence[Any]) -> list[tuple] | None:
    """Validate headers ((str, bytes | None) pairs) and freeze them as tuples."""
    out: list[tuple] = []
    any_headers = False
    for i, headers in enumerate(column):
        if not headers:
            out.append(())
            continue
        any_headers = True
        frozen = []
        try:
            pairs = list(headers.items() if isinstance(headers, dict) else headers)
        except TypeError:
            pairs = [None]
        for pair in pairs:
            if (
                not isinstance(pair, (tuple, list))
                or len(pair) != 2
                or type(pair[0]) is not str
                or type(pair[1]) not in _KEY_TYPES
            ):
                raise InvalidRecordError(
                    f"record {i}: headers must be (str, bytes | None) pairs, got {pair!r}"
                )
            if not pair[0].isascii() and not _utf8_encodable(pair[0]):
                raise InvalidRecordError(
                    f"record {i}: header name {pair[0]!r} is not valid Unicode (a lone "
                    "surrogate cannot be stored as UTF-8)"
                )
            frozen.append((pair[0], pair[1]))
        out.append(tuple(frozen))
    return out if any_headers else None


def _utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# The batch header stores timestamps as int64 (Kafka's too); Kafka's producer refuses
# negative ones ("Timestamp should always be non-negative or null").
timestamp_ms_max = 2**63 - 1


def timestamp_problem(timestamp_ms: object) -> str | None:
    """Why ``timestamp_ms`` cannot be stored, or None if it can."""
    if type(timestamp_ms) is not int or not 0 <= timestamp_ms <= timestamp_ms_max:
        return (f"timestamp_ms must be an int >= 0 and < 2**63 (ms since the epoch; None "
                f"for now), got {timestamp_ms!r}")
    return None


def _check_timestamps(column: Sequence[Any]) -> None:
    if column and set(map(type, column)) == {int} and (
        min(column) >= 0 and max(column) <= timestamp_ms_max
    ):
        return  # C-level; the loop below only runs to name the bad record
    for i, ts in enumerate(column):
        problem = timestamp_problem(ts)
        if problem is not None:
            raise InvalidRecordError(f"record {i}: {problem}")


class DataSignal:
    """What consumers wait on: a counter that every append bumps, and a condition
    notified only while someone waits. One per EventLog, shared by its partitions
    (attributes, not a callback: appends touch it once per record)."""

    __slots__ = ("cond", "version", "waiters")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.version = 0
        self.waiters = 0

    def notify(self) -> None:
        with self.cond:
            self.cond.notify_all()


class Partition:
    """One partition of a topic: append, read, wait, look up by time.

    Thread-safe. ``topic`` is the topic's name and ``index`` the partition number.
    """

    def __init__(
        self,
        topic: str,
        index: int,
        log: PartitionLog,
        *,
        clock: Clock,
        signal: DataSignal | None = None,
        flush_interval_messages: int | None = None,
    ) -> None:
        self.topic = topic
        self.index = index
        self._log = log
        self._clock = clock
        self._lock = threading.Lock()
        self._data = threading.Condition(self._lock)
        self._waiters = 0
        self._signal = DataSignal() if signal is None else signal
        self._producers: dict[int, _ProducerEntry] = {}
        self._flush_interval_messages = flush_interval_messages
        self._sync_appends = log.sync_each_append  # fsync="always": sync after the lock
        self._unflushed_messages = 0
        self._closed = False
        self._compacted = log.config.compacted
        self._max_message_bytes = log.config.max_message_bytes
        self._inflated_max = codec.inflated_bytes_max(self._max_message_bytes)
        self._log_append_time = log.config.log_append_time
        # The per-key index (storage/key_index.py): None until first used (read_key,
        # key_version, expected_key_versions), then kept up to date by every append
        # under the lock; dropped (and rebuilt on next use) when records leave the log.
        self._key_index: KeyIndex | None = None
        self._key_index_generation = 0  # bumped on every drop: an unlocked build retries
        # Producers' batches lingering for this partition: {owner: append it now}. A
        # read flushes them first (one truth test when there are none), so an
        # in-process reader never waits out a producer's linger_ms.
        self.lingering: dict[object, Callable[[], None]] = {}
        # Transactions (storage/txn_index.py): None until the partition's first
        # transactional batch (and at open unless it ever had one).
        self._txns: PartitionTxns | None = PartitionTxns.open(log)

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        """True once the partition's log was closed (its EventLog closed, or topic deleted)."""
        return self._closed

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.index)

    @property
    def config(self) -> TopicConfig:
        return self._log.config

    @property
    def start_offset(self) -> int:
        """The log start offset: the lowest offset that can be read."""
        return self._log.start_offset

    @property
    def end_offset(self) -> int:
        """The log end offset (= high watermark): the offset the next record gets."""
        return self._log.end_offset

    @property
    def size_bytes(self) -> int:
        return self._log.size_bytes

    @property
    def recovery(self) -> Any:
        """The storage RecoveryReport from opening this partition's log."""
        return self._log.recovery

    @property
    def log(self) -> PartitionLog:
        """The storage log (for tools and tests; its writers need the partition lock)."""
        return self._log

    def _ensure_open(self) -> None:
        if self._closed:
            raise ClosedError(f"partition {self.topic}-{self.index} is closed (its log was closed)")

    # ------------------------------------------------------------------ writing

    def append(
        self,
        records: Iterable[Sequence[Any]],
        *,
        timestamp_ms: int | None = None,
        expected_offset: int | None = None,
        compression: str = "none",
        expected_key_versions: Mapping[bytes, int] | None = None,
    ) -> int:
        """Append records as one batch; return the offset of the first.

        Each record is a tuple ``(key, value)``, ``(key, value, headers)`` or
        ``(key, value, headers, timestamp_ms)``; keys and values are bytes or
        None, headers a sequence of ``(str, bytes | None)`` pairs.
        ``timestamp_ms`` is the default timestamp (default: now).
        ``expected_offset``: append only if the log end offset equals it
        (optimistic concurrency), else raise OffsetConflictError.
        ``expected_key_versions``: ``{key: version}``, append only if every key
        has exactly ``version`` records in the partition now (its
        :meth:`key_version`; 0 for a new key), checked and appended atomically
        under the partition lock, else raise KeyVersionConflictError (a
        subclass of OffsetConflictError) for the first key that differs. The
        keys need not be among the records appended. The first use builds the
        partition's key index (see :meth:`read_key`).

        Raises InvalidRecordError, RecordTooLargeError, OffsetConflictError,
        InvalidConfigError: nothing was appended. Thread-safe. Cost: one pass
        over the records to validate (C-level for keys and values), one
        msgpack encode, one copy into the map.
        """
        return self.append_batch(
            records,
            timestamp_ms=timestamp_ms,
            expected_offset=expected_offset,
            compression=compression,
            expected_key_versions=expected_key_versions,
        ).base_offset

    def append_batch(
        self,
        records: Iterable[Sequence[Any]],
        *,
        timestamp_ms: int | None = None,
        expected_offset: int | None = None,
        compression: str = "none",
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        expected_key_versions: Mapping[bytes, int] | None = None,
    ) -> AppendResult:
        """``append`` with idempotent-producer fields; returns where the batch landed.

        With ``producer_id >= 0``: a batch whose (epoch, first and last sequence)
        matches one of the producer's last 5 batches is a duplicate: nothing is
        appended and the original offsets are returned (``duplicate=True``). A
        sequence gap or reuse raises OutOfOrderSequenceError; an older epoch
        InvalidProducerEpochError (KAFKA_SEMANTICS 9).
        """
        if not isinstance(records, (list, tuple)):
            records = list(records)
        keys, values, headers, timestamps = self._columns(records, timestamp_ms)
        return self.append_columns(
            keys, values, headers, timestamps,
            attributes=self._attributes(compression), expected_offset=expected_offset,
            producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=base_sequence,
            expected_key_versions=expected_key_versions,
        )

    def append_columns(
        self,
        keys: list[bytes | None],
        values: list[bytes | None],
        headers: list[tuple] | None,
        timestamps: list[int],
        *,
        attributes: int = 0,
        expected_offset: int | None = None,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        expected_key_versions: Mapping[bytes, int] | None = None,
    ) -> AppendResult:
        """Append records given as validated columns (the producer's path).

        The caller guarantees what ``append`` checks: equal, non-zero lengths;
        keys and values bytes or None; headers None or one tuple of
        ``(str, bytes | None)`` pairs per record; timestamps ints >= 0;
        ``attributes`` a compression code. Raises as ``append_batch`` does.
        """
        if self._compacted and None in keys:
            raise InvalidRecordError(
                f"record {keys.index(None)}: compacted topic {self.topic!r} cannot accept a "
                "record without a key (Kafka's rule); give every record a key"
            )
        if expected_key_versions is not None:
            expected_key_versions = _check_expected_key_versions(expected_key_versions)
            if expected_key_versions and self._key_index is None:
                self._built_key_index()  # the scan outside the lock where it can be
        with self._lock:
            if self._closed:
                self._ensure_open()
            log = self._log
            if expected_offset is not None and expected_offset != log.end_offset:
                raise OffsetConflictError(
                    f"expected the log of {self.topic}-{self.index} to end at offset "
                    f"{expected_offset}, but it ends at {log.end_offset}; re-read and retry",
                    expected=expected_offset, actual=log.end_offset,
                )
            if expected_key_versions:
                self._check_key_versions_locked(expected_key_versions)
            if producer_id >= 0:
                found = self._check_sequence(producer_id, producer_epoch, base_sequence, len(keys))
                if found is not None:
                    return found
            now_ms = self._clock.time_ms()
            if self._log_append_time:
                timestamps = [now_ms] * len(keys)
            base = log.end_offset
            if attributes & _transactional:  # one test per batch; see _txn_begin
                self._txn_begin(producer_id, base)
            try:
                header, uncompressed = self._encode_and_append(
                    timestamps, keys, values, headers, attributes,
                    producer_id, producer_epoch, base_sequence, now_ms,
                )
            except StorageError:
                # The bytes may be in the log even though a later step (an fsync)
                # failed: remember the sequence, so a retry is seen as a duplicate.
                if log.end_offset > base:
                    self._drop_key_index()
                if producer_id >= 0 and log.end_offset > base:
                    landed = log.read(base, 1)[0][0]
                    self._record_sequence(producer_id, producer_epoch, base_sequence, landed)
                raise
            if producer_id >= 0:
                self._record_sequence(producer_id, producer_epoch, base_sequence, header)
            key_index = self._key_index
            if key_index is not None:
                key_index.add_all(keys, range(header.base_offset, header.last_offset + 1),
                                  log.last_batch_position(header.total_bytes))
                key_index.end_offset = log.end_offset
            self._after_append(header)
        if self._sync_appends:
            self._sync(log, header.last_offset + 1)
        signal = self._signal
        signal.version += 1
        if signal.waiters:
            signal.notify()
        return _new_result((
            header.base_offset, header.last_offset, now_ms if self._log_append_time else -1,
            False, header.total_bytes, uncompressed,
        ))

    def append_record(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: tuple | None,
        timestamp_ms: int,
        attributes: int,
        producer_id: int = -1,
        producer_epoch: int = -1,
        sequence: int = -1,
        sync: bool = True,
    ) -> tuple[int, int]:
        """Append one validated record as a batch of one (the producer's ``send`` path).

        ``sync=False`` (fsync="always" only): return before the record is on disk;
        the caller calls ``sync(offset + 1)`` once it released its own locks, so
        that senders of one producer share an fsync too.

        Returns ``(offset, timestamp_ms)``: where the record is (for a duplicate,
        where it was first appended) and the timestamp it carries (the log append
        time on a LogAppendTime topic). A plain tuple: this runs once per ``send()``.

        The caller guarantees ``append``'s checks (key and value bytes or None,
        headers a tuple of ``(str, bytes | None)`` pairs or None, timestamp an int
        >= 0); the rest (compacted keys, sizes, sequences) is checked here.
        Same errors as ``append_batch``. Cost: one msgpack call, one CRC, one copy.
        """
        if key is None and self._compacted:
            self.append_columns([key], [value], None, [timestamp_ms])  # raises the error
        lock = self._lock
        lock.acquire()  # not ``with``: once per send(), and try/finally is cheaper
        try:
            if self._closed:
                self._ensure_open()
            log = self._log
            entry = None
            if producer_id >= 0:
                entry = self._producers.get(producer_id)
                if entry is not None and (
                    entry.epoch != producer_epoch
                    or (entry.last_sequence + 1) % sequence_modulus != sequence
                ):
                    found = self._check_sequence(producer_id, producer_epoch, sequence, 1)
                    if found is not None:
                        append_time = found.log_append_time_ms
                        return found.base_offset, timestamp_ms if append_time < 0 else append_time
                    entry = None
            if self._log_append_time:
                timestamp_ms = self._clock.time_ms()
                attributes |= codec.attr_log_append_time
            base = log.end_offset
            if attributes & _transactional:  # one test per batch; see _txn_begin
                self._txn_begin(producer_id, base)
            data, header = codec.encode_one(
                base, timestamp_ms, key, value, headers, attributes,
                producer_id, producer_epoch, sequence,
            )
            if len(data) > self._max_message_bytes:
                self._too_large(len(data), 1)
            try:
                log.append_encoded(data, header, now_ms=timestamp_ms)
            except StorageError:
                if log.end_offset > base:
                    self._drop_key_index()
                if producer_id >= 0 and log.end_offset > base:
                    landed = codec.make_header(header)
                    self._record_sequence(producer_id, producer_epoch, sequence, landed)
                raise
            if entry is not None:  # the common case, inlined: next sequence, same epoch
                entry.last_sequence = sequence
                entry.batches.append((producer_epoch, sequence, sequence, base, base))
            elif producer_id >= 0:
                self._record_sequence(
                    producer_id, producer_epoch, sequence, codec.make_header(header)
                )
            key_index = self._key_index
            if key_index is not None:
                if key is not None:
                    key_index.add(key, base, log.last_batch_position(len(data)))
                key_index.end_offset = base + 1
            if self._flush_interval_messages is not None or self._waiters:
                self._after_append(codec.make_header(header))
        finally:
            lock.release()
        if self._sync_appends and sync:
            self._sync(log, base + 1)
        signal = self._signal
        signal.version += 1
        if signal.waiters:
            signal.notify()
        return base, timestamp_ms

    def sync(self, end: int) -> None:
        """With fsync="always": return once every offset below ``end`` is on disk
        (a group commit, see ``_sync``); otherwise nothing to do. StorageError if
        the fsync fails (then the unacknowledged batches are removed)."""
        if self._sync_appends:
            self._sync(self._log, end)

    @property
    def syncs_each_append(self) -> bool:
        """True under fsync="always": an append returns once it is on disk."""
        return self._sync_appends

    def _sync(self, log: PartitionLog, end: int) -> None:
        """fsync="always": wait until the offsets below ``end`` are on disk, sharing
        the fsync with the threads that appended meanwhile (group commit). If it
        fails, the batches since the last good sync are removed again (they were
        never acknowledged) and the error is raised."""
        try:
            log.sync(end)
        except StorageError:
            with self._lock:
                log.undo_unsynced()
                self._drop_key_index()
            raise

    def _too_large(self, size: int, count: int, *, uncompressed: bool = False) -> None:
        if uncompressed:
            raise RecordTooLargeError(
                f"batch of {count} record(s) is {size} bytes before compression, over the "
                f"{self._inflated_max} a compressed batch of topic {self.topic!r} may hold "
                "(its max_message_bytes, at least 32 MiB); send fewer records per batch"
            )
        raise RecordTooLargeError(
            f"batch of {count} record(s) is {size} bytes, over max_message_bytes="
            f"{self._max_message_bytes} of topic {self.topic!r}; send fewer or smaller "
            "records, or raise the topic's max_message_bytes"
        )

    def _columns(
        self, records: Sequence[Sequence[Any]], timestamp_ms: int | None
    ) -> tuple[list, list, list | None, list]:
        if not records:
            raise InvalidRecordError("append needs at least one record")
        widths = set(map(len, records))
        if len(widths) != 1 or not widths <= {2, 3, 4}:
            raise InvalidRecordError(
                "records must all be (key, value), (key, value, headers) or "
                "(key, value, headers, timestamp_ms) tuples of the same shape; "
                f"got lengths {sorted(widths)}"
            )
        columns = split_columns(records, widths.pop())
        keys, values = columns[0], columns[1]
        check_bytes_column(keys, "key")
        check_bytes_column(values, "value")
        headers = normalise_headers(columns[2]) if len(columns) > 2 else None
        if len(columns) > 3:
            timestamps = columns[3]
            _check_timestamps(timestamps)
        else:
            if timestamp_ms is None:
                timestamp_ms = self._clock.time_ms()
            elif timestamp_problem(timestamp_ms) is not None:
                raise InvalidRecordError(timestamp_problem(timestamp_ms))
            timestamps = [timestamp_ms] * len(keys)
        return keys, values, headers, timestamps

    @staticmethod
    def _attributes(compression: str) -> int:
        code = codec.COMPRESSION_CODES.get(compression)
        if code is None:
            raise InvalidConfigError(
                f"unknown compression {compression!r}; supported: "
                f"{', '.join(codec.COMPRESSION_CODES)}"
            )
        return code

    def _encode_and_append(
        self,
        timestamps: list[int],
        keys: list,
        values: list,
        headers: list | None,
        attributes: int,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        now_ms: int,
    ) -> tuple[BatchHeader, int]:
        """Encode and append one batch; returns its header and its size before
        compression (the whole batch's size when it is not compressed)."""
        config = self._log.config
        if config.log_append_time:
            attributes |= codec.attr_log_append_time
        data = codec.encode_batch(
            self._log.end_offset, timestamps, keys, values, headers,
            attributes=attributes, producer_id=producer_id,
            producer_epoch=producer_epoch, base_sequence=base_sequence,
        )
        if len(data) > self._max_message_bytes:
            self._too_large(len(data), len(keys))
        uncompressed = len(data)
        if attributes & codec.compression_mask:
            inflated = codec.inflated_size(data)
            if inflated > self._inflated_max:
                # Readers refuse a batch that inflates past this (a decompression bomb),
                # so never write one, however well its records compress.
                self._too_large(inflated, len(keys), uncompressed=True)
            uncompressed = codec.header_bytes + inflated
        header = self._log.append_encoded(data, codec.decode_header(data), now_ms=now_ms)
        return header, uncompressed

    def _after_append(self, header: BatchHeader) -> None:
        if self._flush_interval_messages is not None:
            self._unflushed_messages += header.record_count
            if self._unflushed_messages >= self._flush_interval_messages:
                self._flush_locked()
        if self._waiters:
            self._data.notify_all()

    # ------------------------------------------------------------------ idempotence

    def _check_sequence(
        self, producer_id: int, epoch: int, base_sequence: int, count: int
    ) -> AppendResult | None:
        """Kafka's ProducerAppendInfo checks. Returns the original result for a duplicate."""
        entry = self._producers.get(producer_id)
        if entry is None:
            return None  # unknown producer: any sequence is accepted
        if epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"producer {producer_id} epoch {epoch} is older than {entry.epoch} on "
                f"{self.topic}-{self.index}; this producer was fenced"
            )
        last_sequence = (base_sequence + count - 1) % sequence_modulus
        if epoch == entry.epoch:
            for b_epoch, b_first, b_last, first_offset, last_offset in entry.batches:
                if (b_epoch, b_first, b_last) == (epoch, base_sequence, last_sequence):
                    return AppendResult(first_offset, last_offset, -1, True, 0, 0)
            expected = (entry.last_sequence + 1) % sequence_modulus
            if base_sequence != expected:
                raise OutOfOrderSequenceError(
                    f"producer {producer_id} sent sequence {base_sequence} to "
                    f"{self.topic}-{self.index}, expected {expected}: a batch was lost or reordered"
                )
        elif base_sequence != 0:
            raise OutOfOrderSequenceError(
                f"producer {producer_id} with new epoch {epoch} must start at sequence 0, "
                f"got {base_sequence}"
            )
        return None

    def _record_sequence(
        self, producer_id: int, epoch: int, base_sequence: int, header: BatchHeader
    ) -> None:
        entry = self._producers.get(producer_id)
        if entry is None or entry.epoch != epoch:
            entry = self._producers[producer_id] = _ProducerEntry(epoch, -1)
        last = (base_sequence + header.record_count - 1) % sequence_modulus
        entry.last_sequence = last
        entry.batches.append((epoch, base_sequence, last, header.base_offset, header.last_offset))

    # ------------------------------------------------------------------ reading

    def flush_lingering(self) -> None:
        """Append the batches this log's producers hold for this partition (records
        sent with ``linger_ms > 0`` not yet appended), so that what a process sent
        before it reads is what it reads. ``read``, ``read_batches``,
        ``read_columns``, ``wait_for`` and a consumer's poll call it; the check
        costs one truth test when nothing lingers. Must not be called holding
        this partition's lock.
        """
        for flush in list(self.lingering.values()):
            flush()

    def read(self, offset: int, max_records: int = 500) -> list[Record]:
        """Records from ``offset`` on, at most ``max_records`` (default 500: a bounded
        read, not the whole log; use :meth:`iter` to replay everything); empty at the
        log end.

        Raises OffsetOutOfRangeError if ``offset`` is below the log start offset or
        above the log end offset. Lock-free; never blocks a writer.
        """
        if type(offset) is not int:
            raise TypeError(f"offset must be an int, got {type(offset).__name__}")
        if type(max_records) is not int or max_records < 1:
            raise InvalidConfigError(f"max_records must be an int >= 1, got {max_records!r}")
        out: list[Record] = []
        for header, cols in self.read_columns(offset, max_records):
            out.extend(map(_make_record, _rows(header, cols)))
        return out

    def read_batches(
        self, offset: int, max_records: int, max_bytes: int = 2**31
    ) -> list[tuple[BatchHeader, Columns]]:
        """Whole decoded batches holding records from ``offset`` on (the first may start
        below it; control batches included). Lock-free. Raises like ``read``.
        """
        if self.lingering:
            self.flush_lingering()
        self._ensure_open()
        return self._log.read(offset, max_records, max_bytes)

    def read_columns(
        self, offset: int, max_records: int, max_bytes: int = 2**31
    ) -> list[tuple[BatchHeader, Columns]]:
        """Decoded batches trimmed to ``[offset, offset + max_records)``. Lock-free."""
        if self.lingering:
            self.flush_lingering()
        self._ensure_open()
        if offset < self._log.start_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} of {self.topic}-{self.index} is below the log start offset "
                f"{self._log.start_offset}; records before it were deleted"
            )
        batches = self._log.read(offset, max_records, max_bytes)
        out = []
        remaining = max_records
        for header, cols in batches:
            cols = _trim(cols, offset, remaining)
            n = len(cols.offsets)
            if n:
                out.append((header, cols))
                remaining -= n
            if remaining <= 0:
                break
        return out

    def iter(
        self,
        from_offset: int | None = None,
        *,
        to_offset: int | None = None,
        batch_records: int = iter_batch_records,
    ) -> Iterator[Record]:
        """Every record from ``from_offset`` (default: the log start offset) up to
        ``to_offset`` (exclusive; default: the log end offset when iteration starts),
        read ``batch_records`` at a time: a replay of the whole log, unlike ``read``
        which returns at most ``max_records`` (500 by default).

        Lazy and lock-free: records appended while iterating are included only below
        ``to_offset``. Raises OffsetOutOfRangeError at once if ``from_offset`` is
        outside ``[start_offset, end_offset]`` (and while iterating if retention
        removes the records ahead), InvalidConfigError for a bad argument.
        """
        if type(batch_records) is not int or batch_records < 1:
            raise InvalidConfigError(f"batch_records must be an int >= 1, got {batch_records!r}")
        self._ensure_open()
        if self.lingering:  # as read(): what this process sent before is what it reads
            self.flush_lingering()
        offset = self._log.start_offset if from_offset is None else from_offset
        stop = self._log.end_offset if to_offset is None else to_offset
        if type(offset) is not int or type(stop) is not int:
            raise InvalidConfigError(
                f"from_offset and to_offset must be ints, got {from_offset!r}, {to_offset!r}"
            )
        if not self._log.start_offset <= offset <= self._log.end_offset:
            raise OffsetOutOfRangeError(
                f"from_offset {offset} of {self.topic}-{self.index} is outside the log "
                f"[{self._log.start_offset}, {self._log.end_offset}]; start within it"
            )
        return self._iter(offset, stop, batch_records)

    def _iter(self, offset: int, stop: int, batch_records: int) -> Iterator[Record]:
        while offset < stop:
            batches = self.read_columns(offset, min(batch_records, stop - offset))
            if not batches:
                return  # the rest of the range was compacted away
            for header, cols in batches:
                yield from map(_make_record, _rows(header, cols))
            offset = batches[-1][1].offsets[-1] + 1

    def key_version(self, key: bytes) -> int:
        """The number of records with ``key`` in the partition (0 if none): the version
        ``expected_key_versions`` compares with. O(1) once the key index is built.

        The first call (or the first after a truncation, retention or compaction
        removed records) builds the partition's key index from the log: O(log size).
        Retention and compaction lower the count as they remove the key's records.
        """
        key = _check_key(key)
        if self.lingering:
            self.flush_lingering()
        return self._built_key_index().count(key)

    def read_key(
        self, key: bytes, from_version: int = 0, limit: int | None = None
    ) -> list[Record]:
        """The records with ``key``, oldest first, from its ``from_version``-th record
        (0-based: ``from_version=n`` skips the first ``n``), at most ``limit``.

        Time proportional to the number returned (each costs the decode of the batch
        holding it; records of one batch are decoded once), not to the partition's
        size, once the key index is built (see :meth:`key_version`). Lock-free.
        Raises InvalidConfigError for a bad argument.
        """
        key = _check_key(key)
        if type(from_version) is not int or from_version < 0:
            raise InvalidConfigError(f"from_version must be an int >= 0, got {from_version!r}")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise InvalidConfigError(f"limit must be None or an int >= 0, got {limit!r}")
        stop = None if limit is None else from_version + limit
        if self.lingering:
            self.flush_lingering()
        offsets, positions = self._built_key_index().locations(key, from_version, stop)
        return self._read_offsets(key, offsets, positions)

    def _read_offsets(
        self, key: bytes, offsets: Sequence[int], positions: Sequence[int] = ()
    ) -> list[Record]:
        """The records at ``offsets`` that still hold ``key``: an offset the cleaner or
        retention removed after the index was read is skipped, never misread.

        ``positions`` (parallel, from the key index): where each record's batch starts
        in its segment, tried first (one header, one CRC, one decode); a position that
        does not hold the offset (-1, or stale after a swap) falls back to the log's
        generic read."""
        out: list[Record] = []
        log = self._log
        at_position = log.batch_at_position
        header = cols = None
        last = -1
        for n, offset in enumerate(offsets):
            if cols is None or offset > last or offset < cols.offsets[0]:
                if offset < log.start_offset:
                    continue
                found = at_position(offset, positions[n]) if positions else None
                if found is None:  # no or a stale position: the generic point read
                    try:
                        found = log.batch_at(offset)
                    except OffsetOutOfRangeError:
                        continue
                if found is None:
                    break
                header, cols = found
                last = header.base_offset + header.last_offset_delta
                if not cols.offsets:
                    cols = None
                    continue
            found = cols.offsets
            i = offset - found.start if isinstance(found, range) else bisect_left(found, offset)
            if 0 <= i < len(found) and found[i] == offset and cols.keys[i] == key:
                assert header is not None
                out.append(_make_record((
                    offset, cols.timestamps[i], key, cols.values[i],
                    () if cols.headers is None else cols.headers[i],
                )))
        return out

    def _built_key_index(self) -> KeyIndex:
        """The key index, built if need be: scanned without the lock (appends go on),
        then caught up under it. A drop during the scan makes it retry under the lock."""
        index = self._key_index
        if index is not None:
            return index
        self._ensure_open()
        generation = self._key_index_generation
        index = KeyIndex(self._log.start_offset)
        try:
            self._index_log(index, self._log.end_offset)
        except OffsetOutOfRangeError:
            generation = -1  # retention moved the start under us: rebuild under the lock
        with self._lock:
            self._ensure_open()
            if self._key_index is not None:
                return self._key_index
            if generation != self._key_index_generation:
                index = KeyIndex(self._log.start_offset)
            self._index_log(index, self._log.end_offset)
            self._key_index = index
            return index

    def _index_log(self, index: KeyIndex, stop: int) -> None:
        """Index the records in ``[index.end_offset, stop)``."""
        offset = index.end_offset
        log = self._log
        while offset < stop:
            batches = log.read(offset, key_index_read_records)
            if not batches:
                break
            offset = index_batches(index, batches, offset, stop, log.batch_positions(batches))
        index.end_offset = max(stop, index.end_offset)

    def _drop_key_index(self) -> None:
        """Forget the key index (records left the log); the next use rebuilds it.
        Caller holds the lock."""
        self._key_index = None
        self._key_index_generation += 1

    def _check_key_versions_locked(self, expected: dict[bytes, int]) -> None:
        index = self._key_index
        if index is None:  # dropped since the caller built it: rebuild, under the lock
            index = KeyIndex(self._log.start_offset)
            self._index_log(index, self._log.end_offset)
            self._key_index = index
        for key, version in expected.items():
            actual = index.count(key)
            if actual != version:
                raise KeyVersionConflictError(
                    f"expected key {key!r} of {self.topic}-{self.index} at version {version} "
                    f"({version} record(s)), but it is at {actual}; nothing was appended: "
                    "re-read the key's records and retry",
                    key=key, expected=version, actual=actual,
                )

    def offset_for_time(self, timestamp_ms: int) -> int | None:
        """The earliest offset whose record timestamp is >= ``timestamp_ms``, or None."""
        found = self.offset_and_timestamp_for_time(timestamp_ms)
        return None if found is None else found[0]

    def offset_and_timestamp_for_time(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= ``timestamp_ms``."""
        if type(timestamp_ms) is not int or timestamp_ms < 0:
            raise InvalidConfigError(f"timestamp_ms must be an int >= 0, got {timestamp_ms!r}")
        self._ensure_open()
        if self.lingering:  # as read(): lingering records of this log's producers count
            self.flush_lingering()
        return self._log.offset_for_time(timestamp_ms)

    def wait_for(self, offset: int, timeout: float | None = None) -> bool:
        """Block until the log end offset is above ``offset`` (a record at ``offset``
        can be read) or ``timeout`` seconds pass. Returns whether it arrived.
        Waits on the log's clock, so a manual clock never sleeps.
        """
        if self.lingering:
            self.flush_lingering()
        timeout_ms = None if timeout is None else timeout * 1000.0
        deadline = None if timeout_ms is None else self._clock.monotonic_ms() + timeout_ms
        with self._data:
            self._waiters += 1
            try:
                while self._log.end_offset <= offset and not self._closed:
                    remaining = None if deadline is None else deadline - self._clock.monotonic_ms()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._clock.wait(self._data, remaining)
                return self._log.end_offset > offset
            finally:
                self._waiters -= 1

    # ------------------------------------------------------------------ transactions

    def _txn_begin(self, producer_id: int, base: int) -> None:
        """A transactional batch of ``producer_id`` is about to land at ``base`` (caller
        holds the lock): its transaction is open here from ``base`` until a marker."""
        txns = self._txns
        if txns is None:
            txns = self._txns = PartitionTxns.create(self._log)
        txns.begin(producer_id, base)

    def write_marker(self, producer_id: int, producer_epoch: int, commit: bool,
                     coordinator_epoch: int = 0) -> int:
        """Append a control batch ending ``producer_id``'s transaction (the transaction
        coordinator's WriteTxnMarkers); return its offset. Thread-safe.

        The producer's epoch here becomes ``producer_epoch`` (a fencing marker bumps it):
        a later batch of an older epoch is refused (InvalidProducerEpochError). An abort
        of an open transaction adds an entry to the aborted-transactions index.
        Raises InvalidProducerEpochError for a marker older than the producer's epoch.
        """
        with self._lock:
            self._ensure_open()
            entry = self._producers.get(producer_id)
            if entry is not None and producer_epoch < entry.epoch:
                raise InvalidProducerEpochError(
                    f"marker of producer {producer_id} epoch {producer_epoch} is older than "
                    f"epoch {entry.epoch} on {self.topic}-{self.index}"
                )
            log = self._log
            now_ms = self._clock.time_ms()
            base = log.end_offset
            data = encode_marker(base, now_ms, producer_id, producer_epoch, commit,
                                 coordinator_epoch)
            if self._txns is None:
                self._txns = PartitionTxns.create(log)
            log.append_encoded(data, codec.decode_header(data), now_ms=now_ms)
            self._txns.complete(producer_id, base, commit, log.active_segment.base_offset)
            if entry is None or entry.epoch != producer_epoch:
                self._producers[producer_id] = _ProducerEntry(producer_epoch, -1)
            key_index = self._key_index
            if key_index is not None:
                key_index.end_offset = log.end_offset
            if self._flush_interval_messages is not None or self._waiters:
                self._after_append(codec.decode_header(data))
        signal = self._signal
        signal.version += 1
        if signal.waiters:
            signal.notify()
        return base

    @property
    def last_stable_offset(self) -> int:
        """The LSO: the first offset of the earliest open transaction, else the log end
        offset. What a read_committed consumer reads up to. Lock-free. O(open txns)."""
        txns = self._txns
        if txns is None:
            return self._log.end_offset
        return txns.last_stable_offset(self._log.end_offset)

    def aborted_transactions(self, start: int, stop: int) -> list[AbortedTxn]:
        """The aborted transactions that may hold records in ``[start, stop)``
        (producer id, first offset, marker offset, LSO). Lock-free."""
        txns = self._txns
        return [] if txns is None else txns.aborted_between(start, stop)

    def open_transactions(self) -> dict[int, int]:
        """{producer id: first offset} of the transactions open in this partition."""
        with self._lock:
            return {} if self._txns is None else dict(self._txns.ongoing)

    # ------------------------------------------------------------------ maintenance

    def truncate_to(self, offset: int) -> None:
        """Cut the tail: remove every record at or above ``offset``."""
        with self._lock:
            self._ensure_open()
            self._log.truncate_to(offset)
            self._producers.clear()
            self._drop_key_index()
            if self._txns is not None:
                self._txns.rebuild(self._log)

    def delete_before(self, offset: int) -> None:
        """Drop the head: records below ``offset`` can no longer be read."""
        with self._lock:
            self._ensure_open()
            start = self._log.start_offset
            self._log.delete_before(offset)
            if self._log.start_offset != start:
                self._drop_key_index()
                if self._txns is not None:
                    self._txns.reconcile(self._log)

    def roll(self) -> None:
        """Start a new segment at the log end (if the active one holds anything)."""
        with self._lock:
            self._ensure_open()
            self._log.roll(self._clock.time_ms())

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Run retention now; returns the number of segments deleted."""
        with self._lock:
            self._ensure_open()
            start = self._log.start_offset
            deleted = self._log.apply_retention(
                self._clock.time_ms() if now_ms is None else now_ms
            )
            if deleted or self._log.start_offset != start:
                self._drop_key_index()
                if self._txns is not None:
                    self._txns.reconcile(self._log)
            return deleted

    def compact(self, now_ms: int | None = None) -> CleanerStats:
        """Run the log cleaner now if it is due (see storage/cleaner.py); returns its
        CleanerStats. Appends go on meanwhile: the lock is taken only to swap cleaned
        segments in. Thread-safe. Raises ClosedError if the partition is closed.
        """
        self._ensure_open()
        stats = self._log.clean(self._clock.time_ms() if now_ms is None else now_ms,
                                commit_lock=self._commit_and_drop_key_index(), txns=self._txns)
        if self._txns is not None:
            with self._lock:
                if not self._closed:
                    self._txns.reconcile(self._log)  # merged segments: move their entries
        return stats

    def _commit_and_drop_key_index(self) -> _DropKeyIndexOnCommit:
        """The cleaner's commit lock: the partition lock, with the key index dropped in
        the same critical section as each swap, so no reader of the index sees an offset
        the cleaner removed once the swap is visible (reads also re-check each record)."""
        return _DropKeyIndexOnCommit(self)

    @property
    def fsync_error(self) -> StorageError | None:
        """The first failed fsync of this partition, or None. Once set, every write
        raises StorageError until the log is closed and opened again (docs/storage.md,
        "When the disk fails"); reads go on."""
        return self._log.fsync_error

    def flush(self) -> None:
        """fsync what was appended (whatever the fsync policy). StorageError if the
        fsync fails, after which the partition refuses writes (``fsync_error``)."""
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        self._log.flush()
        self._unflushed_messages = 0

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._key_index = None
            self._data.notify_all()
            try:
                if self._txns is not None:
                    self._txns.close(self._log.end_offset)
            finally:
                self._log.close()

    def check(self) -> None:
        """Assert the partition's invariants (DESIGN invariant 1)."""
        with self._lock:
            self._log.check()

    def __repr__(self) -> str:
        return (
            f"Partition({self.topic!r}, {self.index}, start_offset={self.start_offset}, "
            f"end_offset={self.end_offset})"
        )


class InternalPartition(Partition):
    """A partition of an internal topic (``__consumer_offsets``): readable like any
    other, written only by eventlog itself through :meth:`append_internal`.

    Every public append raises InvalidTopicError, as Kafka refuses produce requests
    to internal topics from clients (INVALID_TOPIC_EXCEPTION). A subclass, so the
    append paths of every other partition carry no check for it.
    """

    def _refuse(self) -> InvalidTopicError:
        return InvalidTopicError(
            f"Cannot append to internal topic {self.topic!r}: it is written only by "
            "eventlog itself (commit offsets through a Consumer instead)"
        )

    def append(self, *args: Any, **kwargs: Any) -> int:
        raise self._refuse()

    def append_batch(self, *args: Any, **kwargs: Any) -> AppendResult:
        raise self._refuse()

    def append_columns(self, *args: Any, **kwargs: Any) -> AppendResult:
        raise self._refuse()

    def append_record(self, *args: Any, **kwargs: Any) -> tuple[int, int]:
        raise self._refuse()

    def append_internal(self, records: Sequence[Sequence[Any]]) -> int:
        """Append ``(key, value)`` records as one batch (eventlog's own writes, e.g.
        committed offsets); return the offset of the first. Raises as ``append``."""
        keys, values, headers, timestamps = self._columns(records, None)
        return Partition.append_columns(self, keys, values, headers, timestamps).base_offset


class _DropKeyIndexOnCommit:
    """A reusable context manager: hold the partition lock; drop the key index on exit."""

    __slots__ = ("_partition",)

    def __init__(self, partition: Partition) -> None:
        self._partition = partition

    def __enter__(self) -> None:
        self._partition._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        try:
            self._partition._drop_key_index()
        finally:
            self._partition._lock.release()


def _check_key(key: object) -> bytes:
    if type(key) is not bytes:
        raise InvalidConfigError(
            f"key must be bytes, got {type(key).__name__}; encode it first (e.g. .encode())"
        )
    return key


def _check_expected_key_versions(expected: object) -> dict[bytes, int]:
    """Validate ``expected_key_versions``: a mapping of bytes keys to ints >= 0."""
    if not isinstance(expected, Mapping):
        raise InvalidConfigError(
            "expected_key_versions must be a mapping {key: version}, got "
            f"{type(expected).__name__}"
        )
    out: dict[bytes, int] = {}
    for key, version in expected.items():
        if type(key) is not bytes:
            raise InvalidConfigError(
                f"expected_key_versions keys must be bytes, got {type(key).__name__} "
                f"({key!r})"
            )
        if type(version) is not int or version < 0:
            raise InvalidConfigError(
                f"expected_key_versions[{key!r}] must be an int >= 0 (the key's record "
                f"count), got {version!r}"
            )
        out[key] = version
    return out


def _trim(cols: Columns, offset: int, max_records: int) -> Columns:
    """Keep the records at or above ``offset``, at most ``max_records``."""
    offsets = cols.offsets
    if offsets and offsets[0] >= offset and len(offsets) <= max_records:
        return cols
    if isinstance(offsets, range):
        start = max(0, offset - offsets.start)
    else:
        start = next((i for i, o in enumerate(offsets) if o >= offset), len(offsets))
    end = start + max_records
    return Columns(
        offsets[start:end],
        cols.timestamps[start:end],
        cols.keys[start:end],
        cols.values[start:end],
        None if cols.headers is None else cols.headers[start:end],
    )


def _rows(header: BatchHeader, cols: Columns) -> Iterable[tuple]:
    headers = cols.headers if cols.headers is not None else repeat(())
    return zip(cols.offsets, cols.timestamps, cols.keys, cols.values, headers)
