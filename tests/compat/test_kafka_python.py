"""kafka-python's client API: each test runs on eventlog.compat and on the real library
against noida-db (see conftest.py); the real library is the reference."""

from __future__ import annotations

from typing import Any

import pytest
from compat_env import Env

poll_attempts_max = 60  # polls of 1 s a test makes before it gives up waiting


def create_topic(env: Env, topic: str, partitions: int = 1) -> None:
    admin = env.module.admin.KafkaAdminClient(bootstrap_servers=env.bootstrap)
    admin.create_topics([env.module.admin.NewTopic(topic, partitions, 1)])
    admin.close()


def producer(env: Env, **configs: Any) -> Any:
    return env.module.KafkaProducer(bootstrap_servers=env.bootstrap, **configs)


def consumer(env: Env, *topics: str, **configs: Any) -> Any:
    base = {"bootstrap_servers": env.bootstrap, "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": 10}
    return env.module.KafkaConsumer(*topics, **{**base, **configs})


def send_all(env: Env, topic: str, values: list[bytes]) -> None:
    p = producer(env)
    for v in values:
        p.send(topic, v).get(30)
    p.close()


def poll_records(c: Any, n: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(poll_attempts_max):
        for records in c.poll(timeout_ms=1000).values():
            out.extend(records)
        if len(out) >= n:
            return out
    raise AssertionError(f"got {len(out)} of {n} records")


def test_send_returns_a_future_of_record_metadata(kp: Env) -> None:
    topic = kp.topic()
    create_topic(kp, topic)
    p = producer(kp, key_serializer=str.encode, value_serializer=str.encode)
    seen: list[Any] = []
    futures = [p.send(topic, f"v{i}", key="k") for i in range(3)]
    p.flush(30)
    for f in futures:
        f.add_callback(seen.append)
    metas = [f.get(timeout=30) for f in futures]
    assert [m.offset for m in metas] == [0, 1, 2]
    assert {(m.topic, m.partition) for m in metas} == {(topic, 0)}
    assert metas[0].topic_partition == kp.module.TopicPartition(topic, 0)
    assert metas[0].serialized_value_size == 2 and metas[0].serialized_key_size == 1
    assert [m.offset for m in seen] == [0, 1, 2]
    assert all(f.succeeded() and not f.failed() for f in futures)
    assert p.partitions_for(topic) == {0}
    p.close()


def test_iteration_ends_at_consumer_timeout_ms(kp: Env) -> None:
    topic = kp.topic()
    create_topic(kp, topic)
    send_all(kp, topic, [b"a", b"b", b"c"])
    c = consumer(kp, topic, group_id=kp.group(), consumer_timeout_ms=3000)
    values = [r.value for r in c]  # stops once 3 s pass without a record
    assert values == [b"a", b"b", b"c"]
    assert [r.value for r in c] == []  # iterating again ends the same way
    c.close()


def test_poll_groups_records_by_topic_partition(kp: Env) -> None:
    topic = kp.topic()
    create_topic(kp, topic, partitions=2)
    p = producer(kp)
    for i in range(4):
        p.send(topic, b"v%d" % i, partition=i % 2).get(30)
    p.close()
    c = consumer(kp, topic, group_id=kp.group())
    got: dict[Any, list[Any]] = {}
    for _ in range(poll_attempts_max):
        for tp, records in c.poll(timeout_ms=1000).items():
            assert isinstance(tp, kp.module.TopicPartition)
            got.setdefault(tp, []).extend(records)
        if sum(map(len, got.values())) >= 4:
            break
    assert {tp: [r.value for r in rs] for tp, rs in got.items()} == {
        kp.module.TopicPartition(topic, 0): [b"v0", b"v2"],
        kp.module.TopicPartition(topic, 1): [b"v1", b"v3"],
    }
    r = got[kp.module.TopicPartition(topic, 0)][0]
    assert (r.topic, r.partition, r.offset, r.key, r.headers) == (topic, 0, 0, None, [])
    assert r.timestamp_type == 0 and r.timestamp > 0
    assert c.subscription() == {topic}
    assert c.assignment() == {kp.module.TopicPartition(topic, 0),
                              kp.module.TopicPartition(topic, 1)}
    c.close()


def test_commit_and_committed(kp: Env) -> None:
    topic = kp.topic()
    create_topic(kp, topic)
    send_all(kp, topic, [b"a", b"b", b"c"])
    group = kp.group()
    tp = kp.module.TopicPartition(topic, 0)
    c = consumer(kp, topic, group_id=group, enable_auto_commit=False)
    assert len(poll_records(c, 3)) == 3
    assert c.committed(tp) is None
    c.commit()
    assert c.committed(tp) == 3
    c.commit({tp: kp.module.OffsetAndMetadata(1, "meta", -1)})
    assert c.committed(tp) == 1
    assert c.committed(tp, metadata=True).metadata == "meta"
    c.close()
    c2 = consumer(kp, topic, group_id=group)
    assert [r.value for r in poll_records(c2, 2)] == [b"b", b"c"]
    c2.close()


def test_seek_and_offsets(kp: Env) -> None:
    topic = kp.topic()
    create_topic(kp, topic)
    send_all(kp, topic, [b"a", b"b", b"c"])
    tp = kp.module.TopicPartition(topic, 0)
    c = consumer(kp, group_id=kp.group())
    c.assign([tp])
    assert c.assignment() == {tp}
    assert c.subscription() is None
    assert c.beginning_offsets([tp]) == {tp: 0}
    assert c.end_offsets([tp]) == {tp: 3}
    c.seek(tp, 2)
    assert c.position(tp) == 2
    assert [r.value for r in poll_records(c, 1)] == [b"c"]
    c.seek_to_beginning(tp)
    assert c.position(tp) == 0
    c.seek_to_end()
    assert c.position(tp) == 3
    c.close()


def test_rebalance_listener_gets_sets_of_topic_partitions(kp: Env) -> None:
    topic = kp.topic()
    create_topic(kp, topic, partitions=2)
    events: list[tuple[str, Any]] = []

    class Listener(kp.module.ConsumerRebalanceListener):  # type: ignore[name-defined,misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            events.append(("revoked", revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            events.append(("assigned", assigned))

    both = {kp.module.TopicPartition(topic, 0), kp.module.TopicPartition(topic, 1)}
    c = consumer(kp, group_id=kp.group())
    c.subscribe([topic], listener=Listener())
    for _ in range(poll_attempts_max):
        c.poll(timeout_ms=1000)
        if events and events[-1] == ("assigned", both):
            break
    # eager protocol: a revoke before every join, the first one with nothing owned. A
    # join that beats the client's metadata answer is followed by one more rebalance
    # (kafka-python's own race; docs/kafka-differences.md): the pair may repeat.
    assert events[0] == ("revoked", set())
    assert [kind for kind, _ in events] == ["revoked", "assigned"] * (len(events) // 2)
    assert len(events) <= 4 and events[-1] == ("assigned", both)
    assert all(type(parts) is set for _, parts in events)
    c.close()
    assert events[-1] == ("revoked", both)


def test_errors_are_kafka_pythons_own_classes(kp: Env) -> None:
    topic = kp.topic()
    create_topic(kp, topic)
    admin = kp.module.admin.KafkaAdminClient(bootstrap_servers=kp.bootstrap)
    with pytest.raises(kp.module.errors.TopicAlreadyExistsError) as info:
        admin.create_topics([kp.module.admin.NewTopic(topic, 1, 1)])
    assert info.value.errno == 36
    assert isinstance(info.value, kp.module.errors.KafkaError)
    assert topic in admin.list_topics()
    admin.close()
    p = producer(kp)
    p.close()
    with pytest.raises(kp.module.errors.IllegalStateError):
        p.send(topic, b"x")
    c = consumer(kp)
    with pytest.raises(kp.module.errors.IllegalStateError):
        c.commit()  # no group_id
    c.close()


def test_send_with_neither_key_nor_value_is_refused(kp: Env) -> None:
    p = producer(kp)
    with pytest.raises(ValueError):
        p.send("anything")
    with pytest.raises(TypeError):
        p.send("anything", "not bytes")
    p.close()


def test_admin_topics_partitions_and_groups(kp: Env) -> None:
    topic = kp.topic()
    admin = kp.module.admin.KafkaAdminClient(bootstrap_servers=kp.bootstrap)
    admin.create_topics([kp.module.admin.NewTopic(topic, 1, 1)])
    assert topic in admin.list_topics()
    admin.create_partitions({topic: kp.module.admin.NewPartitions(3)})
    [described] = admin.describe_topics([topic])
    assert described["name"] == topic
    assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2]
    with pytest.raises(kp.module.errors.InvalidPartitionsError):
        admin.create_partitions({topic: kp.module.admin.NewPartitions(2)})
    group = kp.group()
    c = consumer(kp, topic, group_id=group)
    for _ in range(poll_attempts_max):
        c.poll(timeout_ms=1000)
        if c.assignment():
            break
    assert group in {g["group_id"] for g in admin.list_groups()}
    c.close()
    admin.delete_topics([topic])
    assert topic not in admin.list_topics()
    admin.close()


def test_close_commits_unless_autocommit_is_false(kp: Env) -> None:
    topic = kp.topic()
    create_topic(kp, topic)
    send_all(kp, topic, [b"a", b"b"])
    tp = kp.module.TopicPartition(topic, 0)
    for assign in (False, True):
        kept, dropped = kp.group(), kp.group()
        for group, autocommit in ((kept, True), (dropped, False)):
            c = consumer(kp, group_id=group, auto_commit_interval_ms=600_000)
            if assign:
                c.assign([tp])
            else:
                c.subscribe([topic])
            assert len(poll_records(c, 2)) == 2
            c.close(autocommit=autocommit)
        probe = consumer(kp, group_id=kept)
        assert probe.committed(tp) == 2, assign
        probe.close()
        probe = consumer(kp, group_id=dropped)
        assert probe.committed(tp) is None, assign
        probe.close()
