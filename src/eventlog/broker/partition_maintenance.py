"""PartitionMaintenance: a partition's truncation, head deletion, rolls, retention,
compaction, flushes and checks, each under the partition lock (the cleaner only to
swap segments in)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..clock import Clock
from ..errors import StorageError
from ..storage.cleaner import CleanerStats
from ..storage.txn_index import PartitionTxns
from ..storage.verifier import VerifyReport, verify_log
from .partition_keys import _DropKeyIndexOnCommit
from .producer_state import ProducerStates

if TYPE_CHECKING:
    from ..storage.partition_log import PartitionLog

__all__ = ["PartitionMaintenance"]


class PartitionMaintenance:
    """The maintenance half of Partition (a base class of it; not used alone)."""

    _log: PartitionLog
    _lock: threading.Lock
    _clock: Clock
    _closed: bool
    _unflushed_messages: int
    _txns: PartitionTxns | None
    _producers: ProducerStates

    _ensure_open: Callable[..., None]  # Partition's

    _drop_key_index: Callable[..., None]  # Partition's

    _commit_and_drop_key_index: Callable[..., _DropKeyIndexOnCommit]  # Partition's

    def truncate_to(self, offset: int) -> None:
        """Cut the tail: remove every record at or above ``offset``.

        Cost: O(segments removed); the key index is dropped.
        Thread safety: thread-safe.
        Raises: OffsetOutOfRangeError outside the log, ClosedError, StorageError.
        """
        with self._lock:
            self._ensure_open()
            self._log.truncate_to(offset)
            self._producers.clear()
            self._drop_key_index()
            if self._txns is not None:
                self._txns.rebuild(self._log)

    def delete_before(self, offset: int) -> None:
        """Drop the head: records below ``offset`` can no longer be read.

        Cost: O(segments removed).
        Thread safety: thread-safe.
        Raises: OffsetOutOfRangeError, ClosedError, StorageError.
        """
        with self._lock:
            self._ensure_open()
            start = self._log.start_offset
            self._log.delete_before(offset)
            if self._log.start_offset != start:
                self._drop_key_index()
                if self._txns is not None:
                    self._txns.reconcile(self._log)

    def roll(self) -> None:
        """Start a new segment at the log end (if the active one holds anything).

        Cost: one new segment's files.
        Thread safety: thread-safe.
        Raises: ClosedError, StorageError.
        """
        with self._lock:
            self._ensure_open()
            self._log.roll(self._clock.time_ms())

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Run retention now; returns the number of segments deleted.

        Cost: O(segments).
        Thread safety: thread-safe.
        Raises: ClosedError, StorageError.
        """
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

        Cost: a read and a rewrite of the dirty segments, when due.
        Thread safety: thread-safe; appends go on meanwhile.
        Raises: ClosedError, CorruptLogError if a segment to clean fails its checksum, StorageError.
        """
        self._ensure_open()
        stats = self._log.clean(self._clock.time_ms() if now_ms is None else now_ms,
                                commit_lock=self._commit_and_drop_key_index(), txns=self._txns)
        if self._txns is not None:
            with self._lock:
                if not self._closed:
                    self._txns.reconcile(self._log)  # merged segments: move their entries
        return stats

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Check every batch of every segment on disk against its CRC and the offsets
        around it, as ``eventlog logfiles verify`` does; ``progress(bytes)`` is called
        as it goes. Changes nothing.

        Cost: a read of every byte of the partition.
        Thread safety: any thread; appends go on meanwhile (their batches may be left out).
        Raises: nothing for damage (it is reported); StorageError if a file cannot be read.
        """
        return verify_log(self._log, progress=progress)

    @property
    def fsync_error(self) -> StorageError | None:
        """The first failed fsync of this partition, or None. Once set, every write
        raises StorageError until the log is closed and opened again (docs/storage.md,
        "When the disk fails"); reads go on."""
        return self._log.fsync_error

    def flush(self) -> None:
        """fsync what was appended (whatever the fsync policy). StorageError if the
        fsync fails, after which the partition refuses writes (``fsync_error``).

        Cost: one fsync.
        Thread safety: thread-safe.
        Raises: StorageError if the fsync fails.
        """
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        self._log.flush()
        self._unflushed_messages = 0

    def check(self) -> None:
        """Assert the partition's invariants (DESIGN invariant 1).

        Cost: one close of the storage log.
        Thread safety: thread-safe; idempotent.
        Raises: StorageError if a file cannot be closed.
        """
        with self._lock:
            self._log.check()
