"""The transaction handlers: InitProducerId (idempotent and transactional),
AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn.

They are Kafka's transaction coordinator calls (KIP-98, KIP-447) over the log's
``TransactionCoordinator`` (eventlog.group.txn_coordinator), the one the
in-process ``TransactionalProducer`` uses: a wire producer and an in-process
producer of the same ``transactional.id`` fence each other, and offsets sent in
a wire transaction land in the same ``__consumer_offsets`` when it commits.
Every call completes before it is answered (markers included), so no client
ever sees CONCURRENT_TRANSACTIONS.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from .. import errors
from ..broker import Broker
from ..group import OffsetAndMetadata
from ..group.txn_coordinator import TransactionCoordinator, transaction_coordinator_for
from ..records import TopicPartition
from .common import (
    COORDINATOR_NOT_AVAILABLE,
    INVALID_COMMIT_OFFSET_SIZE,
    INVALID_PRODUCER_EPOCH,
    INVALID_TRANSACTION_TIMEOUT,
    INVALID_TXN_STATE,
    NONE,
    OFFSET_METADATA_TOO_LARGE,
    PRODUCER_FENCED,
    UNKNOWN_SERVER_ERROR,
    UNKNOWN_TOPIC_OR_PARTITION,
    HandlerBase,
)
from .groups import Errors
from .protocol import ms

__all__ = ["TxnHandlers"]

_log = logging.getLogger("eventlog.server")

OPERATION_NOT_ATTEMPTED = 55

# The first version of each request that knows PRODUCER_FENCED (KIP-588); older
# ones are answered INVALID_PRODUCER_EPOCH, as Kafka's broker does.
_fenced_since = {22: 4, 24: 2, 25: 2, 26: 2, 28: 99}


def txn_error(exc: BaseException, api_key: int, version: int) -> int:
    """The Kafka error code of a transaction coordinator call that raised ``exc``."""
    if isinstance(exc, (errors.ProducerFencedError, errors.TransactionTimedOutError,
                        errors.InvalidProducerEpochError)):
        # A timeout bumped the epoch: the producer is fenced, as in Kafka (KIP-98).
        return PRODUCER_FENCED if version >= _fenced_since[api_key] else INVALID_PRODUCER_EPOCH
    if isinstance(exc, errors.InvalidTxnStateError):
        return INVALID_TXN_STATE
    if isinstance(exc, (errors.UnknownTopicError, errors.UnknownPartitionError)):
        return UNKNOWN_TOPIC_OR_PARTITION
    if isinstance(exc, errors.IllegalGenerationError):
        return Errors.ILLEGAL_GENERATION
    if isinstance(exc, errors.FencedInstanceIdError):
        return Errors.FENCED_INSTANCE_ID
    if isinstance(exc, errors.RebalanceInProgressError):
        return Errors.REBALANCE_IN_PROGRESS
    if isinstance(exc, errors.GroupError):
        return Errors.UNKNOWN_MEMBER_ID
    if isinstance(exc, errors.InvalidConfigError):
        return OFFSET_METADATA_TOO_LARGE
    if isinstance(exc, OSError):  # a storage error: nothing changed, the client retries
        return COORDINATOR_NOT_AVAILABLE
    return UNKNOWN_SERVER_ERROR


class TxnHandlers(HandlerBase):
    """Kafka's transaction coordinator calls, over eventlog's TransactionCoordinator."""

    def __init__(self, log: Broker) -> None:
        self._producer_ids = itertools.count(log.clock.time_ms() * 1000)

    def _coordinator(self) -> TransactionCoordinator:
        return transaction_coordinator_for(self.log)

    def _refused(self, what: str, txn_id: str, exc: BaseException, api_key: int,
                 version: int) -> int:
        code = txn_error(exc, api_key, version)
        _log.info("%s of transactional id %r refused (error %d): %s", what, txn_id, code, exc)
        return code

    async def init_producer_id(self, header: Any, req: Any, version: int, host: str) -> Any:
        txn_id = req.transactional_id
        if txn_id is None:  # an idempotent producer: a fresh id each time
            return {"error_code": NONE, "producer_id": next(self._producer_ids),
                    "producer_epoch": 0}
        timeout_ms = ms(req.transaction_timeout)
        expected = (getattr(req, "producer_id", -1), getattr(req, "producer_epoch", -1))
        try:
            pid, epoch = self._coordinator().init_producer_id(txn_id, timeout_ms, expected)
        except errors.InvalidConfigError as exc:
            _log.info("InitProducerId of %r refused: %s", txn_id, exc)
            return {"error_code": INVALID_TRANSACTION_TIMEOUT, "producer_id": -1,
                    "producer_epoch": -1}
        except (errors.EventLogError, OSError) as exc:
            return {"error_code": self._refused("InitProducerId", txn_id, exc, 22, version),
                    "producer_id": -1, "producer_epoch": -1}
        return {"error_code": NONE, "producer_id": pid, "producer_epoch": epoch}

    async def add_partitions_to_txn(self, header: Any, req: Any, version: int,
                                    host: str) -> Any:
        txn_id = req.v3_and_below_transactional_id
        pid, epoch = req.v3_and_below_producer_id, req.v3_and_below_producer_epoch
        wanted = [(t.name, i) for t in req.v3_and_below_topics for i in t.partitions]
        codes = dict.fromkeys(wanted, NONE)
        for name, i in wanted:  # Kafka adds none when one is unknown
            try:
                self.log.topic(name).partition(i)
            except errors.EventLogError:
                codes[(name, i)] = UNKNOWN_TOPIC_OR_PARTITION
        if any(codes.values()):
            codes = {k: c or OPERATION_NOT_ATTEMPTED for k, c in codes.items()}
        else:
            coordinator = self._coordinator()
            for name, i in wanted:
                try:
                    coordinator.add_partition(txn_id, pid, epoch, TopicPartition(name, i))
                except (errors.EventLogError, OSError) as exc:
                    code = self._refused("AddPartitionsToTxn", txn_id, exc, 24, version)
                    codes = {k: code for k in codes}
                    break
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for (name, i), code in codes.items():
            by_topic.setdefault(name, []).append(
                {"partition_index": i, "partition_error_code": code})
        return {"results_by_topic_v3_and_below": [
            {"name": name, "results_by_partition": parts} for name, parts in by_topic.items()
        ]}

    async def add_offsets_to_txn(self, header: Any, req: Any, version: int, host: str) -> Any:
        # Kafka adds the group's __consumer_offsets partition to the transaction; here
        # the transaction begins holding offsets (TxnOffsetCommit sends them).
        try:
            self._coordinator().add_offsets(
                req.transactional_id, req.producer_id, req.producer_epoch, req.group_id,
                {}, "", -1, None)
        except (errors.EventLogError, OSError) as exc:
            return {"error_code": self._refused("AddOffsetsToTxn", req.transactional_id, exc,
                                                25, version)}
        return {"error_code": NONE}

    async def txn_offset_commit(self, header: Any, req: Any, version: int, host: str) -> Any:
        member_id = getattr(req, "member_id", "")
        generation = getattr(req, "generation_id", -1)
        instance_id = getattr(req, "group_instance_id", None)
        code = NONE
        if member_id or generation >= 0:  # KIP-447: a zombie of an older generation
            code = self.groups.check_commit(req.group_id, generation, member_id, instance_id)
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for t in req.topics:
            for p in t.partitions:
                if p.committed_offset < 0:
                    code = code or INVALID_COMMIT_OFFSET_SIZE
                offsets[TopicPartition(t.name, p.partition_index)] = OffsetAndMetadata(
                    p.committed_offset, p.committed_metadata or "")
        if not code:
            try:
                self._coordinator().add_offsets(
                    req.transactional_id, req.producer_id, req.producer_epoch, req.group_id,
                    offsets, "", -1, None)
            except (errors.EventLogError, OSError) as exc:
                code = self._refused("TxnOffsetCommit", req.transactional_id, exc, 28, version)
        else:
            _log.info("TxnOffsetCommit of %r for group %s refused (error %d)",
                      req.transactional_id, req.group_id, code)
        return {"topics": [
            {"name": t.name, "partitions": [
                {"partition_index": p.partition_index, "error_code": code}
                for p in t.partitions]}
            for t in req.topics
        ]}

    async def end_txn(self, header: Any, req: Any, version: int, host: str) -> Any:
        try:
            epoch = self._coordinator().end_transaction(
                req.transactional_id, req.producer_id, req.producer_epoch,
                commit=bool(req.committed))
        except (errors.EventLogError, OSError) as exc:
            return {"error_code": self._refused("EndTxn", req.transactional_id, exc, 26,
                                                version)}
        return {"error_code": NONE, "producer_id": req.producer_id, "producer_epoch": epoch}
