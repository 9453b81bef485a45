"""Transaction states and the tables of transitions between them (Kafka's KIP-98).

Two machines, both pure (no clock, no I/O, no locks):

* :class:`ProducerTxnState`: a transactional producer's state, Kafka's
  ``TransactionManager.State``. The producer's calls are its events; a call the
  table does not list for the current state is the user's mistake and raises
  ``InvalidTxnStateError`` naming the state, changing nothing. Errors move the
  producer to ``ABORTABLE_ERROR`` (the transaction cannot commit: call
  ``abort_transaction()``) or ``FATAL_ERROR`` (the producer is fenced or broken:
  close it); which one is Kafka's ``TransactionManager`` rule (docs/transactions.md).
* :class:`TxnState`: the coordinator's state of one transactional id, Kafka's
  ``TransactionState`` (its ``validPreviousStates``), persisted in
  ``__transaction_state``. An illegal coordinator transition is a bug:
  :func:`next_coordinator_state` raises ``AssertionError``.

Draw either diagram with :func:`mermaid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .transitions import Named
from .transitions import mermaid as draw

__all__ = [
    "COORDINATOR_TRANSITIONS",
    "PRODUCER_TRANSITIONS",
    "ProducerTxnEvent",
    "ProducerTxnState",
    "TxnState",
    "mermaid",
    "next_coordinator_state",
    "next_producer_state",
]


class ProducerTxnState(Named):
    """A transactional producer's state; the values are Kafka's names."""

    UNINITIALIZED = "UNINITIALIZED"
    INITIALIZING = "INITIALIZING"
    READY = "READY"
    IN_TRANSACTION = "IN_TRANSACTION"
    COMMITTING_TRANSACTION = "COMMITTING_TRANSACTION"
    ABORTING_TRANSACTION = "ABORTING_TRANSACTION"
    ABORTABLE_ERROR = "ABORTABLE_ERROR"
    FATAL_ERROR = "FATAL_ERROR"


class ProducerTxnEvent(Named):
    """What moves a producer: its calls, their completion, and errors."""

    INIT = "init_transactions"
    INIT_DONE = "init_done"
    BEGIN = "begin_transaction"
    SEND = "send"
    SEND_OFFSETS = "send_offsets_to_transaction"
    COMMIT = "commit_transaction"
    ABORT = "abort_transaction"
    END_DONE = "end_done"
    ABORTABLE_ERROR = "abortable_error"
    FATAL_ERROR = "fatal_error"


_P = ProducerTxnState
_PE = ProducerTxnEvent

PRODUCER_TRANSITIONS: Mapping[tuple[ProducerTxnState, ProducerTxnEvent], ProducerTxnState] = (
    MappingProxyType({
        (_P.UNINITIALIZED, _PE.INIT): _P.INITIALIZING,
        (_P.INITIALIZING, _PE.INIT_DONE): _P.READY,
        (_P.READY, _PE.BEGIN): _P.IN_TRANSACTION,
        (_P.IN_TRANSACTION, _PE.SEND): _P.IN_TRANSACTION,
        (_P.IN_TRANSACTION, _PE.SEND_OFFSETS): _P.IN_TRANSACTION,
        (_P.IN_TRANSACTION, _PE.COMMIT): _P.COMMITTING_TRANSACTION,
        (_P.IN_TRANSACTION, _PE.ABORT): _P.ABORTING_TRANSACTION,
        # A commit whose markers could not all be written (a storage error) is retried
        # by calling commit_transaction() again: the decision was logged.
        (_P.COMMITTING_TRANSACTION, _PE.COMMIT): _P.COMMITTING_TRANSACTION,
        (_P.COMMITTING_TRANSACTION, _PE.END_DONE): _P.READY,
        (_P.ABORTING_TRANSACTION, _PE.ABORT): _P.ABORTING_TRANSACTION,
        (_P.ABORTING_TRANSACTION, _PE.END_DONE): _P.READY,
        (_P.IN_TRANSACTION, _PE.ABORTABLE_ERROR): _P.ABORTABLE_ERROR,
        (_P.COMMITTING_TRANSACTION, _PE.ABORTABLE_ERROR): _P.ABORTABLE_ERROR,
        (_P.ABORTABLE_ERROR, _PE.ABORTABLE_ERROR): _P.ABORTABLE_ERROR,
        (_P.ABORTABLE_ERROR, _PE.ABORT): _P.ABORTING_TRANSACTION,
        # Fatal from anywhere but itself (fenced, a broken coordinator): close the producer.
        **{(s, _PE.FATAL_ERROR): _P.FATAL_ERROR for s in _P if s is not _P.FATAL_ERROR},
        # A failed init_transactions() (a storage error) may be retried.
        (_P.INITIALIZING, _PE.INIT): _P.INITIALIZING,
    })
)
"""(state, event) -> next state of a transactional producer. Unlisted: InvalidTxnStateError."""


def next_producer_state(state: ProducerTxnState, event: ProducerTxnEvent
                        ) -> ProducerTxnState | None:
    """The state after ``event``, or None if the table does not allow it. O(1). Pure."""
    return PRODUCER_TRANSITIONS.get((state, event))


class TxnState(Named):
    """The coordinator's state of one transactional id (Kafka's TransactionState)."""

    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    DEAD = "Dead"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"


_T = TxnState

# Kafka's TransactionState.validPreviousStates, turned around.
COORDINATOR_TRANSITIONS: Mapping[TxnState, frozenset[TxnState]] = MappingProxyType({
    _T.EMPTY: frozenset({_T.EMPTY, _T.ONGOING, _T.DEAD}),
    _T.ONGOING: frozenset({_T.ONGOING, _T.PREPARE_COMMIT, _T.PREPARE_ABORT,
                           _T.PREPARE_EPOCH_FENCE}),
    _T.PREPARE_COMMIT: frozenset({_T.COMPLETE_COMMIT}),
    _T.PREPARE_ABORT: frozenset({_T.COMPLETE_ABORT}),
    _T.COMPLETE_COMMIT: frozenset({_T.EMPTY, _T.ONGOING, _T.DEAD}),
    _T.COMPLETE_ABORT: frozenset({_T.EMPTY, _T.ONGOING, _T.DEAD}),
    _T.PREPARE_EPOCH_FENCE: frozenset({_T.PREPARE_ABORT}),
    _T.DEAD: frozenset(),
})
"""state -> the states that may follow it in the coordinator."""


def next_coordinator_state(state: TxnState, target: TxnState) -> TxnState:
    """``target`` if the coordinator may move from ``state`` to it. Pure.

    Raises:
        AssertionError: the table has no such transition (a bug in the coordinator).
    """
    if target not in COORDINATOR_TRANSITIONS[state]:
        raise AssertionError(f"illegal transaction transition: {state} -> {target}")
    return target


def mermaid(machine: str = "producer") -> str:
    """The ``"producer"`` or ``"coordinator"`` table as a Mermaid ``stateDiagram-v2``."""
    if machine == "producer":
        return draw(PRODUCER_TRANSITIONS, _P.UNINITIALIZED)
    if machine == "coordinator":
        lines = ["stateDiagram-v2", f"    [*] --> {_T.EMPTY.value}"]
        for state, targets in COORDINATOR_TRANSITIONS.items():
            for target in sorted(targets, key=list(_T).index):
                lines.append(f"    {state.value} --> {target.value}")
        return "\n".join(lines)
    raise ValueError(f"machine must be 'producer' or 'coordinator', got {machine!r}")
