"""One adapter per real Kafka client, so that one suite runs against each of them.

Each adapter creates and deletes topics, produces keyed records with headers,
and runs group consumers that poll, commit and read committed offsets. Polls
loop until the expected records arrived or a generous deadline passed (a
deadline, not a sleep: the loop ends as soon as the records are there).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

deadline_s = 30.0


class Got(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple


class ConfluentAdapter:
    name = "confluent-kafka"

    def __init__(self, bootstrap: str) -> None:
        import confluent_kafka
        from confluent_kafka.admin import AdminClient

        self.ck = confluent_kafka
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create_topic(self, name: str, partitions: int) -> None:
        from confluent_kafka.admin import NewTopic

        for f in self.admin.create_topics([NewTopic(name, partitions, 1)]).values():
            f.result(deadline_s)

    def delete_topic(self, name: str) -> None:
        for f in self.admin.delete_topics([name]).values():
            f.result(deadline_s)

    def list_topics(self) -> set[str]:
        return set(self.admin.list_topics(timeout=deadline_s).topics)

    def produce(self, topic: str, records: list[tuple], *, compression: str = "none",
                idempotent: bool = True) -> list[tuple[int, int]]:
        p = self.ck.Producer({
            "bootstrap.servers": self.bootstrap, "linger.ms": 5,
            "partitioner": "murmur2_random",  # Java's partitioner (librdkafka's is crc32)
            "enable.idempotence": idempotent, "compression.type": compression,
        })
        out: list[Any] = [None] * len(records)
        errors: list[Any] = []

        def report(i: int) -> Any:
            def cb(err: Any, msg: Any) -> None:
                if err is not None:
                    errors.append(err)
                out[i] = (msg.partition(), msg.offset())
            return cb

        for i, (key, value, headers) in enumerate(records):
            p.produce(topic, key=key, value=value, headers=list(headers), on_delivery=report(i))
        assert p.flush(deadline_s) == 0
        assert not errors, errors
        return out

    def consumer(self, group: str, topics: list[str], **extra: Any) -> ConfluentConsumer:
        return ConfluentConsumer(self, group, topics, extra)

    def close(self) -> None:
        pass


class ConfluentConsumer:
    def __init__(self, adapter: ConfluentAdapter, group: str, topics: list[str],
                 extra: dict[str, Any]) -> None:
        self.ck = adapter.ck
        self.c = adapter.ck.Consumer({
            "bootstrap.servers": adapter.bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "fetch.wait.max.ms": 10, "heartbeat.interval.ms": 100,
            "session.timeout.ms": 6000, **extra,
        })
        self.c.subscribe(topics)

    def poll(self, count: int) -> list[Got]:
        got: list[Got] = []
        end = time.monotonic() + deadline_s
        while len(got) < count and time.monotonic() < end:
            m = self.c.poll(0.2)
            if m is None:
                continue
            assert m.error() is None, m.error()
            got.append(Got(m.partition(), m.offset(), m.key(), m.value(),
                           tuple(m.headers() or ())))
        return got

    def poll_nothing(self, rounds: int = 5) -> list[Got]:
        got = []
        for _ in range(rounds):
            m = self.c.poll(0.1)
            if m is not None and m.error() is None:
                got.append(m)
        return got

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.c.assignment()}

    def commit(self) -> None:
        self.c.commit(asynchronous=False)

    def committed(self, topic: str, partitions: int) -> dict[int, int]:
        tps = [self.ck.TopicPartition(topic, i) for i in range(partitions)]
        return {tp.partition: tp.offset for tp in self.c.committed(tps, timeout=deadline_s)}

    def close(self) -> None:
        self.c.close()


class KafkaPythonAdapter:
    name = "kafka-python"

    def __init__(self, bootstrap: str) -> None:
        import kafka

        self.kafka = kafka
        self.bootstrap = bootstrap
        self.admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap)

    def create_topic(self, name: str, partitions: int) -> None:
        from kafka.admin import NewTopic

        self.admin.create_topics([NewTopic(name, partitions, 1)])

    def delete_topic(self, name: str) -> None:
        self.admin.delete_topics([name])

    def list_topics(self) -> set[str]:
        return set(self.admin.list_topics())

    def produce(self, topic: str, records: list[tuple], *, compression: str = "none",
                idempotent: bool = True) -> list[tuple[int, int]]:
        p = self.kafka.KafkaProducer(
            bootstrap_servers=self.bootstrap, linger_ms=5, enable_idempotence=idempotent,
            compression_type=None if compression == "none" else compression,
        )
        try:
            futures = [p.send(topic, key=k, value=v, headers=list(h)) for k, v, h in records]
            p.flush(deadline_s)
            metas = [f.get(deadline_s) for f in futures]
        finally:
            p.close()
        return [(m.partition, m.offset) for m in metas]

    def consumer(self, group: str, topics: list[str], **extra: Any) -> KafkaPythonConsumer:
        return KafkaPythonConsumer(self, group, topics, extra)

    def close(self) -> None:
        self.admin.close()


class KafkaPythonConsumer:
    def __init__(self, adapter: KafkaPythonAdapter, group: str, topics: list[str],
                 extra: dict[str, Any]) -> None:
        self.kafka = adapter.kafka
        self.c = adapter.kafka.KafkaConsumer(
            *topics, bootstrap_servers=adapter.bootstrap, group_id=group,
            auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=10,
            heartbeat_interval_ms=100, session_timeout_ms=6000, **extra,
        )
        # kafka-python (3.0.12) joins the group before it has metadata for a named
        # subscription (its bootstrap Metadata asks for no topics, and a Kafka broker
        # answers with none), so the leader assigns nothing ("No partition metadata")
        # and the member rejoins once the metadata comes. If a poll() times out while
        # that rejoin's SyncGroup is in flight, kafka-python never applies the
        # assignment and stops heartbeating: the member reads nothing and is expired
        # (a flaky test). Fetching the topics' metadata first makes the first join
        # assign them, with no rejoin. (noida-db answers that Metadata with every
        # topic, which is why the race showed only against eventlog.)
        for topic in topics:
            self.c.partitions_for_topic(topic)

    def poll(self, count: int) -> list[Got]:
        got: list[Got] = []
        end = time.monotonic() + deadline_s
        while len(got) < count and time.monotonic() < end:
            for msgs in self.c.poll(200).values():
                got.extend(Got(m.partition, m.offset, m.key, m.value, tuple(m.headers))
                           for m in msgs)
        return got

    def poll_nothing(self, rounds: int = 5) -> list[Any]:
        got = []
        for _ in range(rounds):
            for msgs in self.c.poll(100).values():
                got.extend(msgs)
        return got

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.c.assignment()}

    def commit(self) -> None:
        self.c.commit()

    def committed(self, topic: str, partitions: int) -> dict[int, int]:
        tp = self.kafka.TopicPartition
        out = {}
        for i in range(partitions):
            value = self.c.committed(tp(topic, i))
            out[i] = -1001 if value is None else value
        return out

    def close(self) -> None:
        self.c.close()


class AiokafkaAdapter:
    """aiokafka is asyncio-only: its coroutines run on a loop in a thread of its own."""

    name = "aiokafka"

    def __init__(self, bootstrap: str) -> None:
        import asyncio
        import threading

        import aiokafka

        self.aiokafka = aiokafka
        self.bootstrap = bootstrap
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(deadline_s * 2)

    async def _admin(self, call: str, *args: Any) -> Any:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            return await getattr(admin, call)(*args)
        finally:
            await admin.close()

    def create_topic(self, name: str, partitions: int) -> None:
        from aiokafka.admin import NewTopic

        self.run(self._admin("create_topics", [NewTopic(name, partitions, 1)]))

    def delete_topic(self, name: str) -> None:
        self.run(self._admin("delete_topics", [name]))

    def list_topics(self) -> set[str]:
        return set(self.run(self._admin("list_topics")))

    def produce(self, topic: str, records: list[tuple], *, compression: str = "none",
                idempotent: bool = True) -> list[tuple[int, int]]:
        import asyncio

        async def go() -> list[tuple[int, int]]:
            p = self.aiokafka.AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, linger_ms=5, enable_idempotence=idempotent,
                compression_type=None if compression == "none" else compression,
            )
            await p.start()
            try:
                futures = [await p.send(topic, value=v, key=k, headers=list(h))
                           for k, v, h in records]
                metas = await asyncio.gather(*futures)
            finally:
                await p.stop()
            return [(m.partition, m.offset) for m in metas]

        return self.run(go())

    def consumer(self, group: str, topics: list[str], **extra: Any) -> AiokafkaConsumer:
        return AiokafkaConsumer(self, group, topics, extra)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class AiokafkaConsumer:
    def __init__(self, adapter: AiokafkaAdapter, group: str, topics: list[str],
                 extra: dict[str, Any]) -> None:
        self.a = adapter

        async def make() -> Any:
            c = adapter.aiokafka.AIOKafkaConsumer(
                *topics, bootstrap_servers=adapter.bootstrap, group_id=group,
                auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=10,
                heartbeat_interval_ms=100, session_timeout_ms=6000, **extra,
            )
            await c.start()
            return c

        self.c = adapter.run(make())

    def _getmany(self, timeout_ms: int) -> list[Got]:
        batches = self.a.run(self.c.getmany(timeout_ms=timeout_ms))
        return [Got(m.partition, m.offset, m.key, m.value, tuple(m.headers))
                for msgs in batches.values() for m in msgs]

    def poll(self, count: int) -> list[Got]:
        got: list[Got] = []
        end = time.monotonic() + deadline_s
        while len(got) < count and time.monotonic() < end:
            got.extend(self._getmany(200))
        return got

    def poll_nothing(self, rounds: int = 5) -> list[Got]:
        got: list[Got] = []
        for _ in range(rounds):
            got.extend(self._getmany(100))
        return got

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.c.assignment()}

    def commit(self) -> None:
        self.a.run(self.c.commit())

    def committed(self, topic: str, partitions: int) -> dict[int, int]:
        tp = self.a.aiokafka.TopicPartition
        out = {}
        for i in range(partitions):
            value = self.a.run(self.c.committed(tp(topic, i)))
            out[i] = -1001 if value is None else value
        return out

    def close(self) -> None:
        self.a.run(self.c.stop())


ADAPTERS = {"confluent-kafka": ("confluent_kafka", ConfluentAdapter),
            "kafka-python": ("kafka", KafkaPythonAdapter),
            "aiokafka": ("aiokafka", AiokafkaAdapter)}
