"""PartitionTransactions: a partition's transaction markers, last stable offset and
aborted transactions (storage/txn_index.py holds the index)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..clock import Clock
from ..storage import batch as codec
from ..storage.key_index import KeyIndex
from ..storage.txn_index import (
    CONTROL_KEY,
    CONTROL_VALUE,
    AbortedTxn,
    PartitionTxns,
    control_abort,
    control_commit,
    control_version,
    marker_attributes,
)
from .producer_state import ProducerStates
from .signal import DataSignal

if TYPE_CHECKING:
    from ..storage.partition_log import PartitionLog

__all__ = ["PartitionTransactions"]

# The control record of each marker type (codec.encode_marker's; the value carries
# coordinator epoch 0, the only one): encoded once, not per marker.
_MARKER_KEYS = {True: CONTROL_KEY.pack(control_version, control_commit),
                False: CONTROL_KEY.pack(control_version, control_abort)}
_MARKER_VALUE_0 = CONTROL_VALUE.pack(control_version, 0)
_encode_one = codec.encode_one


class PartitionTransactions:
    """The transaction half of Partition (a base class of it; not used alone). The
    index is None until the partition's first transactional batch (and at open unless
    it ever had one)."""

    _log: PartitionLog
    _lock: threading.Lock
    _clock: Clock
    _txns: PartitionTxns | None
    _producers: ProducerStates
    _key_index: KeyIndex | None
    _signal: DataSignal
    _flush_interval_messages: int | None
    _waiters: int

    _ensure_open: Callable[..., None]  # Partition's

    _after_append: Callable[..., None]  # Partition's

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

        Cost: one small batch appended.
        Thread safety: thread-safe.
        Raises: InvalidProducerEpochError for a marker older than the producer's epoch, ClosedError,
        StorageError.
        """
        value = _MARKER_VALUE_0 if coordinator_epoch == 0 else CONTROL_VALUE.pack(
            control_version, coordinator_epoch)
        with self._lock:
            if self._closed:
                self._ensure_open()
            producers = self._producers
            entry = producers.get(producer_id)  # check_marker's test, inlined
            if entry is not None and producer_epoch < entry.epoch:
                producers.check_marker(producer_id, producer_epoch)  # raises
            log = self._log
            now_ms = self._clock.time_ms()
            base = log.end_offset
            # codec.encode_marker's bytes (a batch of one record: encode_one's form; the
            # tests compare the two), with the header it wrote: no decode of it.
            data, header = _encode_one(base, now_ms, _MARKER_KEYS[commit], value, None,
                                       marker_attributes, producer_id, producer_epoch, -1)
            txns = self._txns
            if txns is None:
                txns = self._txns = PartitionTxns.create(log)
            log.append_encoded(data, header, now_ms=now_ms)
            txns.complete(producer_id, base, commit, log.active_segment.base_offset)
            if entry is None or entry.epoch != producer_epoch:
                producers.marker_written(producer_id, producer_epoch)
            key_index = self._key_index
            if key_index is not None:
                key_index.end_offset = log.end_offset
            if self._flush_interval_messages is not None or self._waiters:
                self._after_append(1)
        signal = self._signal  # DataSignal.bump, inlined as in append_record
        signal.version = next(signal.counter)
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
        (producer id, first offset, marker offset, LSO). Lock-free.

        Cost: O(aborted transactions in the range).
        Thread safety: any thread; lock-free.
        Raises: nothing.
        """
        txns = self._txns
        return [] if txns is None else txns.aborted_between(start, stop)

    def open_transactions(self) -> dict[int, int]:
        """{producer id: first offset} of the transactions open in this partition.

        Cost: O(open transactions).
        Thread safety: thread-safe.
        Raises: nothing.
        """
        with self._lock:
            return {} if self._txns is None else dict(self._txns.ongoing)

