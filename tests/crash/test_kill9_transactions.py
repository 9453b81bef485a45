"""kill -9 during transactions: every transaction is committed or aborted, never partial.

A child runs the consume-transform-produce loop (read topic ``in`` in a group, write
each record to ``out`` with the offsets in the same transaction) and is killed with
SIGKILL at a random point, many times; a last run drains the rest. Then ``out`` read
with read_committed holds every input record exactly once, in order.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eventlog
from eventlog.records import TopicPartition

pytestmark = pytest.mark.slow

INPUT_RECORDS = 300
KILLS = 12
CHILD_TIMEOUT_S = 60

LOOP = r"""
    import sys
    import eventlog
    from eventlog.records import TopicPartition
    with eventlog.open(sys.argv[1]) as log:
        consumer = log.consumer("in", group_id="g", auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level="read_committed")
        producer = eventlog.Producer(log, transactional_id="ctp", linger_ms=0)
        producer.init_transactions()
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        idle = 0
        while idle < 3:
            records = consumer.poll(100, max_records=int(sys.argv[2]))
            if not records:
                idle += 1
                continue
            idle = 0
            producer.begin_transaction()
            for r in records:
                producer.send("out", r.value, key=r.key)
            producer.send_offsets_to_transaction(
                {TopicPartition("in", 0): records[-1].offset + 1}, consumer.group_metadata())
            producer.commit_transaction()
            sys.stdout.write(f"{records[-1].offset}\n")
            sys.stdout.flush()
        sys.stdout.write("drained\n")
"""


def run(path: Path, batch: int, kill_after_lines: int | None) -> list[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LOOP), str(path), str(batch)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    out = []
    if kill_after_lines is None:
        stdout, err = child.communicate(timeout=CHILD_TIMEOUT_S)
        assert child.returncode == 0, err
        return stdout.split()
    for _ in range(kill_after_lines):
        line = child.stdout.readline()
        if not line:
            break
        out.append(line.strip())
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=CHILD_TIMEOUT_S)
    return out


def test_consume_transform_produce_is_exactly_once_through_kill_9(tmp_path: Path) -> None:
    rng = random.Random(14)
    with eventlog.open(tmp_path) as log:
        log.create_topic("in", 1)
        log.create_topic("out", 2)
        log.producer(linger_ms=0).send_batch(
            "in", [(b"k%d" % (i % 7), b"%d" % i) for i in range(INPUT_RECORDS)])
    for _ in range(KILLS):
        run(tmp_path, rng.randint(1, 9), rng.randint(1, 6))
    assert "drained" in run(tmp_path, 10, None)
    with eventlog.open(tmp_path) as log:
        for index in range(2):
            assert log.partition("out", index).open_transactions() == {}
        c = log.consumer(isolation_level="read_committed", auto_offset_reset="earliest")
        c.assign([TopicPartition("out", 0), TopicPartition("out", 1)])
        values: dict[bytes, list[int]] = {}
        seen = []
        while batch := c.poll():
            for r in batch:
                values.setdefault(r.key, []).append(int(r.value))
                seen.append(int(r.value))
        assert sorted(seen) == list(range(INPUT_RECORDS))  # each exactly once
        for key, vs in values.items():
            assert vs == sorted(vs), key  # in order per key
        group = log.consumer(group_id="g")
        assert group.committed(TopicPartition("in", 0)) == INPUT_RECORDS
