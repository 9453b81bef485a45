"""confluent-kafka's value types: KafkaError, KafkaException, TopicPartition, Message, metadata."""

from __future__ import annotations

import builtins
import collections
from itertools import repeat
from typing import Any

from ...errors import InvalidConfigError

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "BrokerMetadata",
    "ClusterMetadata",
    "KafkaError",
    "KafkaException",
    "Message",
    "PartitionMetadata",
    "TopicMetadata",
    "TopicPartition",
]

OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_STORED = -1000
OFFSET_INVALID = -1001

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2

# code -> (name, librdkafka's description). Local errors are negative, broker errors Kafka's.
_CODES: dict[int, tuple[str, str]] = {
    -199: ("_BAD_MSG", "Local: Bad message format"),
    -198: ("_BAD_COMPRESSION", "Local: Invalid compressed data"),
    -197: ("_DESTROY", "Local: Broker handle destroyed"),
    -196: ("_FAIL", "Local: Communication failure with broker"),
    -195: ("_TRANSPORT", "Local: Broker transport failure"),
    -192: ("_MSG_TIMED_OUT", "Local: Message timed out"),
    -191: ("_PARTITION_EOF", "Broker: No more messages"),
    -190: ("_UNKNOWN_PARTITION", "Local: Unknown partition"),
    -188: ("_UNKNOWN_TOPIC", "Local: Unknown topic"),
    -187: ("_ALL_BROKERS_DOWN", "Local: All broker connections are down"),
    -186: ("_INVALID_ARG", "Local: Invalid argument or configuration"),
    -185: ("_TIMED_OUT", "Local: Timed out"),
    -184: ("_QUEUE_FULL", "Local: Queue full"),
    -180: ("_WAIT_COORD", "Local: Waiting for coordinator"),
    -179: ("_UNKNOWN_GROUP", "Local: Unknown group"),
    -178: ("_IN_PROGRESS", "Local: Operation in progress"),
    -175: ("_ASSIGN_PARTITIONS", "Local: Assign partitions"),
    -174: ("_REVOKE_PARTITIONS", "Local: Revoke partitions"),
    -172: ("_STATE", "Local: Erroneous state"),
    -170: ("_NOT_IMPLEMENTED", "Local: Not implemented"),
    -168: ("_NO_OFFSET", "Local: No offset stored"),
    -165: ("_UNSUPPORTED_FEATURE", "Local: Required feature not supported by broker"),
    -162: ("_KEY_SERIALIZATION", "Local: Key serialization error"),
    -161: ("_VALUE_SERIALIZATION", "Local: Value serialization error"),
    -160: ("_KEY_DESERIALIZATION", "Local: Key deserialization error"),
    -159: ("_VALUE_DESERIALIZATION", "Local: Value deserialization error"),
    -150: ("_FATAL", "Local: Fatal error"),
    -147: ("_MAX_POLL_EXCEEDED", "Local: Maximum application poll interval (max.poll.interval.ms) exceeded"),  # noqa: E501
    -144: ("_FENCED", "Local: This instance has been fenced by a newer instance"),
    -142: ("_ASSIGNMENT_LOST", "Local: Group partitions lost"),
    -140: ("_AUTO_OFFSET_RESET", "Local: No offset to automatically reset to"),
    -1: ("UNKNOWN", "Unknown broker error"),
    0: ("NO_ERROR", "Success"),
    1: ("OFFSET_OUT_OF_RANGE", "Broker: Offset out of range"),
    2: ("INVALID_MSG", "Broker: Invalid message"),
    3: ("UNKNOWN_TOPIC_OR_PART", "Broker: Unknown topic or partition"),
    4: ("INVALID_MSG_SIZE", "Broker: Invalid message size"),
    5: ("LEADER_NOT_AVAILABLE", "Broker: Leader not available"),
    6: ("NOT_LEADER_FOR_PARTITION", "Broker: Not leader for partition"),
    7: ("REQUEST_TIMED_OUT", "Broker: Request timed out"),
    10: ("MSG_SIZE_TOO_LARGE", "Broker: Message size too large"),
    12: ("OFFSET_METADATA_TOO_LARGE", "Broker: Offset metadata string too large"),
    15: ("COORDINATOR_NOT_AVAILABLE", "Broker: Coordinator not available"),
    16: ("NOT_COORDINATOR", "Broker: Not coordinator"),
    17: ("TOPIC_EXCEPTION", "Broker: Invalid topic"),
    22: ("ILLEGAL_GENERATION", "Broker: Specified group generation id is not valid"),
    24: ("INVALID_GROUP_ID", "Broker: Invalid group.id"),
    25: ("UNKNOWN_MEMBER_ID", "Broker: Unknown member"),
    26: ("INVALID_SESSION_TIMEOUT", "Broker: Invalid session timeout"),
    27: ("REBALANCE_IN_PROGRESS", "Broker: Group rebalance in progress"),
    32: ("INVALID_TIMESTAMP", "Broker: Invalid timestamp"),
    35: ("UNSUPPORTED_VERSION", "Broker: Unsupported version"),
    36: ("TOPIC_ALREADY_EXISTS", "Broker: Topic already exists"),
    37: ("INVALID_PARTITIONS", "Broker: Invalid number of partitions"),
    38: ("INVALID_REPLICATION_FACTOR", "Broker: Invalid replication factor"),
    40: ("INVALID_CONFIG", "Broker: Configuration is invalid"),
    42: ("INVALID_REQUEST", "Broker: Invalid request"),
    45: ("OUT_OF_ORDER_SEQUENCE_NUMBER", "Broker: Broker received an out of order sequence number"),
    47: ("INVALID_PRODUCER_EPOCH", "Broker: Producer attempted an operation with an old epoch"),
    68: ("NON_EMPTY_GROUP", "Broker: The group is not empty"),
    69: ("GROUP_ID_NOT_FOUND", "Broker: The group id does not exist"),
    82: ("FENCED_INSTANCE_ID", "Broker: Static consumer fenced by other consumer with same group.instance.id"),  # noqa: E501
}
_RETRIABLE = frozenset({-195, -192, -185, 5, 6, 7, 15, 16, 27})


class KafkaError:
    """An error code with a description, as confluent-kafka's ``KafkaError``.

    Compares equal to its code (``err == KafkaError._PARTITION_EOF``) and to another
    KafkaError with the same code. The codes are class attributes by their names.
    """

    __slots__ = ("_code", "_fatal", "_reason", "_retriable", "_txn_requires_abort")

    def __init__(self, error: int, reason: str | None = None, fatal: bool = False,
                 retriable: bool = False, txn_requires_abort: bool = False) -> None:
        if isinstance(error, bool) or not isinstance(error, int):
            raise TypeError(f"KafkaError needs an int error code, got {error!r}")
        self._code = error
        self._reason = reason
        self._fatal = bool(fatal)
        self._retriable = bool(retriable)
        self._txn_requires_abort = bool(txn_requires_abort)

    def code(self) -> int:
        return self._code

    def name(self) -> builtins.str:
        known = _CODES.get(self._code)
        return known[0] if known else f"ERR_{self._code}"

    def str(self) -> builtins.str:
        if self._reason is not None:
            return self._reason
        known = _CODES.get(self._code)
        return known[1] if known else f"Err-{self._code}?"

    def fatal(self) -> bool:
        return self._fatal

    def retriable(self) -> bool:
        return self._retriable

    def txn_requires_abort(self) -> bool:
        return self._txn_requires_abort

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaError):
            return self._code == other._code
        if isinstance(other, int):
            return self._code == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._code)

    def __str__(self) -> builtins.str:
        return self.str()

    def __repr__(self) -> builtins.str:
        return f'KafkaError{{code={self.name()},val={self._code},str="{self.str()}"}}'


for _code, (_name, _desc) in _CODES.items():
    setattr(KafkaError, _name, _code)


def error(code: int, reason: str | None = None, *, fatal: bool = False) -> KafkaError:
    """A KafkaError with librdkafka's retriable flag for ``code``."""
    return KafkaError(code, reason, fatal=fatal, retriable=code in _RETRIABLE)


class KafkaException(Exception):
    """confluent-kafka's exception: ``args[0]`` is a KafkaError."""


class ConfigError(KafkaException, InvalidConfigError):
    """A config the in-process clients refuse: a KafkaException(_INVALID_ARG) that is also
    eventlog's InvalidConfigError. Nothing was created."""

    def __init__(self, message: builtins.str) -> None:
        super().__init__(KafkaError(KafkaError._INVALID_ARG, message))  # type: ignore[attr-defined]

    def __str__(self) -> builtins.str:
        return builtins.str(self.args[0])


class TopicPartition:
    """A topic, partition and offset (confluent-kafka's; equality and hash by topic and
    partition only, ordering by topic then partition)."""

    __slots__ = ("error", "leader_epoch", "metadata", "offset", "partition", "topic")

    def __init__(self, topic: builtins.str, partition: int = -1, offset: int = OFFSET_INVALID,
                 metadata: builtins.str | None = None, leader_epoch: int | None = None) -> None:
        if not isinstance(topic, builtins.str):
            raise TypeError(f"TopicPartition topic must be a str, got {topic!r}")
        if isinstance(partition, bool) or not isinstance(partition, int):
            raise TypeError(f"TopicPartition partition must be an int, got {partition!r}")
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"TopicPartition offset must be an int, got {offset!r}")
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.metadata = metadata
        self.leader_epoch = leader_epoch
        self.error: KafkaError | None = None

    def _key(self) -> tuple[builtins.str, int]:
        return (self.topic, self.partition)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopicPartition):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: TopicPartition) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> builtins.str:
        return (f"TopicPartition{{topic={self.topic},partition={self.partition},"
                f"offset={self.offset},leader_epoch={self.leader_epoch},error={self.error!r}}}")

    __str__ = __repr__


class Message:
    """A consumed message, a delivery report, or an error event (``error()`` is set).

    As confluent-kafka's: accessor methods, ``len()`` is the value's length, equal to a
    Message with the same fields, unhashable. Its fields are one tuple (``_r``, in
    ``_FIELDS`` order), so a consumer makes a batch's Messages at C speed
    (``messages_from_columns``); the setters replace that tuple.
    """

    __slots__ = ("_r",)

    def __init__(self, topic: builtins.str | None = None, partition: int | None = None,
                 offset: int | None = None, key: bytes | None = None,
                 value: bytes | None = None, headers: list | None = None,
                 error: KafkaError | None = None,
                 timestamp: tuple[int, int] = (TIMESTAMP_NOT_AVAILABLE, 0),
                 latency: float | None = None, leader_epoch: int | None = None) -> None:
        self._r = (topic, partition, offset, key, value, headers, error, timestamp[0],
                   timestamp[1], latency, leader_epoch)

    def error(self) -> KafkaError | None:
        return self._r[6]

    def topic(self) -> builtins.str | None:
        return self._r[0]

    def partition(self) -> int | None:
        return self._r[1]

    def offset(self) -> int | None:
        return self._r[2]

    def key(self) -> Any:
        return self._r[3]

    def value(self) -> Any:
        return self._r[4]

    def headers(self) -> list | None:
        return self._r[5]

    def timestamp(self) -> tuple[int, int]:
        r = self._r
        return (r[7], r[8])

    def latency(self) -> float | None:
        return self._r[9]

    def leader_epoch(self) -> int | None:
        return self._r[10]

    def delivery_count(self) -> int | None:
        """A share consumer's delivery count: None, as for every message of a classic
        consumer or a producer (share groups are not implemented)."""
        return None

    def deserialized_key(self) -> Any:
        """The key, deserialized by a DeserializingConsumer (the same object as ``key()``)."""
        return self._r[3]

    def deserialized_value(self) -> Any:
        """The value, deserialized by a DeserializingConsumer (the same object as
        ``value()``)."""
        return self._r[4]

    def _set(self, index: int, value: Any) -> None:
        r = self._r
        self._r = (*r[:index], value, *r[index + 1:])

    def set_topic(self, topic: Any) -> None:
        self._set(0, topic)

    def set_key(self, key: Any) -> None:
        self._set(3, key)

    def set_value(self, value: Any) -> None:
        self._set(4, value)

    def set_headers(self, headers: list | None) -> None:
        self._set(5, headers)

    def set_error(self, error: Any) -> None:
        self._set(6, error)

    def __len__(self) -> int:
        value = self._r[4]
        return 0 if value is None else len(value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self._r == other._r

    __hash__ = None  # type: ignore[assignment]  # as confluent-kafka's: equal by value

    def __repr__(self) -> builtins.str:
        topic, partition, offset = self._r[:3]
        if self._r[6] is not None:
            return f"<Message error={self._r[6]!r} {topic}[{partition}]>"
        return f"<Message {topic}[{partition}]@{offset}>"


_FIELDS = ("topic", "partition", "offset", "key", "value", "headers", "error",
           "timestamp_type", "timestamp", "latency", "leader_epoch")
_new_message = object.__new__
_set_fields = Message._r.__set__  # type: ignore[attr-defined]


def _headers_list(headers: tuple) -> list | None:
    return list(headers) if headers else None


def messages_from_columns(topic: builtins.str, partition: int, timestamp_type: int,
                          offsets: Any, timestamps: Any, keys: Any, values: Any,
                          headers: Any) -> list[Message]:
    """The Messages of one batch's records, from its columns: two C-level passes (make
    the objects, set their field tuples), no Python code per record without headers."""
    messages = list(map(_new_message, repeat(Message, len(offsets))))
    none = repeat(None)
    collections.deque(map(_set_fields, messages, zip(
        repeat(topic), repeat(partition), offsets, keys, values,
        none if headers is None else map(_headers_list, headers), none,
        repeat(timestamp_type), timestamps, none, none,
    )), 0)
    return messages


class BrokerMetadata:
    def __init__(self, id: int, host: builtins.str, port: int) -> None:
        self.id, self.host, self.port = id, host, port

    def __repr__(self) -> builtins.str:
        return f"BrokerMetadata({self.id}, {self.host}:{self.port})"


class PartitionMetadata:
    def __init__(self, id: int) -> None:
        self.id = id
        self.leader = 0
        self.replicas = [0]
        self.isrs = [0]
        self.error: KafkaError | None = None

    def __repr__(self) -> builtins.str:
        return f"PartitionMetadata({self.id})"


class TopicMetadata:
    def __init__(self, topic: builtins.str, partitions: dict[int, PartitionMetadata],
                 error: KafkaError | None = None) -> None:
        self.topic = topic
        self.partitions = partitions
        self.error = error

    def __repr__(self) -> builtins.str:
        return f"TopicMetadata({self.topic}, {len(self.partitions)} partitions)"


class ClusterMetadata:
    def __init__(self, topics: dict[builtins.str, TopicMetadata], broker_host: builtins.str
                 ) -> None:
        self.cluster_id = "eventlog"
        self.controller_id = 0
        self.brokers = {0: BrokerMetadata(0, broker_host, 0)}
        self.topics = topics
        self.orig_broker_id = 0
        self.orig_broker_name = f"{broker_host}/0"

    def __repr__(self) -> builtins.str:
        return f"ClusterMetadata({self.cluster_id})"
