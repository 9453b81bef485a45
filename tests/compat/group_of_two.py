"""The code of issue 12's 50 ms test: produce 1,000 records, consume them in a group of
two. Shared by tests/compat/test_confluent_kafka.py (which checks what it returns) and
benchmarks/compat_group.py (which times it on eventlog.compat, on the real library
against the librdkafka mock, noida-db and eventlog serve)."""

from __future__ import annotations

from typing import Any

rounds_max = 600  # consume() rounds of both members before giving up (0.1 s each at most)


def group_of_two(module: Any, bootstrap: str, topic: str, group: str, n: int = 1000,
                 **conf: Any) -> list[list[tuple[int, int]]]:
    """Produce ``n`` keyed records to ``topic`` (two partitions, created by the caller),
    then consume them with two members of ``group`` until every record came; returns
    the (partition, offset) pairs each member got, in order."""
    producer = module.Producer({"bootstrap.servers": bootstrap, **conf})
    for i in range(n):
        producer.produce(topic, b"value-%d" % i, b"key-%d" % i)
    left = producer.flush(30)
    if left:
        raise AssertionError(f"{left} records were not delivered")
    member_conf = {"bootstrap.servers": bootstrap, "group.id": group,
                   "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10,
                   "heartbeat.interval.ms": 100, **conf}
    members = [module.Consumer(member_conf), module.Consumer(member_conf)]
    for m in members:
        m.subscribe([topic])
    got: list[list[tuple[int, int]]] = [[], []]
    seen: set[tuple[int, int]] = set()
    try:
        for _ in range(rounds_max):
            for i, m in enumerate(members):
                for msg in m.consume(500, 0.1):
                    if msg.error() is None:
                        got[i].append((msg.partition(), msg.offset()))
                        seen.add((msg.partition(), msg.offset()))
            if len(seen) >= n:
                break
    finally:
        for m in members:
            m.close()
    return got
