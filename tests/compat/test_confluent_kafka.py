"""confluent-kafka's client API: each test runs on eventlog.compat and on the real library
against noida-db (see conftest.py); the real library is the reference."""

from __future__ import annotations

import time
from typing import Any

import pytest
from compat_env import Env

poll_attempts_max = 60  # polls of 1 s a test makes before it gives up waiting


def create_topic(env: Env, topic: str, partitions: int = 1) -> None:
    admin = env.module.admin.AdminClient({"bootstrap.servers": env.bootstrap})
    futures = admin.create_topics([env.module.admin.NewTopic(topic, partitions, 1)])
    futures[topic].result(30)


def producer(env: Env, **conf: Any) -> Any:
    return env.module.Producer({"bootstrap.servers": env.bootstrap, **conf})


def consumer(env: Env, **conf: Any) -> Any:
    base = {"bootstrap.servers": env.bootstrap, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 10}
    return env.module.Consumer({**base, **conf})


def produce(env: Env, topic: str, values: list[bytes], **kw: Any) -> None:
    p = producer(env)
    for v in values:
        p.produce(topic, v, **kw)
    assert p.flush(30) == 0


def poll_messages(c: Any, n: int, *, errors: bool = False) -> list[Any]:
    """Poll until ``n`` messages (with ``errors``: error events too) came."""
    out: list[Any] = []
    for _ in range(poll_attempts_max):
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error() is not None and not errors:
            continue
        out.append(m)
        if len(out) == n:
            return out
    raise AssertionError(f"got {len(out)} of {n} messages")


def test_delivery_callbacks_come_in_produce_order_from_poll(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    p = producer(ck)
    reports: list[tuple[Any, Any]] = []
    for i in range(5):
        p.produce(topic, value=f"v{i}".encode(), key=b"k",
                  on_delivery=lambda err, msg: reports.append((err, msg)))
    assert len(p) == 5  # nothing served yet: reports wait for poll()/flush()
    assert reports == []
    assert p.flush(30) == 0
    assert len(p) == 0
    assert [err for err, _ in reports] == [None] * 5
    assert [m.offset() for _, m in reports] == [0, 1, 2, 3, 4]
    assert [m.value() for _, m in reports] == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    assert {(m.topic(), m.partition(), m.key()) for _, m in reports} == {(topic, 0, b"k")}
    assert reports[0][1].error() is None


def test_poll_serves_the_callback_given_in_the_config(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    seen: list[int] = []
    p = producer(ck, on_delivery=lambda err, msg: seen.append(msg.offset()))
    p.produce(topic, b"a")
    p.produce(topic, "b")  # str values are encoded as UTF-8
    for _ in range(poll_attempts_max):
        p.poll(1.0)
        if len(seen) == 2:
            break
    assert seen == [0, 1]
    c = consumer(ck, **{"group.id": ck.group()})
    c.subscribe([topic])
    assert [m.value() for m in poll_messages(c, 2)] == [b"a", b"b"]
    c.close()


def test_poll_returns_none_when_the_timeout_passes(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    c = consumer(ck, **{"group.id": ck.group()})
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    assert c.poll(0.5) is None
    assert c.consume(num_messages=5, timeout=0.5) == []
    c.close()


def test_partition_eof_is_an_error_event_once_per_end(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a", b"b"])
    c = consumer(ck, **{"group.id": ck.group(), "enable.partition.eof": True})
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    got = poll_messages(c, 3, errors=True)
    assert [m.value() for m in got[:2]] == [b"a", b"b"]
    eof = got[2]
    assert eof.error() is not None
    assert eof.error().code() == ck.module.KafkaError._PARTITION_EOF == -191
    assert eof.error() == ck.module.KafkaError._PARTITION_EOF
    assert eof.error().name() == "_PARTITION_EOF"
    assert (eof.topic(), eof.partition(), eof.offset()) == (topic, 0, 2)
    assert c.poll(0.5) is None  # once per reaching the end
    produce(ck, topic, [b"c"])
    again = poll_messages(c, 2, errors=True)
    assert again[0].value() == b"c"
    assert again[1].error().code() == ck.module.KafkaError._PARTITION_EOF
    assert again[1].offset() == 3
    c.close()


def test_no_eof_events_unless_enabled(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a"])
    c = consumer(ck, **{"group.id": ck.group()})
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    assert [m.value() for m in poll_messages(c, 1)] == [b"a"]
    assert c.poll(0.5) is None
    c.close()


def test_synchronous_commit_returns_the_committed_partitions(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a", b"b", b"c"])
    group = ck.group()
    c = consumer(ck, **{"group.id": group, "enable.auto.commit": False})
    c.subscribe([topic])
    msgs = poll_messages(c, 3)
    result = c.commit(asynchronous=False)
    assert isinstance(result, list)
    assert [(tp.topic, tp.partition, tp.offset) for tp in result] == [(topic, 0, 3)]
    assert all(isinstance(tp, ck.module.TopicPartition) and tp.error is None for tp in result)
    one = c.commit(message=msgs[0], asynchronous=False)
    assert [(tp.topic, tp.partition, tp.offset) for tp in one] == [(topic, 0, 1)]
    assert c.commit(offsets=[ck.module.TopicPartition(topic, 0, 2)], asynchronous=True) is None
    committed = c.committed([ck.module.TopicPartition(topic, 0)], timeout=10)
    assert [(tp.topic, tp.partition, tp.offset) for tp in committed] == [(topic, 0, 2)]
    c.close()


def test_commit_with_nothing_consumed_raises_no_offset(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    c = consumer(ck, **{"group.id": ck.group(), "enable.auto.commit": False})
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    with pytest.raises(ck.module.KafkaException) as info:
        c.commit(asynchronous=False)
    err = info.value.args[0]
    assert isinstance(err, ck.module.KafkaError)
    assert err.code() == ck.module.KafkaError._NO_OFFSET
    c.close()


def test_stored_offsets_are_what_commit_sends(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a", b"b", b"c"])
    group = ck.group()
    c = consumer(ck, **{"group.id": group, "enable.auto.commit": False,
                        "enable.auto.offset.store": False})
    c.subscribe([topic])
    msgs = poll_messages(c, 3)
    c.store_offsets(message=msgs[0])
    result = c.commit(asynchronous=False)
    assert [(tp.topic, tp.offset) for tp in result] == [(topic, 1)]
    c.close()
    # a new member of the group starts after the committed offset
    c2 = consumer(ck, **{"group.id": group})
    c2.subscribe([topic])
    assert [m.value() for m in poll_messages(c2, 2)] == [b"b", b"c"]
    c2.close()


def test_store_offsets_needs_auto_store_off(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a"])
    c = consumer(ck, **{"group.id": ck.group()})
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    msg = poll_messages(c, 1)[0]
    with pytest.raises(ck.module.KafkaException) as info:
        c.store_offsets(message=msg)
    assert info.value.args[0].code() == ck.module.KafkaError._INVALID_ARG
    c.close()


def test_rebalance_callbacks_get_the_consumer_and_topic_partitions(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic, partitions=2)
    events: list[tuple[str, Any, list[Any]]] = []
    c = consumer(ck, **{"group.id": ck.group()})
    c.subscribe([topic],
                on_assign=lambda cons, parts: events.append(("assign", cons, parts)),
                on_revoke=lambda cons, parts: events.append(("revoke", cons, parts)))
    for _ in range(poll_attempts_max):
        c.poll(1.0)
        if events:
            break
    kind, cons, parts = events[0]
    assert kind == "assign"  # the first join revokes nothing
    assert cons is c
    assert isinstance(parts, list)
    assert all(isinstance(tp, ck.module.TopicPartition) for tp in parts)
    assert sorted((tp.topic, tp.partition) for tp in parts) == [(topic, 0), (topic, 1)]
    assert {tp.offset for tp in parts} == {ck.module.OFFSET_INVALID}
    assert sorted((tp.topic, tp.partition) for tp in c.assignment()) == [(topic, 0), (topic, 1)]
    c.close()
    assert [e[0] for e in events] == ["assign", "revoke"]
    assert sorted((tp.topic, tp.partition) for tp in events[1][2]) == [(topic, 0), (topic, 1)]


def test_assign_in_on_assign_sets_the_start_offsets(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a", b"b", b"c"])

    def on_assign(cons: Any, parts: list[Any]) -> None:
        for tp in parts:
            tp.offset = 2
        cons.assign(parts)

    c = consumer(ck, **{"group.id": ck.group()})
    c.subscribe([topic], on_assign=on_assign)
    assert [m.value() for m in poll_messages(c, 1)] == [b"c"]
    c.close()


def test_watermarks_positions_seek_and_pause(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a", b"b", b"c", b"d"])
    c = consumer(ck, **{"group.id": ck.group()})
    tp = ck.module.TopicPartition(topic, 0)
    assert c.get_watermark_offsets(tp, timeout=10) == (0, 4)
    c.assign([ck.module.TopicPartition(topic, 0, 1)])
    assert [m.value() for m in poll_messages(c, 1)] == [b"b"]
    assert [p.offset for p in c.position([tp])] == [2]
    c.seek(ck.module.TopicPartition(topic, 0, 3))
    assert [m.value() for m in poll_messages(c, 1)] == [b"d"]
    c.pause([tp])
    c.seek(ck.module.TopicPartition(topic, 0, 0))
    assert c.poll(0.5) is None
    c.resume([tp])
    assert [m.value() for m in poll_messages(c, 1)] == [b"a"]
    c.close()


def test_offsets_for_times(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    base = 1_600_000_000_000
    p = producer(ck)
    for i in range(3):
        p.produce(topic, b"x", timestamp=base + i * 1000)
        p.flush(30)  # one batch per record, whatever the load
    c = consumer(ck, **{"group.id": ck.group()})
    query = [ck.module.TopicPartition(topic, 0, base + 500)]
    found = c.offsets_for_times(query, timeout=10)
    # The reference broker may answer -1 for a while after the produce was
    # acknowledged (seen under load, for longer than 50 immediate retries): ask it
    # again until a deadline. eventlog answers at once (no retry on that side).
    deadline = time.monotonic() + 15
    while ck.real and found[0].offset == -1 and time.monotonic() < deadline:
        time.sleep(0.05)
        found = c.offsets_for_times(query, timeout=10)
    assert [(f.topic, f.partition, f.offset) for f in found] == [(topic, 0, 1)]
    late = c.offsets_for_times([ck.module.TopicPartition(topic, 0, base + 10_000)], timeout=10)
    assert [f.offset for f in late] == [-1]
    c.close()


def test_message_timestamp_headers_and_len(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    p = producer(ck)
    p.produce(topic, value=b"hello", key="k", timestamp=1_600_000_000_123,
              headers=[("trace", b"1"), ("who", "me")])
    p.produce(topic, value=None, key=b"k2", headers={"a": b"b"})
    p.flush(30)
    c = consumer(ck, **{"group.id": ck.group()})
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    first, second = poll_messages(c, 2)
    assert first.timestamp() == (ck.module.TIMESTAMP_CREATE_TIME, 1_600_000_000_123)
    assert first.headers() == [("trace", b"1"), ("who", b"me")]
    assert first.key() == b"k" and first.value() == b"hello" and len(first) == 5
    assert second.value() is None and second.headers() == [("a", b"b")]
    c.close()


def test_messages_compare_by_value_are_unhashable_and_setters_replace_fields(ck: Env) -> None:
    m = ck.module.Message
    assert m(topic="t", value=b"a") == m(topic="t", value=b"a")
    assert m(topic="t", value=b"a") != m(topic="t", value=b"b")
    assert m(topic="t", offset=1) != m(topic="t", offset=2)
    with pytest.raises(TypeError):
        hash(m(topic="t"))
    msg = m(topic="t", partition=1, offset=5, key=b"k", value=b"vv", timestamp=(1, 123))
    assert (msg.topic(), msg.partition(), msg.offset(), msg.timestamp()) == ("t", 1, 5, (1, 123))
    assert msg.headers() is None and msg.error() is None and len(msg) == 2
    headers = [("a", b"1")]
    msg.set_headers(headers)
    msg.set_value(b"xyz")
    msg.set_key(None)
    assert msg.headers() is headers and msg.value() == b"xyz" and len(msg) == 3
    assert msg.key() is None and msg.offset() == 5
    msg.set_headers([])
    assert msg.headers() == []
    assert msg.delivery_count() is None  # a share consumer's field
    assert msg.deserialized_value() is msg.value() and msg.deserialized_key() is None
    msg.set_topic("u")
    msg.set_error(ck.module.KafkaError(ck.module.KafkaError._PARTITION_EOF))
    assert msg.topic() == "u" and msg.offset() == 5
    assert msg.error().code() == ck.module.KafkaError._PARTITION_EOF


def test_a_consumed_message_takes_new_fields_and_keeps_the_others(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"abc"], key=b"k", headers=[("h", b"1")])
    c = consumer(ck, **{"group.id": ck.group()})
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    [msg] = poll_messages(c, 1)
    assert msg.headers() == [("h", b"1")]
    msg.set_value(b"decoded value")
    msg.set_key("key")
    assert (msg.value(), msg.key(), len(msg)) == (b"decoded value", "key", 13)
    assert (msg.topic(), msg.partition(), msg.offset()) == (topic, 0, 0)
    assert msg.headers() == [("h", b"1")] and msg.error() is None
    c.close()


def test_positions_and_commits_follow_each_message_returned_across_partitions(
        ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic, partitions=2)
    p = producer(ck)
    for partition in (0, 1):
        for i in range(3):
            p.produce(topic, b"%d-%d" % (partition, i), partition=partition)
    assert p.flush(30) == 0
    c = consumer(ck, **{"group.id": ck.group(), "enable.auto.commit": False})
    tps = [ck.module.TopicPartition(topic, i) for i in (0, 1)]
    c.assign([ck.module.TopicPartition(topic, i, ck.module.OFFSET_BEGINNING) for i in (0, 1)])
    seen: dict[int, int] = {}
    for _ in range(4):
        [msg] = poll_messages(c, 1)
        seen[msg.partition()] = msg.offset() + 1
        positions = {tp.partition: tp.offset for tp in c.position(tps)}
        assert positions[msg.partition()] == msg.offset() + 1
    committed = c.commit(asynchronous=False)
    assert {tp.partition: tp.offset for tp in committed} == seen
    rest = poll_messages(c, 2)
    assert sum(seen.values()) + len(rest) == 6
    c.close()


def test_consume_returns_a_list_of_messages(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a", b"b", b"c"])
    c = consumer(ck, **{"group.id": ck.group()})
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    got: list[Any] = []
    for _ in range(poll_attempts_max):
        got.extend(c.consume(num_messages=10, timeout=1.0))
        if len(got) >= 3:
            break
    assert [m.value() for m in got] == [b"a", b"b", b"c"]
    with pytest.raises(ValueError):
        c.consume(num_messages=-1)
    c.close()


def test_closed_consumer_raises_runtime_error(ck: Env) -> None:
    c = consumer(ck, **{"group.id": ck.group()})
    c.close()
    with pytest.raises(RuntimeError):
        c.poll(0)


def test_unknown_config_property_is_refused(ck: Env) -> None:
    with pytest.raises(ck.module.KafkaException) as info:
        producer(ck, **{"no.such.property": 1})
    assert "no.such.property" in str(info.value)


def test_keyed_messages_land_on_the_librdkafka_partition(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic, partitions=4)
    reports: list[Any] = []
    p = producer(ck)
    for i in range(12):
        p.produce(topic, b"v", key=f"key-{i}".encode(),
                  on_delivery=lambda err, msg: reports.append(msg))
    p.flush(30)
    # librdkafka's default partitioner, consistent_random: CRC32 of the key
    expected = {f"key-{i}".encode(): __import__("zlib").crc32(f"key-{i}".encode()) % 4
                for i in range(12)}
    assert {m.key(): m.partition() for m in reports} == expected


def test_list_topics_describes_partitions(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic, partitions=3)
    p = producer(ck)
    md = p.list_topics(timeout=10)
    assert topic in md.topics
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    assert md.topics[topic].error is None
    assert md.brokers


def test_admin_errors_come_as_kafka_exceptions_in_futures(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    admin = ck.module.admin.AdminClient({"bootstrap.servers": ck.bootstrap})
    futures = admin.create_topics([ck.module.admin.NewTopic(topic, 1, 1)])
    with pytest.raises(ck.module.KafkaException) as info:
        futures[topic].result(30)
    assert info.value.args[0].code() == ck.module.KafkaError.TOPIC_ALREADY_EXISTS == 36
    grown = admin.create_partitions([ck.module.admin.NewPartitions(topic, 3)])
    assert grown[topic].result(30) is None
    shrink = admin.create_partitions([ck.module.admin.NewPartitions(topic, 2)])
    with pytest.raises(ck.module.KafkaException) as info:
        shrink[topic].result(30)
    assert info.value.args[0].code() == ck.module.KafkaError.INVALID_PARTITIONS
    deleted = admin.delete_topics([topic])
    assert deleted[topic].result(30) is None


def test_topic_partition_equality_and_hash_ignore_the_offset(ck: Env) -> None:
    tp = ck.module.TopicPartition
    assert tp("a", 0, 5) == tp("a", 0, 7)
    assert hash(tp("a", 0, 5)) == hash(tp("a", 0, 7))
    assert tp("a", 0) != tp("a", 1)
    assert tp("a", 1) < tp("b", 0)
    assert tp("a").partition == -1 and tp("a").offset == ck.module.OFFSET_INVALID
    assert len({tp("a", 0, 1), tp("a", 0, 2)}) == 1


def test_kafka_error_api(ck: Env) -> None:
    e = ck.module.KafkaError(ck.module.KafkaError.UNKNOWN_TOPIC_OR_PART)
    assert e.code() == 3 and e.name() == "UNKNOWN_TOPIC_OR_PART"
    assert e == 3 and e == ck.module.KafkaError(3)
    assert e.str() and not e.fatal()
    assert ck.module.OFFSET_BEGINNING == -2 and ck.module.OFFSET_END == -1
    assert ck.module.OFFSET_STORED == -1000 and ck.module.OFFSET_INVALID == -1001
    exc = ck.module.KafkaException(e)
    assert exc.args[0] is e


def test_pause_and_resume_continue_after_the_last_message_returned(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"%d" % i for i in range(10)])
    c = consumer(ck, **{"group.id": ck.group()})
    tp = ck.module.TopicPartition(topic, 0)
    c.assign([ck.module.TopicPartition(topic, 0, ck.module.OFFSET_BEGINNING)])
    assert [m.value() for m in poll_messages(c, 2)] == [b"0", b"1"]
    c.pause([tp])
    assert c.poll(0.5) is None
    c.resume([tp])
    assert [m.value() for m in poll_messages(c, 8)] == [b"%d" % i for i in range(2, 10)]
    c.close()


def test_close_commits_only_the_messages_returned(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"%d" % i for i in range(10)])
    group = ck.group()
    c = consumer(ck, **{"group.id": group})
    c.subscribe([topic])
    assert [m.value() for m in poll_messages(c, 3)] == [b"0", b"1", b"2"]
    c.close()  # auto-commit: the stored offset, 3, not what was fetched ahead
    c2 = consumer(ck, **{"group.id": group})
    committed = c2.committed([ck.module.TopicPartition(topic, 0)], timeout=10)
    assert [tp.offset for tp in committed] == [3]
    c2.subscribe([topic])
    assert poll_messages(c2, 1)[0].value() == b"3"
    c2.close()


def test_admin_lists_and_describes_consumer_groups(ck: Env) -> None:
    topic = ck.topic()
    create_topic(ck, topic)
    produce(ck, topic, [b"a"])
    group = ck.group()
    c = consumer(ck, **{"group.id": group})
    c.subscribe([topic])
    poll_messages(c, 1)
    admin = ck.module.admin.AdminClient({"bootstrap.servers": ck.bootstrap})
    listed = admin.list_consumer_groups().result(30)
    assert group in {g.group_id for g in listed.valid}
    described = admin.describe_consumer_groups([group])[group].result(30)
    assert described.group_id == group
    assert described.state == ck.module.ConsumerGroupState.STABLE
    [member] = described.members
    assert [(tp.topic, tp.partition) for tp in member.assignment.topic_partitions] == [
        (topic, 0)]
    c.close()


def test_new_topic_takes_kafka_topic_configs(ck: Env) -> None:
    topic = ck.topic()
    admin = ck.module.admin.AdminClient({"bootstrap.servers": ck.bootstrap})
    futures = admin.create_topics([ck.module.admin.NewTopic(
        topic, 2, 1, config={"retention.ms": "3600000", "cleanup.policy": "delete"})])
    assert futures[topic].result(30) is None
    md = admin.list_topics(timeout=10)
    assert sorted(md.topics[topic].partitions) == [0, 1]
    if ck.log is not None:
        assert ck.log.topic(topic).config.retention_ms == 3_600_000


def test_a_group_of_two_consumes_1000_records(ck: Env) -> None:
    """Issue 12's 50 ms test (its time is measured by benchmarks/compat_group.py)."""
    from group_of_two import group_of_two

    topic = ck.topic()
    create_topic(ck, topic, partitions=2)
    got = group_of_two(ck.module, ck.bootstrap, topic, ck.group())
    records = set(got[0]) | set(got[1])
    assert len(records) == 1000
    assert {p for p, _ in records} == {0, 1}
    # every partition's offsets are contiguous from 0: nothing skipped
    for p in (0, 1):
        offsets = sorted(o for q, o in records if q == p)
        assert offsets == list(range(len(offsets)))
