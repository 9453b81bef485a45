"""What every request handler shares: Kafka's error codes, the broker's identity,
topic ids, and the mapping from eventlog's errors to Kafka's codes."""

from __future__ import annotations

import uuid
from typing import Any

from .. import errors
from ..broker import Broker
from .groups import WireGroupCoordinator
from .records import WireFormatError

__all__ = ["HandlerBase", "cluster_id", "error_for", "node_id", "topic_id"]

# Kafka error codes (org.apache.kafka.common.protocol.Errors)
UNKNOWN_SERVER_ERROR = -1
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
OFFSET_METADATA_TOO_LARGE = 12
COORDINATOR_NOT_AVAILABLE = 15
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
INVALID_COMMIT_OFFSET_SIZE = 28
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_CONFIG = 40
INVALID_REQUEST = 42
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_TRANSACTION_TIMEOUT = 50
KAFKA_STORAGE_ERROR = 56
INVALID_RECORD = 87
UNSTABLE_OFFSET_COMMIT = 88
PRODUCER_FENCED = 90
UNKNOWN_TOPIC_ID = 100

node_id = 0
cluster_id = "eventlog"
_topic_namespace = uuid.UUID("7a1e5b1c-0c5e-4e4b-9e0f-6576656e746c")


def topic_id(name: str) -> uuid.UUID:
    """A topic's id, derived from its name (eventlog topics have no stored id)."""
    return uuid.uuid5(_topic_namespace, name)


def error_for(exc: BaseException) -> int:
    """The Kafka error code for an eventlog error raised while serving a request."""
    if isinstance(exc, errors.OutOfOrderSequenceError):
        return OUT_OF_ORDER_SEQUENCE_NUMBER
    if isinstance(exc, errors.InvalidProducerEpochError):
        return INVALID_PRODUCER_EPOCH
    if isinstance(exc, (errors.ProducerFencedError, errors.TransactionTimedOutError)):
        # a produce request's answer to a fenced producer: a timeout bumped the epoch too
        return INVALID_PRODUCER_EPOCH
    if isinstance(exc, errors.InvalidTxnStateError):
        return INVALID_TXN_STATE
    if isinstance(exc, errors.RecordTooLargeError):
        return MESSAGE_TOO_LARGE
    if isinstance(exc, WireFormatError):
        return CORRUPT_MESSAGE
    if isinstance(exc, errors.InvalidRecordError):
        return INVALID_RECORD
    if isinstance(exc, (errors.UnknownTopicError, errors.UnknownPartitionError)):
        return UNKNOWN_TOPIC_OR_PARTITION
    if isinstance(exc, errors.OffsetOutOfRangeError):
        return OFFSET_OUT_OF_RANGE
    if isinstance(exc, errors.StorageError):
        return KAFKA_STORAGE_ERROR
    return UNKNOWN_SERVER_ERROR


class HandlerBase:
    """The state every group of handlers reads: the log and the wire groups."""

    log: Broker
    groups: WireGroupCoordinator

    def _topic_by_id(self, tid: Any) -> str | None:
        for name in self.log.topics(include_internal=True):
            if topic_id(name) == tid:
                return name
        return None
