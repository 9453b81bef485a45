"""Every public exception eventlog raises, in one hierarchy.

Each error says when it is raised and what state it leaves behind. The rule for
all of them (DESIGN invariant 7): an operation that raises has changed nothing,
unless its docstring says otherwise, and the object that raised stays usable
unless the error is :class:`ClosedError`.

Stdlib mix-ins let callers catch by meaning: ``except KeyError`` catches an
unknown topic, ``except TimeoutError`` a timed-out wait, ``except ValueError``
a bad argument. Bugs in eventlog raise ``AssertionError``, which is never an
``EventLogError``.
"""

from __future__ import annotations

__all__ = [
    "ClosedError",
    "CommitFailedError",
    "CorruptLogError",
    "EventLogError",
    "EventLogTimeoutError",
    "FencedInstanceIdError",
    "GroupError",
    "IllegalGenerationError",
    "IllegalStateError",
    "InvalidConfigError",
    "InvalidProducerEpochError",
    "InvalidRecordError",
    "InvalidTopicError",
    "KeyVersionConflictError",
    "LogDirLockedError",
    "NoOffsetForPartitionError",
    "OffsetConflictError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "ReadOnlyLogError",
    "RebalanceInProgressError",
    "RecordDeserializationError",
    "RecordError",
    "RecordTooLargeError",
    "StorageError",
    "TopicError",
    "TopicExistsError",
    "UnknownMemberError",
    "UnknownPartitionError",
    "UnknownTopicError",
]


class EventLogError(Exception):
    """Base class of every error eventlog raises on purpose."""


class InvalidConfigError(EventLogError, ValueError):
    """A config value or an argument is invalid. Nothing was changed."""


class IllegalStateError(EventLogError, RuntimeError):
    """The call is not valid in the object's current state (Kafka's IllegalStateException).

    For example ``position()`` of a partition the consumer is not assigned, or
    ``subscribe()`` on a consumer that used ``assign()``. Nothing was changed.
    """


class TopicError(EventLogError):
    """Base class for topic-level errors."""


class UnknownTopicError(TopicError, KeyError):
    """The topic does not exist. Nothing was changed."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class UnknownPartitionError(TopicError, KeyError):
    """The topic exists but has no partition with that index. Nothing was changed."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TopicExistsError(TopicError):
    """``create_topic`` was given the name of an existing topic. Nothing was changed."""


class InvalidTopicError(TopicError, ValueError):
    """The call is not allowed on this topic: a client produced to, created or deleted
    an internal topic such as ``__consumer_offsets`` (Kafka's InvalidTopicException,
    "Cannot append to internal topic"). Internal topics are written only by eventlog
    itself. Nothing was changed.
    """


class RecordError(EventLogError):
    """Base class for records rejected before they were appended: the whole batch is rejected."""


class InvalidRecordError(RecordError, ValueError):
    """A record is malformed (wrong type, keyless record on a compacted topic, ...).

    The whole batch it came in was rejected; nothing was appended.
    """


class RecordTooLargeError(RecordError, ValueError):
    """A record or batch is larger than ``max_message_bytes`` (or ``max_request_size``).

    The whole batch was rejected; nothing was appended.
    """


class RecordDeserializationError(EventLogError, ValueError):
    """A consumer's key or value deserializer failed on a record (Kafka's
    RecordDeserializationException).

    ``poll()`` first returns the records before it; the next ``poll()`` raises
    this, with the consumer's position at the bad record, so every later poll
    raises it again until you ``seek(topic_partition, offset + 1)`` past it.
    The deserializer's own exception is the ``__cause__``.
    """

    def __init__(self, message: str, topic_partition: object, offset: int) -> None:
        super().__init__(message)
        self.topic_partition = topic_partition
        self.offset = offset


class OffsetOutOfRangeError(EventLogError, IndexError):
    """An offset lies outside ``[log start offset, log end offset]``. Nothing was changed."""


class NoOffsetForPartitionError(OffsetOutOfRangeError):
    """``auto_offset_reset="none"`` and the group has no committed offset for a partition."""


class OffsetConflictError(EventLogError):
    """An append with ``expected_offset=`` found the log end elsewhere: nothing was appended.

    This is optimistic concurrency for event sourcing: re-read, re-decide, retry.
    ``expected`` is what the caller expected (the log end offset) and ``actual``
    what was found; both None when the error was raised without them.
    """

    def __init__(self, message: str, *, expected: int | None = None,
                 actual: int | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class KeyVersionConflictError(OffsetConflictError):
    """An append with ``expected_key_versions=`` found a key at another version: nothing
    was appended (not even the records of the keys whose versions matched).

    ``key`` is the first key (in the order given) whose version differed, ``expected``
    the version the caller gave for it and ``actual`` its version now (the number of its
    records in the partition). Re-read that key's records, re-decide, retry.
    """

    def __init__(self, message: str, *, key: bytes, expected: int, actual: int) -> None:
        super().__init__(message, expected=expected, actual=actual)
        self.key = key


class OutOfOrderSequenceError(RecordError):
    """An idempotent producer's batch skipped or reused a sequence number.

    Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER. Nothing was appended.
    """


class InvalidProducerEpochError(RecordError):
    """An idempotent producer's epoch is older than the partition has seen. Nothing appended."""


class StorageError(EventLogError, OSError):
    """The files under the log directory could not be read or written as needed."""


class LogDirLockedError(StorageError):
    """Another open EventLog (in this process or another) holds the directory's lock file."""


class CorruptLogError(StorageError):
    """Stored bytes are not what eventlog wrote, somewhere other than the tail of the
    log: a batch fails its checksum, a CRC-valid batch does not decode to the shape
    its header promises, offsets are missing (a sealed segment cut short, zeroed or
    deleted; listed in ``EventLog.recovery.damaged``), ``topics.msgpack`` is damaged
    (the message names the file and the entry), or a record of an internal topic is
    not one eventlog wrote (naming the record). The message names the file and the
    offsets. Nothing was changed or skipped: the same read raises again until the
    caller reads (or seeks) past the range.

    A torn or corrupt *tail* is repaired on open and reported in the
    RecoveryReport, never raised.
    """


class ReadOnlyLogError(EventLogError):
    """A write (append, produce, commit, create or delete a topic, retention, ...) was
    asked of a log opened with ``eventlog.open(path, read_only=True)``: a reader of a
    directory that another process (the writer) holds. Nothing was changed; the log
    stays usable for reads. Write through the process that holds the directory, or
    open it for writing once that process has closed it.
    """


class GroupError(EventLogError):
    """Base class for consumer-group errors."""


class RebalanceInProgressError(GroupError):
    """The group is rebalancing; poll() again to rejoin, then retry."""


class UnknownMemberError(GroupError):
    """The member id is not (or no longer) in the group."""


class IllegalGenerationError(GroupError):
    """The member's generation is not the group's current one."""


class FencedInstanceIdError(GroupError):
    """Another member with the same ``group_instance_id`` replaced this one."""


class CommitFailedError(GroupError):
    """The commit cannot be completed: the group rebalanced and the partitions may belong
    to another member now. Nothing was committed. Poll to rejoin, then process and commit again.
    """


class ClosedError(EventLogError):
    """The object was closed; create or open a new one."""


class EventLogTimeoutError(EventLogError, TimeoutError):
    """A wait ran out of time. Nothing was changed by the wait itself."""
