"""Crash points of the transactions that log less than Kafka's coordinator does.

A transaction's batches land with no Ongoing record, and a transaction of one
partition without offsets ends in one phase (its marker is the decision, no
PrepareCommit): docs/storage.md, "What the coordinator logs, and why a crash needs no
more". Each test stops the log at one step, as a kill -9 would leave it (no
close-abort, no deferred record written), and checks what the next open makes of
it. tests/crash/test_kill9_transactions.py kills real processes at random steps.
"""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

import eventlog
from eventlog.broker.partition import Partition
from eventlog.errors import StorageError, TransactionTimedOutError
from eventlog.group.txn_coordinator import transaction_coordinator_for, txn_state_topic
from eventlog.group.txn_state import ProducerTxnState, TxnState
from eventlog.records import TopicPartition as TP

S = ProducerTxnState


def txn_producer(log, txn_id: str = "tx", **config):
    config.setdefault("linger_ms", 0)
    return eventlog.Producer(log, transactional_id=txn_id, **config)


def committed_values(log, topic: str = "out") -> list[bytes]:
    c = log.consumer(isolation_level="read_committed", auto_offset_reset="earliest")
    c.assign([TP(topic, i) for i in range(log.topic(topic).num_partitions)])
    out = []
    while batch := c.poll():
        out.extend(r.value for r in batch)
    c.close()
    return sorted(out)


def kill(log, *clients) -> None:
    """Leave the log as a killed process would for the coordinator: no close-abort and
    no deferred state record written (the partitions still close cleanly)."""
    log._clients.discard(transaction_coordinator_for(log))
    for c in clients:
        log._clients.discard(c)


def states(log) -> list[str]:
    part = log.partition(txn_state_topic, 0)
    return [msgpack.unpackb(r.value)["state"]
            for r in part.read(part.start_offset, 1000) if r.value is not None]


def open_transactions(log, topic: str = "out") -> list[dict[int, int]]:
    return [p.open_transactions() for p in log.topic(topic).partitions]


# ---------------------------------------------------------------- what is logged


def test_one_partition_transactions_log_nothing_until_close(tmp_path: Path) -> None:
    """Commits and aborts of one partition: a marker each, no state record (the
    marker is the decision); the log's close() writes the last state once."""
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 2)
        p = txn_producer(log)
        p.init_transactions()
        assert states(log) == ["Empty"]
        for i in range(6):
            p.begin_transaction()
            p.send("out", b"%d" % i, partition=i % 2)
            p.send("out", b"%d again" % i, partition=i % 2)
            p.commit_transaction() if i % 3 else p.abort_transaction()
            assert p.transaction_state is S.READY
        assert states(log) == ["Empty"]
        assert [part.end_offset for part in log.topic("out").partitions] == [9, 9]  # 3 x 3
        assert open_transactions(log) == [{}, {}]
        assert committed_values(log) == sorted(
            b"%d%s" % (i, s) for i in (1, 2, 4, 5) for s in (b"", b" again"))
        p.close()
    with eventlog.open(tmp_path) as log:
        assert states(log) == ["Empty", "CompleteCommit"]


def test_two_partitions_log_their_decision(tmp_path: Path) -> None:
    """Two partitions: PrepareCommit, and no Ongoing; a transaction right after a
    PrepareCommit whose CompleteCommit was deferred: Ongoing first, then two phases."""
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 2)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a", partition=0)
        p.send("out", b"b", partition=1)
        p.commit_transaction()
        assert states(log) == ["Empty", "PrepareCommit"]
        p.begin_transaction()
        p.send("out", b"c", partition=0)
        assert states(log) == ["Empty", "PrepareCommit", "Ongoing"]
        p.commit_transaction()  # its Ongoing was logged: two phases
        assert states(log) == ["Empty", "PrepareCommit", "Ongoing", "PrepareCommit"]
        assert committed_values(log) == [b"a", b"b", b"c"]


def test_offsets_log_one_ongoing_record(tmp_path: Path) -> None:
    """With offsets: Ongoing (once, however many partitions follow), PrepareCommit
    and CompleteCommit, as before."""
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
        p.send_offsets_to_transaction({TP("in", 0): 1}, c.group_metadata())
        p.send("out", b"a", partition=0)
        p.send("out", b"b", partition=1)
        p.commit_transaction()
        assert states(log) == ["Empty", "Ongoing", "PrepareCommit", "CompleteCommit"]
        assert committed_values(log) == [b"a", b"b"]
        assert c.committed(TP("in", 0)) == 1


# ---------------------------------------------------------------- crash points


@pytest.mark.parametrize("commit", [True, False])
def test_a_kill_after_a_one_phase_marker_keeps_its_outcome(tmp_path: Path,
                                                           commit: bool) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 1)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a")
        p.commit_transaction() if commit else p.abort_transaction()
        kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert open_transactions(log) == [{}]
        assert log.partition("out", 0).end_offset == 2  # no second marker
        assert committed_values(log) == ([b"a"] if commit else [])
        assert states(log) == ["Empty"]  # nothing to complete


def test_a_kill_before_a_one_phase_marker_aborts(tmp_path: Path) -> None:
    """The batch landed, the commit did not: no decision was logged, so the open
    aborts the transaction and bumps its producer's epoch (the old one is told the
    transaction timed out, as when the open finds an Ongoing record)."""
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 1)
        p = txn_producer(log)
        p.init_transactions()
        pid, epoch = p.producer_id_and_epoch
        p.begin_transaction()
        p.send("out", b"committed")
        p.commit_transaction()
        p.begin_transaction()
        p.send("out", b"open at the kill")
        kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert open_transactions(log) == [{}]
        assert committed_values(log) == [b"committed"]
        coordinator = transaction_coordinator_for(log)
        with pytest.raises(TransactionTimedOutError):
            coordinator.check_producer("tx", pid, epoch)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"after")
        p.commit_transaction()
        assert committed_values(log) == [b"after", b"committed"]


def test_a_batch_after_a_deferred_prepare_commit_is_aborted_by_the_open(
        tmp_path: Path) -> None:
    """PrepareCommit of a two-partition transaction is the id's last record (its
    CompleteCommit deferred): the next transaction's batch in one of its partitions
    must not be committed by the recovery that completes that PrepareCommit."""
    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 2)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a", partition=0)
        p.send("out", b"b", partition=1)
        p.commit_transaction()
        p.begin_transaction()
        p.send("out", b"open at the kill", partition=0)
        kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert open_transactions(log) == [{}, {}]
        assert committed_values(log) == [b"a", b"b"]


def test_a_power_loss_cannot_commit_a_batch_behind_a_deferred_prepare_commit(
        tmp_path: Path) -> None:
    """Under fsync="always" the Ongoing record that supersedes a PrepareCommit is on
    disk before the next batch (it was not synced before: a power loss kept the
    synced batch and lost the record, and the open committed the batch with the
    PrepareCommit). The power loss: the state partition cut to its synced offset."""
    with eventlog.open(tmp_path, fsync="always") as log:
        log.create_topic("out", 2)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a", partition=0)
        p.send("out", b"b", partition=1)
        p.commit_transaction()
        p.begin_transaction()
        p.send("out", b"open at the power loss", partition=0)
        state = log.partition(txn_state_topic, 0)
        state.truncate_to(state._log.synced_offset)  # what a power loss keeps
        kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert open_transactions(log) == [{}, {}]
        assert committed_values(log) == [b"a", b"b"]


@pytest.mark.parametrize("then", ["retry", "kill"])
def test_a_failed_one_phase_marker_logs_the_decision(tmp_path: Path, monkeypatch,
                                                     then: str) -> None:
    """The marker of a one-phase commit fails: PrepareCommit is logged before the
    error is raised, so calling commit again, or the next open, completes it."""
    real = Partition.write_marker

    def failing(self, *args, **kwargs):
        raise StorageError("disk full")

    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 1)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a")
        monkeypatch.setattr(Partition, "write_marker", failing)
        with pytest.raises(StorageError):
            p.commit_transaction()
        monkeypatch.setattr(Partition, "write_marker", real)
        assert p.transaction_state is S.COMMITTING_TRANSACTION
        assert states(log)[-1] == "PrepareCommit"
        if then == "retry":
            p.commit_transaction()
            assert p.transaction_state is S.READY
            assert committed_values(log) == [b"a"]
        kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert open_transactions(log) == [{}]
        assert committed_values(log) == [b"a"]


@pytest.mark.parametrize("then", ["retry", "kill"])
def test_a_failed_marker_and_decision_leave_the_transaction_undecided(
        tmp_path: Path, monkeypatch, then: str) -> None:
    """Neither the marker nor the PrepareCommit record could be written: nothing was
    decided. The coordinator is back in Ongoing; calling commit again commits, and
    the next open instead aborts."""
    real = Partition.write_marker

    def failing(self, *args, **kwargs):
        raise StorageError("disk full")

    with eventlog.open(tmp_path) as log:
        log.create_topic("out", 1)
        p = txn_producer(log)
        p.init_transactions()
        p.begin_transaction()
        p.send("out", b"a")
        coordinator = transaction_coordinator_for(log)
        append = coordinator._append
        monkeypatch.setattr(Partition, "write_marker", failing)
        monkeypatch.setattr(coordinator, "_append", lambda *a, **k: failing(None))
        with pytest.raises(StorageError):
            p.commit_transaction()
        monkeypatch.setattr(Partition, "write_marker", real)
        monkeypatch.setattr(coordinator, "_append", append)
        assert p.transaction_state is S.COMMITTING_TRANSACTION
        assert coordinator.state_of("tx") is TxnState.ONGOING
        assert states(log) == ["Empty"]
        coordinator.check()
        if then == "retry":
            p.commit_transaction()
            assert committed_values(log) == [b"a"]
        kill(log, p)
    with eventlog.open(tmp_path) as log:
        assert open_transactions(log) == [{}]
        assert committed_values(log) == ([b"a"] if then == "retry" else [])
