"""Frozen value types that cross the public API.

Records are named tuples: cheap to build in bulk from decoded batch columns
(one C-level ``zip``/``map`` per batch, no Python call per record) and
immutable, so a record handed to one consumer cannot be changed under another.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ConsumerGroupMetadata",
    "ConsumerRecord",
    "Header",
    "Record",
    "RecordMetadata",
    "TimestampType",
    "TopicPartition",
]

Header = tuple[str, "bytes | None"]
"""A record header: a UTF-8 string key and a bytes (or None) value, as in Kafka."""


class TimestampType:
    """The meaning of a record's timestamp (Kafka's ``message.timestamp.type``)."""

    CREATE_TIME = "CreateTime"
    LOG_APPEND_TIME = "LogAppendTime"


class TopicPartition(NamedTuple):
    """A partition of a topic, as Kafka names it."""

    topic: str
    partition: int


class Record(NamedTuple):
    """A record as stored in a partition: what ``Partition.read`` returns."""

    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]


class ConsumerRecord(NamedTuple):
    """A record as a consumer sees it: the stored record plus where it came from.

    ``key`` and ``value`` are what the consumer's deserializers returned.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    timestamp_type: str
    key: object
    value: object
    headers: tuple[Header, ...]


class RecordMetadata(NamedTuple):
    """Where a produced record landed: what a producer's delivery future resolves to."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    serialized_key_size: int
    serialized_value_size: int


class ConsumerGroupMetadata(NamedTuple):
    """What ``Consumer.group_metadata()`` returns, for
    ``Producer.send_offsets_to_transaction`` (KIP-447: the group coordinator refuses
    offsets from a member of an older generation)."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None
