"""The transaction coordinator of one EventLog (Kafka's TransactionCoordinator, KIP-98).

It owns, per ``transactional_id``: the producer id and epoch, the transaction's
state (the table in ``txn_state``), the partitions it wrote to, the offsets sent
with it, and its deadline. A change of state that a crash must not lose is first
appended to the internal compacted topic ``__transaction_state`` (one partition;
key: the transactional id in UTF-8; value: a msgpack map, docs/transactions.md),
then acted upon. The others live in memory only (the argument for each is in
docs/storage.md, "What the coordinator logs, and why a crash needs no more"):

* ``Ongoing`` is appended only for a transaction holding offsets, or when the
  id's latest record is a ``Prepare*`` whose ``Complete*`` was deferred (a batch
  must never land behind it: the recovery would complete that ``Prepare*`` over
  the new batch). Otherwise a crash leaves the batch open in its partition with
  no decision logged, and the recovery aborts it from the partition's own state;
* a transaction of one partition without offsets whose ``Ongoing`` was not
  appended ends in one phase: its marker is the decision (one batch in one
  partition lands whole or not at all), so no ``Prepare*`` is appended.

Ending any other transaction (``end_transaction``):

1. append ``PrepareCommit`` / ``PrepareAbort`` with the partitions and (commit)
   the offsets: the decision point. A crash after it completes the transaction
   on the next open; a crash before it aborts it;
2. commit: apply the offsets to the consumer groups (visible only now, KIP-447);
3. write a commit/abort marker to every partition of the transaction;
4. append ``CompleteCommit`` / ``CompleteAbort`` (deferred without offsets).

Fencing: ``init_producer_id`` for an id with an open transaction aborts it with
the epoch bumped, and the markers carry the new epoch, so the old producer's
later batches are refused by those partitions, and its later calls here by the
epoch check (ProducerFencedError). A transaction open longer than its timeout
on the log's clock is aborted the same way (checked at every call here and at
every read_committed poll); its producer's next call raises
TransactionTimedOutError, and its ``abort_transaction()`` succeeds and adopts
the new epoch (KIP-360).

Recovery (on open, before ``eventlog.open`` returns, when the log has the
topic or a partition with an open transaction): the latest record of each id
decides: Prepare* is completed, Ongoing is aborted with an epoch bump; then
every transaction still open in a partition (one that logged no decision: its
batches landed with no Ongoing record, or its marker did not) is aborted with
an epoch bump.

Thread-safe: one lock around every call. Lock order: this lock, then partition
locks (markers); no partition lock is held while calling in.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from functools import partial
from time import time_ns as _time_ns
from typing import Any

import msgpack

from ..broker.core import Broker, LayerState
from ..broker.partition import Partition
from ..clock import SystemClock
from ..errors import (
    CorruptLogError,
    InvalidConfigError,
    InvalidTxnStateError,
    ProducerFencedError,
    TopicExistsError,
    TransactionTimedOutError,
    UnknownPartitionError,
    UnknownTopicError,
)
from ..records import TopicPartition
from .coordinator import coordinator_for
from .offsets import OffsetAndMetadata
from .txn_state import COORDINATOR_TRANSITIONS, TxnState, next_coordinator_state

__all__ = [
    "TransactionCoordinator",
    "existing_transaction_coordinator",
    "transaction_coordinator_for",
    "txn_state_topic",
]

_log = logging.getLogger("eventlog.transactions")

txn_state_topic = "__transaction_state"
txn_state_segment_bytes = 100 * 1024 * 1024  # Kafka's transaction.state.log.segment.bytes
producer_id_base = 1 << 48  # transactional ids' producer ids: never an idempotent one's
epoch_max = 32767
transaction_max_timeout_ms = 900_000  # Kafka's transaction.max.timeout.ms
record_format = 0
_S = TxnState
# Records a transaction's batches must never land behind: the recovery completes the
# latest Prepare* of an id in every partition where the id has a transaction open.
_PREPARED = frozenset({_S.PREPARE_COMMIT, _S.PREPARE_ABORT, _S.PREPARE_EPOCH_FENCE})
# The states add_partition may move to Ongoing from (the table's; checked once here, so
# the per-call path is a set test), and the one-phase end's steps, which the table must
# allow (``_end_alone`` moves without a per-call lookup).
_TO_ONGOING = frozenset(s for s in _S if _S.ONGOING in COORDINATOR_TRANSITIONS[s])
assert all(b in COORDINATOR_TRANSITIONS[a] for a, b in (
    (_S.ONGOING, _S.PREPARE_COMMIT), (_S.PREPARE_COMMIT, _S.COMPLETE_COMMIT),
    (_S.ONGOING, _S.PREPARE_ABORT), (_S.PREPARE_ABORT, _S.COMPLETE_ABORT)))


def transaction_coordinator_for(log: Broker) -> TransactionCoordinator:
    """The log's TransactionCoordinator, created (and recovered) on first use."""
    return log.layer_state(coordinator_slot)


def _new_coordinator(log: Broker) -> TransactionCoordinator:
    coordinator = TransactionCoordinator(log)
    log.register_maintenance(coordinator.expire)  # abort transactions past their timeout
    return coordinator


# The log's TransactionCoordinator, made (and recovered) on first use.
coordinator_slot: LayerState[TransactionCoordinator] = LayerState(
    "transaction coordinator", lambda log: _new_coordinator(log))


def existing_transaction_coordinator(log: Broker) -> TransactionCoordinator | None:
    """The log's TransactionCoordinator if something already created it, else None
    (creating one creates ``__transaction_state``: readers must not)."""
    return log.existing_layer_state(coordinator_slot)


def recover_if_needed(log: Broker) -> None:
    """Called by ``EventLog`` at open: complete or abort what a crash left open."""
    if txn_state_topic in log.topic_map or any(
            p.open_transactions() for p in log.partitions()):
        transaction_coordinator_for(log)


class _Txn:
    __slots__ = ("epoch", "logged", "offsets", "partitions", "producer_id", "replicas",
                 "start_ms", "state", "timed_out_epoch", "timeout_ms", "txn_id", "written")

    def __init__(self, txn_id: str, producer_id: int, epoch: int, timeout_ms: int) -> None:
        self.txn_id = txn_id
        self.producer_id = producer_id
        self.epoch = epoch
        self.timeout_ms = timeout_ms
        self.state = _S.EMPTY
        self.partitions: set[TopicPartition] = set()
        # The Partition objects callers handed in with ``partitions`` (a lookup saved
        # per marker; one found closed is looked up again: its topic was deleted).
        self.replicas: dict[TopicPartition, Partition] = {}
        self.offsets: dict[str, dict[TopicPartition, OffsetAndMetadata]] = {}
        self.start_ms = -1
        self.timed_out_epoch = -1  # the epoch a timeout (or close) aborted: see module doc
        self.written = True  # False: ``state`` is not appended (see _persist)
        self.logged = _S.EMPTY  # the state of the id's latest record in the log

    def encode(self) -> bytes:
        value: dict[str, Any] = {
            "format": record_format, "producer_id": self.producer_id, "epoch": self.epoch,
            "timeout_ms": self.timeout_ms, "state": self.state.value,
            "partitions": sorted([tp.topic, tp.partition] for tp in self.partitions),
            "start_ms": self.start_ms,
        }
        if self.offsets:
            value["offsets"] = {
                group: [[tp.topic, tp.partition, om.offset, om.metadata]
                        for tp, om in offsets.items()]
                for group, offsets in self.offsets.items()
            }
        return msgpack.packb(value)

    @classmethod
    def decode(cls, key: bytes, value: bytes) -> _Txn:
        try:
            txn_id = key.decode("utf-8")
            v = msgpack.unpackb(value)
            if v["format"] != record_format:
                raise ValueError(f"unknown format {v['format']!r}")
            txn = cls(txn_id, int(v["producer_id"]), int(v["epoch"]), int(v["timeout_ms"]))
            txn.state = TxnState(v["state"])
            txn.partitions = {TopicPartition(str(t), int(i)) for t, i in v["partitions"]}
            txn.start_ms = int(v["start_ms"])
            txn.offsets = {
                str(group): {TopicPartition(str(t), int(i)): OffsetAndMetadata(int(o), str(m))
                             for t, i, o, m in offsets}
                for group, offsets in v.get("offsets", {}).items()
            }
            txn.logged = txn.state
        except Exception as exc:
            raise CorruptLogError(
                f"a record of {txn_state_topic} (key {key!r}) is not transaction state "
                f"eventlog wrote: {exc}"
            ) from exc
        return txn


class TransactionCoordinator:
    """See the module docstring. Get it with :func:`transaction_coordinator_for`."""

    def __init__(self, log: Broker) -> None:
        self._log = log
        self._clock = log.clock
        self._lock = threading.RLock()
        self._txns: dict[str, _Txn] = {}
        self._next_producer_id = producer_id_base
        self._next_expiry: float = 0  # no Ongoing transaction has a deadline before it
        self._closed = False
        self._system_clock = type(self._clock) is SystemClock
        with self._lock:
            self._partition = self._state_partition()
            # The single-record append path: one state record per call, validated here
            # (bytes key and value), so the generic column checks are not paid per step.
            self._append = partial(Partition.append_record, self._partition)
            self._load()
            self._recover()
        log.register_client(self)  # close() aborts what is still open

    # ------------------------------------------------------------------ storage

    def _state_partition(self) -> Any:
        try:
            topic = self._log.topic(txn_state_topic)
        except UnknownTopicError:
            try:
                topic = self._log.create_internal_topic(
                    txn_state_topic, 1, cleanup_policy="compact",
                    segment_bytes=txn_state_segment_bytes,
                )
            except TopicExistsError:
                topic = self._log.topic(txn_state_topic)
        return topic.partitions[0]

    def _load(self) -> None:
        part = self._partition
        offset, end = part.start_offset, part.end_offset
        while offset < end:
            records = part.read(offset, 4096)
            if not records:
                break
            for r in records:
                if r.key is None:
                    continue
                if r.value is None:
                    self._txns.pop(r.key.decode("utf-8", "replace"), None)
                    continue
                txn = _Txn.decode(r.key, r.value)
                self._txns[txn.txn_id] = txn
                self._next_producer_id = max(self._next_producer_id, txn.producer_id + 1)
            offset = records[-1].offset + 1

    def _persist(self, txn: _Txn, state: TxnState, *, write: bool = True,
                 sync: bool = True) -> None:
        """Move ``txn`` to ``state`` (checked against the table) and append it: the
        change is durable before anything acts on it. On a storage error the state
        in memory is unchanged. ``write=False``: a state whose loss costs nothing
        (a Complete* without offsets, see ``_complete``; an Ongoing or a one-phase
        Prepare* with no Prepare* logged before it, see ``add_partition`` and
        ``_end_alone``), kept in memory; the id's next record supersedes it.
        ``sync=False`` (an Ongoing of offsets after a record the recovery reads as
        settled, under fsync="always"): on disk with the PrepareCommit/PrepareAbort
        sync; a power loss that loses it loses only what an abort drops anyway."""
        next_coordinator_state(txn.state, state)
        if not write:
            txn.state = state
            txn.written = False
            return
        previous = txn.state
        txn.state = state
        try:
            self._write(txn, sync)
        except BaseException:
            txn.state = previous
            raise

    def _write(self, txn: _Txn, sync: bool = True) -> None:
        self._append(txn.txn_id.encode("utf-8"), txn.encode(), None, self._clock.time_ms(), 0,
                     sync=sync)
        txn.written = True
        txn.logged = txn.state

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        for txn in list(self._txns.values()):
            if txn.state is _S.PREPARE_COMMIT:
                self._complete(txn, commit=True, recovering=True)
            elif txn.state in (_S.PREPARE_ABORT, _S.PREPARE_EPOCH_FENCE):
                if txn.state is _S.PREPARE_EPOCH_FENCE:
                    self._persist(txn, _S.PREPARE_ABORT)
                self._complete(txn, commit=False, recovering=True)
            elif txn.state is _S.ONGOING:
                self._abort_bumping(txn)
        owners = {t.producer_id: t for t in self._txns.values()}
        fenced: set[int] = set()
        for part in self._log.partitions():
            for pid in part.open_transactions():
                _log.warning("aborting the transaction of producer %d left open in %s-%d",
                             pid, part.topic, part.index)
                txn = owners.get(pid)
                if txn is not None and pid not in fenced:
                    fenced.add(pid)
                    # A transaction that logged no decision (usually no record at
                    # all: add_partition writes none): bump the epoch of the producer
                    # that may still believe it open (a wire client), as the Ongoing
                    # path does; its next call raises TransactionTimedOutError, and
                    # its abort adopts the new epoch.
                    old = txn.epoch
                    txn.epoch = min(old + 1, epoch_max)
                    self._persist(txn, _S.EMPTY)
                    txn.timed_out_epoch = old
                epoch = 0 if txn is None else txn.epoch
                part.sync(part.write_marker(pid, epoch, commit=False) + 1)

    # ------------------------------------------------------------------ the API

    def init_producer_id(self, txn_id: str, timeout_ms: int,
                         expected: tuple[int, int] | None = None) -> tuple[int, int]:
        """Kafka's InitProducerId with a transactional id: (producer id, epoch).

        An open transaction of the id is aborted and the epoch bumped (fencing the
        producer that had it). ``expected``: the (producer id, epoch) the caller has
        (KIP-360: a wire producer bumping its own epoch); ProducerFencedError unless
        it is the id's current one, or the one a timeout aborted. Raises
        InvalidConfigError for a bad timeout."""
        if type(timeout_ms) is not int or not 1 <= timeout_ms <= transaction_max_timeout_ms:
            raise InvalidConfigError(
                f"transaction_timeout_ms must be an int in [1, {transaction_max_timeout_ms}] "
                f"(Kafka's transaction.max.timeout.ms), got {timeout_ms!r}"
            )
        with self._lock:
            self._expire_locked()
            txn = self._txns.get(txn_id)
            if txn is not None and expected is not None and expected[0] >= 0:
                pid, epoch = expected
                if pid != txn.producer_id or epoch not in (txn.epoch, txn.timed_out_epoch):
                    raise ProducerFencedError(
                        f"producer {pid} epoch {epoch} of transactional id {txn_id!r} was "
                        f"fenced: the id's producer is {txn.producer_id} epoch {txn.epoch}"
                    )
            if txn is None:
                txn = _Txn(txn_id, self._next_producer_id, 0, timeout_ms)
                self._persist(txn, _S.EMPTY)
                self._next_producer_id += 1
                self._txns[txn_id] = txn
                return txn.producer_id, txn.epoch
            if txn.state is _S.PREPARE_COMMIT:
                self._complete(txn, commit=True)
            elif txn.state is _S.PREPARE_ABORT:
                self._complete(txn, commit=False)
            elif txn.state is _S.ONGOING:
                self._abort_bumping(txn)  # fences the producer that had it
            if txn.epoch >= epoch_max - 1:
                txn.producer_id, txn.epoch = self._next_producer_id, -1
                self._next_producer_id += 1
            txn.epoch += 1
            txn.timeout_ms = timeout_ms
            txn.timed_out_epoch = -1
            self._persist(txn, _S.EMPTY)
            return txn.producer_id, txn.epoch

    def add_partition(self, txn_id: str, producer_id: int, epoch: int,
                      tp: TopicPartition, partition: Partition | None = None) -> None:
        """Kafka's AddPartitionsToTxn, before the first batch to ``tp`` in the
        transaction. ``partition``: ``tp``'s Partition, if the caller holds it."""
        with self._lock:
            now = self._expire_locked()
            txn = self._txns.get(txn_id)  # _checked's test of the current producer, inlined
            if txn is None or txn.producer_id != producer_id or txn.epoch != epoch:
                txn = self._checked(txn_id, producer_id, epoch, expired=True)  # raises
            partitions = txn.partitions
            if tp in partitions:
                return
            state = txn.state
            if state is not _S.ONGOING:  # _begin_if_needed and _persist's check, inlined
                if state not in _TO_ONGOING:
                    next_coordinator_state(state, _S.ONGOING)  # raises: a bug
                txn.start_ms = now
                deadline = now + txn.timeout_ms
                if deadline < self._next_expiry:
                    self._next_expiry = deadline
            if partition is not None:
                txn.replicas[tp] = partition
            if txn.logged not in _PREPARED:
                # No record: a crash before the decision leaves the batch open in its
                # partition with nothing logged for it, and the recovery aborts it
                # (docs/storage.md, "What the coordinator logs").
                txn.state = _S.ONGOING
                txn.written = False
                partitions.add(tp)
                return
            # The id's latest record is a Prepare* whose Complete* was deferred: the
            # batch must not land behind it (the recovery would complete it over the
            # batch), so Ongoing supersedes it first, synced under fsync="always".
            partitions.add(tp)
            try:
                self._persist(txn, _S.ONGOING)
            except BaseException:
                partitions.discard(tp)
                raise

    def add_offsets(self, txn_id: str, producer_id: int, epoch: int, group_id: str,
                    offsets: Mapping[TopicPartition, OffsetAndMetadata], member_id: str,
                    generation: int, instance_id: str | None) -> None:
        """Kafka's AddOffsetsToTxn + TxnOffsetCommit: validate the consumer's group
        membership (KIP-447) and hold the offsets until the transaction ends."""
        with self._lock:
            txn = self._checked(txn_id, producer_id, epoch)
            coordinator_for(self._log).validate_member(group_id, member_id, generation,
                                                       instance_id)
            for tp in offsets:
                self._log.partition(tp.topic, tp.partition)  # Unknown*Error if absent
            self._begin_if_needed(txn)
            previous = txn.offsets.get(group_id)
            txn.offsets.setdefault(group_id, {}).update(offsets)
            if txn.logged is not _S.ONGOING:
                # Logged once per transaction with offsets: the recovery then aborts it
                # with the epoch bumped, fencing a wire producer that outlived a crash
                # and would otherwise commit an empty transaction in its place. After a
                # Prepare* it is synced, as add_partition's.
                try:
                    self._persist(txn, _S.ONGOING, sync=txn.logged in _PREPARED)
                except BaseException:
                    if previous is None:
                        txn.offsets.pop(group_id, None)
                    else:
                        txn.offsets[group_id] = previous
                    raise

    def end_transaction(self, txn_id: str, producer_id: int, epoch: int,
                        commit: bool) -> int:
        """Kafka's EndTxn; returns the producer's epoch from now on (bumped if the
        transaction had timed out and this is its abort)."""
        with self._lock:
            self._expire_locked()
            txn = self._txns.get(txn_id)
            if (not commit and txn is not None and txn.producer_id == producer_id
                    and epoch == txn.timed_out_epoch):
                txn.timed_out_epoch = -1
                return txn.epoch  # aborted by its timeout already: adopt the new epoch
            if txn is None or txn.producer_id != producer_id or txn.epoch != epoch:
                txn = self._checked(txn_id, producer_id, epoch, expired=True)  # raises
            if txn.state is _S.ONGOING:
                if (txn.logged is not _S.ONGOING and not txn.offsets
                        and len(txn.partitions) == 1):
                    self._end_alone(txn, commit)
                    return txn.epoch
                self._persist(txn, _S.PREPARE_COMMIT if commit else _S.PREPARE_ABORT)
            elif txn.state is _S.PREPARE_COMMIT and commit:
                pass  # a retry after a failed marker write
            elif txn.state is _S.PREPARE_ABORT and not commit:
                pass
            elif txn.state in (_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT):
                return txn.epoch  # nothing was sent in it: nothing to end
            else:
                raise InvalidTxnStateError(
                    f"cannot {'commit' if commit else 'abort'} the transaction of "
                    f"{txn_id!r}: it is in state {txn.state}"
                )
            self._complete(txn, commit=commit)
            return txn.epoch

    def check_partition(self, txn_id: str, producer_id: int, epoch: int,
                        tp: TopicPartition) -> None:
        """Raise unless ``tp`` is in the open transaction of (producer id, epoch): a
        wire produce request's check before its transactional batch is appended (as
        Kafka's KIP-890 verification), so no batch lands outside a transaction this
        coordinator will end. Raises ProducerFencedError, TransactionTimedOutError,
        or InvalidTxnStateError (the partition was not added). O(1)."""
        with self._lock:
            txn = self._checked(txn_id, producer_id, epoch)
            if txn.state is not _S.ONGOING or tp not in txn.partitions:
                raise InvalidTxnStateError(
                    f"{tp.topic}-{tp.partition} is not in the open transaction of "
                    f"{txn_id!r}: add it (AddPartitionsToTxn) before producing to it"
                )

    def pending_offsets(self, group_id: str) -> set[TopicPartition]:
        """The partitions of ``group_id`` with offsets in an open transaction (an
        OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for them)."""
        with self._lock:
            return {tp for txn in self._txns.values() if txn.state is not _S.EMPTY
                    for tp in txn.offsets.get(group_id, ())}

    def check_producer(self, txn_id: str, producer_id: int, epoch: int) -> None:
        """Raise ProducerFencedError / TransactionTimedOutError if the producer's
        (id, epoch) is no longer current for ``txn_id``."""
        with self._lock:
            self._checked(txn_id, producer_id, epoch)

    def state_of(self, txn_id: str) -> TxnState | None:
        with self._lock:
            txn = self._txns.get(txn_id)
            return None if txn is None else txn.state

    def expire(self) -> None:
        """Abort every transaction open past its timeout on the log's clock."""
        with self._lock:
            self._expire_locked()

    def close(self) -> None:
        """Abort every open transaction (``EventLog.close()`` calls it): a clean close
        leaves none open, so the next open scans nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for txn in list(self._txns.values()):
                try:
                    if txn.state is _S.ONGOING:
                        self._abort_bumping(txn)
                    elif txn.state in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
                        self._complete(txn, commit=txn.state is _S.PREPARE_COMMIT)
                    if not txn.written:  # a clean close leaves nothing to complete
                        self._write(txn)
                except OSError as exc:  # the next open completes it
                    _log.warning("cannot end the transaction of %r at close: %s",
                                 txn.txn_id, exc)

    def check(self) -> None:
        """Assert the invariants: a txn has partitions or offsets only while open, and
        holds Partition objects only of its partitions."""
        with self._lock:
            for txn in self._txns.values():
                if txn.state in (_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT):
                    assert not txn.partitions and not txn.offsets, txn.txn_id
                    assert not txn.replicas, txn.txn_id
                    assert txn.start_ms == -1, txn.txn_id
                assert txn.replicas.keys() <= txn.partitions, txn.txn_id

    # ------------------------------------------------------------------ internals

    def _checked(self, txn_id: str, producer_id: int, epoch: int, *,
                 expired: bool = False) -> _Txn:
        """The id's state, after the expiry scan (``expired``: the caller ran it);
        raises unless (producer id, epoch) is the id's current producer."""
        if not expired:
            self._expire_locked()
        txn = self._txns.get(txn_id)
        if txn is None:
            raise InvalidTxnStateError(
                f"transactional id {txn_id!r} is unknown; call init_transactions() first")
        if txn.producer_id == producer_id and epoch == txn.timed_out_epoch:
            raise TransactionTimedOutError(
                f"the transaction of {txn_id!r} was open longer than its "
                f"transaction_timeout_ms={txn.timeout_ms} and was aborted; call "
                "abort_transaction(), then begin a new one"
            )
        if txn.producer_id != producer_id or epoch != txn.epoch:
            raise ProducerFencedError(
                f"producer {producer_id} epoch {epoch} of transactional id {txn_id!r} was "
                f"fenced: a newer producer (epoch {txn.epoch}) called init_transactions(); "
                "close this one"
            )
        return txn

    def _begin_if_needed(self, txn: _Txn, now: int | None = None) -> None:
        if txn.state is not _S.ONGOING:
            txn.start_ms = start = self._clock.time_ms() if now is None else now
            deadline = start + txn.timeout_ms
            if deadline < self._next_expiry:
                self._next_expiry = deadline

    def _expire_locked(self) -> int:
        """Abort what is past its timeout; return the clock's time it read. O(1) until
        the earliest deadline passes, then O(transactional ids) (it runs at every call:
        with many ids, a scan per call would be the coordinator's cost)."""
        # SystemClock.time_ms() inlined (at every call): one C call, not a method.
        now = _time_ns() // 1_000_000 if self._system_clock else self._clock.time_ms()
        if now < self._next_expiry:
            return now
        earliest = math.inf
        for txn in self._txns.values():
            if txn.state is not _S.ONGOING:
                continue
            if now - txn.start_ms >= txn.timeout_ms:
                _log.info("aborting the transaction of %r: open %d ms, over its timeout of %d",
                          txn.txn_id, now - txn.start_ms, txn.timeout_ms)
                self._abort_bumping(txn)
            else:
                earliest = min(earliest, txn.start_ms + txn.timeout_ms)
        self._next_expiry = earliest
        return now

    def _abort_bumping(self, txn: _Txn) -> None:
        """Abort an Ongoing transaction with the epoch bumped (a timeout, a fence, a
        recovery): the markers fence the producer that had it."""
        old = txn.epoch
        txn.epoch += 1
        try:
            self._persist(txn, _S.PREPARE_EPOCH_FENCE)
            self._persist(txn, _S.PREPARE_ABORT)
        except BaseException:
            txn.epoch = old
            raise
        txn.timed_out_epoch = old
        self._complete(txn, commit=False)

    def _end_alone(self, txn: _Txn, commit: bool) -> None:
        """End a transaction of one partition, without offsets, that logged nothing
        since its id's last settled record, in one phase: its marker is the decision.
        A crash before the marker lands leaves the transaction open in the partition
        with no decision logged (the recovery aborts it); after, it is ended there,
        and the id's latest record names no partition it is open in. If the marker
        cannot be written, the decision is logged as Prepare* before the error is
        raised, so that calling again (or the next open) completes it as a two-phase
        end would; if that append fails too, nothing was decided (the state is
        Ongoing again, and the next open aborts the transaction)."""
        # Ongoing -> Prepare* -> Complete*, in memory (legal: asserted at import).
        txn.state = _S.PREPARE_COMMIT if commit else _S.PREPARE_ABORT
        txn.written = False
        (tp,) = txn.partitions
        try:
            self._mark(txn, tp, commit)
        except BaseException:
            try:
                self._write(txn)
            except BaseException:
                txn.state = _S.ONGOING
                raise
            raise
        txn.partitions = set()
        txn.replicas = {}
        txn.start_ms = -1
        txn.state = _S.COMPLETE_COMMIT if commit else _S.COMPLETE_ABORT

    def _mark(self, txn: _Txn, tp: TopicPartition, commit: bool,
              recovering: bool = False) -> None:
        """Write ``txn``'s marker to ``tp`` (none if the partition was deleted, or, in a
        recovery, if the transaction is not open there: marked before the crash)."""
        part = txn.replicas.get(tp)
        if part is None or part.closed:
            try:
                part = self._log.partition(tp.topic, tp.partition)
            except (UnknownTopicError, UnknownPartitionError):
                return  # deleted meanwhile: nothing left to mark
        if recovering and txn.producer_id not in part.open_transactions():
            return
        # On disk before the Complete* record can be (fsync="always"; else a no-op):
        # a Complete* without its markers would leave the transaction open in the
        # partition, and an open that finds it there aborts it.
        part.sync(part.write_marker(txn.producer_id, txn.epoch, commit) + 1)

    def _complete(self, txn: _Txn, *, commit: bool, recovering: bool = False) -> None:
        """Steps 2-4 of the module docstring, from a Prepare* state."""
        if commit and txn.offsets:  # (a transaction without offsets needs no groups)
            groups = coordinator_for(self._log)
            for group_id, offsets in txn.offsets.items():
                kept = {tp: om for tp, om in offsets.items() if self._exists(tp)}
                if kept:  # AddOffsetsToTxn without a TxnOffsetCommit holds none
                    groups.commit_transactional(group_id, kept)
        for tp in sorted(txn.partitions):
            self._mark(txn, tp, commit, recovering)
        # Completing again is harmless when no offsets were applied: every marker was
        # written, and a recovery that finds Prepare* last skips the marked partitions
        # (the id's next batch lands only after a record that supersedes it: see
        # add_partition).
        # So the Complete* record waits for the id's next record (its next
        # transaction, init_transactions(), close()): one append less per transaction.
        # With offsets it is written now, so a recovery never applies them twice (over
        # a later commit of the group).
        lazy = not recovering and not (commit and txn.offsets)
        txn.partitions = set()
        txn.replicas = {}
        txn.offsets = {}
        txn.start_ms = -1
        self._persist(txn, _S.COMPLETE_COMMIT if commit else _S.COMPLETE_ABORT,
                      write=not lazy)

    def _exists(self, tp: TopicPartition) -> bool:
        try:
            self._log.partition(tp.topic, tp.partition)
        except (UnknownTopicError, UnknownPartitionError):
            return False
        return True

    def __repr__(self) -> str:
        return f"TransactionCoordinator({len(self._txns)} transactional ids)"
