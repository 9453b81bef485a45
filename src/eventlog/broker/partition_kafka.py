"""PartitionKafkaRecords: a partition's append of Kafka records kept as a client sent
them (the Kafka protocol server's produce path; storage/kafka_records.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from ..clock import Clock
from ..errors import InvalidRecordError
from ..storage import batch as codec
from ..storage import kafka_records
from ..storage.key_index import KeyIndex
from .producer_state import AppendResult, ProducerStates
from .signal import DataSignal
from .validation import timestamp_ms_max

if TYPE_CHECKING:
    from ..storage.partition_log import PartitionLog

__all__ = ["PartitionKafkaRecords"]

_new_result = partial(tuple.__new__, AppendResult)


class PartitionKafkaRecords:
    """The Kafka-records append of Partition (a base class of it; not used alone)."""

    topic: str
    index: int
    _log: PartitionLog
    _lock: threading.Lock
    _clock: Clock
    _closed: bool
    _compacted: bool
    _log_append_time: bool
    _sync_appends: bool
    _producers: ProducerStates
    _key_index: KeyIndex | None
    _signal: DataSignal

    _ensure_open: Callable[..., None]  # Partition's
    _checked_size: Callable[..., int]  # Partition's
    _land: Callable[..., None]  # Partition's
    _sync: Callable[..., None]  # Partition's

    def append_kafka_records(
        self,
        records: bytes,
        count: int,
        base_timestamp: int,
        *,
        attributes: int = 0,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
    ) -> AppendResult:
        """Append the records section of an uncompressed Kafka v2 batch as it is (the
        Kafka protocol server's produce path): stored verbatim, never decoded here
        (storage/kafka_records.py), so a fetch can send the same bytes back.

        ``count`` and ``base_timestamp`` are the wire batch header's; ``attributes``
        may carry only the transactional bit. The records are checked first
        (``kafka_records.check_records``: their structure, dense offset deltas,
        timestamps >= 0); then the batch goes through ``append_columns``'s checks
        and steps (sizes, the producer's sequence, the transaction, the key index).
        A compacted topic's records, or a partition whose key index is in use, are
        decoded for their keys.

        Cost: one walk over the records (no object per record), one CRC, one copy.
        Thread safety: thread-safe (the partition lock).
        Raises: InvalidRecordError naming the problem (nothing appended; malformed
        records have the KafkaRecordsError as its cause); as ``append_batch``
        otherwise.
        """
        max_timestamp, keys = self._checked_kafka_records(records, count, base_timestamp,
                                                          attributes)
        attributes |= codec.attr_kafka_records
        with self._lock:
            if self._closed:
                self._ensure_open()
            log = self._log
            if producer_id >= 0:
                found = self._producers.check(producer_id, producer_epoch, base_sequence, count)
                if found is not None:
                    return found
            now_ms = self._clock.time_ms()
            base = log.end_offset
            data, header = codec.pack_batch(records, base, attributes, count - 1,
                                            base_timestamp, max_timestamp, producer_id,
                                            producer_epoch, base_sequence, count)
            self._checked_size(data, count, attributes)
            if self._key_index is not None and not keys:
                keys = kafka_records.decode_records(records, count, base_timestamp)[1]
            self._land(data, header, count, keys, now_ms, attributes,
                       producer_id, producer_epoch, base_sequence)
        if self._sync_appends:
            self._sync(log, base + count)
        self._signal.bump()
        return _new_result((base, base + count - 1, -1, False, len(data), len(data)))

    def _checked_kafka_records(self, records: bytes, count: int, base_timestamp: int,
                               attributes: int) -> tuple[int, Sequence[bytes | None]]:
        """The records' largest timestamp and (a compacted topic's) keys, or
        InvalidRecordError naming what ``append_kafka_records`` cannot take."""
        if attributes & ~codec.attr_transactional:
            raise InvalidRecordError(
                f"attributes {attributes:#x}: Kafka records are appended uncompressed, "
                "with at most the transactional bit")
        if self._log_append_time:
            raise InvalidRecordError(
                f"topic {self.topic!r} stamps LogAppendTime: append its records as columns")
        try:
            max_timestamp = kafka_records.check_records(records, count, base_timestamp)
        except kafka_records.KafkaRecordsError as exc:
            raise InvalidRecordError(f"Kafka records for {self.topic}-{self.index}: {exc}"
                                     ) from exc
        if max_timestamp > timestamp_ms_max:
            raise InvalidRecordError(f"a record's timestamp {max_timestamp} is over 2**63-1")
        keys: Sequence[bytes | None] = ()
        if self._compacted:
            keys = kafka_records.decode_records(records, count, base_timestamp)[1]
            if None in keys:
                raise InvalidRecordError(
                    f"record {list(keys).index(None)}: compacted topic {self.topic!r} cannot "
                    "accept a record without a key (Kafka's rule); give every record a key"
                )
        return max_timestamp, keys
