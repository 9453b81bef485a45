"""Transactional producer, coordinator and read_committed consumer (issue 14)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import eventlog
from eventlog.errors import (
    InvalidConfigError,
    InvalidTxnStateError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionTimedOutError,
)
from eventlog.group.txn_coordinator import transaction_coordinator_for, txn_state_topic
from eventlog.group.txn_state import (
    PRODUCER_TRANSITIONS,
    ProducerTxnState,
    TxnState,
    mermaid,
    next_coordinator_state,
)
from eventlog.records import TopicPartition as TP
from eventlog.testing import ManualClock
from locks import ThreadWatchLock

S = ProducerTxnState


@pytest.fixture
def log():
    with eventlog.open(clock=ManualClock(1_000_000)) as log:
        log.create_topic("out", 2)
        log.create_topic("in", 1)
        yield log


def txn_producer(log, txn_id: str = "tx", **config):
    config.setdefault("linger_ms", 0)
    return eventlog.Producer(log, transactional_id=txn_id, **config)


def committed_values(log, topic: str = "out") -> list[bytes]:
    c = log.consumer(isolation_level="read_committed", auto_offset_reset="earliest")
    c.assign([TP(topic, i) for i in range(log.topic(topic).num_partitions)])
    out = []
    while True:
        batch = c.poll()
        if not batch:
            break
        out.extend(r.value for r in batch)
    c.close()
    return sorted(out)


# ---------------------------------------------------------------- the state table


def test_tables_and_diagrams() -> None:
    assert PRODUCER_TRANSITIONS[(S.READY, "begin_transaction")] is S.IN_TRANSACTION
    assert "READY --> IN_TRANSACTION: begin_transaction" in mermaid("producer")
    assert "Ongoing --> PrepareCommit" in mermaid("coordinator")
    with pytest.raises(AssertionError):
        next_coordinator_state(TxnState.EMPTY, TxnState.PREPARE_COMMIT)
    with pytest.raises(ValueError):
        mermaid("other")


def test_each_out_of_order_call_raises_and_changes_nothing(log) -> None:
    p = txn_producer(log)
    assert type(p) is eventlog.TransactionalProducer and p.transaction_state is S.UNINITIALIZED
    for call in (p.begin_transaction, p.commit_transaction, p.abort_transaction,
                 lambda: p.send("out", b"v")):
        with pytest.raises(InvalidTxnStateError, match="init_transactions"):
            call()
        assert p.transaction_state is S.UNINITIALIZED
    p.init_transactions()
    assert p.transaction_state is S.READY
    with pytest.raises(InvalidTxnStateError):
        p.init_transactions()
    for call in (p.commit_transaction, p.abort_transaction, lambda: p.send("out", b"v"),
                 lambda: p.send_batch("out", [(None, b"v")])):
        with pytest.raises(InvalidTxnStateError, match="begin_transaction"):
            call()
        assert p.transaction_state is S.READY
    p.begin_transaction()
    with pytest.raises(InvalidTxnStateError, match="already open"):
        p.begin_transaction()
    assert p.transaction_state is S.IN_TRANSACTION
    p.commit_transaction()
    assert p.transaction_state is S.READY
    p.check()
    transaction_coordinator_for(log).check()


def test_config_rules(log) -> None:
    with pytest.raises(InvalidConfigError, match="idempotence"):
        eventlog.Producer(log, transactional_id="x", enable_idempotence=False)
    with pytest.raises(InvalidConfigError, match="transactional_id"):
        eventlog.Producer(log, transactional_id="")
    with pytest.raises(InvalidConfigError, match="transaction_timeout_ms"):
        txn_producer(log, transaction_timeout_ms=10**9).init_transactions()
    with pytest.raises(InvalidConfigError, match="isolation_level"):
        log.consumer(isolation_level="committed")
    assert type(eventlog.Producer(log, **{"transactional.id": "y"})) is \
        eventlog.TransactionalProducer


# ---------------------------------------------------------------- visibility


def test_commit_makes_everything_visible_at_once_and_abort_nothing(log) -> None:
    p = txn_producer(log)
    p.init_transactions()
    p.begin_transaction()
    p.send("out", b"a", partition=0)
    p.send_batch("out", [(None, b"b"), (None, b"c")], partition=1)
    assert committed_values(log) == []
    assert log.partition("out", 0).last_stable_offset == 0
    p.commit_transaction()
    assert committed_values(log) == [b"a", b"b", b"c"]
    p.begin_transaction()
    p.send("out", b"x", partition=0)
    p.send("out", b"y", partition=1)
    p.abort_transaction()
    p.begin_transaction()
    p.send("out", b"d", partition=0)
    p.commit_transaction()
    assert committed_values(log) == [b"a", b"b", b"c", b"d"]
    ru = log.consumer(auto_offset_reset="earliest")
    ru.assign([TP("out", 0)])
    assert [r.value for r in ru.poll()] == [b"a", b"x", b"d"]  # markers never returned


def test_lingering_records_are_flushed_into_the_transaction(log) -> None:
    p = txn_producer(log, linger_ms=60_000)
    p.init_transactions()
    p.begin_transaction()
    futures = [p.send("out", b"%d" % i, partition=0) for i in range(3)]
    p.commit_transaction()
    assert [f.result().offset for f in futures] == [0, 1, 2]
    assert committed_values(log) == [b"0", b"1", b"2"]


def test_end_offsets_and_positions_use_the_lso(log) -> None:
    p = txn_producer(log)
    p.init_transactions()
    log.producer(linger_ms=0).send("out", b"plain", partition=0)
    p.begin_transaction()
    p.send("out", b"t", partition=0)
    rc = log.consumer(isolation_level="read_committed")
    ru = log.consumer()
    tp = TP("out", 0)
    assert rc.end_offsets([tp]) == {tp: 1} and ru.end_offsets([tp]) == {tp: 2}
    rc.assign([tp])
    assert rc.position(tp) == 1  # auto_offset_reset latest = the LSO
    assert rc.offsets_for_times({tp: 0}) == {tp: rc.offsets_for_times({tp: 0})[tp]}
    assert rc.offsets_for_times({tp: 0})[tp].offset == 0
    p.commit_transaction()
    assert rc.end_offsets([tp]) == {tp: 3}
    assert [r.value for r in rc.poll()] == [b"t"]


def test_offsets_sent_in_a_transaction_are_visible_only_at_commit(log) -> None:
    log.producer(linger_ms=0).send_batch("in", [(None, b"%d" % i) for i in range(4)])
    c = log.consumer("in", group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
    records = c.poll(1000)
    p = txn_producer(log)
    p.init_transactions()
    p.begin_transaction()
    p.send_offsets_to_transaction({TP("in", 0): 2}, c.group_metadata())
    assert c.committed(TP("in", 0)) is None
    p.abort_transaction()
    assert c.committed(TP("in", 0)) is None
    p.begin_transaction()
    p.send("out", records[0].value, partition=0)
    p.send_offsets_to_transaction({TP("in", 0): 3}, c.group_metadata())
    p.commit_transaction()
    assert c.committed(TP("in", 0)) == 3
    with pytest.raises(InvalidConfigError, match="group_metadata"):
        p.begin_transaction()
        p.send_offsets_to_transaction({TP("in", 0): 3}, "g")  # type: ignore[arg-type]
    standalone = log.consumer()
    with pytest.raises(InvalidConfigError, match="group_id"):
        standalone.group_metadata()


def test_offsets_from_an_older_generation_are_abortable(log) -> None:
    log.producer(linger_ms=0).send("in", b"v")
    c = log.consumer("in", group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
    c.poll(1000)
    old = c.group_metadata()
    c2 = log.consumer("in", group_id="g")
    c2.poll(0)
    c.poll(0)  # the group rebalanced: a new generation
    assert c.group_metadata().generation_id > old.generation_id or c2.group_metadata()
    p = txn_producer(log)
    p.init_transactions()
    p.begin_transaction()
    with pytest.raises(eventlog.errors.GroupError):
        p.send_offsets_to_transaction({TP("in", 0): 1}, old)
    assert p.transaction_state is S.ABORTABLE_ERROR
    with pytest.raises(TransactionAbortableError):
        p.commit_transaction()
    with pytest.raises(TransactionAbortableError):
        p.send("out", b"v")
    p.abort_transaction()
    assert p.transaction_state is S.READY
    p.check()


# ---------------------------------------------------------------- fencing and timeouts


def test_a_newer_producer_fences_the_older_and_aborts_its_transaction(log) -> None:
    zombie = txn_producer(log)
    zombie.init_transactions()
    zombie.begin_transaction()
    zombie.send("out", b"zombie", partition=0)
    fresh = txn_producer(log)
    fresh.init_transactions()
    assert fresh.producer_id_and_epoch[1] > zombie.producer_id_and_epoch[1]
    assert log.partition("out", 0).last_stable_offset == log.partition("out", 0).end_offset
    with pytest.raises(ProducerFencedError):
        zombie.send("out", b"late", partition=0)  # refused by the partition's epoch
    assert zombie.transaction_state is S.FATAL_ERROR
    for call in (zombie.commit_transaction, zombie.abort_transaction, zombie.begin_transaction):
        with pytest.raises(ProducerFencedError):
            call()
    fresh.begin_transaction()
    fresh.send("out", b"fresh", partition=0)
    fresh.commit_transaction()
    assert committed_values(log) == [b"fresh"]
    zombie.check()


def test_a_fenced_producer_cannot_add_a_new_partition(log) -> None:
    zombie = txn_producer(log)
    zombie.init_transactions()
    zombie.begin_transaction()
    txn_producer(log).init_transactions()
    with pytest.raises(ProducerFencedError):
        zombie.send("out", b"late", partition=1)
    assert log.partition("out", 1).end_offset == 0


def test_timeout_aborts_on_the_logs_clock_and_the_producer_recovers(log) -> None:
    p = txn_producer(log, transaction_timeout_ms=1000)
    p.init_transactions()
    p.begin_transaction()
    p.send("out", b"slow", partition=0)
    log.clock.advance(1000)
    assert committed_values(log) == []  # the poll expired it: the LSO moved on
    assert log.partition("out", 0).last_stable_offset == log.partition("out", 0).end_offset
    with pytest.raises(TransactionTimedOutError):
        p.send("out", b"more", partition=0)
    assert p.transaction_state is S.ABORTABLE_ERROR
    with pytest.raises(TransactionAbortableError):
        p.commit_transaction()
    p.abort_transaction()
    p.begin_transaction()
    p.send("out", b"again", partition=0)
    p.commit_transaction()
    assert committed_values(log) == [b"again"]


def test_timeout_found_by_commit(log) -> None:
    p = txn_producer(log, transaction_timeout_ms=500)
    p.init_transactions()
    p.begin_transaction()
    p.send("out", b"slow", partition=0)
    log.clock.advance(600)
    with pytest.raises(TransactionTimedOutError):
        p.commit_transaction()
    p.abort_transaction()
    assert committed_values(log) == []


def test_each_transaction_times_out_at_its_own_deadline(log) -> None:
    """The coordinator scans for expired transactions only once the earliest deadline
    has passed: each still expires at its own."""
    coordinator = transaction_coordinator_for(log)
    first = txn_producer(log, "first", transaction_timeout_ms=1000)
    second = txn_producer(log, "second", transaction_timeout_ms=1000)
    third = txn_producer(log, "third", transaction_timeout_ms=300)
    for p in (first, second, third):
        p.init_transactions()
    first.begin_transaction()
    first.send("out", b"1", partition=0)
    log.clock.advance(500)
    second.begin_transaction()
    second.send("out", b"2", partition=0)
    third.begin_transaction()
    third.send("out", b"3", partition=1)  # the earliest deadline now: 800
    log.clock.advance(400)  # 900
    coordinator.expire()
    states = {t: coordinator.state_of(t) for t in ("first", "second", "third")}
    assert states == {"first": TxnState.ONGOING, "second": TxnState.ONGOING,
                      "third": TxnState.COMPLETE_ABORT}
    log.clock.advance(100)  # 1000: the first's deadline
    coordinator.expire()
    assert coordinator.state_of("first") is TxnState.COMPLETE_ABORT
    assert coordinator.state_of("second") is TxnState.ONGOING
    log.clock.advance(499)  # 1499
    coordinator.expire()
    assert coordinator.state_of("second") is TxnState.ONGOING
    log.clock.advance(1)
    coordinator.expire()
    assert coordinator.state_of("second") is TxnState.COMPLETE_ABORT


# ---------------------------------------------------------------- durability


def test_state_survives_reopen_and_close_aborts_open_transactions(tmp_path: Path) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 1)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"done")
        p.commit_transaction()
        pid, epoch = p.producer_id_and_epoch
        p.begin_transaction()
        p.send("out", b"open at close")
    with eventlog.open(tmp_path) as log:
        assert txn_state_topic in log.topics(include_internal=True)
        assert log.partition("out", 0).open_transactions() == {}
        assert committed_values(log) == [b"done"]
        p = txn_producer(log)
        p.init_transactions()
        new_pid, new_epoch = p.producer_id_and_epoch
        assert new_pid == pid and new_epoch > epoch


def test_prepared_commit_is_completed_on_open(tmp_path: Path, monkeypatch) -> None:
    from eventlog.broker.partition import Partition

    with eventlog.open(tmp_path) as log:
        log.create_topic("in", 1)
        log.create_topic("out", 2)
        log.producer(linger_ms=0).send("in", b"v")
        c = log.consumer("in", group_id="g", auto_offset_reset="earliest",
                         enable_auto_commit=False)
        c.poll(1000)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a", partition=0)
        p.send("out", b"b", partition=1)
        p.send_offsets_to_transaction({TP("in", 0): 1}, c.group_metadata())
        real = Partition.write_marker
        calls = []

        def fail_second(self, *args, **kwargs):
            calls.append(self.index)
            if len(calls) == 2:
                raise eventlog.errors.StorageError("disk full")
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Partition, "write_marker", fail_second)
        with pytest.raises(eventlog.errors.StorageError):
            p.commit_transaction()
        assert p.transaction_state is S.COMMITTING_TRANSACTION
        assert log.partition("out", 1).open_transactions()  # half-marked here
        monkeypatch.setattr(Partition, "write_marker", real)
        log._clients.discard(transaction_coordinator_for(log))  # as if killed: no close-abort
        log._clients.discard(p)
    with eventlog.open(tmp_path) as log:
        assert committed_values(log) == [b"a", b"b"]
        c = log.consumer(group_id="g")
        assert c.committed(TP("in", 0)) == 1


@pytest.mark.parametrize("fsync", ["never", "always"])
def test_one_record_transactions_under_every_fsync_policy(tmp_path: Path, fsync: str) -> None:
    """send() with linger 0 appends through the partition's synced path (a keyword
    argument the transaction's partition proxy once refused under fsync="always")."""
    with eventlog.open(tmp_path / "data", fsync=fsync) as log:
        log.create_topic("out", 2)
        p = txn_producer(log)
        p.init_transactions()
        for i in range(3):
            p.begin_transaction()
            p.send("out", b"v%d" % i, key=b"k").result()
            p.commit_transaction()
        p.close()
        assert committed_values(log) == [b"v0", b"v1", b"v2"]


def _kill(log, *clients) -> None:
    """Leave the log as a killed process would for the coordinator: no close-abort and
    no deferred state record written (the partitions still close cleanly)."""
    log._clients.discard(transaction_coordinator_for(log))
    for c in clients:
        log._clients.discard(c)


def _last_state(log) -> str:
    import msgpack

    part = log.partition(txn_state_topic, 0)
    (last,) = part.read(part.end_offset - 1, 1)
    return msgpack.unpackb(last.value)["state"]


def test_a_commit_without_offsets_completes_again_harmlessly_after_a_kill(
        tmp_path: Path) -> None:
    """The CompleteCommit record of a transaction without offsets is deferred to the
    id's next record: a kill before it leaves PrepareCommit last, and the open
    completes the transaction again without a second marker. (Two partitions: a
    transaction of one ends in one phase, with no PrepareCommit.)"""
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 2)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a", partition=0)
        p.send("out", b"b", partition=1)
        p.commit_transaction()
        assert _last_state(log) == "PrepareCommit"
        _kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert _last_state(log) == "CompleteCommit"  # written by the recovery
        for index in range(2):
            part = log.partition("out", index)
            assert part.end_offset == 2  # the record and one marker
            assert part.open_transactions() == {}
        assert committed_values(log) == [b"a", b"b"]


def test_a_commit_with_offsets_is_completed_at_once(tmp_path: Path) -> None:
    """Offsets are never applied twice: a later commit of the group survives a kill
    right after the transaction (a deferred CompleteCommit would let the recovery
    roll the group back to the transaction's offset)."""
    from eventlog.group import OffsetAndMetadata, coordinator_for

    with eventlog.open(tmp_path) as log:
        log.create_topic("in", 1)
        log.create_topic("out", 1)
        log.producer(linger_ms=0).send_batch("in", [(b"k", b"v")] * 3)
        c = log.consumer("in", group_id="g", auto_offset_reset="earliest",
                         enable_auto_commit=False)
        c.poll(1000)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a")
        p.send_offsets_to_transaction({TP("in", 0): 1}, c.group_metadata())
        p.commit_transaction()
        assert _last_state(log) == "CompleteCommit"
        c.close()
        coordinator_for(log).commit_offsets("g", "", -1, None,
                                            {TP("in", 0): OffsetAndMetadata(3, "")})
        _kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert log.consumer(group_id="g").committed(TP("in", 0)) == 3


@pytest.mark.parametrize("partitions", [1, 2])
def test_close_writes_the_deferred_state(tmp_path: Path, partitions: int) -> None:
    """A one-partition transaction logs nothing (one phase, last state Empty); two
    partitions leave PrepareAbort last. Either way close() writes the Complete*."""
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 2)
        p = txn_producer(log)
        p.init_transactions()
        for commit in (True, False):
            p.begin_transaction()
            for index in range(partitions):
                p.send("out", b"x%d" % index, partition=index)
            p.commit_transaction() if commit else p.abort_transaction()
        assert _last_state(log) == ("Empty" if partitions == 1 else "PrepareAbort")
        p.close()
    with eventlog.open(tmp_path) as log:
        assert _last_state(log) == "CompleteAbort"
        assert committed_values(log) == [b"x%d" % i for i in range(partitions)]


def test_markers_are_on_disk_when_the_commit_returns_under_fsync_always(
        tmp_path: Path) -> None:
    """Under fsync="always" the markers were appended but not synced: a power loss
    could keep the state record of a completed commit and lose the marker (then the
    open aborts the transaction), and readers in other processes, which see only
    synced data, did not see the commit."""
    with eventlog.open(tmp_path, fsync="always") as log:
        log.create_topic("out", 2)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a", partition=0)
        p.send("out", b"b", partition=1)
        p.commit_transaction()
        for i in range(2):
            part = log.partition("out", i)
            assert part._log.synced_offset == part.end_offset == 2
        p.close()


def test_a_transaction_with_no_record_still_fences_the_producer(tmp_path: Path) -> None:
    """A transaction's batches land with no Ongoing record (nothing is logged before
    the decision). A kill leaves the batch open in its partition: the open aborts
    the transaction and bumps the epoch all the same, so a producer that survived
    (a wire client) and still believes it open cannot commit it: it is told the
    transaction timed out (as when an Ongoing record is found), and its abort
    adopts the new epoch."""
    with eventlog.open(tmp_path, fsync="always") as log:
        log.create_topic("out", 1)
        p = txn_producer(log)
        p.init_transactions()
        pid, epoch = p.producer_id_and_epoch
        p.begin_transaction()
        state = log.partition(txn_state_topic, 0)
        end = state.end_offset
        p.send("out", b"kept by the disk, no decision logged")
        assert state.end_offset == end  # no Ongoing record
        _kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert log.partition("out", 0).open_transactions() == {}
        assert committed_values(log) == []
        coordinator = transaction_coordinator_for(log)
        with pytest.raises(TransactionTimedOutError):  # as if aborted for its timeout
            coordinator.check_producer("tx", pid, epoch)
        assert coordinator.end_transaction("tx", pid, epoch, commit=False) == epoch + 1
        coordinator.check_producer("tx", pid, epoch + 1)


def test_a_transaction_without_offsets_touches_no_consumer_group(tmp_path: Path) -> None:
    from eventlog.group.offsets import offsets_topic

    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 1)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a")
        p.commit_transaction()
        p.close()
        assert offsets_topic not in log.topics(include_internal=True)


# ---------------------------------------------------------------- sends racing the end


def _start_late_send(linger_ms: int, log):
    """A transactional producer with one record sent, and a thread whose send of
    b"late" has passed the transactional state check and is held in the value
    serializer until ``go`` is set."""
    checked, go = threading.Event(), threading.Event()

    def paused(value: bytes) -> bytes:  # runs after the transactional state check
        if value == b"late":
            checked.set()
            assert go.wait(30)
        return value

    p = txn_producer(log, linger_ms=linger_ms, value_serializer=paused)
    p.init_transactions()
    p.begin_transaction()
    p.send("out", b"in", partition=0)
    sender, result = _run(lambda: p.send("out", b"late", partition=0), "late-sender")
    assert checked.wait(30)
    return p, go, sender, result


def _run(target, name: str) -> tuple[threading.Thread, list]:
    out: list = []

    def body() -> None:
        try:
            out.append(target())
        except BaseException as exc:  # handed to the test
            out.append(exc)

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_a_send_that_checked_before_the_end_but_appends_after_it_raises(log, end) -> None:
    """linger_ms=0: a send that passed the state check, then lost the race to
    commit_transaction() (or abort) on another thread, raises InvalidTxnStateError
    instead of landing after the marker as transactional data of no transaction
    (which held the LSO, and every read_committed reader, until a timeout)."""
    p, go, sender, result = _start_late_send(0, log)
    p.commit_transaction() if end == "commit" else p.abort_transaction()
    go.set()
    sender.join(30)
    assert len(result) == 1 and isinstance(result[0], InvalidTxnStateError), result
    part = log.partition("out", 0)
    assert part.open_transactions() == {}
    assert part.last_stable_offset == part.end_offset == 2  # the record and the marker
    assert committed_values(log) == ([b"in"] if end == "commit" else [])
    p.begin_transaction()  # the producer goes on
    p.send("out", b"next", partition=0)
    p.commit_transaction()
    assert b"next" in committed_values(log)


def test_a_send_appending_when_the_commit_starts_joins_the_transaction(log) -> None:
    """A send already appending (holding its queue's lock) when commit_transaction()
    moves the state: the commit waits for it before any marker, and the record is
    committed with the transaction."""
    p = txn_producer(log)
    p.init_transactions()
    p.begin_transaction()
    p.send("out", b"first", partition=0)
    q = p._state.queues[log.partition("out", 0)]
    watched = q.lock = ThreadWatchLock("committer")
    part = log.partition("out", 0)
    real_append = part.append_record
    in_append, go = threading.Event(), threading.Event()

    def paused_append(*args, **kwargs):
        if threading.current_thread().name == "racing-sender":
            in_append.set()
            assert go.wait(30)
        return real_append(*args, **kwargs)

    part.append_record = paused_append
    try:
        sender, sent = _run(lambda: p.send("out", b"racing", partition=0), "racing-sender")
        assert in_append.wait(30)
        committer, committed = _run(p.commit_transaction, "committer")
        assert watched.wanted.wait(30)  # the commit waits for the queue's lock ...
        assert committer.is_alive() and part.end_offset == 1  # ... before any marker
        go.set()
        sender.join(30)
        committer.join(30)
    finally:
        del part.append_record
    assert committed == [None], committed
    assert sent[0].result().offset == 1
    assert part.end_offset == 3 and part.open_transactions() == {}
    assert committed_values(log) == [b"first", b"racing"]


def test_a_batch_the_flusher_took_before_the_commit_lands_before_the_markers(log) -> None:
    """With linger_ms > 0 the flusher may have taken the lingering batch (holding the
    queue's lock) when commit_transaction() runs: the commit waits for that append,
    so the batch is committed with the transaction and no marker precedes it."""
    p = txn_producer(log, linger_ms=60_000)
    p.init_transactions()
    p.begin_transaction()
    future = p.send("out", b"held", partition=0)
    part = log.partition("out", 0)
    q = p._state.queues[part]
    watched = q.lock = ThreadWatchLock("committer")
    with q.batch_lock:  # what the flusher does: take the batch, keep the queue's lock
        taken = p._state.take_batch(q)
    committer, committed = _run(p.commit_transaction, "committer")
    try:
        assert watched.wanted.wait(30)  # the commit waits for the queue's lock ...
        assert committer.is_alive() and part.end_offset == 0  # ... before any marker
    finally:
        p._state.append_batches(q, [taken])
        committer.join(30)
    assert committed == [None], committed
    assert future.result().offset == 0
    assert part.end_offset == 2 and part.open_transactions() == {}
    assert committed_values(log) == [b"held"]


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_a_lingering_send_that_lost_the_race_to_the_end_fails_its_future(log, end) -> None:
    """linger_ms > 0: a send that passed the state check, then accumulated its record
    after commit_transaction() (or abort) had flushed, is never written after the
    marker: its batch is refused when it is appended, its future fails with
    InvalidTxnStateError, and the partition holds no open transaction."""
    p, go, sender, result = _start_late_send(60_000, log)
    p.commit_transaction() if end == "commit" else p.abort_transaction()
    go.set()
    sender.join(30)
    (late,) = result
    p.flush()
    with pytest.raises(InvalidTxnStateError, match="raced the end of the transaction"):
        late.result()
    part = log.partition("out", 0)
    assert part.open_transactions() == {}
    assert part.last_stable_offset == part.end_offset == 2  # the record and the marker
    assert committed_values(log) == ([b"in"] if end == "commit" else [])
    p.begin_transaction()  # the producer goes on
    p.send("out", b"next", partition=0)
    p.commit_transaction()
    assert committed_values(log)[-1:] == [b"next"]
    p.check()


class _PausingAcquire(ThreadWatchLock):
    """A queue lock that ``thread_name``, when it comes to take it, takes only once
    ``go`` is set: holds the commit at that queue's admission barrier."""

    def __init__(self, thread_name: str) -> None:
        super().__init__(thread_name)
        self.go = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if threading.current_thread().name == self._name:
            self.wanted.set()
            assert self.go.wait(30)
        return self._lock.acquire(blocking, timeout)


def test_a_send_batch_reaching_its_queue_after_the_commit_barrier_raises(log) -> None:
    """send_batch() that passed the state check before commit_transaction() moved the
    state, then took its partition's queue lock after the commit had passed that
    queue, must raise InvalidTxnStateError, not append after the commit's marker as
    data of no transaction (which held the LSO, and every read_committed reader)."""
    checked, go_serialize = threading.Event(), threading.Event()

    def paused(value: bytes) -> bytes:  # runs after send_batch's state check
        if value == b"late":
            checked.set()
            assert go_serialize.wait(30)
        return value

    p = txn_producer(log, value_serializer=paused)
    p.init_transactions()
    p.begin_transaction()
    p.send("out", b"in", partition=0)
    p.send("out", b"in", partition=1)  # the commit passes partition 0's queue first
    part = log.partition("out", 0)
    gate = p._state.queues[log.partition("out", 1)].lock = _PausingAcquire("committer")
    real_append = part.append_columns
    progress = threading.Event()  # the sender reached the append, or finished

    def paused_append(*args, **kwargs):
        if threading.current_thread().name == "batch-sender":
            progress.set()
            assert gate.go.wait(30)  # the commit writes its marker meanwhile
            committer.join(30)
        return real_append(*args, **kwargs)

    def send_batch():
        try:
            return p.send_batch("out", [(None, b"late")], partition=0)
        finally:
            progress.set()

    part.append_columns = paused_append
    try:
        sender, sent = _run(send_batch, "batch-sender")
        assert checked.wait(30)
        committer, committed = _run(p.commit_transaction, "committer")
        assert gate.wanted.wait(30)  # past partition 0's barrier, at partition 1's
        go_serialize.set()
        assert progress.wait(30)
        gate.go.set()
        committer.join(30)
        sender.join(30)
    finally:
        del part.append_columns
    assert committed == [None], committed
    assert len(sent) == 1 and isinstance(sent[0], InvalidTxnStateError), sent
    assert part.open_transactions() == {}
    assert part.last_stable_offset == part.end_offset == 2  # the record and the marker
    assert committed_values(log) == [b"in", b"in"]
