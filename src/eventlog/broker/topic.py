"""Topic: a name, a TopicConfig and its partitions."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from ..config import TopicConfig
from ..errors import InvalidConfigError, UnknownPartitionError
from ..records import ConsumerRecord, TimestampType
from .partition import Partition

__all__ = ["Topic", "internal_topics", "is_internal", "validate_topic_name"]

topic_name_length_max = 249  # Kafka's Topic.MAX_NAME_LENGTH
# Kafka's Topic.INTERNAL_TOPICS: written only by eventlog itself (group/offsets.py);
# clients may read them but not create, produce to or delete them.
internal_topics = frozenset({"__consumer_offsets", "__transaction_state"})


def is_internal(name: str) -> bool:
    """True for the names of internal topics (``__consumer_offsets``, ...)."""
    return name in internal_topics
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")


def validate_topic_name(name: object) -> str:
    """Kafka's rule: ``[a-zA-Z0-9._-]``, 1 to 249 characters, not ``.`` or ``..``.

    The rule also keeps a topic name from escaping the data directory.
    Raises InvalidConfigError naming the problem.
    """
    if not isinstance(name, str):
        raise InvalidConfigError(f"topic name must be a str, got {type(name).__name__}")
    if not name:
        raise InvalidConfigError("topic name must not be empty")
    if name in (".", ".."):
        raise InvalidConfigError(f"topic name cannot be {name!r}")
    if len(name) > topic_name_length_max:
        raise InvalidConfigError(
            f"topic name is {len(name)} characters, over the limit of {topic_name_length_max}"
        )
    if not _LEGAL.fullmatch(name):
        bad = sorted({c for c in name if not _LEGAL.fullmatch(c)})
        raise InvalidConfigError(
            f"topic name {name!r} contains {''.join(bad)!r}; "
            "only ASCII letters, digits, '.', '_' and '-' are allowed"
        )
    return name


class Topic:
    """A topic: ``name``, ``config`` (TopicConfig) and ``partitions`` (a sequence).

    Obtained from ``EventLog.create_topic`` or ``EventLog.topic``; not built directly.
    """

    __slots__ = ("config", "internal", "name", "partitions")

    def __init__(self, name: str, config: TopicConfig, partitions: Sequence[Partition]) -> None:
        self.name = name
        self.config = config
        self.internal = name in internal_topics  # written only by eventlog itself
        # A plain attribute (read-only by contract), replaced when partitions are added:
        # producers read it once per record.
        self.partitions: tuple[Partition, ...] = tuple(partitions)

    @property
    def num_partitions(self) -> int:
        return len(self.partitions)

    def partition(self, index: int) -> Partition:
        """Partition number ``index``; UnknownPartitionError if there is none.

        Cost: O(1).
        Thread safety: any thread.
        Raises: UnknownPartitionError if there is none.
        """
        if type(index) is not int or not 0 <= index < len(self.partitions):
            raise UnknownPartitionError(
                f"topic {self.name!r} has {len(self.partitions)} partition(s) "
                f"(0..{len(self.partitions) - 1}); there is no partition {index!r}"
            )
        return self.partitions[index]

    def iter(self, *, batch_records: int = 500) -> Iterator[ConsumerRecord]:
        """Every record of every partition, partition 0 first, each partition from its
        log start offset to its log end offset when its turn starts (see
        ``Partition.iter``), as ConsumerRecords whose key and value are the stored bytes.
        Lazy; ``batch_records`` records are read at a time.

        Cost: O(records), ``batch_records`` per read; lazy.
        Thread safety: any thread; lock-free.
        Raises: OffsetOutOfRangeError if retention removes the records ahead, ClosedError.
        """
        timestamp_type = (
            TimestampType.LOG_APPEND_TIME if self.config.log_append_time
            else TimestampType.CREATE_TIME
        )
        for p in self.partitions:
            records = p.iter(batch_records=batch_records)
            for r in records:
                yield ConsumerRecord(
                    self.name, p.index, r.offset, r.timestamp_ms, timestamp_type,
                    r.key, r.value, r.headers,
                )

    def add_partitions(self, partitions: Sequence[Partition]) -> None:
        """Append ``partitions`` (the next indexes) to the topic: the broker's step of
        ``EventLog.create_partitions``, after it made them. Not for applications.

        Cost: O(partitions) (the tuple is replaced, so a reader never sees it change).
        Thread safety: call under the broker's lock; readers need none.
        Raises: InvalidConfigError if a partition is not the next index of this topic.
        """
        for i, p in enumerate(partitions, start=len(self.partitions)):
            if p.topic != self.name or p.index != i:
                raise InvalidConfigError(
                    f"partition {p.topic}-{p.index} cannot be added to topic {self.name!r} as "
                    f"its partition {i}"
                )
        self.partitions = self.partitions + tuple(partitions)

    def __repr__(self) -> str:
        return f"Topic({self.name!r}, partitions={len(self.partitions)})"
