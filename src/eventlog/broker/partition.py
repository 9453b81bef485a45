"""Partition: one partition's log and lock, its append path, reads, waits and maintenance.

Appends are serialised by the partition lock; reads take no lock and never see
a partly written batch (the storage layer publishes a batch only once all its
bytes are in the map). The high watermark is the log end offset: with one
in-process replica every appended record is committed at once (KAFKA_SEMANTICS
11.6). A batch lands through ``_land``; ``append_record`` (every ``send()``) inlines
it, and a test feeds both the same records and compares what they leave.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from ..clock import Clock
from ..config import TopicConfig
from ..errors import (
    ClosedError,
    InvalidRecordError,
    InvalidTopicError,
    OffsetConflictError,
    RecordTooLargeError,
    StorageError,
)
from ..records import Record, TopicPartition
from ..storage import batch as codec
from ..storage.batch import BatchHeader
from ..storage.key_index import KeyIndex
from ..storage.partition_log import PartitionLog
from ..storage.txn_index import PartitionTxns
from .partition_kafka import PartitionKafkaRecords
from .partition_keys import PartitionKeys
from .partition_maintenance import PartitionMaintenance
from .partition_reads import PartitionReads
from .partition_txns import PartitionTransactions
from .producer_state import AppendResult, ProducerStates, sequence_modulus
from .signal import DataSignal
from .validation import (
    check_bytes_column,
    check_expected_key_versions,
    compression_attributes,
    normalise_headers,
    record_columns,
    split_columns,
    timestamp_ms_max,
    timestamp_problem,
)

__all__ = [
    "AppendResult",
    "DataSignal",
    "InternalPartition",
    "Partition",
    # what the producer checks records with, defined in .validation and .producer_state
    "check_bytes_column",
    "normalise_headers",
    "sequence_modulus",
    "split_columns",
    "timestamp_ms_max",
    "timestamp_problem",
]

_make_record = partial(tuple.__new__, Record)
_transactional = codec.attr_transactional
iter_batch_records = 500  # records per read in Partition.iter()
_new_result = partial(tuple.__new__, AppendResult)


class Partition(PartitionReads, PartitionKeys, PartitionTransactions, PartitionMaintenance,
                PartitionKafkaRecords):
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
        self._producers = ProducerStates(f"{topic}-{index}")
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
    def segment_count(self) -> int:
        """How many segments the partition's log has (its active one included)."""
        return len(self._log.segments)

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

        Cost: one pass over the records to validate (C-level for keys and values), one msgpack
        encode, one copy into the map; an fsync under fsync="always".
        Thread safety: thread-safe (the partition lock serialises appends; reads go on).
        Raises: InvalidRecordError, RecordTooLargeError, OffsetConflictError,
        KeyVersionConflictError, InvalidConfigError (nothing was appended), ClosedError,
        StorageError.
        """
        if expected_key_versions and expected_offset is None and timestamp_ms is None \
                and compression == "none":
            # One (key, value) under its key's expectation (an event store's command):
            # the keyed path, which encodes it as send() does; same checks, same result.
            base = self._append_keyed(records, expected_key_versions)
            if base is not None:
                return base
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

        Cost: as ``append``.
        Thread safety: thread-safe.
        Raises: as ``append``, and OutOfOrderSequenceError, InvalidProducerEpochError for a
        producer's batch.
        """
        if not isinstance(records, (list, tuple)):
            records = list(records)
        keys, values, headers, timestamps = record_columns(records, timestamp_ms, self._clock)
        return self.append_columns(
            keys, values, headers, timestamps,
            attributes=compression_attributes(compression), expected_offset=expected_offset,
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
        ``attributes`` a compression code.

        Cost: one encode and one copy into the map; the caller validated the columns.
        Thread safety: thread-safe.
        Raises: as ``append_batch`` (the compacted topic's missing key, sizes, sequences, offsets).
        """
        if self._compacted and None in keys:
            raise InvalidRecordError(
                f"record {keys.index(None)}: compacted topic {self.topic!r} cannot accept a "
                "record without a key (Kafka's rule); give every record a key"
            )
        if expected_key_versions is not None:
            expected_key_versions = check_expected_key_versions(expected_key_versions)
            if expected_key_versions and self._key_index is None:
                self._built_key_index()  # the scan outside the lock where it can be
        with self._lock:
            if self._closed:
                self._ensure_open()
            log = self._log
            self._check_expectations_locked(expected_offset, expected_key_versions)
            if producer_id >= 0:
                found = self._producers.check(producer_id, producer_epoch, base_sequence,
                                              len(keys))
                if found is not None:
                    return found
            now_ms = self._clock.time_ms()
            if self._log_append_time:
                timestamps = [now_ms] * len(keys)
                attributes |= codec.attr_log_append_time
            base = log.end_offset
            data = codec.encode_batch(
                base, timestamps, keys, values, headers,
                attributes=attributes, producer_id=producer_id,
                producer_epoch=producer_epoch, base_sequence=base_sequence,
                frame_records=log.config.frame_records,
            )
            uncompressed = self._checked_size(data, len(keys), attributes)
            self._land(data, codec.decode_header(data), len(keys), keys, now_ms, attributes,
                       producer_id, producer_epoch, base_sequence)
        if self._sync_appends:
            self._sync(log, base + len(keys))
        self._signal.bump()
        return _new_result((
            base, base + len(keys) - 1, now_ms if self._log_append_time else -1,
            False, len(data), uncompressed,
        ))

    def _check_expectations_locked(self, expected_offset: int | None,
                                   expected_key_versions: dict[bytes, int] | None) -> None:
        """OffsetConflictError or KeyVersionConflictError unless the log ends at
        ``expected_offset`` and every key is at its expected version. Caller holds the lock."""
        end = self._log.end_offset
        if expected_offset is not None and expected_offset != end:
            raise OffsetConflictError(
                f"expected the log of {self.topic}-{self.index} to end at offset "
                f"{expected_offset}, but it ends at {end}; re-read and retry",
                expected=expected_offset, actual=end,
            )
        if expected_key_versions:
            self._check_key_versions_locked(expected_key_versions)

    def append_record(self, key: bytes | None, value: bytes | None, headers: tuple | None,
                      timestamp_ms: int, attributes: int, producer_id: int = -1,
                      producer_epoch: int = -1, sequence: int = -1, sync: bool = True
                      ) -> tuple[int, int]:
        """Append one validated record as a batch of one (the producer's ``send`` path);
        returns ``(offset, timestamp_ms)``: where it is (for a duplicate, where it was
        first appended) and the timestamp it carries (the log append time on a
        LogAppendTime topic). ``sync=False`` (fsync="always"): return before the record
        is on disk; the caller calls ``sync(offset + 1)`` once it released its locks.
        The caller made ``append``'s checks of the key, value, headers and timestamp.
        ``append_columns`` for one record in the single-record form, ``_land`` inlined.

        Cost: one msgpack call, one CRC, one copy.
        Thread safety: thread-safe (the partition lock).
        Raises: as ``append_batch``.
        """
        if key is None and self._compacted:
            self.append_columns([key], [value], None, [timestamp_ms])  # raises the error
        lock = self._lock
        lock.acquire()  # not ``with``: once per send(), and try/finally is cheaper
        try:
            if self._closed:
                self._ensure_open()
            if producer_id >= 0:
                entry = self._producers.get(producer_id)
                if entry is None or entry.epoch != producer_epoch or (
                        entry.last_sequence + 1) % sequence_modulus != sequence:  # not the next
                    found = self._producers.check(producer_id, producer_epoch, sequence, 1)
                    if found is not None:
                        return found.base_offset, timestamp_ms
                    entry = None  # a new epoch, or an unknown producer: record() it
            now_ms = self._clock.time_ms()
            if self._log_append_time:
                timestamp_ms = now_ms
                attributes |= codec.attr_log_append_time
            log = self._log
            base = log.end_offset
            data, header = codec.encode_one(base, timestamp_ms, key, value, headers, attributes,
                                            producer_id, producer_epoch, sequence)
            if len(data) > self._max_message_bytes:
                self._too_large(len(data), 1)
            # _land for one record, inlined (once per send(): the call and the general
            # steps cost ~8%); test_partition.py feeds both the same records.
            if attributes & _transactional:
                self._txn_begin(producer_id, base)
            try:
                log.append_encoded(data, header, now_ms=now_ms)
            except StorageError:
                self._append_failed(base, 1, producer_id, producer_epoch, sequence)
                raise
            if producer_id >= 0:
                if entry is not None:  # the next sequence of the same epoch (checked above)
                    entry.last_sequence = sequence
                    entry.batches.append((producer_epoch, sequence, sequence, base, base))
                else:
                    self._producers.record(producer_id, producer_epoch, sequence, 1, base, base)
            if (self._key_index is not None or self._flush_interval_messages is not None
                    or self._waiters):
                self._after_one(key, base, len(data))
        finally:
            lock.release()
        if self._sync_appends and sync:
            self._sync(log, base + 1)
        signal = self._signal  # DataSignal.bump, inlined: once per send()
        signal.version = next(signal.counter)
        if signal.waiters:
            signal.notify()
        return base, timestamp_ms

    def _land(
        self,
        data: bytes,
        header: BatchHeader,
        count: int,
        keys: Sequence[bytes | None],
        now_ms: int,
        attributes: int,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
    ) -> None:
        """Append ``data``, a batch of ``count`` records encoded at the log end, and
        bring the partition's state up to date: its transaction, the producer's
        sequence, the key index, interval flushes, waiters. Caller holds the lock.
        ``now_ms`` (the clock's, not a record's) dates a segment this append rolls.

        """
        log = self._log
        base = header[0]
        if attributes & _transactional:  # one test per batch; see _txn_begin
            self._txn_begin(producer_id, base)
        try:
            log.append_encoded(data, header, now_ms=now_ms)
        except StorageError:
            self._append_failed(base, count, producer_id, producer_epoch, base_sequence)
            raise
        if producer_id >= 0:
            self._producers.record(producer_id, producer_epoch, base_sequence, count,
                                   base, base + count - 1)
        key_index = self._key_index
        if key_index is not None:
            key_index.add_all(keys, range(base, base + count), log.last_batch_position(len(data)))
            key_index.end_offset = log.end_offset
        if self._flush_interval_messages is not None or self._waiters:
            self._after_append(count)

    def _after_one(self, key: bytes | None, base: int, size: int) -> None:
        """_land's last steps for the one record ``append_record`` put at ``base``."""
        key_index = self._key_index
        if key_index is not None:
            if key is not None:
                key_index.add(key, base, self._log.last_batch_position(size))
            key_index.end_offset = base + 1
        self._after_append(1)

    def _append_failed(self, base: int, count: int, producer_id: int, producer_epoch: int,
                       base_sequence: int) -> None:
        """An append at ``base`` raised StorageError. The bytes may be in the log even
        though a later step (an fsync) failed: then the key index is dropped and the
        sequence remembered, so a retry is a duplicate. Caller holds the lock."""
        if self._log.end_offset > base:
            self._drop_key_index()
            if producer_id >= 0:
                self._producers.record(producer_id, producer_epoch, base_sequence, count,
                                       base, base + count - 1)

    def sync(self, end: int) -> None:
        """With fsync="always": return once every offset below ``end`` is on disk
        (a group commit, see ``_sync``); otherwise nothing to do. StorageError if
        the fsync fails (then the unacknowledged batches are removed).

        Cost: one fsync, shared with the threads that appended meanwhile; nothing unless
        fsync="always".
        Thread safety: thread-safe; call it without holding the partition lock.
        Raises: StorageError if the fsync fails.
        """
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

    def _checked_size(self, data: bytes, count: int, attributes: int) -> int:
        """RecordTooLargeError unless the batch ``data`` fits the topic's limits;
        returns its size before compression (``len(data)`` when uncompressed)."""
        if len(data) > self._max_message_bytes:
            self._too_large(len(data), count)
        if not attributes & codec.compression_mask:
            return len(data)
        inflated = codec.inflated_size(data)
        if inflated > self._inflated_max:
            # Readers refuse a batch that inflates past this (a decompression bomb),
            # so never write one, however well its records compress.
            self._too_large(inflated, count, uncompressed=True)
        return codec.header_bytes + inflated

    def _after_append(self, count: int) -> None:
        """Count ``count`` records towards the interval flush; wake this partition's
        waiters. Caller holds the lock."""
        if self._flush_interval_messages is not None:
            self._unflushed_messages += count
            if self._unflushed_messages >= self._flush_interval_messages:
                self._flush_locked()
        if self._waiters:
            self._data.notify_all()

    def close(self) -> None:
        """Close the partition's log (its EventLog closed, or its topic was deleted);
        waiters wake, and every later read or write raises ClosedError.

        Cost: one close of the storage log.
        Thread safety: thread-safe; idempotent.
        Raises: StorageError if a file cannot be closed.
        """
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

    def append_kafka_records(self, *args: Any, **kwargs: Any) -> AppendResult:
        raise self._refuse()

    def append_columns(self, *args: Any, **kwargs: Any) -> AppendResult:
        raise self._refuse()

    def append_record(self, *args: Any, **kwargs: Any) -> tuple[int, int]:
        raise self._refuse()

    def append_internal(self, records: Sequence[Sequence[Any]]) -> int:
        """Append ``(key, value)`` records as one batch (eventlog's own writes, e.g.
        committed offsets); return the offset of the first. Raises as ``append``."""
        keys, values, headers, timestamps = record_columns(records, None, self._clock)
        return Partition.append_columns(self, keys, values, headers, timestamps).base_offset
