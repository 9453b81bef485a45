"""A state machine of transactional producers checked against a model.

Two producers share one transactional id (so each init fences the other), and
transactions are begun, sent to, committed, aborted, timed out on a manual clock,
the topic (compacted, keys from a pool of three) is rolled and cleaned, and the log
is closed and reopened. The model: read_committed readers see exactly the records of
committed transactions, in commit order per partition; once a partition was cleaned,
what they see is an ordered subset of those that holds every key's last committed
record (the cleaner drops aborted data and superseded records, never the latest
committed one, nor anything past the last stable offset).
"""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import eventlog
from budget import examples
from eventlog.errors import InvalidTxnStateError, ProducerFencedError, TransactionAbortableError
from eventlog.group import txn_coordinator
from eventlog.group.txn_state import ProducerTxnState as S
from eventlog.records import TopicPartition as TP
from eventlog.testing import ManualClock

TIMEOUT_MS = 1000
KEYS = 3
COMPACT = {"cleanup_policy": "compact", "min_cleanable_dirty_ratio": 0.01,
           "delete_retention_ms": 2 * TIMEOUT_MS}


class TransactionsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.path = tempfile.mkdtemp(prefix="txn-machine-")
        self.clock = ManualClock(10_000)
        self.log = eventlog.open(self.path, clock=self.clock)
        self.log.create_topic("out", 2, **COMPACT)
        self.cleaned = [False, False]
        self.committed: dict[int, list[bytes]] = {0: [], 1: []}
        self.producers: list = [None, None]
        self.pending: list[dict[int, list[bytes]]] = [{}, {}]
        self.n = 0

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def _new(self, i: int) -> None:
        p = eventlog.Producer(self.log, transactional_id="tx", linger_ms=0,
                              transaction_timeout_ms=TIMEOUT_MS)
        p.init_transactions()
        self.producers[i] = p
        self.pending = [{}, {}]  # the other one's open transaction was aborted

    @rule(i=st.integers(0, 1))
    def init(self, i: int) -> None:
        self._new(i)

    @precondition(lambda self: any(self.producers))
    @rule(i=st.integers(0, 1))
    def begin(self, i: int) -> None:
        p = self.producers[i]
        if p is None:
            return
        try:
            p.begin_transaction()
        except (InvalidTxnStateError, ProducerFencedError, TransactionAbortableError):
            return
        self.pending[i] = {}

    @rule(i=st.integers(0, 1), partition=st.integers(0, 1), count=st.integers(1, 3),
          batch=st.booleans())
    def send(self, i: int, partition: int, count: int, batch: bool) -> None:
        p = self.producers[i]
        if p is None:
            return
        values = []
        for _ in range(count):
            self.n += 1
            values.append(b"%d" % self.n)
        try:
            if batch:
                p.send_batch("out", [(_key(v), v) for v in values], partition=partition)
            else:
                for v in values:
                    p.send("out", v, key=_key(v), partition=partition)
        except (InvalidTxnStateError, ProducerFencedError, TransactionAbortableError):
            assert p.transaction_state is not S.IN_TRANSACTION or batch is False
            return
        self.pending[i].setdefault(partition, []).extend(values)

    @rule(i=st.integers(0, 1))
    def commit(self, i: int) -> None:
        p = self.producers[i]
        if p is None:
            return
        try:
            p.commit_transaction()
        except (InvalidTxnStateError, ProducerFencedError, TransactionAbortableError):
            return
        for partition, values in self.pending[i].items():
            self.committed[partition].extend(values)
        self.pending[i] = {}

    @rule(i=st.integers(0, 1))
    def abort(self, i: int) -> None:
        p = self.producers[i]
        if p is None:
            return
        try:
            p.abort_transaction()
        except (InvalidTxnStateError, ProducerFencedError):
            return
        self.pending[i] = {}

    @rule()
    def time_out(self) -> None:
        self.clock.advance(TIMEOUT_MS)
        transactions = self.log.existing_layer_state(txn_coordinator.coordinator_slot)
        if transactions is not None:
            transactions.expire()
        self.pending = [{}, {}]

    @rule(partition=st.integers(0, 1))
    def clean(self, partition: int) -> None:
        part = self.log.partition("out", partition)
        part.roll()
        stats = part.compact(self.clock.time_ms())
        self.cleaned[partition] = self.cleaned[partition] or stats.cleaned
        part.check()

    @rule()
    def reopen(self) -> None:
        self.log.close()  # aborts what is open
        self.log = eventlog.open(self.path, clock=self.clock)
        self.producers = [None, None]
        self.pending = [{}, {}]

    @invariant()
    def read_committed_sees_exactly_the_committed(self) -> None:
        for partition in (0, 1):
            c = self.log.consumer(isolation_level="read_committed",
                                  auto_offset_reset="earliest")
            c.assign([TP("out", partition)])
            seen = []
            while batch := c.poll():
                seen.extend(r.value for r in batch)
            c.close()
            committed = self.committed[partition]
            if not self.cleaned[partition]:
                assert seen == committed
                continue
            position = {v: i for i, v in enumerate(committed)}
            assert all(v in position for v in seen), (seen, committed)  # nothing aborted
            assert [position[v] for v in seen] == sorted(position[v] for v in seen)
            last = {_key(v): v for v in committed}
            assert set(last.values()) <= set(seen), (seen, committed)


def _key(value: bytes) -> bytes:
    return b"k%d" % (int(value) % KEYS)


TransactionsMachine.TestCase.settings = settings(
    max_examples=examples(40), stateful_step_count=25, deadline=None)
test_transactions_machine = TransactionsMachine.TestCase
