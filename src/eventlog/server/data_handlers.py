"""The record handlers: Produce, Fetch (with read_committed) and ListOffsets."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .. import errors
from ..group.txn_coordinator import (
    existing_transaction_coordinator,
    transaction_coordinator_for,
)
from ..records import TopicPartition
from ..storage.kafka_records import stored_records
from .common import (
    INVALID_REQUIRED_ACKS,
    NONE,
    OFFSET_OUT_OF_RANGE,
    UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
    UNSUPPORTED_VERSION,
    HandlerBase,
    error_for,
)
from .protocol import ms
from .records import (
    WireBatch,
    WireFormatError,
    attr_compression_mask,
    attr_control,
    attr_log_append_time,
    attr_transactional,
    decode,
    encode_batch,
    split_batches,
    wire_batch_from_stored,
)

__all__ = ["DataHandlers"]

_log = logging.getLogger("eventlog.server")


class DataHandlers(HandlerBase):
    """Records in and out."""

    async def produce(self, header: Any, req: Any, version: int, host: str) -> Any:
        txn_id = req.transactional_id
        if req.acks not in (-1, 0, 1):
            code = INVALID_REQUIRED_ACKS
        else:
            code = NONE
        responses = []
        for t in req.topic_data:
            parts = []
            for p in t.partition_data:
                if code:
                    parts.append({"index": p.index, "error_code": code, "base_offset": -1})
                else:
                    parts.append(self._produce_partition(t.name, p.index, p.records, txn_id))
            responses.append({"name": t.name, "partition_responses": parts})
        if req.acks == 0:
            return None
        return {"responses": responses}

    def _produce_partition(self, topic_name: str, index: int, records: Any,
                           txn_id: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"index": index, "error_code": NONE, "base_offset": -1,
                               "log_append_time": -1, "log_start_offset": -1}
        try:
            partition = self.log.topic_for_produce(topic_name).partition(index)
            batches = split_batches(records or b"")
            first = None
            append_time = -1
            if txn_id is not None or any(b.attributes & attr_transactional for b in batches):
                self._check_transactional(txn_id, batches, partition)
            for b in batches:
                if b.is_control:
                    raise errors.InvalidRecordError(
                        "control batches are written by the transaction coordinator, not "
                        "by producers")
                if not b.record_count:
                    continue
                result = None
                if len(batches) == 1 and _verbatim(b, partition):
                    # Stored as sent: the records are checked, never decoded, and a
                    # fetch sends them back as they are (docs/server.md).
                    result = _append_verbatim(b, partition)
                if result is None:
                    result = self._append_decoded(decode(b), partition)
                if first is None:
                    first = result.base_offset
                    append_time = result.log_append_time_ms
            out.update(base_offset=-1 if first is None else first,
                       log_append_time=append_time, log_start_offset=partition.start_offset)
        except (errors.EventLogError, WireFormatError) as exc:
            code = error_for(exc)
            _log.info("produce to %s-%d refused (error %d): %s", topic_name, index, code, exc)
            out.update(error_code=code, error_message=str(exc))
        return out

    def _append_decoded(self, b: WireBatch, partition: Any) -> Any:
        """A batch the log cannot keep as sent (compressed, without timestamps, to a
        LogAppendTime topic): appended from its decoded columns."""
        return partition.append_columns(
            b.keys, b.values, b.headers,
            [ts if ts >= 0 else self.log.clock.time_ms() for ts in b.timestamps],
            # stored with the producer's codec, as Kafka's compression.type=producer
            attributes=b.attributes & (attr_compression_mask | attr_transactional),
            producer_id=b.producer_id, producer_epoch=b.producer_epoch,
            base_sequence=b.base_sequence,
        )

    def _check_transactional(self, txn_id: str | None, batches: list[WireBatch],
                             partition: Any) -> None:
        """A transactional produce: every batch is its producer's, marked transactional,
        to a partition added to the open transaction (else nothing is appended)."""
        pids = {(b.producer_id, b.producer_epoch) for b in batches}
        if txn_id is None or len(pids) != 1 or not all(
                b.attributes & attr_transactional for b in batches):
            raise errors.InvalidRecordError(
                "a produce request with a transactional id must hold only transactional "
                "batches of one producer, and transactional batches need the request's "
                "transactional id"
            )
        ((pid, epoch),) = pids
        transaction_coordinator_for(self.log).check_partition(
            txn_id, pid, epoch, TopicPartition(partition.topic, partition.index))

    # ------------------------------------------------------------------ fetch

    async def fetch(self, header: Any, req: Any, version: int, host: str) -> Any:
        max_wait = ms(req.max_wait)
        min_bytes = max(req.min_bytes, 0)
        max_bytes = getattr(req, "max_bytes", 2**31 - 1)
        committed = getattr(req, "isolation_level", 0) == read_committed
        deadline = self.log.clock.monotonic_ms() + max_wait
        while True:
            seen = self.log.data_version
            if committed:
                transactions = existing_transaction_coordinator(self.log)
                if transactions is not None:  # transactions past their timeout hold the LSO
                    transactions.expire()
            responses, size = self._fetch_once(req, version, max_bytes, committed)
            remaining = deadline - self.log.clock.monotonic_ms()
            if size >= min_bytes or (size > 0 and min_bytes <= 1) or remaining <= 0:
                break
            if not await self.wait_for_data(seen, remaining):
                responses, size = self._fetch_once(req, version, max_bytes, committed)
                break
        return {"error_code": NONE, "session_id": 0, "responses": responses}

    wait_for_data: Callable[[int, float], Awaitable[bool]]  # set by the server

    def _fetch_once(self, req: Any, version: int, max_bytes: int,
                    committed: bool) -> tuple[list, int]:
        responses = []
        total = 0
        for t in req.topics:
            if version >= 13:
                name = self._topic_by_id(t.topic_id)
                key: dict[str, Any] = {"topic_id": t.topic_id}
            else:
                name = t.topic
                key = {"topic": name}
            parts = []
            for p in t.partitions:
                entry, size = self._fetch_partition(name, p, max(0, max_bytes - total),
                                                    first=total == 0, by_id=version >= 13,
                                                    committed=committed)
                total += size
                parts.append(entry)
            responses.append({**key, "partitions": parts})
        return responses, total

    def _fetch_partition(self, name: str | None, p: Any, budget: int, *, first: bool,
                         by_id: bool, committed: bool) -> tuple[dict[str, Any], int]:
        """One partition of a Fetch. read_committed (``committed``) reads up to the LSO
        and lists the aborted transactions of what it returns (Kafka's KIP-98 fetch);
        the client drops their batches, and the control batches, itself."""
        entry: dict[str, Any] = {"partition_index": p.partition, "error_code": NONE,
                                 "high_watermark": -1, "last_stable_offset": -1,
                                 "log_start_offset": -1, "aborted_transactions": None,
                                 "preferred_read_replica": -1, "records": None}
        if name is None:
            entry["error_code"] = UNKNOWN_TOPIC_ID if by_id else UNKNOWN_TOPIC_OR_PARTITION
            return entry, 0
        try:
            partition = self.log.topic(name).partition(p.partition)
            end = partition.end_offset
            stable = partition.last_stable_offset
            entry.update(high_watermark=end, last_stable_offset=stable,
                         log_start_offset=partition.start_offset)
            if committed:
                entry["aborted_transactions"] = []
            offset = p.fetch_offset
            if offset > end or offset < partition.start_offset:
                entry["error_code"] = OFFSET_OUT_OF_RANGE
                return entry, 0
            upper = stable if committed else end
            limit = min(p.partition_max_bytes, budget)
            if offset >= upper or (limit <= 0 and not first):
                entry["records"] = b""
                return entry, 0
            data, last = _wire_batches(partition, offset, upper, limit)
            entry["records"] = data
            if committed and last >= offset:
                entry["aborted_transactions"] = [
                    {"producer_id": a.producer_id, "first_offset": a.first_offset}
                    for a in partition.aborted_transactions(offset, last + 1)
                ]
            return entry, len(data)
        except errors.EventLogError as exc:
            entry["error_code"] = error_for(exc)
            return entry, 0

    async def list_offsets(self, header: Any, req: Any, version: int, host: str) -> Any:
        committed = getattr(req, "isolation_level", 0) == read_committed
        topics = []
        for t in req.topics:
            parts = []
            for p in t.partitions:
                entry: dict[str, Any] = {"partition_index": p.partition_index,
                                         "error_code": NONE, "timestamp": -1, "offset": -1,
                                         "leader_epoch": 0}
                try:
                    partition = self.log.topic(t.name).partition(p.partition_index)
                    ts = p.timestamp
                    if ts == -1:  # read_committed: the LSO, as Kafka's ListOffsets
                        entry["offset"] = (partition.last_stable_offset if committed
                                           else partition.end_offset)
                    elif ts == -2:
                        entry["offset"] = partition.start_offset
                    elif ts == -3:  # max timestamp (KIP-734): the last record's offset
                        last = partition.end_offset - 1
                        if last >= partition.start_offset:
                            rec = partition.read(last, 1)
                            if rec:
                                entry.update(offset=rec[0].offset, timestamp=rec[0].timestamp_ms)
                    elif ts < 0:
                        entry["error_code"] = UNSUPPORTED_VERSION
                    else:
                        found = partition.offset_and_timestamp_for_time(ts)
                        if found is not None:
                            entry.update(offset=found[0], timestamp=found[1])
                except errors.EventLogError as exc:
                    entry["error_code"] = error_for(exc)
                parts.append(entry)
            topics.append({"name": t.name, "partitions": parts})
        return {"topics": topics}


read_committed = 1  # a Fetch's isolation_level (0: read_uncommitted)


def _append_verbatim(b: WireBatch, partition: Any) -> Any:
    """``b`` appended as sent; None if its records need the decoding path."""
    try:
        return partition.append_kafka_records(
            b.records, b.record_count, b.base_timestamp,
            attributes=b.attributes & attr_transactional, producer_id=b.producer_id,
            producer_epoch=b.producer_epoch, base_sequence=b.base_sequence,
        )
    except errors.InvalidRecordError as exc:
        if isinstance(exc.__cause__, WireFormatError):
            # Records the log cannot keep as sent (offset deltas that are not 0, 1, 2...,
            # or malformed): the decoding path takes them or names their problem.
            return None
        raise


def _verbatim(b: WireBatch, partition: Any) -> bool:
    """True if the log can keep ``b``'s records as the client sent them: uncompressed,
    with timestamps, to a topic that keeps the producer's timestamps. A request with
    several batches for one partition (no client sends one) is decoded whole first,
    so a bad later batch leaves the earlier ones unappended."""
    return (not b.attributes & attr_compression_mask and b.base_timestamp >= 0
            and not partition.config.log_append_time)
# The stored attributes a wire batch carries: codec, transactional, control.
_wire_attributes = attr_compression_mask | attr_transactional | attr_control


def _wire_batches(partition: Any, offset: int, upper: int, limit: int) -> tuple[bytes, int]:
    """The stored batches from ``offset`` below ``upper`` as wire batches, about
    ``limit`` bytes (at least one batch); and the last offset they hold (-1: none).
    Each keeps its codec (compressed as produced), its producer fields and its
    transactional and control bits, so clients see Kafka's markers."""
    chunks = []
    size = 0
    last = -1
    attrs = attr_log_append_time if partition.config.log_append_time else 0
    for header, cols in partition.read_columns(offset, 100_000, max(limit, 1)):
        if header.base_offset >= upper:
            break  # the LSO is a batch's first offset: no batch straddles it
        records = stored_records(cols.values)
        if records is not None:  # kept as the client sent it: sent back as it is
            data = wire_batch_from_stored(
                records, base_offset=header.base_offset,
                attributes=attrs | header.attributes & _wire_attributes,
                last_offset_delta=header.last_offset_delta,
                base_timestamp=header.base_timestamp, max_timestamp=header.max_timestamp,
                producer_id=header.producer_id, producer_epoch=header.producer_epoch,
                base_sequence=header.base_sequence, record_count=header.record_count)
            if chunks and size + len(data) > limit:
                break
            chunks.append(data)
            size += len(data)
            last = header.last_offset
            if size >= limit:
                break
            continue
        sequence = header.base_sequence
        if sequence >= 0:
            sequence += cols.offsets[0] - header.base_offset
        data = encode_batch(cols.offsets, cols.timestamps, cols.keys, cols.values,
                            cols.headers, attributes=attrs | header.attributes & _wire_attributes,
                            producer_id=header.producer_id,
                            producer_epoch=header.producer_epoch, base_sequence=sequence)
        if chunks and size + len(data) > limit:
            break
        chunks.append(data)
        size += len(data)
        last = cols.offsets[-1]
        if size >= limit:
            break  # Kafka returns at least one batch, even above the limit
    return b"".join(chunks), last
