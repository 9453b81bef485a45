"""The public API is exactly what is pinned here: a change to it is a decision."""

from __future__ import annotations

import eventlog
import eventlog.errors
import eventlog.testing

PUBLIC = {
    "Clock", "ClosedError", "CommitFailedError", "Consumer", "ConsumerConfig",
    "ConsumerRebalanceListener", "ConsumerRecord", "CooperativeStickyAssignor",
    "DefaultPartitioner", "DeliveryFuture", "EventLog", "EventLogError",
    "GroupDescription", "GroupListing", "GroupState", "InvalidConfigError",
    "LogRecoveryReport", "OffsetAndMetadata", "OffsetAndTimestamp", "OffsetOutOfRangeError",
    "Partition", "Producer", "ProducerConfig", "RangeAssignor", "Record", "RecordMetadata",
    "RecordTooLargeError", "RoundRobinAssignor", "RoundRobinPartitioner", "StickyAssignor",
    "SystemClock", "TimestampType", "Topic", "TopicConfig", "TopicPartition",
    "UnknownTopicError", "__version__",
    "ConsumerGroupMetadata", "InvalidTxnStateError", "ProducerFencedError",
    "TransactionAbortableError", "TransactionalProducer", "errors", "murmur2", "open", "serve",
}


def test_top_level_exports_are_pinned() -> None:
    assert set(eventlog.__all__) == PUBLIC
    for name in eventlog.__all__:
        assert hasattr(eventlog, name), name


def test_every_error_is_an_eventlog_error() -> None:
    for name in eventlog.errors.__all__:
        cls = getattr(eventlog.errors, name)
        assert issubclass(cls, eventlog.errors.EventLogError), name


def test_testing_kit_exports() -> None:
    assert set(eventlog.testing.__all__) == {
        "FaultyFiles", "KafkaClients", "ManualClock", "assert_produced", "check_assignor",
        "check_partitioner", "records", "use_eventlog", "wait_for",
    }


def test_stdlib_mixins_let_callers_catch_by_meaning() -> None:
    errors = eventlog.errors
    assert issubclass(errors.UnknownTopicError, KeyError)
    assert issubclass(errors.InvalidConfigError, ValueError)
    assert issubclass(errors.EventLogTimeoutError, TimeoutError)
    assert issubclass(errors.StorageError, OSError)
    assert issubclass(errors.KeyVersionConflictError, errors.OffsetConflictError)
    assert not issubclass(AssertionError, errors.EventLogError)
