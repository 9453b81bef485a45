"""Partition: one partition's log and lock, its append path, reads, waits and maintenance.

Appends are serialised by the partition lock; reads take no lock and never see
a partly written batch (the storage layer publishes a batch only once all its
bytes are in the map). The high watermark is the log end offset: with one
in-process replica every appended record is committed at once (KAFKA_SEMANTICS
11.6). Every append, of a batch or of one record, lands through ``_land``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from itertools import repeat
from typing import Any

from ..clock import Clock
from ..config import TopicConfig
from ..errors import (
    ClosedError,
    InvalidConfigError,
    InvalidRecordError,
    InvalidTopicError,
    KeyVersionConflictError,
    OffsetConflictError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageError,
)
from ..records import Record, TopicPartition
from ..storage import batch as codec
from ..storage.batch import BatchHeader, Columns
from ..storage.cleaner import CleanerStats
from ..storage.key_index import KeyIndex, index_batches
from ..storage.partition_log import PartitionLog
from ..storage.txn_index import AbortedTxn, PartitionTxns, encode_marker
from .producer_state import AppendResult, ProducerStates, sequence_modulus
from .signal import DataSignal
from .validation import (
    check_bytes_column,
    check_expected_key_versions,
    check_key,
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
key_index_read_records = 4096  # records per read when (re)building a key index
iter_batch_records = 500  # records per read in Partition.iter()
_new_result = partial(tuple.__new__, AppendResult)


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
        ``attributes`` a compression code. Raises as ``append_batch`` does.
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
            if expected_offset is not None and expected_offset != log.end_offset:
                raise OffsetConflictError(
                    f"expected the log of {self.topic}-{self.index} to end at offset "
                    f"{expected_offset}, but it ends at {log.end_offset}; re-read and retry",
                    expected=expected_offset, actual=log.end_offset,
                )
            if expected_key_versions:
                self._check_key_versions_locked(expected_key_versions)
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
        ``append_columns`` with one record, but encoded in the single-record form
        (``codec.encode_one``) and returning a tuple; both land through ``_land``.

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
                found = self._producers.check(producer_id, producer_epoch, sequence, 1)
                if found is not None:
                    return found.base_offset, timestamp_ms
            now_ms = self._clock.time_ms()
            if self._log_append_time:
                timestamp_ms = now_ms
                attributes |= codec.attr_log_append_time
            log = self._log
            base = log.end_offset
            data, header = codec.encode_one(
                base, timestamp_ms, key, value, headers, attributes,
                producer_id, producer_epoch, sequence,
            )
            if len(data) > self._max_message_bytes:
                self._too_large(len(data), 1)
            self._land(data, header, 1, (key,), now_ms, attributes,
                       producer_id, producer_epoch, sequence)
        finally:
            lock.release()
        if self._sync_appends and sync:
            self._sync(log, base + 1)
        self._signal.bump()
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

        On StorageError the bytes may be in the log even though a later step (an
        fsync) failed: the sequence is remembered then, so a retry is a duplicate."""
        log = self._log
        base = header[0]
        if attributes & _transactional:  # one test per batch; see _txn_begin
            self._txn_begin(producer_id, base)
        try:
            log.append_encoded(data, header, now_ms=now_ms)
        except StorageError:
            if log.end_offset > base:
                self._drop_key_index()
                if producer_id >= 0:
                    self._producers.record(producer_id, producer_epoch, base_sequence, count,
                                           base, base + count - 1)
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
        key = check_key(key)
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
        key = check_key(key)
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
            self._producers.check_marker(producer_id, producer_epoch)
            log = self._log
            now_ms = self._clock.time_ms()
            base = log.end_offset
            data = encode_marker(base, now_ms, producer_id, producer_epoch, commit,
                                 coordinator_epoch)
            if self._txns is None:
                self._txns = PartitionTxns.create(log)
            log.append_encoded(data, codec.decode_header(data), now_ms=now_ms)
            self._txns.complete(producer_id, base, commit, log.active_segment.base_offset)
            self._producers.marker_written(producer_id, producer_epoch)
            key_index = self._key_index
            if key_index is not None:
                key_index.end_offset = log.end_offset
            if self._flush_interval_messages is not None or self._waiters:
                self._after_append(1)
        self._signal.bump()
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
        keys, values, headers, timestamps = record_columns(records, None, self._clock)
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
