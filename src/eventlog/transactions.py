"""The transactional producer: Kafka's transactional API (KIP-98, KIP-447).

``Producer(log, transactional_id="...")`` makes a :class:`TransactionalProducer`::

    producer.init_transactions()          # once: fences older producers of the id
    producer.begin_transaction()
    producer.send("out", b"v", key=b"k")  # and send_batch(): inside the transaction
    producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
    producer.commit_transaction()         # or abort_transaction()

Every call moves the producer through the table of ``group.txn_state``
(``ProducerTxnState``); a call the table does not allow in the current state raises
InvalidTxnStateError and changes nothing. Errors are Kafka's two kinds:

* abortable (the state becomes ``ABORTABLE_ERROR``): a batch of the transaction
  failed (a storage error after its retries, a refused record), the log aborted
  the transaction for its timeout (TransactionTimedOutError), the group refused
  the offsets (a rebalance moved the consumer to a newer generation). Every call
  but ``abort_transaction()`` then raises TransactionAbortableError; the abort
  succeeds and the producer may begin again;
* fatal (``FATAL_ERROR``): ProducerFencedError, when a newer producer of the same
  ``transactional_id`` called ``init_transactions()``. Every call raises it again:
  close the producer.

The non-transactional producer's paths are untouched: the hooks live in this
module's subclasses (the per-partition proxy that adds a partition to the
transaction before its first batch, the retry hook that makes an exhausted retry
abortable), and the partition's only cost is one attribute test per batch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from .broker import Broker as EventLog  # the broker layer; eventlog.EventLog subclasses it
from .broker.partition import Partition
from .errors import (
    ClosedError,
    EventLogError,
    GroupError,
    InvalidConfigError,
    InvalidProducerEpochError,
    InvalidTxnStateError,
    ProducerFencedError,
    StorageError,
    TransactionAbortableError,
    TransactionTimedOutError,
)
from .group.offsets import validate_offsets
from .group.txn_coordinator import TransactionCoordinator, transaction_coordinator_for
from .group.txn_state import (
    PRODUCER_TRANSITIONS,
    ProducerTxnEvent,
    ProducerTxnState,
    next_producer_state,
)
from .producer import (
    BatchMetadata,
    DeliveryFuture,
    Producer,
    _PartitionQueue,
    _State,
)
from .producer.facade import register_transactional_class
from .records import ConsumerGroupMetadata, TopicPartition
from .storage.batch import attr_transactional

__all__ = ["TransactionalProducer"]

_S = ProducerTxnState
_E = ProducerTxnEvent


class _TxnPartition:
    """A partition as a transactional producer's queue sees it: before the first
    batch of each transaction it adds the partition to the transaction (Kafka's
    AddPartitionsToTxn); errors of its appends move the producer's state."""

    __slots__ = ("_part", "_producer", "_token", "_tp", "index", "sync", "topic")

    def __init__(self, part: Partition, producer: TransactionalProducer) -> None:
        self._part = part
        self._producer = producer
        self._token: object = None  # the transaction it was last added to
        self._tp = TopicPartition(part.topic, part.index)
        # What the sender reads per record, without a __getattr__ each.
        self.topic = part.topic
        self.index = part.index
        self.sync = part.sync

    def __getattr__(self, name: str) -> Any:
        return getattr(self._part, name)

    @property
    def syncs_each_append(self) -> bool:
        return self._part.syncs_each_append

    def _before(self) -> None:
        producer = self._producer
        token = producer._txn_token
        if token is producer._sealed_token:
            # A batch accumulated by a send that raced commit or abort, after their
            # flush: its transaction's markers are written, so it must not land.
            raise InvalidTxnStateError(
                f"a send() raced the end of the transaction of {producer._txn_id!r} and "
                "lost: the record was not written; send it in the next transaction "
                "(do not send while commit_transaction() or abort_transaction() runs)")
        if self._token is not token:
            producer._add_partition(self)

    def append_record(self, key: bytes | None, value: bytes | None, headers: tuple | None,
                      timestamp_ms: int, attributes: int, producer_id: int = -1,
                      producer_epoch: int = -1, sequence: int = -1, sync: bool = True
                      ) -> tuple[int, int]:
        # Once per send() with linger 0 (the only caller), holding the queue's lock:
        # _before inlined, no argument packing. The record is admitted only while the
        # transaction is open: commit and abort move the state first, then take every
        # queue's lock once (see _admission_barrier), so a send racing them either lands
        # before their markers or raises here, never after a marker.
        producer = self._producer
        if producer._txn_state is not _S.IN_TRANSACTION:
            producer._move(_E.SEND)  # raises: SEND is allowed in IN_TRANSACTION alone
        if self._token is not producer._txn_token:
            producer._add_partition(self)
        try:
            return self._part.append_record(key, value, headers, timestamp_ms, attributes,
                                            producer_id, producer_epoch, sequence, sync)
        except StorageError:
            raise  # retried by the producer; _TxnState.retry_or_raise sees the last one
        except EventLogError as exc:
            raise self._producer._append_failed(exc) from exc

    def append_columns(self, *args: Any, **kwargs: Any) -> Any:
        self._before()
        try:
            return self._part.append_columns(*args, **kwargs)
        except StorageError:
            raise
        except EventLogError as exc:
            raise self._producer._append_failed(exc) from exc


class _TxnState(_State):
    """The producer state with a proxy per partition and abortable exhausted retries."""

    producer: TransactionalProducer

    def queue(self, partition: Partition) -> _PartitionQueue:
        q = self.queues.get(partition)
        if q is None:
            with self.queues_lock:
                q = self.queues.get(partition)
                if q is None:
                    q = _PartitionQueue(partition, self.config)
                    q.partition = _TxnPartition(partition, self.producer)  # type: ignore[assignment]
                    q.flush_lingering = partial(self.flush_queue, q)
                    self.queues[partition] = q
        return q

    def append_sent_columns(self, q: _PartitionQueue, keys: list, values: list,
                            headers: list | None, timestamps: list[int]) -> Any:
        # send_batch(), holding q.lock: admitted only while the transaction is open,
        # as append_record admits send()'s records. Commit and abort move the state
        # before their admission barrier, so a send_batch that checked the state
        # before that but reaches its queue after the barrier passed it raises here
        # instead of appending after a marker (the sealed token closes that only
        # once every queue was passed).
        producer = self.producer
        if producer._txn_state is not _S.IN_TRANSACTION:
            producer._move(_E.SEND)  # raises: SEND is allowed in IN_TRANSACTION alone
        return self.append_columns(q, keys, values, headers, timestamps)

    def retry_or_raise(self, q: _PartitionQueue, attempt: int, count: int = 1) -> int:
        try:
            return super().retry_or_raise(q, attempt, count)
        except StorageError as exc:  # retries ran out: the transaction cannot commit
            self.producer._abortable(exc)
            raise


@register_transactional_class
class TransactionalProducer(Producer):
    """A Producer with ``transactional_id``: see the module docstring."""

    _state_class = _TxnState

    def __init__(self, log_: EventLog, **config: Any) -> None:
        self._txn_lock = threading.RLock()
        self._txn_state = _S.UNINITIALIZED
        self._txn_error: BaseException | None = None
        self._txn_token: object = None
        # The transaction whose batches were all flushed by commit or abort: a batch
        # of its token appended later (a racing send's) is refused, not written
        # after the markers.
        self._sealed_token: object = object()
        self._coordinator: TransactionCoordinator | None = None
        super().__init__(log_, **config)
        state = self._state
        assert isinstance(state, _TxnState)
        state.producer = self
        self._txn_id: str = self.config.transactional_id  # type: ignore[assignment]
        state.attributes |= attr_transactional
        self._attributes = state.attributes
        state.producer_id = self._producer_id = -1  # until init_transactions()

    # ------------------------------------------------------------------ state

    @property
    def transactional_id(self) -> str:
        return self._txn_id

    @property
    def transaction_state(self) -> ProducerTxnState:
        """The state in the table of ``group.txn_state`` (for tools and tests)."""
        return self._txn_state

    @property
    def producer_id_and_epoch(self) -> tuple[int, int]:
        return self._producer_id, self._producer_epoch

    def _move(self, event: ProducerTxnEvent) -> None:
        """Take ``event`` or raise what the current state calls for, changing nothing."""
        state = self._txn_state
        target = _next_state((state, event))  # next_producer_state, one call less
        if target is None:
            if self._state.closed:
                raise ClosedError("the producer is closed")
            if state is _S.FATAL_ERROR and self._txn_error is not None:
                raise self._txn_error
            if state is _S.ABORTABLE_ERROR:
                raise TransactionAbortableError(
                    f"the transaction of {self._txn_id!r} cannot commit ({self._txn_error}); "
                    "call abort_transaction(), then begin a new one"
                ) from self._txn_error
            raise InvalidTxnStateError(
                f"cannot {event} in state {state} (transactional id {self._txn_id!r}); "
                + _HINTS.get(state, "")
            )
        self._txn_state = target

    def _fatal(self, exc: BaseException) -> BaseException:
        with self._txn_lock:
            if self._txn_state is not _S.FATAL_ERROR:
                self._txn_state = _S.FATAL_ERROR
                self._txn_error = exc
        return exc

    def _abortable(self, exc: BaseException) -> BaseException:
        with self._txn_lock:
            target = next_producer_state(self._txn_state, _E.ABORTABLE_ERROR)
            if target is not None:
                self._txn_state = target
                self._txn_error = exc
        return exc

    def _classify(self, exc: BaseException) -> BaseException:
        if isinstance(exc, ProducerFencedError):
            return self._fatal(exc)
        if isinstance(exc, (TransactionAbortableError, GroupError)):
            return self._abortable(exc)
        return exc

    def _append_failed(self, exc: EventLogError) -> BaseException:
        """An append of the transaction was refused. An older epoch means the log
        bumped it: fenced by a newer producer, or aborted for its timeout."""
        if isinstance(exc, InvalidProducerEpochError):
            assert self._coordinator is not None
            try:
                self._coordinator.check_producer(self._txn_id, self._producer_id,
                                                 self._producer_epoch)
            except (ProducerFencedError, TransactionTimedOutError) as why:
                return self._classify(why)
            return self._fatal(ProducerFencedError(str(exc)))
        return self._abortable(exc)

    def _add_partition(self, proxy: _TxnPartition) -> None:
        with self._txn_lock:
            token = self._txn_token
            if self._txn_state not in _APPENDING:
                self._move(_E.SEND)  # raises: an append outside a transaction
            if proxy._token is token:
                return
            assert self._coordinator is not None
            tp = proxy._tp
            try:
                self._coordinator.add_partition(self._txn_id, self._producer_id,
                                                self._producer_epoch, tp, proxy._part)
            except EventLogError as exc:
                raise self._classify(exc) from None
            proxy._token = token

    def _admission_barrier(self) -> None:
        """After commit or abort moved the state: wait for the sends that were
        appending under a queue's lock (admitted while the transaction was open) by
        taking each lock once; a send that takes one later sees the new state and
        raises. Called without ``_txn_lock`` (a send holds its queue's lock while it
        takes that one). O(partitions sent to): one lock each."""
        for q in list(self._state.queues.values()):  # one C call: flush_all's copy
            q.lock.acquire()
            q.lock.release()

    def _adopt(self, producer_id: int, epoch: int) -> None:
        """New producer id / epoch: every partition's sequences start again at 0."""
        state = self._state
        if (producer_id, epoch) == (self._producer_id, self._producer_epoch):
            return
        with state.queues_lock:
            queues = list(state.queues.values())
        for q in queues:
            with q.lock:
                q.next_sequence = 0
        state.producer_id = self._producer_id = producer_id
        state.producer_epoch = self._producer_epoch = epoch

    # ------------------------------------------------------------------ the API

    def init_transactions(self) -> None:
        """Get the producer id and epoch of ``transactional_id`` (once per producer).

        Bumps the epoch: a producer of the same id initialised earlier is fenced (its
        later calls raise ProducerFencedError) and its open transaction is aborted.

        Cost: one append to ``__transaction_state`` (the first call on a log creates
            that topic; an open transaction of the id adds its abort: two records and
            a marker per partition); fsync'd under fsync="always".
        Thread safety: any thread; serialised with the producer's other transactional
            calls (one lock).
        Raises: InvalidTxnStateError if called twice; InvalidConfigError for a
            ``transaction_timeout_ms`` over 15 minutes (Kafka's
            transaction.max.timeout.ms); StorageError (the state is unchanged and the
            call may be retried); ClosedError.
        """
        with self._txn_lock:
            self._move(_E.INIT)
            coordinator = transaction_coordinator_for(self._log)
            try:
                pid, epoch = coordinator.init_producer_id(self._txn_id,
                                                          self.config.transaction_timeout_ms)
            except BaseException:
                self._txn_state = _S.UNINITIALIZED
                raise
            self._coordinator = coordinator
            self._adopt(pid, epoch)
            self._move(_E.INIT_DONE)

    def begin_transaction(self) -> None:
        """Start a transaction: sends until commit/abort belong to it.

        Cost: O(1), local: nothing is written until the first send.
        Thread safety: any thread; serialised with the producer's other transactional
            calls.
        Raises: InvalidTxnStateError (no init_transactions(), or a transaction is
            open); ProducerFencedError once fenced; TransactionAbortableError after
            an abortable error, until abort_transaction().
        """
        with self._txn_lock:
            target = _next_state((self._txn_state, _E.BEGIN))  # _move, inlined
            if target is None:
                self._move(_E.BEGIN)  # raises what the state calls for
            self._txn_state = target
            self._txn_token = object()

    def send(self, topic: str, value: Any = None, key: Any = None, **kwargs: Any
             ) -> DeliveryFuture:
        """``Producer.send`` inside the transaction.

        Cost: as ``Producer.send``; before the first batch to a partition in this
            transaction, the coordinator's check (Kafka's AddPartitionsToTxn; an
            append to ``__transaction_state`` only right after a transaction that
            ended in two phases).
        Thread safety: any thread, as ``Producer.send``.
        Raises: InvalidTxnStateError outside a transaction; ProducerFencedError;
            TransactionAbortableError / TransactionTimedOutError (abort, then begin
            again); then as ``Producer.send``.
        """
        if self._txn_state is not _S.IN_TRANSACTION:
            with self._txn_lock:
                self._move(_E.SEND)
        return _send(self, topic, value, key, **kwargs)  # super().send, without super()

    def send_batch(self, topic: str, records: Iterable[Sequence[Any]], **kwargs: Any
                   ) -> BatchMetadata:
        """``Producer.send_batch`` inside the transaction.

        Cost: as ``Producer.send_batch``; before the first batch to a partition in
            this transaction, the coordinator's check, as ``send``.
        Thread safety: any thread, as ``Producer.send_batch``.
        Raises: InvalidTxnStateError outside a transaction; ProducerFencedError;
            TransactionAbortableError / TransactionTimedOutError; then as
            ``Producer.send_batch``.
        """
        if self._txn_state is not _S.IN_TRANSACTION:
            with self._txn_lock:
                self._move(_E.SEND)
        return super().send_batch(topic, records, **kwargs)

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, Any], group_metadata: ConsumerGroupMetadata
    ) -> None:
        """Commit ``offsets`` for the consumer group of ``group_metadata`` with this
        transaction: visible to the group only when it commits, never if it aborts.

        ``group_metadata`` is ``consumer.group_metadata()``: a consumer that a
        rebalance moved to an older generation is refused (KIP-447), an abortable
        error.

        Cost: O(offsets) checks and the group's membership check; one append to
            ``__transaction_state`` (the Ongoing record) the first time in a
            transaction. The offsets are written at commit.
        Thread safety: any thread; serialised with the producer's other transactional
            calls.
        Raises: InvalidConfigError for bad offsets or a ``group_metadata`` that is not
            a ConsumerGroupMetadata, changing nothing; UnknownMemberError /
            IllegalGenerationError / RebalanceInProgressError / FencedInstanceIdError
            (abortable: the producer moves to ABORTABLE_ERROR); UnknownTopicError;
            InvalidTxnStateError outside a transaction; ProducerFencedError.
        """
        if not isinstance(group_metadata, ConsumerGroupMetadata):
            raise InvalidConfigError(
                "group_metadata must be consumer.group_metadata() (a ConsumerGroupMetadata), "
                f"got {type(group_metadata).__name__}"
            )
        checked = validate_offsets(offsets)
        with self._txn_lock:
            self._move(_E.SEND_OFFSETS)
            assert self._coordinator is not None
            try:
                self._coordinator.add_offsets(
                    self._txn_id, self._producer_id, self._producer_epoch,
                    group_metadata.group_id, checked, group_metadata.member_id,
                    group_metadata.generation_id, group_metadata.group_instance_id,
                )
            except EventLogError as exc:
                raise self._classify(exc) from None

    def commit_transaction(self) -> None:
        """Flush, then make every record and offset of the transaction visible at once.

        Cost: the flush, then for a transaction of one partition without offsets
            its marker alone (the decision); otherwise one PrepareCommit append, one
            ``__consumer_offsets`` append per group with offsets (and then the
            Complete record), one marker per partition written to. Under
            fsync="always" an fsync for each marker and the PrepareCommit record.
        Thread safety: any thread; other threads' sends made before it starts belong
            to the transaction (the flush waits for them).
        Raises: TransactionAbortableError (abort, then begin again) if anything in the
            transaction failed or it timed out; ProducerFencedError if fenced;
            InvalidTxnStateError outside a transaction; a StorageError while the
            outcome is being written leaves the producer committing: calling
            commit_transaction() again completes it, and so does the next open of
            the log once the decision was logged (it is unless the log could not be
            written at all; then the open aborts it).
        """
        txn_lock = self._txn_lock
        with txn_lock:
            target = _next_state((self._txn_state, _E.COMMIT))  # _move, inlined
            if target is None:
                self._move(_E.COMMIT)  # raises what the state calls for
            self._txn_state = target
        # flush(), which is also the admission barrier: for each queue it waits out a
        # send appending under q.lock (admitted while the transaction was open), a
        # batch the flusher took and is appending, and a full batch a send() left in
        # q.ready (it takes q.lock to append those): all land before the markers.
        self._state.flush_all()
        self._sealed_token = self._txn_token
        with txn_lock:
            if self._txn_state is not _S.COMMITTING_TRANSACTION:
                self._move(_E.COMMIT)  # an append failed meanwhile: raise its error
            coordinator = self._coordinator
            assert coordinator is not None
            try:
                epoch = coordinator.end_transaction(
                    self._txn_id, self._producer_id, self._producer_epoch, True)
            except StorageError:
                raise
            except EventLogError as exc:
                raise self._classify(exc) from None
            if epoch != self._producer_epoch:
                self._adopt(self._producer_id, epoch)
            self._txn_state = _DONE  # _move(END_DONE): COMMITTING_TRANSACTION -> READY

    def abort_transaction(self) -> None:
        """End the transaction without making any of it visible (also after an
        abortable error).

        Cost: the flush (lingering records join the aborted transaction), one
            marker per partition written to (an aborted-transactions index entry
            each), and a PrepareAbort append first unless the transaction is of one
            partition without offsets; fsync'd as commit_transaction's.
        Thread safety: any thread; serialised with the producer's other transactional
            calls.
        Raises: ProducerFencedError if fenced; InvalidTxnStateError outside a
            transaction; StorageError while the abort is written (call it again: the
            decision was logged, or the next open of the log aborts it).
        """
        with self._txn_lock:
            self._move(_E.ABORT)
        self._admission_barrier()
        try:
            self.flush()  # lingering records join the transaction that is aborted
        except EventLogError:
            pass
        self._sealed_token = self._txn_token
        with self._txn_lock:
            assert self._coordinator is not None
            try:
                epoch = self._coordinator.end_transaction(
                    self._txn_id, self._producer_id, self._producer_epoch, commit=False)
            except StorageError:
                raise
            except EventLogError as exc:
                raise self._classify(exc) from None
            self._adopt(self._producer_id, epoch)
            self._txn_error = None
            self._move(_E.END_DONE)

    def check(self) -> None:
        """Assert the producer's invariants (for tests and tools): Producer.check()'s,
        and the transaction state's agreement with its error and producer id.

        Cost: O(partitions sent to + records lingering), as Producer.check().
        Thread safety: when no thread is sending, as Producer.check(); takes the
            transactional lock.
        Raises: AssertionError naming the broken invariant.
        """
        super().check()
        with self._txn_lock:
            assert (self._txn_state in (_S.ABORTABLE_ERROR, _S.FATAL_ERROR)) == (
                self._txn_error is not None), self._txn_state
            if self._txn_state in (_S.UNINITIALIZED, _S.INITIALIZING):
                assert self._producer_id == -1

    def __repr__(self) -> str:
        return (f"TransactionalProducer({self._txn_id!r}, state={self._txn_state}, "
                f"producer_id={self._producer_id}, epoch={self._producer_epoch})")


_next_state = PRODUCER_TRANSITIONS.get
_send = Producer.send
_DONE = PRODUCER_TRANSITIONS[_S.COMMITTING_TRANSACTION, _E.END_DONE]

# States in which the producer's batches may still land (commit and abort flush first).
_APPENDING = frozenset({_S.IN_TRANSACTION, _S.COMMITTING_TRANSACTION, _S.ABORTING_TRANSACTION})

_HINTS = {
    _S.UNINITIALIZED: "call init_transactions() first",
    _S.READY: "call begin_transaction() first",
    _S.IN_TRANSACTION: "a transaction is already open: commit or abort it first",
    _S.INITIALIZING: "init_transactions() is running",
}
