"""The ``eventlog`` command line, each command run as a subprocess against a data
directory that another process (a writer with a group member) holds open."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventlog

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="subprocess pipes, signals")
SRC = str(Path(eventlog.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": SRC}

HOLDER = r"""
import sys, eventlog
log = eventlog.open(sys.argv[1])
t = log.create_topic("orders", 2, exist_ok=True, segment_bytes=4096, index_interval_bytes=256)
t.partition(0).append([(b"k%d" % i, b"value %d" % i) for i in range(100)], timestamp_ms=1000)
t.partition(1).append([(b"x", b"\xff\x00")], timestamp_ms=5000)
member = log.consumer("orders", group_id="billing", client_id="billing-1",
                      auto_offset_reset="earliest")
member.poll(1000)
member.commit()
t.partition(0).append([(b"late", b"v")], timestamp_ms=9000)
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "append":
        t.partition(int(cmd[1])).append([(None, cmd[2].encode())])
    print("ok", flush=True)
log.close()
"""


class Holder:
    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], env=ENV,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "ready\n"

    def append(self, partition: int, value: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"append {partition} {value}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n"

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            assert self.proc.wait(30) == 0


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, Holder]]:
    data = tmp_path / "data"
    holder = Holder(data)
    try:
        yield data, holder
    finally:
        holder.stop()


def cli(*args: object, stdin: str | None = None, check: int | None = 0
        ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "eventlog", *map(str, args)], env=ENV,
                            input=stdin, capture_output=True, text=True, timeout=120)
    if check is not None:
        assert result.returncode == check, (result.stdout, result.stderr)
    if result.returncode == 2:  # a user's mistake: one line, no traceback
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    return result


def test_version_and_usage_errors() -> None:
    assert cli("--version").stdout.strip() == f"eventlog {eventlog.__version__}"
    assert "invalid choice" in cli("nonsense", check=2).stderr
    assert "required" in cli("topics", check=2).stderr
    assert "no data directory" in cli("topics", "list", "/nonexistent/dir", check=2).stderr


def test_topics_list_and_describe(held) -> None:
    data, _ = held
    out = cli("topics", "list", data).stdout.splitlines()
    assert out[0].split() == ["TOPIC", "PARTITIONS", "RECORDS", "SIZE"]
    assert out[1].split()[:3] == ["orders", "2", "102"]
    rows = json.loads(cli("topics", "list", data, "--json").stdout)
    assert [r["topic"] for r in rows] == ["orders"] and rows[0]["records"] == 102
    assert "__consumer_offsets" in cli("topics", "list", data, "--include-internal").stdout
    described = json.loads(cli("topics", "describe", data, "orders", "--json").stdout)[0]
    assert described["configs"] == {"segment_bytes": 4096, "index_interval_bytes": 256}
    assert [(p["start_offset"], p["end_offset"]) for p in described["partition_detail"]] == [
        (0, 101), (0, 1)]
    text = cli("topics", "describe", data).stdout
    assert "Topic: orders\tPartitionCount: 2" in text
    assert "unknown topic" in cli("topics", "describe", data, "nope", check=2).stderr.lower()


def test_topic_changes_are_refused_while_held_and_work_once_free(held) -> None:
    data, holder = held
    for args in (("create", data, "new", "--partitions", "2"), ("delete", data, "orders"),
                 ("alter", data, "orders", "--partitions", "3")):
        err = cli("topics", *args, check=2).stderr
        assert "open in another process" in err
    holder.stop()
    assert "Created topic new" in cli("topics", "create", data, "new", "--partitions", "3",
                                      "--config", "retention.ms=60000").stdout
    assert "retention.ms" in cli("topics", "create", data, "bad", "--config", "retention.mss=1",
                                 check=2).stderr
    cli("topics", "create", data, "new", "--partitions", "3", "--if-not-exists")
    assert "already exists" in cli("topics", "create", data, "new", check=2).stderr
    cli("topics", "alter", data, "new", "--partitions", "4")
    cli("topics", "delete", data, "orders")
    rows = json.loads(cli("topics", "describe", data, "new", "--json").stdout)
    assert rows[0]["partitions"] == 4 and rows[0]["configs"] == {"retention_ms": 60000}
    assert [r["topic"] for r in json.loads(cli("topics", "list", data, "--json").stdout)] == [
        "new"]


def test_produce_is_refused_while_held_and_appends_lines_once_free(held) -> None:
    data, holder = held
    assert "open in another process" in cli("produce", data, "orders", stdin="a\n",
                                            check=2).stderr
    holder.stop()
    cli("produce", data, "orders", "-k", ":", "-p", "1", "-H", "src=cli",
        stdin="k1:v1\nno key here\nk2:v2\n")
    out = cli("consume", data, "orders", "-p", "1", "--offset", "1", "--format",
              "%o %k %v %h").stdout
    assert out.splitlines() == ["1 k1 v1 src=cli", "2  no key here src=cli", "3 k2 v2 src=cli"]
    assert "partition" in cli("produce", data, "orders", "-p", "7", stdin="x\n",
                              check=2).stderr


def test_consume_starts_and_stops_where_asked(held) -> None:
    data, _ = held
    out = cli("consume", data, "orders", "--from-beginning", "-n", "3",
              "--format", "%p:%o %k=%v").stdout
    assert out.splitlines() == ["0:0 k0=value 0", "0:1 k1=value 1", "0:2 k2=value 2"]
    assert cli("consume", data, "orders").stdout == ""  # the end, and no --follow
    last = cli("consume", data, "orders", "-p", "0", "--offset", "99").stdout.splitlines()
    assert last == ["value 99", "v"]
    since = cli("consume", data, "orders", "--since", "1970-01-01T00:00:06Z").stdout
    assert since.splitlines() == ["v"]
    assert cli("consume", data, "orders", "--since", "PT1H").stdout == ""  # all older
    assert "not a time" in cli("consume", data, "orders", "--since", "noon", check=2).stderr
    rows = [json.loads(line) for line in
            cli("consume", data, "orders", "-p", "1", "--from-beginning", "--json").stdout
            .splitlines()]
    assert rows == [{"topic": "orders", "partition": 1, "offset": 0, "timestamp": 5000,
                     "key": "x", "value_base64": "/wA=", "headers": []}]
    group = cli("consume", data, "orders", "--group", "billing").stdout  # committed: 100
    assert group.splitlines() == ["v"]
    assert "--partition" in cli("consume", data, "orders", "--offset", "3", check=2).stderr


def test_consume_follow_prints_what_the_writer_appends(held) -> None:
    data, holder = held
    proc = subprocess.Popen([sys.executable, "-m", "eventlog", "consume", str(data), "orders",
                             "-p", "1", "--offset", "1", "--follow", "-n", "2"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder.append(1, "first")  # offsets 1 and 2: after the consumer's start, or at it
    holder.append(1, "second")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["first", "second"]


def test_groups_list_and_describe_show_the_writers_member_and_lag(held) -> None:
    data, _ = held
    out = cli("groups", "list", data).stdout.splitlines()
    assert out[1].split() == ["billing", "Stable"]
    described = json.loads(cli("groups", "describe", data, "billing", "--json").stdout)[0]
    assert described["state"] == "Stable" and described["generation"] == 1
    assert [m["client_id"] for m in described["members"]] == ["billing-1"]
    lag = {(p["topic"], p["partition"]): (p["committed_offset"], p["end_offset"], p["lag"],
                                          p["owner"]) for p in described["partitions"]}
    assert lag == {("orders", 0): (100, 101, 1, "billing-1"),
                   ("orders", 1): (1, 1, 0, "billing-1")}
    text = cli("groups", "describe", data, "billing").stdout
    assert "CURRENT-OFFSET" in text and "billing-1" in text
    assert "does not exist" in cli("groups", "describe", data, "nope", check=2).stderr
    assert "open in another process" in cli("groups", "delete", data, "billing",
                                            check=2).stderr


def test_reset_offsets_dry_run_then_execute(held) -> None:
    data, holder = held
    plan = json.loads(cli("groups", "reset-offsets", data, "billing", "--topic", "orders",
                          "--to-earliest", "--json").stdout)
    assert [(r["partition"], r["current_offset"], r["new_offset"]) for r in plan] == [
        (0, 100, 0), (1, 1, 0)]
    text = cli("groups", "reset-offsets", data, "billing", "--topic", "orders:0",
               "--shift-by", "-10").stdout
    assert "Dry run" in text and "90" in text
    for how in (("--to-latest",), ("--to-offset", "500"), ("--to-datetime", "1970-01-01T00:00:02"),
                ("--by-duration", "PT1H")):
        rows = json.loads(cli("groups", "reset-offsets", data, "billing", "--topic", "orders:0",
                              *how, "--json").stdout)
        assert rows[0]["new_offset"] == {"--to-latest": 101, "--to-offset": 101,
                                         "--to-datetime": 100, "--by-duration": 101}[how[0]]
    assert "duration" in cli("groups", "reset-offsets", data, "billing", "--topic", "orders",
                             "--by-duration", "1 hour", check=2).stderr
    assert "open in another process" in cli("groups", "reset-offsets", data, "billing",
                                            "--topic", "orders", "--to-earliest", "--execute",
                                            check=2).stderr
    with eventlog.open(data, read_only=True) as log:  # nothing was committed
        assert {o.committed_offset for o in log.describe_group("billing").offsets} == {100, 1}
    holder.stop()
    cli("groups", "reset-offsets", data, "billing", "--topic", "orders:0", "--shift-by", "-10",
        "--execute")
    with eventlog.open(data) as log:
        offsets = {o.topic_partition.partition: o.committed_offset
                   for o in log.describe_group("billing").offsets}
        assert offsets == {0: 90, 1: 1}
    cli("groups", "delete", data, "billing")
    assert json.loads(cli("groups", "list", data, "--json").stdout) == []


def test_dump_prints_batches_records_and_index_entries(held) -> None:
    data, _ = held
    segment = data / "orders-1" / "00000000000000000000.log"
    text = cli("dump", segment, "--print-data").stdout
    assert "baseOffset: 0 lastOffset: 0 count: 1" in text and "isvalid: True" in text
    assert "| offset: 0 CreateTime: 5000 key: x payload: 0xff00" in text
    batches = json.loads(cli("dump", data / "orders-0" / "00000000000000000000.log",
                             "--json").stdout)
    assert batches[0]["count"] == 100 and batches[-1]["lastOffset"] == 100
    index = sorted((data / "orders-0").glob("*.index"))
    assert index and isinstance(json.loads(cli("dump", index[0], "--json").stdout), list)
    assert "not a segment file" in cli("dump", data / "topics.msgpack", check=2).stderr


def test_verify_passes_a_healthy_log_and_lists_damage(held, tmp_path: Path) -> None:
    data, holder = held
    out = cli("verify", data).stdout
    assert out.startswith("OK: 3 partition(s)")
    assert json.loads(cli("verify", data, "--json").stdout)["damage"] == []
    holder.stop()
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    segment = copy / "orders-0" / "00000000000000000000.log"
    raw = bytearray(segment.read_bytes())
    raw[200] ^= 0xFF  # inside the first batch's records
    segment.write_bytes(bytes(raw))
    (copy / "orders-0" / "00000000000000000000.index").write_bytes(b"\x00\x00\x00\x05" * 2)
    result = cli("verify", copy, check=1)
    assert "fails its CRC" in result.stdout and ".index" in result.stdout
    damage = json.loads(cli("verify", copy, "--json", check=1).stdout)["damage"]
    assert {d["partition"] for d in damage} == {"orders-0"}


def test_serve_and_demo_are_still_there() -> None:
    assert "serve" in cli("--help").stdout and "demo" in cli("--help").stdout
    assert "--auto-create-topics" in cli("serve", "--help").stdout
