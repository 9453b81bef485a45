"""Committed offsets and group processing across crashes (DESIGN invariants 2, 5, 6).

* kill -9 of a child process that commits: every commit that returned is there after
  reopening (the offsets topic is an ordinary partition: its appends survive).
* kill -9 of child processes that consume in a group and commit after processing:
  together with a last, uninterrupted run they process every record at least once.
* in process, members that crash (stop polling) at random points: at least once;
  with no crash, exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import eventlog
from eventlog.consumer import Consumer
from eventlog.errors import CommitFailedError, RebalanceInProgressError
from eventlog.records import TopicPartition
from eventlog.testing import ManualClock

pytestmark = pytest.mark.slow

CHILD_TIMEOUT_S = 60


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def read_lines_then_kill(child: subprocess.Popen[str], lines: int) -> list[str]:
    assert child.stdout is not None
    out = []
    for _ in range(lines):
        line = child.stdout.readline()
        if not line:
            break
        out.append(line.strip())
    os.kill(child.pid, signal.SIGKILL)
    # Read the rest through the same buffered file: communicate() would read the pipe
    # directly and skip what readline() already buffered.
    out.extend(line for line in child.stdout.read().splitlines() if line)
    assert child.stderr is not None
    err = child.stderr.read()
    child.wait(timeout=CHILD_TIMEOUT_S)
    assert child.returncode == -signal.SIGKILL, err
    return out


COMMITTER = r"""
    import sys
    import eventlog
    from eventlog.records import TopicPartition
    with eventlog.open(sys.argv[1]) as log:
        consumer = log.consumer(group_id="g")
        consumer.assign([TopicPartition("t", 0)])
        i = 0
        while True:
            i += 1
            consumer.commit({TopicPartition("t", 0): i})
            sys.stdout.write(f"{i}\n")
            sys.stdout.flush()
"""


def test_committed_offsets_survive_kill_9(tmp_path: Path) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("t", 1)
    child = spawn(COMMITTER, str(tmp_path))
    acked = [int(x) for x in read_lines_then_kill(child, 200)]
    assert len(acked) >= 200
    with eventlog.open(tmp_path) as log:
        assert not log.recovery.clean
        committed = Consumer(log, group_id="g").committed(TopicPartition("t", 0))
        assert committed is not None
        assert acked[-1] <= committed <= acked[-1] + 1  # the last one may have landed unacked


GROUP_WORKER = r"""
    import sys
    import eventlog
    with eventlog.open(sys.argv[1]) as log:
        consumer = log.consumer("t", group_id="g", auto_offset_reset="earliest",
                                enable_auto_commit=False, consumer_timeout_ms=300)
        while True:
            records = consumer.poll(timeout_ms=300, max_records=int(sys.argv[2]))
            if not records and sys.argv[3] == "finish":
                break
            for r in records:  # "processing": one atomic write per record
                sys.stdout.write(f"{r.partition} {r.offset}\n")
                sys.stdout.flush()
            consumer.commit()
"""


def test_group_processing_is_at_least_once_across_kill_9(tmp_path: Path) -> None:
    rng = random.Random(7)
    total = 3 * 2000
    with eventlog.open(tmp_path) as log:
        log.create_topic("t", 3)
        for p in range(3):
            for start in range(0, 2000, 100):
                log.partition("t", p).append([(None, b"%d" % i) for i in range(start, start + 100)])
    processed: list[tuple[int, int]] = []
    for _ in range(3):
        child = spawn(GROUP_WORKER, str(tmp_path), str(rng.randint(1, 200)), "forever")
        lines = read_lines_then_kill(child, rng.randint(100, 1500))
        processed += [tuple(map(int, line.split())) for line in lines]  # type: ignore[misc]
    child = spawn(GROUP_WORKER, str(tmp_path), "500", "finish")
    out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert child.returncode == 0, err
    processed += [tuple(map(int, line.split())) for line in out.splitlines()]  # type: ignore[misc]
    counts = Counter(processed)
    assert set(counts) == {(p, o) for p in range(3) for o in range(2000)}
    assert len(processed) < 2 * total  # re-processing is bounded by what was uncommitted


def run_group(seed: int, crash_probability: float) -> Counter[tuple[int, int]]:
    """Members poll, process, commit; some crash (are abandoned). Returns what each
    record was processed as: (partition, offset) -> count."""
    rng = random.Random(seed)
    clock = ManualClock(autojump=False)
    processed: Counter[tuple[int, int]] = Counter()
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t", 4)
        produced = 0
        members: list[Consumer] = []
        for step in range(400):
            if step % 5 == 0 and produced < 4000:
                p = rng.randrange(4)
                log.partition("t", p).append([(None, b"x")] * 50)
                produced += 50
            if len(members) < 3 and rng.random() < 0.2:
                members.append(Consumer(log, "t", group_id="g", auto_offset_reset="earliest",
                                        enable_auto_commit=False, max_poll_records=30))
            if members and rng.random() < crash_probability:
                members.remove(rng.choice(members))  # crashed: never polled or closed again
            for member in members:
                records = member.poll()
                for r in records:
                    processed[(r.partition, r.offset)] += 1
                try:
                    member.commit()
                except (CommitFailedError, RebalanceInProgressError):
                    pass
            clock.advance(rng.choice([10, 1_000, 60_000]))
        final = Consumer(log, "t", group_id="g", auto_offset_reset="earliest")
        for _ in range(200):
            clock.advance(60_000)  # expire crashed members, then drain
            for r in final.poll(max_records=500):
                processed[(r.partition, r.offset)] += 1
        ends = {p: log.partition("t", p).end_offset for p in range(4)}
    assert set(processed) == {(p, o) for p, end in ends.items() for o in range(end)}
    return processed


@pytest.mark.parametrize("seed", range(4))
def test_in_process_crashes_give_at_least_once(seed: int) -> None:
    run_group(seed, crash_probability=0.05)


@pytest.mark.parametrize("seed", range(3))
def test_without_crashes_exactly_once(seed: int) -> None:
    processed = run_group(seed, crash_probability=0.0)
    assert set(processed.values()) == {1}
