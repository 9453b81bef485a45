"""Readers in other processes tail a writer that is killed (kill -9) and restarted.

A writer child appends batches (rolling segments often, deleting old ones now and
then) and prints each acknowledged batch. Two reader children open the same
directory with ``read_only=True`` and poll an assigned consumer until they have
read up to a target offset, checking as they go that offsets only increase and that
every record is the one the writer wrote at that offset (keys and values are derived
from the offset). The parent kills the writer at random moments and starts it again,
then checks that every record a reader returned is in the log the last writer left
(nothing a reader saw was later cut by a recovery: it was acknowledged data).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

import eventlog

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL"),
]

SRC = os.path.dirname(os.path.dirname(os.path.abspath(eventlog.__file__)))
ROUNDS = 6
TARGET = 6000

WRITER = r"""
import random, sys
import eventlog

def key(o): return b"k%d" % o
def value(o): return b"%d:" % o * (o % 13 + 1)

path, seed, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
log = eventlog.open(path)
if "t" not in log.topics():
    log.create_topic("t", segment_bytes=16 * 1024, index_interval_bytes=512)
p = log.partition("t", 0)
print("ready %d" % p.end_offset, flush=True)
while p.end_offset < target:
    start = p.end_offset
    n = min(rng.randint(1, 8), target - start)
    p.append([(key(o), value(o)) for o in range(start, start + n)], expected_offset=start,
             compression=rng.choice(("none", "none", "lz4", "zstd")))
    print("ack %d %d" % (start, n), flush=True)
    if rng.random() < 0.01 and p.end_offset > 3000:
        p.delete_before(p.end_offset - 3000)  # segments go while readers tail
log.close()
print("done", flush=True)
"""

READER = r"""
import sys
import eventlog
from eventlog import TopicPartition

def key(o): return b"k%d" % o
def value(o): return b"%d:" % o * (o % 13 + 1)

path, target, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = eventlog.open(path, read_only=True)
consumer = log.consumer(auto_offset_reset="earliest")
while True:
    try:
        consumer.assign([TopicPartition("t", 0)])
        break
    except eventlog.UnknownTopicError:
        log.wait_for_data(log.data_version, 10)
last = -1
seen = []
while last < target - 1:
    for r in consumer.poll(timeout_ms=100):
        assert r.offset > last, (r.offset, last)
        assert r.key == key(r.offset) and r.value == value(r.offset), r
        last = r.offset
        seen.append(r.offset)
with open(out, "w") as f:
    f.write(" ".join(map(str, seen)))
print("read %d" % len(seen), flush=True)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _spawn(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(), text=True)


def test_readers_in_other_processes_follow_a_killed_and_restarted_writer(tmp_path) -> None:
    rng = random.Random(1234)
    writer_py = tmp_path / "writer.py"
    writer_py.write_text(WRITER)
    reader_py = tmp_path / "reader.py"
    reader_py.write_text(READER)
    data = str(tmp_path / "data")
    acked: set[int] = set()

    def run_writer(seed: int, acks_before_kill: int | None) -> None:
        child = _spawn(str(writer_py), data, str(seed), str(TARGET))
        assert child.stdout is not None
        assert child.stdout.readline().startswith("ready")
        count = 0
        for line in child.stdout:
            if line.startswith("ack"):
                _, first, n = line.split()
                acked.update(range(int(first), int(first) + int(n)))
                count += 1
                if acks_before_kill is not None and count >= acks_before_kill:
                    child.kill()  # SIGKILL: mid-append, mid-roll, mid-deletion
                    break
        child.wait()

    run_writer(0, 50)  # the topic exists before the readers start
    readers = [_spawn(str(reader_py), data, str(TARGET), str(tmp_path / f"seen{i}"))
               for i in range(2)]
    for seed in range(1, ROUNDS):
        run_writer(seed, rng.randint(20, 400))
    run_writer(ROUNDS, None)  # the last writer reaches the target and closes cleanly
    for reader in readers:
        stdout, stderr = reader.communicate(timeout=120)
        assert reader.returncode == 0, stderr
        assert stdout.startswith("read")

    with eventlog.open(data) as log:
        p = log.partition("t", 0)
        assert p.end_offset == TARGET
        final = {r.offset: r for r in p.iter()}
        start = p.start_offset
    assert all(o in final for o in acked if o >= start)  # every acknowledged record kept
    for i in range(2):
        seen = [int(o) for o in (tmp_path / f"seen{i}").read_text().split()]
        assert seen == sorted(set(seen))
        assert seen[-1] == TARGET - 1
        for o in seen:  # every record returned survives every recovery
            assert o < start or o in final, o
