"""Kafka users' configs verbatim: dotted names, string values parsed as Kafka parses
them, and the consumer's fetch settings behaving as Kafka's."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import eventlog
from clocks import SignallingManualClock
from eventlog.config import client_config
from eventlog.consumer import Consumer, ConsumerConfig
from eventlog.errors import InvalidConfigError
from eventlog.producer import Producer, ProducerConfig
from eventlog.records import TopicPartition as TP
from eventlog.testing import ManualClock

T0 = TP("t", 0)


@pytest.fixture
def log(clock: ManualClock) -> Iterator[eventlog.EventLog]:
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t")
        yield log


# ---------------------------------------------------------------------- producer


def test_the_kafka_best_practice_producer_config_is_accepted_as_is(log) -> None:
    config = {"acks": "all", "retries": 3, "batch.size": 16384, "linger.ms": 10,
              "compression.type": "snappy", "enable.idempotence": "true"}
    for producer in (Producer(log, **config), log.producer(**config)):
        cfg = producer.config
        assert (cfg.acks, cfg.retries, cfg.batch_size, cfg.linger_ms) == (-1, 3, 16384, 10)
        assert (cfg.compression_type, cfg.enable_idempotence) == ("snappy", True)
        producer.send("t", b"v")
        producer.close()
    assert log.topic("t").partition(0).end_offset == 2


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("acks", "all", "acks", -1),
        ("acks", "ALL", "acks", -1),
        ("acks", "-1", "acks", -1),
        ("acks", "1", "acks", 1),
        ("acks", "0", "acks", 0),
        ("acks", 0, "acks", 0),
        ("linger.ms", "7", "linger_ms", 7),
        ("linger_ms", 7, "linger_ms", 7),
        ("batch.size", " 32768 ", "batch_size", 32768),
        ("retries", "3", "retries", 3),
        ("retry.backoff.ms", "50", "retry_backoff_ms", 50),
        ("delivery.timeout.ms", "30000", "delivery_timeout_ms", 30000),
        ("max.request.size", "2048", "max_request_size", 2048),
        ("max.in.flight.requests.per.connection", "5", "max_in_flight_requests_per_connection", 5),
        ("enable.idempotence", "false", "enable_idempotence", False),
        ("enable.idempotence", "True", "enable_idempotence", True),
        ("compression.type", "zstd", "compression_type", "zstd"),
        ("client.id", "billing", "client_id", "billing"),
        ("partitioner.ignore.keys", "true", "partitioner_ignore_keys", True),
        ("partitioner.class", "org.apache.kafka.clients.producer.RoundRobinPartitioner",
         "partitioner", "round_robin"),
        ("key.serializer", "org.apache.kafka.common.serialization.StringSerializer",
         "key_serializer", "str"),
        ("value.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer",
         "value_serializer", "bytes"),
    ],
)
def test_each_producer_setting_by_its_kafka_name(log, name, value, field, expected) -> None:
    producer = log.producer(**{name: value})
    assert getattr(producer.config, field) == expected
    producer.close()


def test_kafka_serializer_class_names_serialize(log) -> None:
    producer = log.producer(**{
        "key.serializer": "org.apache.kafka.common.serialization.StringSerializer",
        "value.serializer": "org.apache.kafka.common.serialization.StringSerializer",
        "linger.ms": 0,
    })
    producer.send("t", "é", key="k")
    record = log.topic("t").partition(0).read(0)[0]
    assert (record.key, record.value) == (b"k", "é".encode())


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"linger.mss": 5}, r"unknown producer config linger\.mss \(did you mean linger\.ms\?\)"),
        ({"lingerms": 5}, r"unknown producer config lingerms \(did you mean linger_ms\?\)"),
        ({"compresion.type": "lz4"}, r"did you mean compression\.type\?"),
        ({"batch_sise": 5}, r"did you mean batch_size\?"),
        ({"linger.ms": 5, "linger_ms": 6}, "linger_ms is given twice, as 'linger.ms' and"),
        ({"enable.idempotence": "yes"}, "enable.idempotence must be true or false, got 'yes'"),
        ({"batch.size": "16k"}, "batch.size must be an integer, got '16k'"),
        ({"acks": "2"}, "acks must be 0, 1 or 'all'"),
        ({"compression.type": "brotli"}, "unknown compression_type 'brotli'"),
    ],
)
def test_bad_kafka_producer_configs_name_the_problem(log, config, fragment) -> None:
    with pytest.raises(InvalidConfigError, match=fragment):
        log.producer(**config)


def test_client_config_leaves_values_it_does_not_parse_alone() -> None:
    serializer = str.encode
    out = client_config({"key.serializer": serializer, "linger.ms": 3}, ProducerConfig,
                        "producer")
    assert out == {"key_serializer": serializer, "linger_ms": 3}
    with pytest.raises(InvalidConfigError, match="config names must be str"):
        client_config({1: 2}, ProducerConfig, "producer")


# ---------------------------------------------------------------------- consumer


def test_the_kafka_consumer_config_is_accepted_as_is(log) -> None:
    log.topic("t").partition(0).append([(b"k", b"v")])
    config = {
        "group.id": "billing", "enable.auto.commit": "false", "auto.offset.reset": "earliest",
        "fetch.min.bytes": 1, "max.poll.records": 500,
        "key.deserializer": "org.apache.kafka.common.serialization.StringDeserializer",
        "value.deserializer": "org.apache.kafka.common.serialization.StringDeserializer",
    }
    for consumer in (Consumer(log, "t", **config), log.consumer("t", **config)):
        cfg = consumer.config
        assert (cfg.group_id, cfg.enable_auto_commit, cfg.auto_offset_reset) == (
            "billing", False, "earliest")
        assert (cfg.fetch_min_bytes, cfg.max_poll_records) == (1, 500)
        records = consumer.poll(timeout_ms=1000)
        assert [(r.key, r.value) for r in records] == [("k", "v")]
        consumer.close()  # no auto commit: the second one starts at the beginning too
    assert consumer.group_id == "billing"


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("group.id", "g", "group_id", "g"),
        ("group.instance.id", "i-1", "group_instance_id", "i-1"),
        ("client.id", "c", "client_id", "c"),
        ("enable.auto.commit", "FALSE", "enable_auto_commit", False),
        ("auto.commit.interval.ms", "100", "auto_commit_interval_ms", 100),
        ("auto.offset.reset", "earliest", "auto_offset_reset", "earliest"),
        ("fetch.min.bytes", "1024", "fetch_min_bytes", 1024),
        ("fetch.max.wait.ms", "100", "fetch_max_wait_ms", 100),
        ("fetch.max.bytes", "1000000", "fetch_max_bytes", 1_000_000),
        ("max.partition.fetch.bytes", "4096", "max_partition_fetch_bytes", 4096),
        ("max.poll.records", "10", "max_poll_records", 10),
        ("max.poll.interval.ms", "60000", "max_poll_interval_ms", 60_000),
        ("session.timeout.ms", "10000", "session_timeout_ms", 10_000),
        ("heartbeat.interval.ms", "1000", "heartbeat_interval_ms", 1000),
        ("exclude.internal.topics", "false", "exclude_internal_topics", False),
        ("consumer.timeout.ms", "1.5", "consumer_timeout_ms", 1.5),
        ("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer",
         "key_deserializer", "bytes"),
        ("value.deserializer", "json", "value_deserializer", "json"),
        ("partition.assignment.strategy",
         "org.apache.kafka.clients.consumer.CooperativeStickyAssignor, range",
         "partition_assignment_strategy", ["cooperative-sticky", "range"]),
        ("partition.assignment.strategy", "org.apache.kafka.clients.consumer.RoundRobinAssignor",
         "partition_assignment_strategy", "roundrobin"),
    ],
)
def test_each_consumer_setting_by_its_kafka_name(log, name, value, field, expected) -> None:
    extra = {"group.id": "g"} if name == "group.instance.id" else {}
    consumer = log.consumer(**{name: value, **extra})
    assert getattr(consumer.config, field) == expected
    consumer.close()


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"group.idd": "g"}, r"unknown consumer config group\.idd \(did you mean group\.id\?\)"),
        ({"auto_reset": "earliest"}, r"unknown consumer config auto_reset.*auto_offset_reset"),
        ({"enable.auto.commit": "no"}, "enable.auto.commit must be true or false"),
        ({"max.poll.records": "many"}, "max.poll.records must be an integer"),
        ({"max.poll.records": "0"}, "max_poll_records must be an int >= 1, got 0"),
        ({"auto.offset.reset": "smallest"}, "auto_offset_reset must be one of"),
        ({"partition.assignment.strategy": "org.example.MyAssignor"},
         "unknown partition assignor 'org.example.MyAssignor'"),
    ],
)
def test_bad_kafka_consumer_configs_name_the_problem(log, config, fragment) -> None:
    with pytest.raises(InvalidConfigError, match=fragment):
        log.consumer(**config)


def test_group_id_given_twice_is_refused(log) -> None:
    with pytest.raises(InvalidConfigError, match="group_id is given twice"):
        Consumer(log, group_id="a", **{"group.id": "b"})
    assert Consumer(log, **{"group.id": "b"}).group_id == "b"
    assert ConsumerConfig.from_mapping({"group.id": "b"}).group_id == "b"


# ---------------------------------------------------------------------- fetch behaviour


def _produce(log, n: int, value_bytes: int = 10) -> None:
    part = log.topic("t").partition(0)
    part.append([(b"k", b"v" * value_bytes)] * n)


def test_fetch_min_bytes_counts_stored_batch_bytes_and_returns_at_once_when_met(
    log, clock
) -> None:
    _produce(log, 1, value_bytes=100)  # one batch of about 160 bytes on disk
    batch_bytes = log.topic("t").partition(0).size_bytes
    assert 100 < batch_bytes < 200
    consumer = log.consumer(auto_offset_reset="earliest", fetch_min_bytes=batch_bytes,
                            fetch_max_wait_ms=500)
    consumer.assign([T0])
    assert len(consumer.poll(timeout_ms=10_000)) == 1
    assert clock.monotonic_ms() == 0  # met by the batch: no wait (key + value is 101)


def test_fetch_min_bytes_not_met_waits_fetch_max_wait_ms_then_returns_what_there_is(
    log, clock
) -> None:
    _produce(log, 3)
    consumer = log.consumer(auto_offset_reset="earliest", fetch_min_bytes=100_000,
                            fetch_max_wait_ms=500)
    consumer.assign([T0])
    assert len(consumer.poll(timeout_ms=10_000)) == 3
    assert clock.monotonic_ms() == 500


def test_poll_timeout_shorter_than_fetch_max_wait_is_honoured(log, clock) -> None:
    _produce(log, 3)
    consumer = log.consumer(auto_offset_reset="earliest", fetch_min_bytes=100_000,
                            fetch_max_wait_ms=500)
    consumer.assign([T0])
    assert len(consumer.poll(timeout_ms=120)) == 3
    assert clock.monotonic_ms() == 120
    assert consumer.poll(timeout_ms=0) == []  # and a zero timeout never waits
    assert clock.monotonic_ms() == 120


def test_records_arriving_during_the_wait_end_it_once_fetch_min_bytes_is_met() -> None:
    clock = SignallingManualClock()
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t")
        _produce(log, 1)
        consumer = log.consumer(auto_offset_reset="earliest", fetch_min_bytes=1000,
                                fetch_max_wait_ms=60_000)
        consumer.assign([T0])
        got: list = []
        poller = threading.Thread(target=lambda: got.extend(consumer.poll(timeout_ms=120_000)))
        poller.start()
        assert clock.waiting.wait(30)  # the poll holds one small record and waits for more
        _produce(log, 1, value_bytes=2000)
        poller.join(30)
        assert not poller.is_alive()
        assert [len(r.value) for r in got] == [10, 2000]
        assert clock.monotonic_ms() == 0  # ended by the data, not by fetch_max_wait_ms
        consumer.close()


def test_max_poll_records_caps_each_poll(log) -> None:
    _produce(log, 25)
    consumer = log.consumer(**{"auto.offset.reset": "earliest", "max.poll.records": "10"})
    consumer.assign([T0])
    assert [len(consumer.poll()) for _ in range(4)] == [10, 10, 5, 0]
    assert len(consumer.poll(max_records=3)) == 0


def test_fetch_max_bytes_limits_the_bytes_of_one_poll(clock) -> None:
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t", partitions=3)
        for p in range(3):
            log.topic("t").partition(p).append([(b"k", b"v" * 1000)] * 5)  # ~5 KB batches
        # As Kafka's: the first batch comes whatever its size, then the poll stops once
        # the bytes reach fetch_max_bytes (counted as stored batch bytes).
        consumer = log.consumer(auto_offset_reset="earliest", fetch_max_bytes=5000)
        consumer.assign([TP("t", p) for p in range(3)])
        first = consumer.poll()
        assert len(first) == 5 and len({r.partition for r in first}) == 1
        rest = consumer.poll() + consumer.poll()
        assert len(rest) == 10 and len({r.partition for r in first + rest}) == 3
