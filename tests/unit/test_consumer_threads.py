"""Consumers in threads, on the real clock: here real waiting is the point (bounded).

* 4 consumer threads in one group and 2 producer threads, 200,000 records: every
  record consumed exactly once, in offset order per partition, while members join
  during production and one leaves and rejoins;
* ``close()`` from another thread ends a poll waiting on an idle log at once;
* using one consumer from two threads at once is refused;
* closing the log while consumer threads poll ends them cleanly;
* a member waiting in poll is woken by a rebalance (on a clock that never moves).

No test synchronises with a sleep: threads signal events, barriers and conditions,
and each wait for another thread has a deadline after which the test fails.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import pytest

import eventlog
from clocks import SignallingSystemClock
from eventlog.consumer import Consumer, ConsumerRebalanceListener
from eventlog.errors import ClosedError, IllegalStateError
from eventlog.group.coordinator import coordinator_for, describe_group
from eventlog.records import TopicPartition
from eventlog.testing import ManualClock

RECORDS = 200_000
PRODUCERS = 2
CONSUMERS = 4
PARTITIONS = 6
DEADLINE_S = 60.0  # generous bound for 2 loaded cores; the run takes a few seconds


@pytest.fixture
def clock() -> SignallingSystemClock:
    return SignallingSystemClock()


@pytest.fixture
def log(clock: SignallingSystemClock) -> Iterator[eventlog.EventLog]:
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t", PARTITIONS)
        yield log


def wait_for(condition: threading.Condition, predicate: Callable[[], bool], what: str) -> None:
    """Wait (holding nothing) until ``predicate`` holds; fail the test after DEADLINE_S."""
    with condition:
        if not condition.wait_for(predicate, timeout=DEADLINE_S):
            raise AssertionError(f"gave up waiting for {what}")


def run_threads(targets: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)
        return run

    threads = [threading.Thread(target=guarded(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S)
    assert not any(t.is_alive() for t in threads), "a thread did not finish in time"
    if errors:
        raise errors[0]


def test_four_consumers_two_producers_exactly_once_in_order(log: eventlog.EventLog) -> None:
    per_producer = RECORDS // PRODUCERS
    consumed: list[list[tuple[int, int, bytes]]] = [[] for _ in range(CONSUMERS)]
    total = [0]
    progress = threading.Condition()  # guards total; notified as records are consumed
    done = threading.Event()
    deadline = time.monotonic() + DEADLINE_S
    lag = 40_000  # a producer runs at most this far ahead of the consumers

    def producer(pid: int) -> None:
        producer = log.producer()
        for start in range(0, per_producer, 1000):
            # Production interleaves with consumption: wait for the consumers to catch up.
            wait_for(progress, lambda s=start: total[0] >= PRODUCERS * s - lag, "the consumers")
            batch = [(b"%d-%d" % (pid, i % 97), b"%d:%d" % (pid, i))
                     for i in range(start, start + 1000)]
            producer.send_batch("t", batch)
        producer.close()

    def consumer(index: int, start_after: int, rejoin_after: int | None) -> None:
        # Members join during production: each once the group consumed some records.
        wait_for(progress, lambda: total[0] >= start_after, f"{start_after} records consumed")

        def new_consumer() -> Consumer:
            return Consumer(log, "t", group_id="g", auto_offset_reset="earliest",
                            auto_commit_interval_ms=100)

        c = new_consumer()
        mine = consumed[index]
        try:
            while not done.is_set() and time.monotonic() < deadline:
                records = c.poll(timeout_ms=50)
                mine.extend((r.partition, r.offset, r.value) for r in records)
                with progress:
                    total[0] += len(records)
                    if total[0] >= RECORDS:
                        done.set()
                    progress.notify_all()
                if rejoin_after is not None and len(mine) >= rejoin_after:
                    rejoin_after = None
                    c.close()  # leaves the group (committing), then joins as a new member
                    c = new_consumer()
        finally:
            c.close()

    run_threads([
        *(lambda pid=pid: producer(pid) for pid in range(PRODUCERS)),
        lambda: consumer(0, 0, None),
        lambda: consumer(1, 5_000, 20_000),
        lambda: consumer(2, 10_000, None),
        lambda: consumer(3, 20_000, None),
    ])
    coordinator_for(log).check()
    everything = [rec for mine in consumed for rec in mine]
    assert len(everything) == RECORDS  # nothing twice ...
    by_partition: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for p, offset, value in everything:
        by_partition[p].append((offset, value))
    for p, recs in by_partition.items():  # ... nothing missing
        assert sorted(o for o, _ in recs) == list(range(log.partition("t", p).end_offset))
    for mine in consumed:  # each consumer saw each partition in offset order
        last: dict[int, int] = {}
        for p, offset, _ in mine:
            assert offset > last.get(p, -1)
            last[p] = offset
    for recs in by_partition.values():  # and each producer's records kept their order
        seq: dict[bytes, int] = {}
        for _, value in sorted(recs):
            pid, i = value.split(b":")
            assert int(i) > seq.get(pid, -1)
            seq[pid] = int(i)
    assert len([m for m in consumed if m]) >= 3  # the work really was shared
    assert describe_group(log, "g").generation >= 6  # joins and leaves rebalanced it


def test_close_from_another_thread_ends_a_waiting_poll(
    log: eventlog.EventLog, clock: SignallingSystemClock
) -> None:
    c = Consumer(log, "t", group_id="g")
    outcome: list[object] = []

    def poller() -> None:
        outcome.append(c.poll(timeout_ms=600_000))  # ended by close(), not by its timeout
        try:
            c.poll()
        except ClosedError as exc:
            outcome.append(exc)

    t = threading.Thread(target=poller, daemon=True)
    t.start()
    assert clock.waiting.wait(DEADLINE_S), "the poll never started waiting"
    c.close()
    t.join(DEADLINE_S)
    assert not t.is_alive()
    assert outcome[0] == []
    assert isinstance(outcome[1], ClosedError)
    assert c.closed


def test_one_consumer_used_from_two_threads_is_refused(
    log: eventlog.EventLog, clock: SignallingSystemClock
) -> None:
    c = Consumer(log, auto_offset_reset="earliest")
    c.assign([TopicPartition("t", 0)])
    t = threading.Thread(target=lambda: c.poll(timeout_ms=600_000), daemon=True)
    t.start()
    assert clock.waiting.wait(DEADLINE_S), "the poll never started waiting"
    with pytest.raises(IllegalStateError, match="another thread"):
        c.assignment()  # the other thread is inside poll()
    c.close()  # from this thread: ends the poll
    t.join(DEADLINE_S)
    assert not t.is_alive()


def test_closing_the_log_while_consumers_poll(log: eventlog.EventLog) -> None:
    stopped: list[BaseException] = []
    consumers = [Consumer(log, "t", group_id="g") for _ in range(3)]
    polling = threading.Barrier(len(consumers) + 1)

    def loop(c: Consumer) -> None:
        try:
            c.poll()
            polling.wait(DEADLINE_S)  # every thread polled once: now close the log
            while True:
                c.poll(timeout_ms=100)
        except ClosedError as exc:
            stopped.append(exc)

    threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in consumers]
    for t in threads:
        t.start()
    polling.wait(DEADLINE_S)  # BrokenBarrierError if a thread never polled
    log.close()
    for t in threads:
        t.join(DEADLINE_S)
    assert not any(t.is_alive() for t in threads)
    assert len(stopped) == 3
    assert all(c.closed for c in consumers)


def test_a_waiting_member_is_woken_by_the_rebalance() -> None:
    """A member waiting in poll learns of a new member and hands partitions over
    without waiting for its timeout: on a clock that never moves, a timeout never
    ends a wait, so only the rebalance's wake-ups can get the new member assigned."""
    clock = ManualClock(autojump=False)
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t", PARTITIONS)
        first = Consumer(log, "t", group_id="g")
        first.poll()
        assert len(first.assignment()) == PARTITIONS
        assigned: list[list[TopicPartition]] = []
        got_partitions = threading.Event()

        class Stamp(ConsumerRebalanceListener):
            def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
                if partitions:
                    assigned.append(partitions)
                    got_partitions.set()

        second = Consumer(log, group_id="g")
        second.subscribe(["t"], listener=Stamp())

        def keep_polling(c: Consumer) -> None:
            try:
                while True:
                    c.poll(timeout_ms=10_000)  # ends when close() wakes it
            except ClosedError:
                pass

        threads = [threading.Thread(target=keep_polling, args=(c,), daemon=True)
                   for c in (first, second)]
        for t in threads:
            t.start()
        assert got_partitions.wait(DEADLINE_S), "the new member was never assigned"
        assert clock.monotonic_ms() == 0  # no wait timed out: the rebalance woke them
        first.close()
        second.close()
        for t in threads:
            t.join(DEADLINE_S)
        assert not any(t.is_alive() for t in threads)
        assert len(assigned[0]) == PARTITIONS // 2
