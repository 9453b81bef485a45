"""kill -9 during transactions: every transaction is committed or aborted, never partial.

A child runs the consume-transform-produce loop (read topic ``in`` in a group, write
each record to ``out`` with the offsets in the same transaction) and is killed with
SIGKILL, at least 50 times; a last run drains the rest. Then ``out`` read with
read_committed holds every input record exactly once, in order per key, and the
group's committed offset is the end of ``in``.

Half the kills come from outside, after the child reported a random number of
commits (so at whatever step the next transaction has reached); the other half the
child deals itself, just before or just after its N-th append to any partition (N
random), so the kill lands on every step of a transaction: the Ongoing record, a
record, the PrepareCommit record, the offsets, each marker, the Complete record.

A second test kills, the same two ways, a child that writes small transactions
without offsets, mostly to one partition (ended in one phase: the marker is the
decision, nothing is logged in ``__transaction_state``), some to two, some
aborted: every transaction the child saw committed is visible whole, every abort
and every other transaction is invisible, but the one the kill interrupted, which
is visible whole or not at all.

Each life is forked from a zygote process that imported eventlog once, so a kill
costs milliseconds, not an interpreter start.
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

INPUT_RECORDS = 3000
KILLS = 60
CHILD_TIMEOUT_S = 120

# The zygote reads "MODE BATCH KILL_AT" lines (KILL_AT 0: no self-kill; negative:
# kill just after the append, positive: just before it), forks a life for each,
# prints "pid PID" first, the life's lines, and "exit STATUS" when it ended. MODE
# "ctp": the consume-transform-produce loop; "small": small transactions without
# offsets, BATCH numbering the life (and so its transactions).
ZYGOTE = r"""
    import os, signal, sys
    import eventlog
    from eventlog.records import TopicPartition
    from eventlog.storage.partition_log import PartitionLog

    def self_kill_at(n):
        real = PartitionLog.append_encoded
        count = [0]
        after = n < 0
        n = abs(n)

        def append_encoded(self, *args, **kwargs):
            count[0] += 1
            if count[0] == n and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            result = real(self, *args, **kwargs)
            if count[0] == n and after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        PartitionLog.append_encoded = append_encoded

    def life(path, batch, kill_at):
        if kill_at:
            self_kill_at(kill_at)
        with eventlog.open(path) as log:
            consumer = log.consumer("in", group_id="g", auto_offset_reset="earliest",
                                    enable_auto_commit=False,
                                    isolation_level="read_committed")
            producer = eventlog.Producer(log, transactional_id="ctp", linger_ms=0)
            producer.init_transactions()
            idle = 0
            while idle < 3:
                records = consumer.poll(100, max_records=batch)
                if not records:
                    idle += 1
                    continue
                idle = 0
                producer.begin_transaction()
                for r in records:
                    producer.send("out", r.value, key=r.key)
                producer.send_offsets_to_transaction(
                    {TopicPartition("in", 0): records[-1].offset + 1},
                    consumer.group_metadata())
                producer.commit_transaction()
                sys.stdout.write(f"{records[-1].offset}\n")  # one write: never half a line
                sys.stdout.flush()
            sys.stdout.write("drained\n")
            sys.stdout.flush()

    def small(path, life_id, kill_at, transactions):
        import random
        if kill_at:
            self_kill_at(kill_at)
        with eventlog.open(path) as log:
            producer = eventlog.Producer(log, transactional_id="small", linger_ms=0)
            producer.init_transactions()
            for t in range(transactions):
                rng = random.Random(life_id * 100_003 + t)
                size = rng.randint(1, 3)
                spread = rng.random() < 0.2  # over both partitions: two phases
                first = rng.randint(0, 1)
                producer.begin_transaction()
                for i in range(size):
                    producer.send("out", b"%d:%d:%d:%d" % (life_id, t, i, size),
                                  partition=(first + i) % 2 if spread else first)
                if rng.random() < 0.15:
                    sys.stdout.write(f"aborting {t}\n")
                    sys.stdout.flush()
                    producer.abort_transaction()
                    sys.stdout.write(f"a {t}\n")
                else:
                    sys.stdout.write(f"committing {t}\n")
                    sys.stdout.flush()
                    producer.commit_transaction()
                    sys.stdout.write(f"c {t}\n")
                sys.stdout.flush()
            sys.stdout.write("drained\n")
            sys.stdout.flush()

    path = sys.argv[1]
    for line in sys.stdin:
        mode, batch, kill_at = line.split()
        batch, kill_at = int(batch), int(kill_at)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if mode == "ctp":
                    life(path, batch, kill_at)
                else:
                    small(path, batch, kill_at, 20 if mode == "last" else 100_000)
                code = 0
            finally:
                sys.stdout.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)
"""


class Zygote:
    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(ZYGOTE), str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the zygote ended (exit {self.proc.poll()})"
        return line.strip()

    def life(self, batch: int, kill_at: int = 0, kill_after_lines: int | None = None,
             mode: str = "ctp") -> tuple[list[str], bool]:
        """Run one life; returns its lines and whether it died of SIGKILL."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{mode} {batch} {kill_at}\n")
        self.proc.stdin.flush()
        lines: list[str] = []
        while not (first := self._line()).startswith("pid "):
            lines.append(first)  # the life wrote before the zygote named it
        pid = int(first.split()[1])
        sent = False
        while True:
            line = self._line()
            partial, found, status_text = line.rpartition("exit ")
            if found and status_text.isdigit():  # after a partial line of a killed life
                status = int(status_text)
                if partial:
                    lines.append(partial)
                break
            lines.append(line)
            if kill_after_lines is not None and len(lines) >= kill_after_lines and not sent:
                os.kill(pid, signal.SIGKILL)
                sent = True
        if os.WIFEXITED(status):
            assert os.WEXITSTATUS(status) == 0, f"the life failed: {lines}"
        return lines, os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=CHILD_TIMEOUT_S)


def test_consume_transform_produce_is_exactly_once_through_kill_9(tmp_path: Path) -> None:
    rng = random.Random(14)
    with eventlog.open(tmp_path) as log:
        log.create_topic("in", 1)
        log.create_topic("out", 2)
        log.producer(linger_ms=0).send_batch(
            "in", [(b"k%d" % (i % 7), b"%d" % i) for i in range(INPUT_RECORDS)])
    zygote = Zygote(tmp_path)
    try:
        kills = 0
        for i in range(KILLS):
            batch = rng.randint(1, 9)
            if i % 2:
                lines, killed = zygote.life(batch, kill_after_lines=rng.randint(1, 6))
            else:
                kill_at = rng.randint(1, 60) * rng.choice((1, -1))
                lines, killed = zygote.life(batch, kill_at=kill_at)
            assert "drained" not in lines, "the input ran out before the kills did"
            kills += killed
        lines, killed = zygote.life(10)
        assert "drained" in lines and not killed
    finally:
        zygote.close()
    assert kills >= 50, kills
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


def test_small_transactions_are_all_or_nothing_through_kill_9(tmp_path: Path) -> None:
    rng = random.Random(1414)
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 2)
    zygote = Zygote(tmp_path)
    acknowledged: dict[int, dict[int, str]] = {}  # life -> {transaction: "c" or "a"}
    committing: dict[int, set[int]] = {}  # life -> transactions commit was called for
    try:
        kills = 0
        for life_id in range(KILLS):
            if life_id % 2:
                lines, killed = zygote.life(life_id, kill_after_lines=rng.randint(1, 40),
                                            mode="small")
            else:
                kill_at = rng.randint(1, 60) * rng.choice((1, -1))
                lines, killed = zygote.life(life_id, kill_at=kill_at, mode="small")
            assert "drained" not in lines, "a life ended before its kill"
            kills += killed
            acknowledged[life_id] = {int(t): kind for kind, t in
                                     (line.split() for line in lines if line[:2] in ("c ", "a "))}
            committing[life_id] = {int(line.split()[1]) for line in lines
                                   if line.startswith("committing ")}
        lines, killed = zygote.life(KILLS, mode="last")
        assert "drained" in lines and not killed
        acknowledged[KILLS] = {int(t): kind for kind, t in
                               (line.split() for line in lines if line[:2] in ("c ", "a "))}
    finally:
        zygote.close()
    assert kills >= 50, kills
    with eventlog.open(tmp_path) as log:
        for index in range(2):
            assert log.partition("out", index).open_transactions() == {}
        c = log.consumer(isolation_level="read_committed", auto_offset_reset="earliest")
        c.assign([TopicPartition("out", 0), TopicPartition("out", 1)])
        found: dict[tuple[int, int], list[int]] = {}
        sizes: dict[tuple[int, int], int] = {}
        while batch := c.poll():
            for r in batch:
                life_id, t, i, size = map(int, r.value.split(b":"))
                found.setdefault((life_id, t), []).append(i)
                sizes[life_id, t] = size
    for (life_id, t), items in found.items():
        assert sorted(items) == list(range(sizes[life_id, t])), (life_id, t)  # whole
        seen = acknowledged[life_id]
        if t in seen:
            assert seen[t] == "c", (life_id, t)  # an acknowledged abort stays invisible
        else:  # the transaction the kill interrupted in its commit_transaction()
            assert t == len(seen) and t in committing[life_id], (life_id, t, len(seen))
    for life_id, seen in acknowledged.items():
        assert sorted(seen) == list(range(len(seen)))
        for t, kind in seen.items():
            assert (kind == "c") == ((life_id, t) in found), (life_id, t)
