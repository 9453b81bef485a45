"""Committed offsets: the ``__consumer_offsets`` compacted topic and its in-memory view.

A committed offset is the offset of the next record to read (DESIGN invariant 6,
KAFKA_SEMANTICS 4.1). Every commit is appended to the internal topic before it is
visible, so committed offsets survive ``close()`` and reopening, and a killed
process (the log's own crash safety: an append is in the page cache when it
returns). When the coordinator is first used after the log is opened, the whole
topic is read once from its start and the latest value per key wins.

Record format (msgpack, one record per partition committed; one commit call is one
batch, so a commit of several partitions is all-or-nothing)::

    key   = [group_id: str, topic: str, partition: int]
    value = [offset: int, metadata: str, commit_timestamp_ms: int]   or None

A value of None is a tombstone: the group's offset for that partition was deleted
(``delete_group``). The topic is compacted (``cleanup_policy="compact"``) so that,
once the log cleaner runs, only the latest record per key is kept.

Partitions: Kafka's ``offsets.topic.num.partitions`` is 50, to spread the
coordinators of many groups across brokers. Here one in-process coordinator
serves every group, so the topic gets :data:`offsets_topic_partitions` (1)
partition; a group's partition is ``crc32(group_id) % partitions``, so a topic
created with more partitions (by a later version) is still read correctly.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import msgpack

from ..broker.core import Broker
from ..errors import (
    CorruptLogError,
    InvalidConfigError,
    ReadOnlyLogError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
)
from ..records import TopicPartition

__all__ = [
    "CommittedOffset",
    "OffsetAndMetadata",
    "OffsetStore",
    "offset_metadata_bytes_max",
    "offsets_topic",
    "offsets_topic_partitions",
]

offsets_topic = "__consumer_offsets"
offsets_topic_partitions = 1  # Kafka: 50 (offsets.topic.num.partitions); see the module doc
offsets_topic_segment_bytes = 100 * 1024 * 1024  # Kafka's offsets.topic.segment.bytes
offset_metadata_bytes_max = 4096  # Kafka's offset.metadata.max.bytes
load_batch_records_max = 10_000  # records decoded per read while loading
offset_max = 2**63 - 1  # offsets are int64, as in Kafka


class OffsetAndMetadata(NamedTuple):
    """An offset to commit (the next offset to read) and an optional metadata string."""

    offset: int
    metadata: str = ""


class CommittedOffset(NamedTuple):
    """A committed offset as stored: offset, metadata, and when it was committed."""

    offset: int
    metadata: str
    commit_timestamp_ms: int


def validate_offsets(offsets: Mapping[Any, Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    """Check ``{TopicPartition: int | OffsetAndMetadata}`` and normalise it. O(n). Pure.

    Raises:
        InvalidConfigError: not a mapping, a key is not a (topic, partition) pair,
            an offset is not an int in [0, 2**63 - 1], or metadata is not a str of at most
            ``offset_metadata_bytes_max`` UTF-8 bytes. Nothing was committed.
    """
    if not isinstance(offsets, Mapping):
        raise InvalidConfigError(
            f"offsets must be a mapping of TopicPartition to offset, got {type(offsets).__name__}"
        )
    out: dict[TopicPartition, OffsetAndMetadata] = {}
    for tp, value in offsets.items():
        if not (
            isinstance(tp, tuple) and len(tp) == 2
            and isinstance(tp[0], str) and type(tp[1]) is int
        ):
            raise InvalidConfigError(f"offsets keys must be TopicPartition(topic, partition), "
                                     f"got {tp!r}")
        if type(value) is int:
            value = OffsetAndMetadata(value)
        if not isinstance(value, tuple) or len(value) != 2:
            raise InvalidConfigError(
                f"offset for {tp[0]}-{tp[1]} must be an int or OffsetAndMetadata, got {value!r}"
            )
        offset, metadata = value
        if type(offset) is not int or not 0 <= offset <= offset_max:
            raise InvalidConfigError(
                f"offset for {tp[0]}-{tp[1]} must be an int in [0, {offset_max}] "
                f"(the next offset to read), got {offset!r}"
            )
        if not isinstance(metadata, str) or len(metadata.encode()) > offset_metadata_bytes_max:
            raise InvalidConfigError(
                f"metadata for {tp[0]}-{tp[1]} must be a str of at most "
                f"{offset_metadata_bytes_max} UTF-8 bytes (offset.metadata.max.bytes)"
            )
        out[TopicPartition(tp[0], tp[1])] = OffsetAndMetadata(offset, metadata)
    return out


def _unpack(data: bytes, what: str, types: tuple[type, ...]) -> list[Any]:
    """Decode a stored key or value: a msgpack array of ``types``; CorruptLogError if not.

    The bytes passed their batch's CRC, so they are what was appended: anything
    else in them was not written by this module (a bug, or a foreign writer)."""
    try:
        fields = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # ExtraData, FormatError, StackError, UnicodeDecodeError, ...
        raise CorruptLogError(f"its {what} is not msgpack: {exc}") from exc
    if (
        not isinstance(fields, list) or len(fields) != len(types)
        or not all(type(f) is t for f, t in zip(fields, types, strict=True))
    ):
        names = ", ".join(t.__name__ for t in types)
        raise CorruptLogError(f"its {what} is {fields!r:.80}, not an array of [{names}]")
    return fields


class OffsetStore:
    """The committed offsets of every group of one EventLog.

    Not thread-safe by itself: the GroupCoordinator's lock guards every call.
    Reads are dict lookups; a commit is one append of one batch.
    """

    def __init__(self, log: Broker) -> None:
        self._log = log
        self._offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        self._loaded = False
        # A read-only log (another process commits): every read catches up first.
        self._follow = bool(getattr(log, "read_only", False))
        self._loaded_to: dict[int, int] = {}  # partition -> next offset to apply

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Create the internal topic if needed and read it from the start (once).

        Cost: O(records in the topic) the first time, O(1) afterwards. On a read-only
        log (another process commits) every call reads what was committed since:
        O(new commits), and the topic is not created if the writer has none.
        """
        if self._loaded and not self._follow:
            return
        if not self._loaded:
            self._offsets = {}  # a failed load (a corrupt record) may have applied a part
            self._loaded_to = {}
        topic = self._topic()
        if topic is not None:  # None: a read-only log whose writer never committed
            for partition in topic.partitions:
                self._load_partition(partition)
        self._loaded = True

    def _topic(self) -> Any:
        try:
            return self._log.topic(offsets_topic)
        except UnknownTopicError:
            if self._follow:
                return None
        try:
            return self._log.create_internal_topic(
                offsets_topic,
                offsets_topic_partitions,
                cleanup_policy="compact",
                segment_bytes=offsets_topic_segment_bytes,
            )
        except TopicExistsError:  # created by another thread in between
            return self._log.topic(offsets_topic)

    def _load_partition(self, partition: Any) -> None:
        # Applying again from a later offset is exact: the latest record per key wins,
        # and compaction never removes a key's latest record.
        if self._follow:
            partition.refresh()  # what the writing process committed since
        offset = max(partition.start_offset, self._loaded_to.get(partition.index, 0))
        end = partition.end_offset
        while offset < end:
            records = partition.read(offset, load_batch_records_max)
            if not records:
                break
            for record in records:
                try:
                    self._apply(record.key, record.value)
                except CorruptLogError as exc:
                    raise CorruptLogError(
                        f"record {record.offset} of the internal topic "
                        f"{partition.topic}-{partition.index} is not a committed offset "
                        f"({exc}); consumer groups cannot load their offsets until it is "
                        f"removed (e.g. partition.truncate_to({record.offset}) drops it and "
                        "every later commit)"
                    ) from exc
            offset = records[-1].offset + 1
            self._loaded_to[partition.index] = offset

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one stored record; CorruptLogError if it is not one this module wrote."""
        if key is None:
            return  # not ours: the topic only ever gets keyed records from us
        group_id, topic, partition = _unpack(key, "key", (str, str, int))
        if partition < 0:
            raise CorruptLogError(f"its key names partition {partition}")
        tp = TopicPartition(topic, partition)
        if value is None:
            group = self._offsets.get(group_id)
            if group is not None:
                group.pop(tp, None)
                if not group:
                    del self._offsets[group_id]
            return
        offset, metadata, timestamp_ms = _unpack(value, "value", (int, str, int))
        if offset < 0:
            raise CorruptLogError(f"its value holds the offset {offset}")
        self._offsets.setdefault(group_id, {})[tp] = CommittedOffset(offset, metadata, timestamp_ms)

    # ------------------------------------------------------------------ writing

    def commit(
        self,
        group_id: str,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
        timestamp_ms: int,
    ) -> None:
        """Append the offsets as one batch, then make them visible. O(len(offsets)).

        Raises UnknownTopicError / UnknownPartitionError (Kafka's
        UNKNOWN_TOPIC_OR_PARTITION) if any partition does not exist, and whatever
        the append raises (StorageError, ClosedError): then nothing was committed.
        """
        self.load()
        if not offsets:
            return
        for tp in offsets:
            self._check_exists(tp)
        records = [
            (
                msgpack.packb([group_id, tp.topic, tp.partition]),
                msgpack.packb([om.offset, om.metadata, timestamp_ms]),
            )
            for tp, om in offsets.items()
        ]
        self._partition_for(group_id).append_internal(records)
        group = self._offsets.setdefault(group_id, {})
        for tp, om in offsets.items():
            group[tp] = CommittedOffset(om.offset, om.metadata, timestamp_ms)

    def _check_exists(self, tp: TopicPartition) -> None:
        """Kafka refuses a commit for a partition it does not have
        (UNKNOWN_TOPIC_OR_PARTITION): it would show up with a lag of 0 for ever."""
        topic = self._log.topic_map.get(tp.topic)
        if topic is None:
            raise UnknownTopicError(
                f"cannot commit an offset for {tp.topic}-{tp.partition}: there is no topic "
                f"{tp.topic!r} (UNKNOWN_TOPIC_OR_PARTITION); nothing was committed"
            )
        if not 0 <= tp.partition < topic.num_partitions:
            raise UnknownPartitionError(
                f"cannot commit an offset for {tp.topic}-{tp.partition}: topic {tp.topic!r} "
                f"has {topic.num_partitions} partition(s) (UNKNOWN_TOPIC_OR_PARTITION); "
                "nothing was committed"
            )

    def delete_group(self, group_id: str) -> None:
        """Tombstone every offset of ``group_id``. O(its partitions)."""
        self.load()
        group = self._offsets.get(group_id)
        if not group:
            return
        records = [
            (msgpack.packb([group_id, tp.topic, tp.partition]), None) for tp in group
        ]
        self._partition_for(group_id).append_internal(records)
        del self._offsets[group_id]

    def _partition_for(self, group_id: str) -> Any:
        topic = self._topic()
        if topic is None:
            raise ReadOnlyLogError(
                f"cannot change the offsets of group {group_id!r}: the log was opened "
                "read-only; only the process that holds it can commit")
        index = zlib.crc32(group_id.encode()) % topic.num_partitions
        return topic.partitions[index]

    # ------------------------------------------------------------------ reading

    def get(self, group_id: str, tp: TopicPartition) -> CommittedOffset | None:
        """The committed offset of ``tp`` for ``group_id``, or None. O(1)."""
        self.load()
        group = self._offsets.get(group_id)
        return None if group is None else group.get(tp)

    def group_offsets(self, group_id: str) -> dict[TopicPartition, CommittedOffset]:
        """A copy of every committed offset of ``group_id``. O(its partitions)."""
        self.load()
        return dict(self._offsets.get(group_id, {}))

    def groups(self) -> Iterable[str]:
        """Ids of the groups that have committed offsets."""
        self.load()
        return list(self._offsets)

    def check(self) -> None:
        """Assert the view's invariants."""
        for group_id, group in self._offsets.items():
            assert group, f"group {group_id!r} kept with no offsets"
            for tp, committed in group.items():
                assert type(tp) is TopicPartition
                assert committed.offset >= 0, (group_id, tp, committed)
