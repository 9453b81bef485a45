"""Producer: partitioning, batching, futures, idempotence, errors, threads."""

from __future__ import annotations

import gc
import itertools
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import eventlog
from eventlog.errors import (
    ClosedError,
    InvalidConfigError,
    InvalidRecordError,
    OutOfOrderSequenceError,
    RecordTooLargeError,
    StorageError,
    UnknownPartitionError,
    UnknownTopicError,
)
from eventlog.partitioning import murmur2
from eventlog.producer import DeliveryFuture, Producer
from eventlog.testing import ManualClock

# Every producer a test makes must pass Producer.check() once the test is over.
pytestmark = pytest.mark.usefixtures("checked_producers")


@pytest.fixture
def log(clock: ManualClock):
    with eventlog.open(clock=clock) as log:
        yield log


def all_records(log, topic):
    return {
        p.index: [(r.key, r.value) for r in p.read(p.start_offset, 10**6)]
        if p.end_offset > p.start_offset else []
        for p in log.topic(topic).partitions
    }


def expected_partition(key: bytes, n: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % n


# ---------------------------------------------------------------------- linger 0


def test_send_linger0_appends_before_returning(log):
    log.create_topic("t", partitions=3)
    producer = log.producer(linger_ms=0)
    fut = producer.send("t", b"v", key=b"k")
    assert fut.done()
    md = fut.result()
    assert md.topic == "t"
    assert md.partition == expected_partition(b"k", 3)
    assert md.offset == 0
    assert md.serialized_key_size == 1
    assert md.serialized_value_size == 1
    assert log.topic("t").partition(md.partition).read(0)[0].value == b"v"


def test_keyed_records_follow_murmur2_and_keep_order(log):
    log.create_topic("t", partitions=7)
    producer = log.producer()
    keys = [f"user-{i}".encode() for i in range(50)]
    for round_ in range(3):
        for k in keys:
            md = producer.send("t", b"%d" % round_, key=k).result()
            assert md.partition == expected_partition(k, 7)
    records = all_records(log, "t")
    for k in keys:
        p = expected_partition(k, 7)
        values = [v for key, v in records[p] if key == k]
        assert values == [b"0", b"1", b"2"]


def test_str_key_hashes_as_utf8_bytes(log):
    log.create_topic("t", partitions=10)
    producer = log.producer(key_serializer="str", value_serializer="str")
    md = producer.send("t", "value", key="clé-ü").result()
    assert md.partition == expected_partition("clé-ü".encode(), 10)
    assert md.serialized_key_size == len("clé-ü".encode())


def test_empty_key_is_hashed_but_none_is_not(log):
    log.create_topic("t", partitions=1000)
    producer = log.producer()
    assert producer.send("t", b"x", key=b"").result().partition == 681  # KAFKA_SEMANTICS 1.5


def test_explicit_partition_wins(log):
    log.create_topic("t", partitions=3)
    producer = log.producer()
    assert producer.send("t", b"v", key=b"k", partition=2).result().partition == 2
    assert producer.send("t", b"v", key=b"k", partition=0).result().partition == 0


def test_keyless_records_are_sticky_until_batch_size(log):
    log.create_topic("t", partitions=4)
    producer = log.producer(batch_size=1000)
    parts = [producer.send("t", b"x" * 84).result().partition for _ in range(200)]
    # each record counts 84 bytes: a sticky partition holds >= 12 consecutive records
    runs = []
    for p in parts:
        if runs and runs[-1][0] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    assert all(count >= 12 for _, count in runs[:-1])
    assert len({p for p, _ in runs}) > 1


def test_round_robin_partitioner(log):
    log.create_topic("t", partitions=3)
    producer = log.producer(partitioner="round_robin")
    assert [producer.send("t", b"v").result().partition for _ in range(7)] == [
        0, 1, 2, 0, 1, 2, 0]


def test_custom_partitioner_object_and_function(log):
    log.create_topic("t", partitions=5)

    class Last:
        def partition(self, topic, key, value, num_partitions):
            return num_partitions - 1

    assert log.producer(partitioner=Last()).send("t", b"v").result().partition == 4

    def by_len(topic, key, value, num_partitions):
        return len(value) % num_partitions

    assert log.producer(partitioner=by_len).send("t", b"abc").result().partition == 3


def test_partitioner_out_of_range_names_the_count(log):
    log.create_topic("t", partitions=3)
    producer = log.producer(partitioner=lambda t, k, v, n: 7)
    with pytest.raises(UnknownPartitionError, match="3 partitions"):
        producer.send("t", b"v")
    assert log.topic("t").partition(0).end_offset == 0


def test_acks_zero_reports_offset_minus_one(log):
    log.create_topic("t")
    md = log.producer(acks=0).send("t", b"v").result()
    assert md.offset == -1
    assert log.topic("t").partition(0).end_offset == 1


def test_log_append_time_metadata(log, clock):
    log.create_topic("t", message_timestamp_type="LogAppendTime")
    md = log.producer().send("t", b"v", timestamp_ms=5).result()
    assert md.timestamp_ms == clock.time_ms()
    assert log.topic("t").partition(0).read(0)[0].timestamp_ms == clock.time_ms()


def test_create_time_keeps_given_timestamp(log):
    log.create_topic("t")
    md = log.producer().send("t", b"v", timestamp_ms=1234).result()
    assert md.timestamp_ms == 1234
    assert log.topic("t").partition(0).read(0)[0].timestamp_ms == 1234


def test_headers_round_trip(log):
    log.create_topic("t")
    log.producer().send("t", b"v", headers=[("trace", b"1"), ("empty", None)]).result()
    assert log.topic("t").partition(0).read(0)[0].headers == (("trace", b"1"), ("empty", None))


def test_on_delivery_and_done_callback_called_once(log):
    log.create_topic("t")
    calls = []
    fut = log.producer().send("t", b"v", on_delivery=lambda err, md: calls.append((err, md)))
    assert len(calls) == 1
    assert calls[0][0] is None
    assert calls[0][1].offset == 0
    seen = []
    fut.add_done_callback(lambda f: seen.append(f.result().offset))
    assert seen == [0]


def test_serializers_json_and_msgpack(log):
    log.create_topic("t")
    producer = log.producer(value_serializer="json", key_serializer="msgpack")
    producer.send("t", {"a": 1}, key=[1, 2]).result()
    record = log.topic("t").partition(0).read(0)[0]
    assert record.value == b'{"a":1}'
    import msgpack

    assert msgpack.unpackb(record.key) == [1, 2]


# ---------------------------------------------------------------------- linger > 0


def test_linger_holds_records_until_the_clock_moves(log, clock):
    log.create_topic("t")
    producer = log.producer(linger_ms=5)
    futures = [producer.send("t", b"%d" % i) for i in range(3)]
    assert not any(f.done() for f in futures)
    assert log.topic("t").partition(0).end_offset == 0
    clock.advance(5)
    assert [f.result(timeout=5).offset for f in futures] == [0, 1, 2]
    p = log.topic("t").partition(0)
    assert p.end_offset == 3
    assert len(p._log.read(0, 10)) == 1  # one batch


def test_linger_flush_delivers_at_once(log):
    log.create_topic("t", partitions=2)
    producer = log.producer(linger_ms=60_000)
    futures = [producer.send("t", b"v", partition=i % 2) for i in range(10)]
    assert not any(f.done() for f in futures)
    producer.flush()
    assert all(f.done() for f in futures)
    assert sorted(f.result().offset for f in futures) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_linger_batch_full_is_sent_without_waiting(log):
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000, batch_size=500)
    futures = [producer.send("t", b"x" * 100) for _ in range(10)]
    assert futures[0].done()  # the first batch filled up and was appended
    assert not futures[-1].done()
    producer.close()
    assert all(f.done() for f in futures)
    assert log.topic("t").partition(0).end_offset == 10


def test_default_config_is_kafka_4s_linger_and_writes_full_batches(log):
    from eventlog.producer import ProducerConfig

    assert (ProducerConfig().linger_ms, ProducerConfig().batch_size) == (5, 16384)
    log.create_topic("t")
    producer = log.producer()
    futures = [producer.send("t", b"v" * 100, key=b"key-%08d" % i) for i in range(1000)]
    producer.flush()
    assert [f.result().offset for f in futures] == list(range(1000))
    batches = log.topic("t").partition(0)._log.read(0, 10**6)
    # ~130 bytes a record (key, value, framing): a batch appended when the next record
    # would pass 16384 bytes holds ~126 records: 8 batches, not 1000.
    assert len(batches) == 8
    assert all(h.record_count >= 120 for h, _ in batches[:-1])


@pytest.mark.parametrize("reader", ["read", "read_batches", "read_columns", "wait_for", "poll",
                                    "result", "exception"])
def test_in_process_readers_do_not_wait_out_the_linger(log, clock, reader):
    """A manual clock never moves by itself, so a reader that waited for the linger
    would wait forever: each of these sees the records sent before it at once."""
    log.create_topic("t", partitions=2)
    producer = log.producer(linger_ms=60_000)
    futures = [producer.send("t", b"%d" % i, partition=0) for i in range(3)]
    other = producer.send("t", b"other", partition=1)  # lingers in the other partition
    p = log.topic("t").partition(0)
    assert p.end_offset == 0 and not futures[0].done()
    if reader == "read":
        assert [r.value for r in p.read(0)] == [b"0", b"1", b"2"]
    elif reader == "read_batches":
        assert [h.record_count for h, _ in p.read_batches(0, 10)] == [3]
    elif reader == "read_columns":
        assert [list(c.values) for _, c in p.read_columns(0, 10)] == [[b"0", b"1", b"2"]]
    elif reader == "wait_for":
        assert p.wait_for(2, timeout=0)
    elif reader == "poll":
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([eventlog.TopicPartition("t", 0)])
        assert [r.value for r in consumer.poll(timeout_ms=0)] == [b"0", b"1", b"2"]
        consumer.close()
    elif reader == "result":
        assert futures[1].result(timeout=0).offset == 1
    else:
        assert futures[1].exception(timeout=0) is None
    assert all(f.done() for f in futures)
    assert not other.done()  # only the partition read was appended
    assert log.topic("t").partition(1).end_offset == 0
    producer.close()
    assert other.result().offset == 0


def test_an_explicit_close_with_lingering_records_does_not_warn(log, caplog):
    """close() delivers what lingers, quietly: only a producer nobody closed (collected,
    or open at exit) logs "a Producer was not closed". With linger_ms=5 the default,
    records usually linger at close()."""
    log.create_topic("t")
    producer = log.producer()
    future = producer.send("t", b"v")
    with caplog.at_level("WARNING", logger="eventlog.producer"):
        producer.close()
        producer.close()  # idempotent
    assert future.result().offset == 0
    assert "not closed" not in caplog.text
    forgotten = log.producer()
    forgotten.send("t", b"w")
    with caplog.at_level("WARNING", logger="eventlog.producer"):
        del forgotten
        gc.collect()
    assert "a Producer was not closed; delivering its 1 held record(s)" in caplog.text


def test_a_read_with_nothing_lingering_appends_nothing(log):
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000)
    producer.send("t", b"a").result()
    p = log.topic("t").partition(0)
    assert p.lingering == {}  # drained batches leave no flush behind
    assert [r.value for r in p.read(0)] == [b"a"]
    producer.send("t", b"b")
    assert len(p.lingering) == 1
    producer.flush()
    assert p.lingering == {}


def test_iter_and_offset_for_time_see_lingering_records(log):
    """Both read the partition, so, as read() does, they append what this log's
    producers hold first (they missed it: iter took the end offset before)."""
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000)
    producer.send("t", b"a", timestamp_ms=1_000)
    p = log.topic("t").partition(0)
    assert [r.value for r in p.iter()] == [b"a"]
    producer.send("t", b"b", timestamp_ms=2_000)
    assert p.offset_for_time(1_500) == 1
    producer.close()


def test_close_flushes_and_then_send_raises(log):
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000)
    fut = producer.send("t", b"v")
    producer.close()
    assert fut.result().offset == 0
    with pytest.raises(ClosedError):
        producer.send("t", b"v")
    assert log.topic("t").partition(0).end_offset == 1


def test_explicit_close_with_lingering_records_logs_no_unclosed_warning(log, caplog):
    # close() ran the finalizer meant for producers nobody closed, which warned
    # "a Producer was not closed" about a producer that was.
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000)
    futures = [producer.send("t", b"v") for _ in range(3)]
    with caplog.at_level("DEBUG", logger="eventlog"):
        producer.close()
        producer.close()  # idempotent, and quiet too
    assert [f.result().offset for f in futures] == [0, 1, 2]
    assert not [r for r in caplog.records if "not closed" in r.getMessage()]
    assert producer.closed


def test_send_after_close_raises_closed_before_checking_the_record(log):
    log.create_topic("t")
    producer = log.producer()
    producer.send("t", b"v")  # the topic's route is cached now
    producer.close()
    with pytest.raises(ClosedError):
        producer.send("t", b"v")
    with pytest.raises(ClosedError):
        producer.send("t", "a str, not bytes")  # closed wins over the type error
    with pytest.raises(ClosedError):
        producer.send("t", b"v", partition=0)
    assert log.topic("t").partition(0).end_offset == 1


def test_lingering_send_after_close_raises_and_holds_nothing(log):
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000)
    producer.send("t", b"held")
    producer.close()
    with pytest.raises(ClosedError):
        producer.send("t", b"late")
    assert producer.metrics()["pending_records"] == 0
    assert log.topic("t").partition(0).end_offset == 1


def test_a_new_batch_wakes_an_idle_flusher(log, clock):
    log.create_topic("t", partitions=2)
    producer = log.producer(linger_ms=5)
    first = producer.send("t", b"a", partition=0)
    clock.advance(5)
    assert first.result(timeout=5).offset == 0
    deadline = time.monotonic() + 5
    while producer._state.flusher_wake_ms != float("inf"):  # the flusher has nothing left
        assert time.monotonic() < deadline, "the flusher did not go idle"
        time.sleep(0.001)
    second = producer.send("t", b"b", partition=1)
    assert not second.done()
    clock.advance(5)
    assert second.result(timeout=5).partition == 1


def test_sends_follow_new_partitions(log):
    log.create_topic("t", partitions=3)
    producer = log.producer()
    keys = [b"key-%d" % i for i in range(40)]
    before = [producer.send("t", b"v", key=k).result().partition for k in keys]
    assert before == [expected_partition(k, 3) for k in keys]
    log.create_partitions("t", 7)
    after = [producer.send("t", b"v", key=k).result().partition for k in keys]
    assert after == [expected_partition(k, 7) for k in keys]
    assert max(after) >= 3  # some keys moved to the new partitions


def test_sends_follow_a_deleted_and_recreated_topic(log):
    log.create_topic("t", partitions=2)
    producer = log.producer()
    producer.send("t", b"old", partition=1)
    log.delete_topic("t")
    with pytest.raises(UnknownTopicError):
        producer.send("t", b"nowhere")
    log.create_topic("t", partitions=1)
    assert producer.send("t", b"new").result().partition == 0
    with pytest.raises(UnknownPartitionError):
        producer.send("t", b"gone", partition=1)
    part = log.topic("t").partition(0)
    assert part.end_offset == 1
    assert [r.value for r in part.read(0)] == [b"new"]


def test_eventlog_close_closes_its_producers_first(clock):
    log = eventlog.open(clock=clock)
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000)
    fut = producer.send("t", b"v")
    log.close()
    assert fut.result().offset == 0
    assert producer.closed


def test_garbage_collected_producer_delivers(log):
    log.create_topic("t")
    producer = log.producer(linger_ms=60_000)
    fut = producer.send("t", b"v")
    del producer
    gc.collect()
    assert fut.result(timeout=5).offset == 0


def test_producer_left_open_at_exit_delivers(tmp_path):
    script = textwrap.dedent(f"""
        import eventlog
        log = eventlog.open({str(tmp_path)!r})
        log.create_topic("t")
        producer = log.producer(linger_ms=600000)
        producer.send("t", b"held")
        # no close: interpreter exit must deliver the held record
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with eventlog.open(tmp_path) as log:
        assert [r.value for r in log.topic("t").partition(0).read(0)] == [b"held"]


# ---------------------------------------------------------------------- batch call


def test_send_batch_keeps_order_and_reports_metadata(log):
    log.create_topic("t", partitions=3)
    producer = log.producer()
    records = [(b"key-%d" % (i % 10), b"value-%d" % i) for i in range(100)]
    result = producer.send_batch("t", records)
    assert len(result) == 100
    for (key, value), md in zip(records, result, strict=True):
        assert md.partition == expected_partition(key, 3)
        assert (md.serialized_key_size, md.serialized_value_size) == (len(key), len(value))
        stored = log.topic("t").partition(md.partition).read(md.offset, 1)[0]
        assert (stored.key, stored.value) == (key, value)
    assert sum(count for _, count in result.partitions.values()) == 100


def test_send_batch_to_one_partition(log):
    log.create_topic("t", partitions=3)
    result = log.producer().send_batch("t", [(None, b"a"), (None, b"bc")], partition=1)
    assert [md.offset for md in result] == [0, 1]
    assert [(md.serialized_key_size, md.serialized_value_size) for md in result] == [
        (-1, 1), (-1, 2)]
    assert {md.partition for md in result} == {1}


def test_send_batch_bad_record_appends_nothing(log):
    log.create_topic("t", partitions=2)
    producer = log.producer()
    with pytest.raises(InvalidRecordError, match="record 1: value must be bytes"):
        producer.send_batch("t", [(b"a", b"ok"), (b"a", "not bytes")])
    assert all(p.end_offset == 0 for p in log.topic("t").partitions)


# ---------------------------------------------------------------------- idempotence


def test_duplicate_batch_returns_original_offsets(log):
    p = log.create_topic("t").partition(0)
    first = p.append_batch([(b"k", b"v")], producer_id=7, producer_epoch=0, base_sequence=0)
    dup = p.append_batch([(b"k", b"v")], producer_id=7, producer_epoch=0, base_sequence=0)
    assert dup.duplicate
    assert (dup.base_offset, dup.last_offset) == (first.base_offset, first.last_offset)
    assert p.end_offset == 1


def test_sequence_gap_raises_and_appends_nothing(log):
    p = log.create_topic("t").partition(0)
    p.append_batch([(b"k", b"v")], producer_id=7, producer_epoch=0, base_sequence=0)
    with pytest.raises(OutOfOrderSequenceError, match="expected 1"):
        p.append_batch([(b"k", b"v")], producer_id=7, producer_epoch=0, base_sequence=2)
    assert p.end_offset == 1


def test_retry_after_storage_error_does_not_duplicate(log, monkeypatch):
    p = log.create_topic("t").partition(0)
    producer = log.producer(retry_backoff_ms=0)
    real = p._log.append_encoded
    calls = {"n": 0}

    def flaky(data, header, *, now_ms):
        calls["n"] += 1
        result = real(data, header, now_ms=now_ms)
        if calls["n"] == 1:
            raise StorageError("simulated fsync failure after the write")
        return result

    monkeypatch.setattr(p._log, "append_encoded", flaky)
    md = producer.send("t", b"once").result()
    assert md.offset == 0
    assert p.end_offset == 1  # the retry was recognised as a duplicate
    assert producer.send("t", b"next").result().offset == 1


def test_storage_error_without_retries_fails_only_that_future(log, monkeypatch):
    p = log.create_topic("t").partition(0)
    producer = log.producer(retries=0)

    def broken(data, header, *, now_ms):
        raise StorageError("disk full")

    monkeypatch.setattr(p._log, "append_encoded", broken)
    fut = producer.send("t", b"lost")
    assert isinstance(fut.exception(), StorageError)
    monkeypatch.undo()
    assert producer.send("t", b"kept").result().offset == 0


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"acks": 2}, "acks"),
        ({"linger_ms": -1}, "linger_ms"),
        ({"compression_type": "brotli"}, "none, gzip, snappy, lz4, zstd"),
        ({"enable_idempotence": True, "acks": 1}, "acks='all'"),
        ({"batch_size": 0}, "batch_size"),
        ({"lingerms": 5}, "unknown producer config lingerms"),
        ({"value_serializer": "yaml"}, "unknown value_serializer"),
        ({"partitioner": 42}, "partitioner"),
    ],
)
def test_bad_config_raises(log, config, fragment):
    with pytest.raises(InvalidConfigError, match=fragment):
        log.producer(**config)


def test_unknown_topic_raises_and_creates_nothing(log):
    producer = log.producer()
    with pytest.raises(UnknownTopicError, match="nope"):
        producer.send("nope", b"v")
    assert log.topics() == []


def test_auto_create_topics(clock):
    with eventlog.open(clock=clock, auto_create_topics=True, num_partitions=2) as log:
        md = log.producer().send("fresh", b"v", key=b"k").result()
        assert log.topic("fresh").num_partitions == 2
        assert md.partition == expected_partition(b"k", 2)


def test_non_bytes_value_names_the_field(log):
    log.create_topic("t")
    producer = log.producer()
    with pytest.raises(TypeError, match="value must be bytes"):
        producer.send("t", "text")
    with pytest.raises(TypeError, match="key must be bytes"):
        producer.send("t", b"v", key=42)
    assert log.topic("t").partition(0).end_offset == 0


def test_record_too_large(log):
    log.create_topic("t", max_message_bytes=1000)
    producer = log.producer()
    with pytest.raises(RecordTooLargeError, match="max_message_bytes"):
        producer.send("t", b"x" * 2000)
    with pytest.raises(RecordTooLargeError, match="max_request_size"):
        log.producer(max_request_size=100).send("t", b"x" * 500)
    assert log.topic("t").partition(0).end_offset == 0


def test_unknown_partition(log):
    log.create_topic("t", partitions=2)
    with pytest.raises(UnknownPartitionError, match="2 partition"):
        log.producer().send("t", b"v", partition=2)
    assert all(p.end_offset == 0 for p in log.topic("t").partitions)


def test_bad_headers_raise(log):
    log.create_topic("t")
    with pytest.raises(InvalidRecordError, match="headers"):
        log.producer().send("t", b"v", headers=[("k", "not-bytes")])
    assert log.topic("t").partition(0).end_offset == 0


def test_future_result_timeout():
    fut = DeliveryFuture()
    with pytest.raises(TimeoutError):
        fut.result(timeout=0.01)


# ---------------------------------------------------------------------- threads


def test_four_threads_share_one_producer():
    with eventlog.open() as log:
        log.create_topic("t", partitions=3)
        producer = log.producer()
        per_thread = 50_000
        errors = []

        def work(tid: int) -> None:
            try:
                for i in range(per_thread):
                    producer.send("t", b"%d:%d" % (tid, i), key=b"key-%d-%d" % (tid, i % 16))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        producer.flush()
        seen: dict[bytes, list[int]] = {}
        total = 0
        for p in log.topic("t").partitions:
            offset = 0
            while offset < p.end_offset:
                batch = p.read(offset, 10_000)
                for r in batch:
                    _tid, i = r.value.split(b":")
                    assert p.index == expected_partition(r.key, 3)
                    seen.setdefault(r.key, []).append(int(i))
                offset = batch[-1].offset + 1
            total += p.end_offset
        assert total == 4 * per_thread
        for key, sequence in seen.items():
            assert sequence == sorted(sequence), f"order broken for {key!r}"
            assert len(sequence) == len(set(sequence))


def test_producer_flusher_thread_delivers_on_real_clock():
    with eventlog.open() as log:
        log.create_topic("t")
        producer = Producer(log, linger_ms=5)
        started = time.monotonic()
        fut = producer.send("t", b"v")
        assert fut.result(timeout=5).offset == 0
        assert time.monotonic() - started < 5


def test_lingering_batch_with_one_bad_record_fails_only_that_future(log):
    log.create_topic("c", cleanup_policy="compact")
    producer = log.producer(linger_ms=60_000)
    delivered = []
    good1 = producer.send("c", b"a", key=b"k1", on_delivery=lambda e, md: delivered.append(e))
    bad = producer.send("c", b"b", on_delivery=lambda e, md: delivered.append(e))  # no key
    good2 = producer.send("c", b"c", key=b"k2")
    seen = []
    bad.add_done_callback(lambda f: seen.append(type(f.exception()).__name__))
    producer.flush()
    assert [good1.result().offset, good2.result().offset] == [0, 1]
    assert isinstance(bad.exception(), InvalidRecordError)
    with pytest.raises(InvalidRecordError, match="without a key"):
        bad.result()
    assert delivered[0] is None
    assert isinstance(delivered[1], InvalidRecordError)
    assert seen == ["InvalidRecordError"]
    assert [r.value for r in log.topic("c").partition(0).read(0)] == [b"a", b"c"]


def test_lingering_futures_report_their_own_metadata(log, clock):
    log.create_topic("t")
    producer = log.producer(linger_ms=10)
    futures = [producer.send("t", b"v" * i, key=b"k", timestamp_ms=1000 + i) for i in range(1, 4)]
    assert not futures[0].done()
    assert repr(futures[0]) == "DeliveryFuture(pending)"
    producer.flush()
    metadata = [f.result() for f in futures]
    assert [md.offset for md in metadata] == [0, 1, 2]
    assert [md.timestamp_ms for md in metadata] == [1001, 1002, 1003]
    assert [md.serialized_value_size for md in metadata] == [1, 2, 3]
    assert all(f.done() for f in futures)


def test_close_while_threads_send_leaves_no_future_pending():
    """Senders racing close(): every send either raises ClosedError or returns a
    future that is done once close() returns; every delivered record is in the log."""
    with eventlog.open() as log:
        log.create_topic("t", partitions=3)
        producer = log.producer(linger_ms=1)
        futures: list = []
        refused = []
        started = threading.Barrier(5)

        def work(tid: int) -> None:
            started.wait()
            for i in itertools.count():  # until the producer is closed
                try:
                    futures.append(producer.send("t", b"%d:%d" % (tid, i), key=b"k%d" % (i % 7)))
                except ClosedError:
                    refused.append(tid)
                    return

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        started.wait()
        while len(futures) < 5_000:  # let the senders get going, then close under them
            time.sleep(0.001)
        producer.close()
        for t in threads:
            t.join()
        assert all(f.done() for f in futures)
        delivered = [f for f in futures if f.exception() is None]
        held = sum(p.end_offset for p in log.topic("t").partitions)
        assert held == len(delivered)
        assert len(refused) == 4  # every thread met the closed producer


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_every_kafka_codec_compresses_each_batch(tmp_path, compression):
    from eventlog.storage import batch as codec

    with eventlog.open(tmp_path / "data") as log:
        log.create_topic("t")
        values = [b'{"order": %d, "status": "shipped", "pad": "%s"}' % (i, b"x" * 60)
                  for i in range(300)]
        with log.producer(compression_type=compression, linger_ms=5) as producer:
            futures = [producer.send("t", v, key=b"k%d" % (i % 7)) for i, v in enumerate(values)]
            producer.send("t", b"single", key=b"one")  # a batch of one, flushed by close()
        assert [f.result().offset for f in futures] == list(range(300))
        part = log.topic("t").partition(0)
        batches = part.read_batches(0, 10**6, 10**9)
        assert {h.attributes & codec.compression_mask for h, _ in batches} == {
            codec.COMPRESSION_CODES[compression]}
        stored = part.size_bytes
    with eventlog.open(tmp_path / "data") as log:  # and it reads back after a reopen
        part = log.topic("t").partition(0)
        assert [r.value for r in part.read(0, 10**6)] == [*values, b"single"]
        if compression != "none":
            raw = sum(len(v) for v in values)
            assert stored < raw / 2, (compression, stored, raw)
