"""kill -9 at random moments (DESIGN invariants 2 and 3).

A child process opens a log on disk and appends batches in a loop, printing each
acknowledged batch (first offset, count) after ``append`` returns. The parent kills it
with SIGKILL at a random moment, then reopens the same directory and checks that every
acknowledged record reads back intact and that no record was invented: each record's
key and value are derived from its offset, so any record present can be checked. The
directory is reused, so each recovery runs on top of the previous ones; some rounds
leave the recovery to the next child, some kill the child before or while it opens
the log. The three fsync policies take turns.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time

import pytest

import eventlog
from eventlog.broker.log_dir import clean_shutdown_file

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and select() on pipes"),
]

SRC = os.path.dirname(os.path.dirname(os.path.abspath(eventlog.__file__)))
ROUNDS = 21
POLICIES = ("never", "interval", "always")

CHILD = r"""
import random, sys
import eventlog

def key(o): return b"k%d" % o
def value(o): return b"%d:" % o * (o % 13 + 1)

path, fsync, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
log = eventlog.open(path, fsync=fsync, flush_interval_ms=5, flush_interval_messages=50)
if "t" not in log.topics():
    log.create_topic("t", segment_bytes=32 * 1024, index_interval_bytes=512)
p = log.partition("t", 0)
out = sys.stdout
out.write("ready %d %d\n" % (log.recovery.clean, p.end_offset))
out.flush()
while True:
    start = p.end_offset
    n = rng.randint(1, 8)
    records = [(key(o), value(o)) for o in range(start, start + n)]
    first = p.append(records, expected_offset=start,
                     compression=rng.choice(("none", "none", "gzip", "snappy", "lz4", "zstd")))
    out.write("ack %d %d\n" % (first, n))
    out.flush()
"""


def key(offset: int) -> bytes:
    return b"k%d" % offset


def value(offset: int) -> bytes:
    return b"%d:" % offset * (offset % 13 + 1)


def spawn(script: str, path: str, fsync: str, seed: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, script, path, fsync, str(seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )


def kill_at_random(child: subprocess.Popen, rng: random.Random, *, early: bool) -> bytes:
    """SIGKILL the child: ``early``, at any moment from its start (maybe while it
    imports, opens or recovers); otherwise 5-100 ms after it reports ready."""
    output = b""
    if early:
        time.sleep(rng.uniform(0.0, 0.25))
    else:
        readable, _, _ = select.select([child.stdout], [], [], 30)
        assert readable, "the child did not start within 30 s"
        output = child.stdout.readline()
        assert output.startswith(b"ready"), (output, child.stderr.read())
        time.sleep(rng.uniform(0.005, 0.1))
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    output += child.stdout.read()
    stderr = child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    if child.returncode != -signal.SIGKILL:  # it died of something else: show why
        raise AssertionError(f"child exited with {child.returncode}: {stderr.decode()}")
    return output


def parse(output: bytes, acked_end: int) -> tuple[bool | None, int]:
    """The child's ready line (its recovery's clean flag) and the end of what it acked.
    Acks must continue densely from what earlier children acked."""
    clean = None
    for line in output.split(b"\n")[:-1]:  # a line without its newline was never acked
        words = line.split()
        if words[0] == b"ready":
            clean = words[1] == b"1"
            assert int(words[2]) >= acked_end  # nothing acked was lost across its recovery
        else:
            assert words[0] == b"ack", line
            first, count = int(words[1]), int(words[2])
            assert first >= acked_end
            assert count >= 1
            acked_end = first + count
    return clean, acked_end


def verify(path: str, acked_end: int, checked_end: int) -> int:
    """Reopen after the kill; return the end offset. Records below ``checked_end`` were
    verified in an earlier round (read again only at the end of the test)."""
    with eventlog.open(path) as log:
        assert not log.recovery.clean
        if "t" not in log.topics():
            assert acked_end == 0
            return 0
        p = log.partition("t", 0)
        p.check()
        end = p.end_offset
        assert end >= acked_end, f"acknowledged up to {acked_end} but the log ends at {end}"
        assert p.start_offset == 0
        check_records(p, checked_end, end)
    with eventlog.open(path) as log:  # a clean close, then a reopen that scans nothing
        assert log.recovery.clean
        assert log.recovery.batches_checked == 0
        assert log.recovery.bytes_truncated == 0
        assert log.partition("t", 0).end_offset == end
    return end


def check_records(p: eventlog.Partition, start: int, end: int) -> None:
    offset = start
    while offset < end:
        records = p.read(offset, max_records=5000)
        assert records, f"no records at {offset} below the end {end}"
        for r in records:
            assert r.offset == offset, "offsets must be dense"
            assert r.key == key(offset), f"record {offset} has key {r.key!r}: invented"
            assert r.value == value(offset), f"record {offset} has a wrong value"
            offset += 1


def test_kill9_at_random_moments(tmp_path) -> None:
    script = str(tmp_path / "child.py")
    with open(script, "w") as f:
        f.write(CHILD)
    path = str(tmp_path / "data")
    rng = random.Random(20241124)
    acked_end = checked_end = 0
    deadline = time.monotonic() + 50
    killed_after_ready = 0
    for round_ in range(ROUNDS):
        assert time.monotonic() < deadline, f"too slow: {round_} rounds in 50 s"
        policy = POLICIES[round_ % 3]
        early = round_ % 5 == 4
        output = kill_at_random(spawn(script, path, policy, seed=round_), rng, early=early)
        clean, acked_end = parse(output, acked_end)
        if clean is not None:
            killed_after_ready += 1
        if round_ % 4 == 1:  # leave this recovery to the next child
            continue
        if clean is None and not os.path.exists(os.path.join(path, "topics.msgpack")):
            continue  # killed before it created anything: nothing to check yet
        if clean is None and os.path.exists(os.path.join(path, clean_shutdown_file)):
            continue  # killed before it opened the log: the last close was clean
        checked_end = verify(path, acked_end, checked_end)
    assert killed_after_ready >= 12
    assert acked_end > 100, "the children acknowledged almost nothing: the test is too weak"
    with eventlog.open(path) as log:  # finally, everything from offset 0 once more
        p = log.partition("t", 0)
        check_records(p, 0, p.end_offset)
        assert p.end_offset >= acked_end
