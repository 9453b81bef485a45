"""eventlog: Apache Kafka's model as an in-process Python library.

Topics, partitions, offsets, producers, consumers and consumer groups over
memory-mapped segment files, with no broker to run::

    import eventlog

    with eventlog.open("data") as log:
        log.create_topic("orders", partitions=3)
        ...

The public API is exactly ``__all__`` here, ``eventlog.errors`` and
``eventlog.testing``.
"""

from . import errors
from .broker.partition import Partition
from .broker.topic import Topic
from .clock import Clock, SystemClock
from .config import TopicConfig
from .consumer import Consumer, ConsumerConfig, ConsumerRebalanceListener, OffsetAndTimestamp
from .errors import (
    ClosedError,
    CommitFailedError,
    EventLogError,
    InvalidConfigError,
    InvalidTxnStateError,
    OffsetOutOfRangeError,
    ProducerFencedError,
    RecordTooLargeError,
    TransactionAbortableError,
    UnknownTopicError,
)
from .group import GroupDescription, GroupListing, GroupState, OffsetAndMetadata
from .group.assignors import (
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
)
from .log import EventLog, LogRecoveryReport, open
from .partitioning import DefaultPartitioner, RoundRobinPartitioner, murmur2
from .producer import DeliveryFuture, Producer, ProducerConfig
from .records import (
    ConsumerGroupMetadata,
    ConsumerRecord,
    Record,
    RecordMetadata,
    TimestampType,
    TopicPartition,
)
from .server import serve
from .transactions import TransactionalProducer

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "ClosedError",
    "CommitFailedError",
    "Consumer",
    "ConsumerConfig",
    "ConsumerGroupMetadata",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "CooperativeStickyAssignor",
    "DefaultPartitioner",
    "DeliveryFuture",
    "EventLog",
    "EventLogError",
    "GroupDescription",
    "GroupListing",
    "GroupState",
    "InvalidConfigError",
    "InvalidTxnStateError",
    "LogRecoveryReport",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "OffsetOutOfRangeError",
    "Partition",
    "Producer",
    "ProducerConfig",
    "ProducerFencedError",
    "RangeAssignor",
    "Record",
    "RecordMetadata",
    "RecordTooLargeError",
    "RoundRobinAssignor",
    "RoundRobinPartitioner",
    "StickyAssignor",
    "SystemClock",
    "TimestampType",
    "Topic",
    "TopicConfig",
    "TopicPartition",
    "TransactionAbortableError",
    "TransactionalProducer",
    "UnknownTopicError",
    "__version__",
    "errors",
    "murmur2",
    "open",
    "serve",
]
