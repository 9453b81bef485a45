"""kcat (librdkafka's command-line client, Debian's ``kcat`` package) against
``eventlog.serve`` and the reference broker: -P produce, -C and -G consume, -L metadata.

.ci/run installs kcat with apt-get when it runs as root and kcat is missing; without
kcat these tests skip with that reason.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from typing import Any

import pytest
from test_clients import Target, java_partition, target  # noqa: F401
from wire_clients import ConfluentAdapter

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat is not installed (apt-get install kcat)")
FORMAT = "%p|%o|%k|%s|%h\\n"


def kcat(target: Target, *args: str, stdin: str = "") -> str:  # noqa: F811
    assert KCAT is not None
    done = subprocess.run([KCAT, "-b", target.bootstrap, *args], input=stdin,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def create_topic(target: Target, name: str, partitions: int) -> None:  # noqa: F811
    if target.log is not None:
        target.log.create_topic(name, partitions=partitions)
        return
    if importlib.util.find_spec("confluent_kafka") is None:
        pytest.skip("creating a topic on the reference broker needs confluent-kafka")
    ConfluentAdapter(target.bootstrap).create_topic(name, partitions)


def parse(out: str) -> list[tuple[int, int, str, str, str]]:
    rows = []
    for line in out.splitlines():
        p, o, k, v, h = line.split("|")
        rows.append((int(p), int(o), k, v, h))
    return rows


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_then_consume(target: Target, codec: str) -> None:  # noqa: F811
    create_topic(target, "lines", 3)
    lines = "".join(f"key{i}:value {i}\n" for i in range(20))
    kcat(target, "-P", "-t", "lines", "-K:", "-H", "via=kcat", "-z", codec,
         "-X", "partitioner=murmur2_random", stdin=lines)
    if target.log is not None:
        stored = [(p.index, r.key, r.value, r.headers)
                  for p in target.log.topic("lines").partitions for r in p.read(0, 100)]
        assert sorted(stored) == sorted(
            (java_partition(f"key{i}".encode(), 3), f"key{i}".encode(), f"value {i}".encode(),
             (("via", b"kcat"),)) for i in range(20))
    rows = parse(kcat(target, "-C", "-t", "lines", "-e", "-f", FORMAT))
    assert sorted(r[2] for r in rows) == sorted(f"key{i}" for i in range(20))
    for p, _o, k, v, h in rows:
        assert p == java_partition(k.encode(), 3)
        assert v == f"value {k[3:]}"
        assert h == "via=kcat"
    assert len({(r[0], r[1]) for r in rows}) == 20


def test_group_consume_commits(target: Target) -> None:  # noqa: F811
    create_topic(target, "jobs", 3)
    kcat(target, "-P", "-t", "jobs", "-K:", stdin="".join(f"j{i}:{i}\n" for i in range(12)))
    first = parse(kcat(target, "-G", "crew", "jobs", "-e", "-f", FORMAT,
                       "-X", "auto.offset.reset=earliest"))
    assert sorted(r[2] for r in first) == sorted(f"j{i}" for i in range(12))
    if target.log is not None:  # kcat committed on its way out, into the log's group store
        committed = {po.topic_partition.partition: po.committed_offset
                     for po in target.log.describe_group("crew").offsets}
        assert committed == {p.index: p.end_offset for p in target.log.topic("jobs").partitions}
    # the group resumes at its commit: only the new records come back
    kcat(target, "-P", "-t", "jobs", "-K:", stdin="late:x\n")
    again = parse(kcat(target, "-G", "crew", "jobs", "-e", "-f", FORMAT,
                       "-X", "auto.offset.reset=earliest"))
    assert [r[2] for r in again] == ["late"]


def test_metadata(target: Target) -> None:  # noqa: F811
    create_topic(target, "listed", 4)
    meta: dict[str, Any] = json.loads(kcat(target, "-L", "-J"))
    host, port = target.bootstrap.rsplit(":", 1)
    assert [b["name"] for b in meta["brokers"]] == [f"{host}:{port}"]
    leader = meta["brokers"][0]["id"]
    topics = {t["topic"]: t for t in meta["topics"]}
    assert [p["partition"] for p in topics["listed"]["partitions"]] == [0, 1, 2, 3]
    assert all(p["leader"] == leader for p in topics["listed"]["partitions"])
    one = json.loads(kcat(target, "-L", "-J", "-t", "listed"))
    assert [t["topic"] for t in one["topics"]] == ["listed"]
