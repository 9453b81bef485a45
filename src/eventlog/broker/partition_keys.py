"""PartitionKeys: a partition's reads by key and its optimistic key versions, over the
per-key index (storage/key_index.py), built on first use and kept up to date by appends."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import InvalidConfigError, KeyVersionConflictError, OffsetOutOfRangeError
from ..records import Record
from ..storage.key_index import KeyIndex, index_batches
from ..storage.point_reads import read_single_records
from .partition_reads import make_record
from .validation import check_key

if TYPE_CHECKING:
    from ..storage.partition_log import PartitionLog

__all__ = ["PartitionKeys"]

key_index_read_records = 4096  # records per read when (re)building a key index


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

    _ensure_open: Callable[..., None]  # Partition's

    flush_lingering: Callable[..., None]  # Partition's

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
