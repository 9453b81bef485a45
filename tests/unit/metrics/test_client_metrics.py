"""Producer and consumer metrics: each metric's value after known work, on a manual clock."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

import eventlog
from eventlog.records import TopicPartition
from eventlog.testing import ManualClock


class CountingClock(ManualClock):
    """Counts monotonic readings: what a metric costs on a path that reads the clock."""

    readings = 0

    def monotonic_ms(self) -> float:
        self.readings += 1
        return super().monotonic_ms()


class TickingClock(ManualClock):
    """Each monotonic reading moves time on by ``tick_ms``: a latency measured between
    two readings is exactly one tick."""

    tick_ms = 5.0

    def monotonic_ms(self) -> float:
        self.advance(self.tick_ms)
        return super().monotonic_ms()


@pytest.fixture
def log(clock: ManualClock) -> Iterator[eventlog.EventLog]:
    with eventlog.open(clock=clock) as log_:
        yield log_


def test_linger_0_sends_count_records_and_their_rate(log, clock):
    log.create_topic("t", partitions=2)
    producer = log.producer(linger_ms=0)
    for i in range(100):
        producer.send("t", b"v", key=b"%d" % i)
    clock.advance(10_000)
    m = producer.metrics()
    assert m["record-send-total"] == 100
    assert m["record-send-rate"] == 10.0
    assert m["record-error-total"] == 0
    assert m["record-error-rate"] == 0.0
    # batches of one from send() are not sampled (its hot path keeps one counter)
    assert m["request-total"] == 0
    assert math.isnan(m["batch-size-avg"])
    assert math.isnan(m["request-latency-avg"])
    assert m["pending_records"] == 0
    assert m["producer_id"] >= 0  # idempotent by default


def test_linger_0_sends_read_no_clock_for_metrics_and_batches_read_it_per_batch():
    clock = CountingClock()
    with eventlog.open(clock=clock) as log:
        log.create_topic("t")
        producer = log.producer(linger_ms=0)
        producer.send("t", b"first")  # routes and queues are set up on the first send
        before = clock.readings
        for _ in range(100):
            producer.send("t", b"v")
        assert clock.readings == before  # the hot path keeps one integer increment
        before = clock.readings
        producer.send_batch("t", [(None, b"v")] * 100)
        assert clock.readings - before == 2  # one batch: before and after its append
        assert producer.metrics()["record-send-total"] == 201


def test_lingering_batches_give_sizes_queue_time_and_records_per_request(log, clock):
    log.create_topic("t")
    producer = log.producer(linger_ms=1_000)
    for _ in range(10):
        producer.send("t", b"x" * 100)
    assert producer.metrics()["pending_records"] == 10
    clock.advance(40)
    producer.flush()
    stored = log.topic("t").partition(0).size_bytes
    m = producer.metrics()
    assert m["record-send-total"] == 10
    assert m["request-total"] == 1
    assert m["request-rate"] == 1 / 0.04  # one batch in the 40 ms since the start
    assert m["outgoing-byte-rate"] == stored / 0.04
    assert m["records-per-request-avg"] == 10.0
    assert m["outgoing-byte-total"] == stored
    assert m["batch-size-avg"] == stored
    assert m["batch-size-max"] == stored
    assert m["compression-rate-avg"] == 1.0  # not compressed
    assert m["record-queue-time-avg"] == 40.0
    assert m["record-queue-time-max"] == 40.0
    assert m["request-latency-avg"] == 0.0  # a manual clock does not move in an append
    assert m["pending_records"] == 0


def test_compression_rate_is_stored_over_uncompressed_bytes(log):
    log.create_topic("t")
    producer = log.producer(linger_ms=0, compression_type="lz4")
    producer.send_batch("t", [(None, b"a" * 1000)] * 20)
    m = producer.metrics()
    stored = log.topic("t").partition(0).size_bytes
    assert m["outgoing-byte-total"] == stored
    assert 0 < m["compression-rate-avg"] < 0.2  # 20 kB of one letter shrinks a lot


def test_request_latency_is_measured_on_the_logs_clock():
    clock = TickingClock()
    with eventlog.open(clock=clock) as log:
        log.create_topic("t")
        producer = log.producer(linger_ms=0)
        producer.send_batch("t", [(b"k", b"v")] * 3)
        producer.send_batch("t", [(b"k", b"v")] * 5)
        m = producer.metrics()
    assert m["request-latency-avg"] == TickingClock.tick_ms
    assert m["request-latency-max"] == TickingClock.tick_ms
    assert m["records-per-request-avg"] == 4.0
    assert m["record-send-total"] == 8


def test_a_failed_record_counts_as_an_error_and_the_rest_as_sent(log, clock):
    log.create_topic("compacted", cleanup_policy="compact")
    producer = log.producer(linger_ms=1_000)
    futures = [producer.send("compacted", b"v", key=k) for k in (b"a", None, b"b")]
    producer.flush()
    assert futures[1].exception() is not None
    clock.advance(2_000)
    m = producer.metrics()
    assert m["record-error-total"] == 1
    assert m["record-error-rate"] == 0.5
    assert m["record-send-total"] == 2


@pytest.mark.parametrize("linger_ms", [0, 1_000])
def test_storage_errors_count_as_retries_then_as_errors_when_retries_run_out(
        log, clock, monkeypatch, linger_ms):
    from eventlog.broker.partition import Partition
    from eventlog.errors import StorageError

    log.create_topic("t")
    failures = {"left": 0}

    def failing(original):
        def append(self, *args, **kwargs):
            if failures["left"]:
                failures["left"] -= 1
                raise StorageError("disk full (injected)")
            return original(self, *args, **kwargs)
        return append

    monkeypatch.setattr(Partition, "append_record", failing(Partition.append_record))
    monkeypatch.setattr(Partition, "append_columns", failing(Partition.append_columns))
    producer = log.producer(linger_ms=linger_ms, retry_backoff_ms=0, retries=2)
    sent = 2 if linger_ms else 1  # with linger, one batch of two records
    failures["left"] = 2  # two failures, then the third try succeeds
    for value in (b"a", b"b")[:sent]:
        producer.send("t", value)
    producer.flush()
    failures["left"] = 3  # more failures than retries: the record fails
    lost = producer.send("t", b"c")
    producer.flush()
    assert lost.exception() is not None
    clock.advance(1_000)
    m = producer.metrics()
    # each retry counts the records retried: 2 retries of `sent`, then 2 of the lost one
    assert m["record-retry-total"] == 2 * sent + 2
    assert m["record-retry-rate"] == 2 * sent + 2  # in the one second since the start
    assert m["record-error-total"] == 1
    assert m["record-send-total"] == sent


def test_rates_cover_a_window_of_30_to_60_seconds(log, clock):
    log.create_topic("t")
    producer = log.producer(linger_ms=0)
    for _ in range(60):
        producer.send("t", b"v")
    clock.advance(60_000)
    assert producer.metrics()["record-send-rate"] == 1.0  # a snapshot at 60 s
    clock.advance(30_000)
    assert producer.metrics()["record-send-rate"] == 60 / 90  # another at 90 s
    clock.advance(30_000)
    # at 120 s the 60 s snapshot becomes the baseline: nothing was sent since
    assert producer.metrics()["record-send-rate"] == 0.0
    assert producer.metrics()["record-send-total"] == 60


def test_buffer_available_bytes_shrinks_while_a_batch_lingers(log):
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000, batch_size=1000)
    assert producer.metrics()["buffer-available-bytes"] == 0  # no partition sent to yet
    producer.send("t", b"v")
    first = producer.metrics()["buffer-available-bytes"]
    assert 900 < first < 1000
    producer.send("t", b"x" * 100)
    assert producer.metrics()["buffer-available-bytes"] <= first - 100
    producer.flush()
    assert producer.metrics()["buffer-available-bytes"] == 1000


def test_consumer_counts_records_bytes_fetches_lag_and_commits(log, clock):
    log.create_topic("t")
    producer = log.producer(linger_ms=0)
    for i in range(50):
        producer.send("t", b"v%02d" % i)
    consumer = log.consumer("t", group_id="g", auto_offset_reset="earliest",
                            enable_auto_commit=False)
    records = consumer.poll(timeout_ms=0, max_records=20)
    assert len(records) == 20
    consumer.commit()
    clock.advance(10_000)
    m = consumer.metrics()
    assert m["records-consumed-total"] == 20
    assert m["records-consumed-rate"] == 2.0
    assert m["bytes-consumed-total"] > 0
    assert m["bytes-consumed-rate"] == m["bytes-consumed-total"] / 10
    assert m["fetch-total"] == 1
    assert m["fetch-rate"] == 0.1
    assert m["fetch-size-avg"] == m["bytes-consumed-total"]
    assert m["records-per-request-avg"] == 20.0
    assert m["records-lag-max"] == 30.0
    assert m["commit-total"] == 1
    assert m["commit-rate"] == 0.1
    assert m["commit-latency-avg"] == 0.0
    assert m["assigned-partitions"] == 1
    assert m["rebalance-total"] == 1
    assert m["rebalance-rate-per-hour"] == 360.0  # one in 10 s
    assert m["last-rebalance-seconds-ago"] == 10.0
    assert m["last-poll-seconds-ago"] == 10.0
    consumer.close()
    assert consumer.metrics()["records-consumed-total"] == 20  # readable after close


def test_fetch_latency_includes_the_wait_for_data(log, clock):
    log.create_topic("t")
    consumer = log.consumer(enable_auto_commit=False)
    consumer.assign([TopicPartition("t", 0)])
    assert consumer.poll(timeout_ms=1_000) == []  # the manual clock jumps the wait
    m = consumer.metrics()
    assert m["fetch-latency-avg"] == 1_000.0
    assert m["fetch-latency-max"] == 1_000.0
    assert m["records-lag-max"] == 0.0
    assert m["rebalance-total"] == 0
    assert math.isnan(m["last-rebalance-seconds-ago"])
    assert math.isnan(m["commit-latency-avg"])


def test_records_lag_max_is_nan_before_any_position(log):
    log.create_topic("t")
    consumer = log.consumer(enable_auto_commit=False)
    assert math.isnan(consumer.metrics()["records-lag-max"])
    assert math.isnan(consumer.metrics()["last-poll-seconds-ago"])
    assert consumer.metrics()["assigned-partitions"] == 0


def test_iterating_counts_consumed_records(log):
    log.create_topic("t")
    producer = log.producer(linger_ms=0)
    for _ in range(5):
        producer.send("t", b"v")
    consumer = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=0)
    assert len(list(consumer)) == 5
    assert consumer.metrics()["records-consumed-total"] == 5
