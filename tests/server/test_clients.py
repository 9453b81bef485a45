"""The client-level suite, run with each real Kafka client against ``eventlog.serve``.

Per client: a 3-partition topic created over the wire, 30 keyed records with
headers produced (idempotently), each on Java's ``murmur2(key) % 3`` partition,
consumed in a group, committed, the commit read back (over the wire and
in-process), a restarted member resuming at the commit, and records crossing
between wire clients and in-process producers and consumers both ways.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from wire_clients import ADAPTERS

import eventlog
from eventlog import TopicPartition


def java_partition(key: bytes, partitions: int) -> int:
    return (eventlog.murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.fixture(params=sorted(ADAPTERS))
def client(request: pytest.FixtureRequest, server: Any) -> Iterator[Any]:
    module, cls = ADAPTERS[request.param]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{request.param} is not installed (pip install {request.param})")
    adapter = cls(server.bootstrap_servers)
    yield adapter
    adapter.close()


def records(n: int, prefix: str = "k") -> list[tuple[bytes, bytes, tuple]]:
    return [(f"{prefix}{i}".encode(), f"value-{i}".encode(),
             (("n", str(i).encode()), ("source", b"wire"))) for i in range(n)]


def test_produce_consume_commit_resume(client: Any, log: eventlog.EventLog) -> None:
    client.create_topic("orders", 3)
    assert log.topic("orders").num_partitions == 3
    sent = records(30)
    landed = client.produce("orders", sent)
    for (key, _v, _h), (partition, _offset) in zip(sent, landed):
        assert partition == java_partition(key, 3), key
    assert sum(p.end_offset for p in log.topic("orders").partitions) == 30
    # what the wire producer wrote is in the log, headers included
    stored = {r.key: r for p in log.topic("orders").partitions for r in p.read(0, 100)}
    assert stored[b"k7"].value == b"value-7"
    assert stored[b"k7"].headers == (("n", b"7"), ("source", b"wire"))

    consumer = client.consumer("billing", ["orders"])
    got = consumer.poll(30)
    assert sorted(g.key for g in got) == sorted(k for k, _v, _h in sent)
    assert {(g.partition, g.offset) for g in got} == set(landed)
    by_key = {g.key: g for g in got}
    assert by_key[b"k3"].headers == (("n", b"3"), ("source", b"wire"))
    assert by_key[b"k3"].value == b"value-3"
    consumer.commit()
    ends = {p.index: p.end_offset for p in log.topic("orders").partitions}
    assert consumer.committed("orders", 3) == ends
    consumer.close()
    # the same commit, seen by the log's own group API
    described = {po.topic_partition: po.committed_offset
                 for po in log.describe_group("billing").offsets}
    assert described == {TopicPartition("orders", i): ends[i] for i in range(3)}

    # an in-process producer writes; a restarted member resumes at the commit
    with log.producer() as producer:
        for i in range(6):
            producer.send("orders", key=f"new{i}".encode(), value=b"in-process",
                          headers=[("source", b"in-process")])
    again = client.consumer("billing", ["orders"])
    got = again.poll(6)
    assert sorted(g.key for g in got) == sorted(f"new{i}".encode() for i in range(6))
    assert all(g.headers == (("source", b"in-process"),) for g in got)
    assert all(g.offset >= ends[g.partition] for g in got)
    assert again.poll_nothing() == []
    again.close()


def test_in_process_consumer_reads_wire_records_and_shares_commits(
    client: Any, log: eventlog.EventLog
) -> None:
    client.create_topic("events", 3)
    client.produce("events", records(12, "e"))
    consumer = log.consumer("events", group_id="shared", auto_offset_reset="earliest",
                            enable_auto_commit=False)
    got: list[Any] = []
    for _ in range(50):
        got.extend(consumer.poll(timeout_ms=100))
        if len(got) >= 12:
            break
    assert sorted(r.key for r in got) == sorted(f"e{i}".encode() for i in range(12))
    assert all(dict(r.headers)["source"] == b"wire" for r in got)
    consumer.commit()
    consumer.close()
    wire = client.consumer("shared", ["events"])
    ends = {p.index: p.end_offset for p in log.topic("events").partitions}
    assert wire.committed("events", 3) == ends
    assert wire.poll_nothing() == []  # it resumes at the in-process commit: nothing left
    wire.close()


def test_two_members_split_then_survivor_takes_all(client: Any, log: eventlog.EventLog) -> None:
    client.create_topic("jobs", 3)
    client.produce("jobs", records(30, "j"))
    first = client.consumer("workers", ["jobs"])
    assert len(first.poll(30)) == 30
    first.commit()
    second = client.consumer("workers", ["jobs"])
    with log.producer() as producer:
        for i in range(30):
            producer.send("jobs", key=f"late{i}".encode(), value=b"x")
    got_first: list[Any] = []
    got_second: list[Any] = []
    for _ in range(100):
        got_first += first.poll_nothing(1)
        got_second += second.poll_nothing(1)
        if len(got_first) + len(got_second) >= 30 and first.assignment() and second.assignment():
            break
    a, b = first.assignment(), second.assignment()
    assert a and b and not a & b and a | b == {0, 1, 2}
    second.close()
    with log.producer() as producer:
        for i in range(9):
            producer.send("jobs", key=f"after{i}".encode(), value=b"y")
    for _ in range(100):
        first.poll_nothing(1)
        if first.assignment() == {0, 1, 2}:
            break
    assert first.assignment() == {0, 1, 2}
    first.close()


def test_admin_create_list_delete(client: Any, log: eventlog.EventLog) -> None:
    client.create_topic("temp", 2)
    assert "temp" in client.list_topics()
    client.delete_topic("temp")
    assert "temp" not in log.topics()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_every_codec_round_trips(client: Any, log: eventlog.EventLog, codec: str) -> None:
    client.create_topic("packed", 3)
    sent = records(30, codec)
    client.produce("packed", sent, compression=codec)
    stored = sorted((r.key, r.value, r.headers) for p in log.topic("packed").partitions
                    for r in p.read(0, 100))
    assert stored == sorted(sent)
    consumer = client.consumer(f"codec-{codec}", ["packed"])
    got = consumer.poll(30)
    assert sorted((g.key, g.value, g.headers) for g in got) == sorted(sent)
    consumer.close()
