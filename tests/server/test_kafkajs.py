"""kafkajs (Node) against ``eventlog.serve`` and the reference broker: the client-level
suite of test_clients.py for the fourth client, driven through js/client.js.

kafkajs comes from npm, pinned by js/package-lock.json; .ci/run installs it with
``npm ci``, and the fixture does the same when it is missing. Without node and npm
the tests skip with that reason, except in CI, where they fail: CI must run them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_clients import Target, ends_of, java_partition, records, target  # noqa: F401

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "kafkajs needs node and npm (Node 18 or later) on PATH"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the kafkajs suite")
        pytest.skip(reason)
    if not (JS / "node_modules" / "kafkajs").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True,
                       capture_output=True, timeout=300)
    return node


class KafkaJs:
    def __init__(self, node: str, bootstrap: str) -> None:
        self.node, self.bootstrap = node, bootstrap

    def run(self, *args: str, stdin: str = "") -> Any:
        done = subprocess.run([self.node, str(JS / "client.js"), self.bootstrap, *args],
                              input=stdin, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def produce(self, topic: str, sent: list[tuple], codec: str = "none") -> list[tuple]:
        lines = "".join(json.dumps({
            "key": b64(k), "value": b64(v), "headers": [[n, b64(hv)] for n, hv in h],
        }) + "\n" for k, v, h in sent)
        return [tuple(x) for x in self.run("produce", topic, codec, stdin=lines)]

    def consume(self, group: str, topic: str, count: int) -> tuple[list[tuple], dict]:
        out = self.run("consume", group, topic, str(count))
        got = [(r["partition"], r["offset"], unb64(r["key"]), unb64(r["value"]),
                tuple((n, unb64(v)) for n, v in r["headers"])) for r in out["records"]]
        return got, {int(p): o for p, o in out["committed"].items()}


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@pytest.fixture
def kafkajs(node: str, target: Target) -> KafkaJs:  # noqa: F811
    return KafkaJs(node, target.bootstrap)


def test_produce_consume_commit_resume(kafkajs: KafkaJs, target: Target) -> None:  # noqa: F811
    kafkajs.run("create", "orders", "3")
    sent = records(30)
    landed = kafkajs.produce("orders", sent)
    for (key, _v, _h), (partition, _offset) in zip(sent, landed):
        assert partition == java_partition(key, 3), key  # kafkajs's default is murmur2
    assert len(set(landed)) == 30
    ends = ends_of(landed, 3)
    log = target.log
    if log is not None:
        stored = {r.key: r for p in log.topic("orders").partitions for r in p.read(0, 100)}
        assert stored[b"k7"].value == b"value-7"
        assert stored[b"k7"].headers == (("n", b"7"), ("source", b"wire"))

    got, committed = kafkajs.consume("billing", "orders", 30)
    assert sorted(g[2] for g in got) == sorted(k for k, _v, _h in sent)
    assert {(g[0], g[1]) for g in got} == set(landed)
    by_key = {g[2]: g for g in got}
    assert by_key[b"k3"][3] == b"value-3"
    assert set(by_key[b"k3"][4]) == {("n", b"3"), ("source", b"wire")}
    assert committed == ends
    if log is not None:
        described = {po.topic_partition.partition: po.committed_offset
                     for po in log.describe_group("billing").offsets}
        assert described == ends

    # a restarted member resumes at the commit: it sees only what came after
    new = [(f"new{i}".encode(), b"more", (("source", b"second"),)) for i in range(6)]
    if log is not None:  # written in-process, read over the wire
        with log.producer() as producer:
            for key, value, headers in new:
                producer.send("orders", key=key, value=value, headers=list(headers))
    else:
        kafkajs.produce("orders", new)
    got, committed = kafkajs.consume("billing", "orders", 6)
    assert sorted(g[2] for g in got) == sorted(k for k, _v, _h in new)
    assert all(g[1] >= ends[g[0]] for g in got)
    assert sum(committed.values()) == 36


def test_in_process_consumer_reads_kafkajs_records(kafkajs: KafkaJs, target: Target) -> None:  # noqa: F811
    log = target.log
    if log is None:
        pytest.skip("in-process clients exist only on eventlog")
    kafkajs.run("create", "events", "3")
    kafkajs.produce("events", records(12, "e"))
    consumer = log.consumer("events", group_id="shared", auto_offset_reset="earliest",
                            enable_auto_commit=False)
    got: list[Any] = []
    for _ in range(50):
        got.extend(consumer.poll(timeout_ms=100))
        if len(got) >= 12:
            break
    assert sorted(r.key for r in got) == sorted(f"e{i}".encode() for i in range(12))
    consumer.commit()
    consumer.close()
    # kafkajs in the same group starts at the in-process commit: nothing left to read
    ends = {p.index: p.end_offset for p in log.topic("events").partitions}
    got_wire, committed = kafkajs.consume("shared", "events", 0)
    assert got_wire == []
    assert committed == ends


def test_gzip_and_admin(kafkajs: KafkaJs, target: Target) -> None:  # noqa: F811
    # kafkajs ships gzip only; its snappy, lz4 and zstd codecs are separate native packages
    kafkajs.run("create", "packed", "3")
    sent = records(10, "gz")
    kafkajs.produce("packed", sent, "gzip")
    if target.log is not None:
        stored = sorted((r.key, r.value, r.headers)
                        for p in target.log.topic("packed").partitions for r in p.read(0, 100))
        assert stored == sorted(sent)
    got, _ = kafkajs.consume("gz", "packed", 10)
    assert sorted(g[2] for g in got) == sorted(k for k, _v, _h in sent)
    assert "packed" in kafkajs.run("topics")
    kafkajs.run("delete", "packed")
    if target.log is not None:
        assert "packed" not in target.log.topics()
