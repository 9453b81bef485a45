"""PartitionKeys: a partition's reads by key and its optimistic key versions, over the
per-key index (storage/key_index.py), built on first use and kept up to date by appends."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import msgpack

from ..errors import (
    InvalidConfigError,
    KeyVersionConflictError,
    OffsetOutOfRangeError,
    StorageError,
)
from ..records import Record
from ..storage import batch as codec
from ..storage.key_index import KeyIndex, index_batches
from ..storage.point_reads import read_single_records, read_single_values
from .partition_reads import make_record
from .validation import check_key

if TYPE_CHECKING:
    from ..clock import Clock
    from ..storage.batch import BatchHeader
    from ..storage.partition_log import PartitionLog
    from .signal import DataSignal

__all__ = ["PartitionKeys"]

_pack_batch = codec.pack_batch
_packb = msgpack.Packer(use_bin_type=True).pack  # as batch.py's (its single-record form)
key_index_read_records = 4096  # records per read when (re)building a key index
last_record_attempts = 5  # re-reads of a key's last record that went under the reader


class PartitionKeys:
    """The key half of Partition (a base class of it; not used alone). The index is
    None until first used (read_key, key_version, expected_key_versions), then kept up
    to date by every append under the lock; dropped (and rebuilt on next use) when
    records leave the log."""

    topic: str
    index: int
    lingering: dict[object, Callable[[], None]]
    _log: PartitionLog
    _lock: threading.Lock
    _key_index: KeyIndex | None
    _key_index_generation: int

    _clock: Clock
    _closed: bool
    _log_append_time: bool
    _max_message_bytes: int
    _sync_appends: bool
    _signal: DataSignal

    # Partition's
    _ensure_open: Callable[..., None]
    flush_lingering: Callable[..., None]
    _land: Callable[[bytes, BatchHeader, int, Sequence[bytes | None], int, int, int, int, int],
                    None]
    _too_large: Callable[..., None]
    _sync: Callable[[PartitionLog, int], None]

    def key_version(self, key: bytes) -> int:
        """The number of records with ``key`` in the partition (0 if none): the version
        ``expected_key_versions`` compares with. O(1) once the key index is built.

        The first call (or the first after a truncation, retention or compaction
        removed records) builds the partition's key index from the log: O(log size).
        Retention and compaction lower the count as they remove the key's records.

        Cost: O(1) once the key index is built; the first call builds it, O(log size).
        Thread safety: thread-safe.
        Raises: InvalidConfigError for a key that is not bytes, ClosedError.
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

        Cost: O(records returned) once the key index is built.
        Thread safety: thread-safe; lock-free reads.
        Raises: InvalidConfigError for a bad argument, ClosedError.
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

    # ---------------------------------------------- for trusted callers (the recorders)

    def _key_values(self, key: bytes, from_version: int = 0) -> Sequence[bytes | None]:
        """The values of ``read_key(key, from_version)`` alone, no Record built: for a
        caller that decodes them itself (eventlog.eventsourcing). The caller passes a
        bytes ``key`` and an int ``from_version >= 0`` (not checked here).

        Cost: as ``read_key``. Thread safety: thread-safe; lock-free.
        Raises: ClosedError.
        """
        if self.lingering:
            self.flush_lingering()
        index = self._key_index
        if index is None or index.end_offset < self._log.end_offset:
            index = self._built_key_index()  # a read-only view's catches up with its writer
        offsets, positions = index.locations(key, from_version)
        if not offsets:
            return ()
        found = read_single_values(self._log, key, offsets, positions)
        if found is not None:
            return found
        return [record.value for record in self._read_offsets(key, offsets, positions)]

    def _key_last_value(self, key: bytes) -> tuple[int, bytes | None]:
        """``(key_version(key), value of key's last record)``, one consistent reading
        (``(0, None)`` for a key with no record). The caller passes a bytes key.

        Cost, thread safety, raises: as ``_key_state``.
        """
        _generation, count, value = self._key_state(key)
        return count, value

    def _key_state(self, key: bytes) -> tuple[int, int, bytes | None]:
        """``(generation, key_version(key), value of key's last record)``, one
        consistent reading (``(generation, 0, None)`` for a key with no record): what
        a writer compares before an ``_append_one_expecting`` of the key at that
        version and generation. The generation (bumped whenever records leave the
        log, see ``_drop_key_index``) is read before the index, so a removal after it
        makes that append refuse rather than pass on an equal count of other records.
        The caller passes a bytes key.

        Cost: O(1): one index lookup and one point read.
        Thread safety: thread-safe; lock-free.
        Raises: ClosedError; StorageError if the key's last record keeps disappearing
        under the read (something truncates the log over and over).
        """
        if self.lingering:
            self.flush_lingering()
        for _attempt in range(last_record_attempts):
            generation = self._key_index_generation
            index = self._key_index
            if index is None or index.end_offset < self._log.end_offset:
                index = self._built_key_index()  # a read-only view's catches up
            count, offset, position = index.last(key)
            if not count:
                return generation, 0, None
            found = read_single_values(self._log, key, (offset,), (position,))
            if found is not None:
                return generation, count, found[0]
            records = self._read_offsets(key, (offset,), (position,))
            if records:
                return generation, count, records[0].value
            # the record went under us (truncated, cleaned: the index was dropped)
        raise StorageError(
            f"the last record of key {key!r} in {self.topic}-{self.index} kept "
            "disappearing while being read; is something truncating the partition?"
        )

    def _append_keyed(self, records: object, expected: object) -> int | None:
        """``append(records, expected_key_versions=expected)`` when ``records`` is a
        list of one ``(key, value)`` tuple (a bytes key, a bytes or None value) and
        ``expected`` a dict of that key alone to an int >= 0: the keyed single-record
        path, same checks and same result as the generic one; None (nothing done) for
        any other shape, which the caller then appends the generic way.

        Cost: as ``_append_one_expecting``.
        Thread safety: thread-safe (the partition lock).
        Raises: as ``_append_one_expecting``.
        """
        if type(records) is not list or len(records) != 1 or type(expected) is not dict \
                or len(expected) != 1:
            return None
        record = records[0]
        if type(record) is not tuple or len(record) != 2:
            return None
        key, value = record
        if type(key) is not bytes or (value is not None and type(value) is not bytes):
            return None
        for expected_key, version in expected.items():
            if type(expected_key) is not bytes or type(version) is not int or version < 0:
                return None  # the generic path names the problem
            if expected_key != key:
                return None
            return self._append_one_expecting(key, value, version)
        return None

    def _append_one_expecting(
        self, key: bytes, value: bytes | None, version: int, generation: int = -1
    ) -> int:
        """``append([(key, value)], expected_key_versions={key: version})`` for a caller
        that checked the types itself: ``key`` bytes, ``value`` bytes or None,
        ``version`` an int >= 0. With ``generation >= 0`` (from ``_key_state``) it
        also refuses if records left the log since then. One record in the
        single-record form (as ``send()`` writes it), timestamped now, checked and
        appended under the partition lock, with ``_land``'s steps inlined (this is
        an event store's every command); returns its offset.

        Cost: a key-index lookup for the check and one to add the record, one msgpack
            call, one CRC, one copy.
        Thread safety: thread-safe (the partition lock).
        Raises: KeyVersionConflictError (nothing appended), RecordTooLargeError,
        ClosedError, StorageError.
        """
        if self._key_index is None:
            self._built_key_index()  # the scan outside the lock where it can be
        lock = self._lock
        lock.acquire()
        try:
            if self._closed:
                self._ensure_open()
            index = self._key_index
            if index is None or (generation >= 0 and generation != self._key_index_generation):
                self._check_key_versions_locked({key: version}, generation)
                index = self._key_index
                assert index is not None
            if index.count(key) != version:
                self._check_key_versions_locked({key: version})  # raises, naming it
            now_ms = self._clock.time_ms()
            log = self._log
            base = log.end_offset
            # codec.encode_one without its two inner calls: the single-record payload
            data, header = _pack_batch(
                _packb((now_ms, key, value)), base,
                codec.attr_log_append_time if self._log_append_time else 0, 0, now_ms,
                now_ms, -1, -1, -1, 1)
            size = len(data)
            if size > self._max_message_bytes:
                self._too_large(size, 1)
            try:
                log.append_encoded(data, header, now_ms=now_ms)
            except StorageError:
                self._append_failed(base, 1, -1, -1, -1)
                raise
            index.add(key, base, log.last_batch_position(size))
            index.end_offset = base + 1
            if self._flush_interval_messages is not None or self._waiters:
                self._after_append(1)
        finally:
            lock.release()
        if self._sync_appends:
            self._sync(log, base + 1)
        signal = self._signal  # DataSignal.bump, inlined as in append_record
        signal.version = next(signal.counter)
        if signal.waiters:
            signal.notify()
        return base

    def _append_expecting(
        self, keys: list[bytes], values: list[bytes | None], expected: dict[bytes, int],
        generation: int = -1,
    ) -> int:
        """``append(list(zip(keys, values)), expected_key_versions=expected)`` for a
        caller that built valid columns itself (eventlog.eventsourcing): ``keys`` a
        non-empty list of bytes (no None), ``values`` a parallel list of bytes or
        None, ``expected`` a dict of bytes keys to ints >= 0 (none of it checked
        here). One batch, timestamped now, checked and appended under the partition
        lock; returns the offset of its first record. ``generation >= 0`` (from
        ``_key_state``): refused too if records left the log since then.

        Cost: one count lookup per expected key, one encode (the single-record form
        for one record), one copy into the map.
        Thread safety: thread-safe (the partition lock).
        Raises: KeyVersionConflictError (nothing appended), RecordTooLargeError,
        ClosedError, StorageError.
        """
        if self._key_index is None:
            self._built_key_index()  # the scan outside the lock where it can be
        n = len(keys)
        lock = self._lock
        lock.acquire()
        try:
            if self._closed:
                self._ensure_open()
            index = self._key_index
            if index is None or len(expected) != 1 or generation >= 0:
                self._check_key_versions_locked(expected, generation)
            else:  # one key (one aggregate's events): the check inlined
                for key, version in expected.items():
                    if index.count(key) != version:
                        self._check_key_versions_locked(expected)  # raises, naming it
            now_ms = self._clock.time_ms()
            attributes = codec.attr_log_append_time if self._log_append_time else 0
            log = self._log
            base = log.end_offset
            if n == 1:
                data, header = codec.encode_one(base, now_ms, keys[0], values[0], None,
                                                attributes, -1, -1, -1)
            else:
                data, header = codec.encode_batch_with_header(
                    base, [now_ms] * n, keys, values, None, attributes=attributes,
                    frame_records=log.config.frame_records)
            if len(data) > self._max_message_bytes:
                self._too_large(len(data), n)
            self._land(data, header, n, keys, now_ms, attributes, -1, -1, -1)
        finally:
            lock.release()
        if self._sync_appends:
            self._sync(log, base + n)
        self._signal.bump()
        return base

    # ---------------------------------------------------------------- reading

    def _read_offsets(
        self, key: bytes, offsets: Sequence[int], positions: Sequence[int] = ()
    ) -> list[Record]:
        """The records at ``offsets`` that still hold ``key``: an offset the cleaner or
        retention removed after the index was read is skipped, never misread.

        ``positions`` (parallel, from the key index): where each record's batch starts
        in its segment, tried first (one header, one CRC, one decode); a position that
        does not hold the offset (-1, or stale after a swap) falls back to the log's
        generic read.

        Every record in a one-record batch at its position (an application's appends
        of one event per command): all read in a few C-level steps
        (storage/point_reads.py); otherwise one by one."""
        log = self._log
        if positions:
            found = read_single_records(log, key, offsets, positions)
            if found is not None:
                return found
        out: list[Record] = []
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
                out.append(make_record((
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

    def _check_key_versions_locked(self, expected: dict[bytes, int],
                                   generation: int = -1) -> None:
        """KeyVersionConflictError unless every key of ``expected`` has that many
        records now and (``generation >= 0``) no record left the log since the
        caller read ``generation``. Caller holds the lock."""
        if 0 <= generation != self._key_index_generation:
            for key, version in expected.items():
                raise KeyVersionConflictError(
                    f"records left {self.topic}-{self.index} (truncated, cleaned or "
                    f"expired) since key {key!r} was read at version {version}; nothing "
                    "was appended: re-read the key's records and retry",
                    key=key, expected=version, actual=self._built_index_locked().count(key),
                )
        index = self._built_index_locked()  # dropped since the caller built it: rebuilt
        for key, version in expected.items():
            actual = index.count(key)
            if actual != version:
                raise KeyVersionConflictError(
                    f"expected key {key!r} of {self.topic}-{self.index} at version {version} "
                    f"({version} record(s)), but it is at {actual}; nothing was appended: "
                    "re-read the key's records and retry",
                    key=key, expected=version, actual=actual,
                )

    def _built_index_locked(self) -> KeyIndex:
        """The key index, built under the lock the caller holds if it was dropped."""
        index = self._key_index
        if index is None:
            index = KeyIndex(self._log.start_offset)
            self._index_log(index, self._log.end_offset)
            self._key_index = index
        return index

    def _commit_and_drop_key_index(self) -> _DropKeyIndexOnCommit:
        """The cleaner's commit lock: the partition lock, with the key index dropped in
        the same critical section as each swap, so no reader of the index sees an offset
        the cleaner removed once the swap is visible (reads also re-check each record)."""
        return _DropKeyIndexOnCommit(self)



class _DropKeyIndexOnCommit:
    """A reusable context manager: hold the partition lock; drop the key index on exit."""

    __slots__ = ("_partition",)

    def __init__(self, partition: PartitionKeys) -> None:
        self._partition = partition

    def __enter__(self) -> None:
        self._partition._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        try:
            self._partition._drop_key_index()
        finally:
            self._partition._lock.release()
