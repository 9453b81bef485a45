"""The read_committed fetch path: the committed view of fetched batches, and polls
that read past aborted transactions (consumer/fetcher.py)."""

from __future__ import annotations

import random

import pytest

import eventlog
from eventlog.broker.partition import Partition
from eventlog.config import TopicConfig
from eventlog.consumer.fetcher import committed_view
from eventlog.records import TopicPartition as TP
from eventlog.storage import batch as codec
from eventlog.storage.partition_log import PartitionLog
from eventlog.testing import ManualClock

TXN, CONTROL = codec.attr_transactional, codec.attr_control


def _partition() -> Partition:
    return Partition("t", 0, PartitionLog(None, TopicConfig(), now_ms=0),
                     clock=ManualClock(1000))


def _send(p: Partition, pid: int, n: int, seq: int, *, txn: bool = True) -> None:
    p.append_columns([b"k"] * n, [b"%d" % pid] * n, None, [1000] * n,
                     attributes=TXN if txn else 0, producer_id=pid, producer_epoch=0,
                     base_sequence=seq)


def _reference(p: Partition, batches: list, end: int) -> list[tuple[int, bool]]:
    """(base offset, hidden) of each batch below ``end``, by testing every batch
    against every aborted transaction: what committed_view must agree with."""
    entries = p.aborted_transactions(0, p.end_offset)
    out = []
    for header, _ in batches:
        if header.base_offset >= end:
            break
        aborted = header.attributes & TXN and not header.attributes & CONTROL and any(
            e.producer_id == header.producer_id
            and e.first_offset <= header.base_offset <= e.last_offset for e in entries)
        out.append((header.base_offset, bool(header.attributes & CONTROL or aborted)))
    return out


def test_committed_view_hides_exactly_the_aborted_batches_of_interleaved_producers() -> None:
    """Three transactional producers and a plain one interleave; some transactions
    span many others, one stays open (the LSO). From every start offset and for every
    LSO cut, the view hides exactly the batches a scan of every entry would."""
    rng = random.Random(14)
    p = _partition()
    seqs = {1: 0, 2: 0, 3: 0, 9: 0}
    open_txns: set[int] = set()
    for _ in range(120):
        pid = rng.choice([1, 2, 3, 9])
        if pid != 9 and pid in open_txns and rng.random() < 0.3:
            p.write_marker(pid, 0, commit=rng.random() < 0.5)
            open_txns.discard(pid)
            continue
        n = rng.randint(1, 3)
        _send(p, pid, n, seqs[pid], txn=pid != 9)
        seqs[pid] += n
        if pid != 9:
            open_txns.add(pid)
    for pid in sorted(open_txns - {3}):
        p.write_marker(pid, 0, commit=False)
    assert len(p.aborted_transactions(0, p.end_offset)) > 5
    lso = p.last_stable_offset
    for start in range(p.end_offset):
        batches = p.read_batches(start, 40)
        for end in sorted({lso, p.end_offset, start + 1, start + 7}):
            view = committed_view(p, batches, end)
            got = [(h.base_offset, bool(h.attributes & CONTROL)) for h, _ in view]
            assert got == _reference(p, batches, end), (start, end)
            assert [cols for _, cols in view] == [cols for _, cols in batches[:len(view)]]


def test_hidden_offsets_counts_the_aborted_offsets_ahead_and_is_bounded() -> None:
    from eventlog.consumer.fetcher import hidden_offsets

    p = _partition()
    for i in range(6):  # transactions of 4 records and a marker; the odd ones aborted
        _send(p, 1, 4, 4 * i)
        p.write_marker(1, 0, commit=i % 2 == 0)
    assert hidden_offsets(p, 0, 5) == 0  # offsets 0..4: a committed transaction
    assert hidden_offsets(p, 0, 10) == 5  # 5..9 aborted; the 5 read past them are not
    assert hidden_offsets(p, 0, 6) == 5  # the whole of 5..9, counted once
    assert hidden_offsets(p, 7, 1) == 3  # 7..9: from the position on
    assert hidden_offsets(p, 0, 16) == 5 + 5 + 5  # 15..19, then 20..24 read past, 25..29
    assert hidden_offsets(p, 10, 5) == 0
    assert 0 < hidden_offsets(p, 0, 3_000) <= 15


def test_a_read_committed_poll_is_not_shortened_by_aborted_transactions() -> None:
    """A poll reads past the aborted records it hides: max_records come back whenever
    the log holds them (markers aside, as under read_uncommitted); the old read of
    max_records offsets returned about half here, the rest hidden."""
    with eventlog.open(clock=ManualClock(1_000_000)) as log:
        log.create_topic("t", 1)
        producer = log.producer(transactional_id="tx", linger_ms=0)
        producer.init_transactions()
        for i in range(40):  # transactions of 10 records; every other one aborted
            producer.begin_transaction()
            producer.send_batch("t", [(None, b"%d-%d" % (i, j)) for j in range(10)])
            if i % 2:
                producer.abort_transaction()
            else:
                producer.commit_transaction()
        consumer = log.consumer(isolation_level="read_committed",
                                auto_offset_reset="earliest")
        consumer.assign([TP("t", 0)])
        seen: list[bytes] = []
        while True:
            polled = consumer.poll(timeout_ms=0, max_records=30)
            if not polled:
                break
            if len(seen) + 30 <= 200:
                assert len(polled) >= 28, len(polled)  # at most 2 commit markers passed
            seen.extend(r.value for r in polled)
        assert seen == [b"%d-%d" % (i, j) for i in range(0, 40, 2) for j in range(10)]
        consumer.close()


@pytest.mark.parametrize("then_commit", [False, True])
def test_batches_past_the_lso_are_settled_before_they_are_returned(then_commit: bool) -> None:
    """Records read while a transaction is open stay unreturned until its marker
    settles them; the buffered batches below the LSO are returned, the rest read
    again: an abort hides them, a commit shows them. Plain records inside an
    aborted transaction's offsets are returned."""
    with eventlog.open(clock=ManualClock(1_000_000)) as log:
        log.create_topic("t", 1)
        txn = log.producer(transactional_id="tx", linger_ms=0)
        plain = log.producer(linger_ms=0)
        txn.init_transactions()
        txn.begin_transaction()
        txn.send("t", b"c0")
        txn.commit_transaction()
        txn.begin_transaction()
        txn.send("t", b"open")
        plain.send("t", b"plain-inside")
        consumer = log.consumer(isolation_level="read_committed",
                                auto_offset_reset="earliest")
        consumer.assign([TP("t", 0)])
        assert [r.value for r in consumer.poll(timeout_ms=0)] == [b"c0"]
        assert consumer.poll(timeout_ms=0) == []  # at the LSO
        if then_commit:
            txn.commit_transaction()
        else:
            txn.abort_transaction()
        txn.begin_transaction()
        txn.send("t", b"c1")
        txn.commit_transaction()
        expected = [b"open"] if then_commit else []
        assert [r.value for r in consumer.poll(timeout_ms=0)] == [
            *expected, b"plain-inside", b"c1"]
        consumer.close()
