"""aiokafka's client API: each test runs on eventlog.compat and on the real library against
noida-db (see conftest.py); the real library is the reference."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from compat_env import Env

wait_ms_max = 60_000  # how long a test waits for records before it gives up


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def create_topic(env: Env, topic: str, partitions: int = 1) -> None:
    if env.real:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=env.bootstrap)
        admin.create_topics([NewTopic(topic, partitions, 1)])
        admin.close()
    else:
        assert env.log is not None
        env.log.create_topic(topic, partitions)


def producer(env: Env, **configs: Any) -> Any:
    return env.module.AIOKafkaProducer(bootstrap_servers=env.bootstrap, **configs)


def consumer(env: Env, *topics: str, **configs: Any) -> Any:
    base = {"bootstrap_servers": env.bootstrap, "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": 10}
    return env.module.AIOKafkaConsumer(*topics, **{**base, **configs})


async def send_all(env: Env, topic: str, values: list[bytes]) -> None:
    p = producer(env)
    await p.start()
    for v in values:
        await p.send_and_wait(topic, v)
    await p.stop()


async def get_many(c: Any, n: int) -> dict[Any, list[Any]]:
    got: dict[Any, list[Any]] = {}
    for _ in range(wait_ms_max // 1000):
        for tp, records in (await c.getmany(timeout_ms=1000)).items():
            got.setdefault(tp, []).extend(records)
        if sum(map(len, got.values())) >= n:
            return got
    raise AssertionError(f"got {sum(map(len, got.values()))} of {n} records")


def test_send_and_wait_and_send_futures(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic)
        async with producer(ak, value_serializer=str.encode) as p:
            first = await p.send_and_wait(topic, "a", key=b"k")
            fut = await p.send(topic, "b")
            second = await fut
        assert (first.topic, first.partition, first.offset) == (topic, 0, 0)
        assert second.offset == 1
        assert first.topic_partition == ak.module.TopicPartition(topic, 0)
        assert first.timestamp_type == 0 and first.timestamp > 0

    run(main())


def test_sends_of_one_loop_iteration_are_delivered_in_order(ak: Env) -> None:
    """aiokafka's linger_ms 0: send()'s future is pending until the sender has run; the
    records of one iteration (more than one batch of max_batch_size) keep their order,
    flush() settles every future, send_and_wait settles those sent before it."""
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic, partitions=2)
        async with producer(ak, max_batch_size=1024) as p:
            futures = [await p.send(topic, b"%03d" % i, partition=i % 2) for i in range(60)]
            assert not futures[-1].done()  # nothing has run the sender yet
            await p.flush()
            assert all(f.done() for f in futures)
            metas = [f.result() for f in futures]
            assert [(m.partition, m.offset) for m in metas] == [
                (i % 2, i // 2) for i in range(60)]
            assert all(m.topic_partition == ak.module.TopicPartition(topic, m.partition)
                       for m in metas)
            more = [await p.send(topic, b"x%d" % i, partition=0) for i in range(3)]
            last = await p.send_and_wait(topic, b"last", partition=0)
            assert last.offset == 33 and all(f.done() for f in more)
            assert [f.result().offset for f in more] == [30, 31, 32]
            tail = [await p.send(topic, b"t%d" % i, partition=1) for i in range(2)]
        assert [f.result().offset for f in tail] == [30, 31]  # stop() delivered them
        c = consumer(ak)
        await c.start()
        tp0, tp1 = ak.module.TopicPartition(topic, 0), ak.module.TopicPartition(topic, 1)
        c.assign([tp0, tp1])
        got = await get_many(c, 66)
        await c.stop()
        assert [r.value for r in got[tp0]] == [
            b"%03d" % i for i in range(0, 60, 2)] + [b"x0", b"x1", b"x2", b"last"]
        assert [r.value for r in got[tp1]] == [
            b"%03d" % i for i in range(1, 60, 2)] + [b"t0", b"t1"]

    run(main())


def test_a_refused_send_raises_and_leaves_the_pending_ones(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic)
        async with producer(ak, max_request_size=1000) as p:
            first = await p.send(topic, b"a")
            with pytest.raises(ak.module.errors.MessageSizeTooLargeError):
                await p.send(topic, b"x" * 5000)
            second = await p.send(topic, b"b")
            assert [(await first).offset, (await second).offset] == [0, 1]

    run(main())


def test_getmany_shape_and_getone(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic, partitions=2)
        p = producer(ak)
        await p.start()
        for i in range(4):
            await p.send_and_wait(topic, b"v%d" % i, partition=i % 2)
        await p.stop()
        c = consumer(ak, topic, group_id=ak.group())
        await c.start()
        got = await get_many(c, 4)
        assert all(isinstance(tp, ak.module.TopicPartition) for tp in got)
        assert {tp: [r.value for r in rs] for tp, rs in got.items()} == {
            ak.module.TopicPartition(topic, 0): [b"v0", b"v2"],
            ak.module.TopicPartition(topic, 1): [b"v1", b"v3"],
        }
        r = got[ak.module.TopicPartition(topic, 0)][0]
        assert (r.topic, r.partition, r.offset, r.key) == (topic, 0, 0, None)
        assert r.headers == ()  # aiokafka 0.14: tuple(record.headers)
        p2 = producer(ak)
        await p2.start()
        await p2.send_and_wait(topic, b"later", partition=1)
        await p2.stop()
        one = await asyncio.wait_for(c.getone(), 60)
        assert (one.partition, one.offset, one.value) == (1, 2, b"later")
        await c.stop()

    run(main())


def test_records_carry_sizes_and_deserialized_fields(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic)
        p = producer(ak)
        await p.start()
        await p.send_and_wait(topic, b"hello", key=b"k1")
        await p.send_and_wait(topic, None, key=b"k22", headers=[("h", b"12")])
        await p.stop()
        c = consumer(ak, topic, group_id=ak.group(),
                     key_deserializer=lambda b: None if b is None else b.decode(),
                     value_deserializer=lambda b: None if b is None else b.upper())
        await c.start()
        [records] = (await get_many(c, 2)).values()
        first, second = records
        assert (first.key, first.value, first.checksum) == ("k1", b"HELLO", None)
        assert (first.serialized_key_size, first.serialized_value_size) == (2, 5)
        assert first.timestamp_type == 0 and first.headers == ()
        assert (second.key, second.value, second.headers) == ("k22", None, (("h", b"12"),))
        assert (second.serialized_key_size, second.serialized_value_size) == (3, -1)
        await c.stop()

    run(main())


def test_getmany_returns_empty_after_the_timeout(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic)
        c = consumer(ak, group_id=ak.group())
        await c.start()
        c.assign([ak.module.TopicPartition(topic, 0)])
        assert await c.getmany(timeout_ms=300) == {}
        await c.stop()

    run(main())


def test_commit_committed_and_async_for(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic)
        await send_all(ak, topic, [b"a", b"b", b"c"])
        group = ak.group()
        tp = ak.module.TopicPartition(topic, 0)
        c = consumer(ak, topic, group_id=group, enable_auto_commit=False)
        await c.start()
        seen = []
        async for record in c:
            seen.append(record.value)
            if len(seen) == 3:
                break
        assert seen == [b"a", b"b", b"c"]
        assert await c.committed(tp) is None
        await c.commit()
        assert await c.committed(tp) == 3
        await c.commit({tp: 1})
        assert await c.committed(tp) == 1
        assert await c.position(tp) == 3
        await c.stop()

    run(main())


def test_listener_gets_sets_and_may_be_async(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic, partitions=2)
        events: list[tuple[str, Any]] = []

        class Listener(ak.module.ConsumerRebalanceListener):  # type: ignore[name-defined,misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                events.append(("revoked", revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                events.append(("assigned", assigned))

        c = consumer(ak, group_id=ak.group())
        c.subscribe([topic], listener=Listener())
        await c.start()
        for _ in range(wait_ms_max // 1000):
            await c.getmany(timeout_ms=1000)
            if any(kind == "assigned" for kind, _ in events):
                break
        both = {ak.module.TopicPartition(topic, 0), ak.module.TopicPartition(topic, 1)}
        assert events == [("revoked", set()), ("assigned", both)]
        assert all(type(parts) is set for _, parts in events)
        await c.stop()

    run(main())


def test_stopped_consumer_raises_consumer_stopped_error(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic)
        c = consumer(ak, group_id=ak.group())
        await c.start()
        c.assign([ak.module.TopicPartition(topic, 0)])
        assert await c.getmany(timeout_ms=100) == {}
        await c.stop()
        with pytest.raises(ak.module.ConsumerStoppedError):
            await c.getone()

    run(main())


def test_commit_without_group_id_is_an_illegal_operation(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic)
        c = consumer(ak)
        await c.start()
        c.assign([ak.module.TopicPartition(topic, 0)])
        with pytest.raises(ak.module.errors.IllegalOperation):
            await c.commit()
        try:
            await c.stop()
        except asyncio.CancelledError:
            assert ak.real  # aiokafka 0.14's stop() without a group_id cancels itself

    run(main())


def test_create_batch_and_send_batch(ak: Env) -> None:
    async def main() -> None:
        topic = ak.topic()
        await create_topic(ak, topic, partitions=2)
        async with producer(ak, value_serializer=str.encode) as p:
            await p.send_and_wait(topic, "before", partition=1)
            batch = p.create_batch()
            first = batch.append(key=b"k", value="v" * 10, timestamp=None)
            second = batch.append(key=None, value="w", timestamp=None,
                                  headers=[("h", b"1")])
            assert (first.offset, second.offset) == (0, 1)  # relative to the batch
            assert first.size == 18 and first.crc is None
            # BatchBuilder.closed() is in aiokafka 0.14 (0.12 lacks it; the compat has it)
            has_closed = hasattr(batch, "closed")
            assert batch.record_count() == 2 and not (has_closed and batch.closed())
            assert batch.size() > 61
            fut = await p.send_batch(batch, topic, partition=1)
            meta = await fut
            assert (meta.topic, meta.partition, meta.offset) == (topic, 1, 1)
            assert meta.topic_partition == ak.module.TopicPartition(topic, 1)
            small = p.create_batch()
            assert small.append(key=None, value="x" * 20_000, timestamp=None) is not None
            assert small.append(key=None, value="y", timestamp=None) is None  # full
            assert (small.closed() if has_closed else True) and small.record_count() == 1
            meta = await (await p.send_batch(small, topic, partition=0))
            assert meta.offset == 0
        c = consumer(ak)
        await c.start()
        tp1 = ak.module.TopicPartition(topic, 1)
        c.assign([tp1, ak.module.TopicPartition(topic, 0)])
        got = await get_many(c, 4)
        await c.stop()
        assert [(r.offset, r.key, r.value) for r in got[tp1]] == [
            (0, None, b"before"), (1, b"k", b"v" * 10), (2, None, b"w")]
        assert got[tp1][2].headers == (("h", b"1"),)
        assert [len(r.value) for r in got[ak.module.TopicPartition(topic, 0)]] == [20_000]

    run(main())


def test_default_partitioner_matches_aiokafkas() -> None:
    """aiokafka.partitioner.DefaultPartitioner (which FastStream passes to every producer):
    murmur2 of the key over all partitions, as the real one computes it."""
    from eventlog.compat.aiokafka.partitioner import DefaultPartitioner

    ours = DefaultPartitioner()
    keys = [b"", b"a", b"user-1", b"\xff" * 17, bytes(range(200))]
    expected = {b"": 681, b"a": 524, b"user-1": 828}  # what aiokafka 0.14 computes
    for key, partition in expected.items():
        assert ours(key, list(range(1000)), list(range(1000))) == partition
    assert ours(None, [0, 1, 2], [2]) == 2  # keyless: an available partition
    try:
        from aiokafka.partitioner import DefaultPartitioner as Real
    except ImportError:
        return
    real = Real()
    for key in keys:
        for n in (1, 3, 7, 1000):
            parts = list(range(n))
            assert ours(key, parts, parts) == real(key, parts, parts)
