"""Consumer: the public consumer, which wires its parts together and runs the poll loop.

The client half of Kafka's consumer (KAFKA_SEMANTICS 4): positions, fetching,
committing, seeking, pausing, and the member side of the group protocol, whose
coordinator half is :mod:`eventlog.group.coordinator`. The parts: ``subscription``
(what is read), ``positions`` (where), ``fetcher`` (records from decoded batches),
``membership`` (the group protocol, its states in ``member_state``'s table),
``commits`` (offset commits, the auto-commit timer), ``listener`` (rebalance
callbacks), ``stats`` (metrics).

Theory of operation
-------------------
*Modes.* ``assign(partitions)`` reads exactly those partitions; ``subscribe(topics)``
with a ``group_id`` joins the group and reads what the group's assignor gives this
member. ``subscribe`` without a ``group_id`` reads every partition of the topics
(kafka-python's behaviour; Kafka's Java client refuses it). The two modes exclude
each other until ``unsubscribe()``.

*poll() drives everything, on the caller's thread, without blocking on other
members.* Each ``poll`` (1) auto-commits if ``auto_commit_interval_ms`` passed,
(2) takes as many group-protocol steps as it can without waiting for another
member: heartbeat; on a rebalance, revoke (callbacks) and rejoin; collect a
completed assignment (callbacks); (3) fetches from the owned, unpaused partitions,
and (4) if nothing was fetched, waits on the log (new data or a group change wakes
it) until ``timeout_ms`` passes, re-checking the group at least every
``heartbeat_interval_ms``. So members polled in turn from one thread with
``timeout_ms=0`` converge, and members in threads wake each other.

Thread-safety: a Consumer is used by one thread at a time (as Kafka's): a call
from a second thread while one is running raises IllegalStateError, except
``close()``, which may be called from any thread: it stops a ``poll`` waiting in
another thread and waits for it to return; and ``metrics()``, readable from any thread.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from ..broker import Broker as EventLog  # the broker layer; eventlog.EventLog subclasses it
from ..errors import ClosedError, GroupError, InvalidConfigError
from ..group.assignors import Assignor, rebalance_protocol, resolve_assignors
from ..group.coordinator import GroupCoordinator, coordinator_for
from ..group.offsets import OffsetAndMetadata, validate_offsets
from ..records import ConsumerGroupMetadata, ConsumerRecord, TopicPartition
from ..serde import DESERIALIZERS, resolve_deserializer
from .commits import Committer
from .config import ConsumerConfig
from .fetcher import Fetcher
from .guard import ThreadGuard
from .listener import Callbacks, ConsumerRebalanceListener, check_listener
from .membership import Membership
from .partition_polls import PartitionPolls, poll_limit
from .poller import Poller
from .positions import Positions
from .stats import ConsumerStats
from .subscription import ASSIGN, SUBSCRIBE, Subscription, flatten, partitions_arg, subscribe_args

__all__ = [
    "Consumer",
    "ConsumerConfig",
    "ConsumerRebalanceListener",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
]

_client_ids = itertools.count(1)
close_wait_s = 30.0  # how long close() waits for a poll running in another thread


class OffsetAndTimestamp(NamedTuple):
    """What ``offsets_for_times`` finds: the first offset at or after a time, and its time."""

    offset: int
    timestamp_ms: int


class Consumer(PartitionPolls):
    """Reads records from an EventLog: ``Consumer(log, *topics, group_id=None, **config)``.

    With ``topics``, subscribes to them at once. Configs are ConsumerConfig's fields.
    Raises InvalidConfigError for an unknown or invalid config, ClosedError if the
    log is closed. A context manager (``close()`` on exit) and an iterator of
    records (ending after ``consumer_timeout_ms`` without one).

    Every public method below ends with its cost, the threads that may call it
    ("the consumer's thread": one thread at a time; a call while another thread
    uses the consumer raises IllegalStateError) and what it raises. Every method
    except ``close()`` and ``metrics()`` raises ClosedError after ``close()``.
    """

    def __init__(self, log: EventLog, *topics: str, group_id: str | None = None,
                 **config: Any) -> None:
        if not isinstance(log, EventLog):
            raise InvalidConfigError(f"Consumer needs an EventLog, got {type(log).__name__}")
        if log.closed:
            raise ClosedError("the EventLog is closed; open it again")
        given = config if group_id is None else {"group_id": group_id, **config}
        self.config = cfg = ConsumerConfig.from_mapping(given)
        self._log = log
        self._group_id = cfg.group_id
        self._coordinator = None if cfg.group_id is None else _coordinator(log, cfg)
        self._guard = ThreadGuard()
        self._iterator: Iterator[ConsumerRecord] | None = None
        self._stats = stats = ConsumerStats(log.clock.monotonic_ms())
        self._subscription = Subscription()
        self._callbacks = Callbacks()
        self._positions = positions = Positions(log, cfg, self._coordinator)
        fetcher = Fetcher(positions, cfg, _deserializer(cfg.key_deserializer, "key_deserializer"),
                          _deserializer(cfg.value_deserializer, "value_deserializer"))
        self._committer = Committer(log, cfg, self._coordinator, stats)
        self._membership = _membership(log, cfg, self._coordinator, (
            self._subscription, positions, self._callbacks, self._committer, stats))
        self._poller = Poller(log, cfg, self._guard, (
            positions, fetcher, self._membership, self._committer, self._callbacks, stats))
        log.register_client(self)
        if topics:
            self.subscribe(list(topics))

    @property
    def group_id(self) -> str | None:
        """The consumer's group id (None without a group)."""
        return self._group_id

    @property
    def member_id(self) -> str:
        """The member id the coordinator gave this consumer ("" before it joined)."""
        return self._membership.member_id

    @property
    def generation(self) -> int:
        """The group generation of the current assignment (-1 if not a stable member)."""
        return self._membership.generation

    @property
    def closed(self) -> bool:
        """Whether ``close()`` completed."""
        return self._guard.closed

    # ------------------------------------------------------------------ subscription

    def subscribe(
        self,
        topics: Iterable[str] | str | None = None,
        *,
        pattern: str | re.Pattern[str] | None = None,
        listener: Any = None,
    ) -> None:
        """Subscribe to ``topics`` (a list) or to every topic matching ``pattern``.

        Replaces an earlier subscription; the group rebalances at the next poll.
        Topics need not exist yet. An empty list unsubscribes. ``listener``: a
        ConsumerRebalanceListener (or any object with ``on_partitions_revoked``
        and ``on_partitions_assigned``, optionally ``on_partitions_lost``).

        Cost: O(topics) to check the names; the rebalance runs in the next poll.
        Thread safety: the consumer's thread.
        Raises: IllegalStateError if partitions were ``assign``-ed;
            InvalidConfigError for a bad topic name, pattern or listener, or for
            neither or both of topics and pattern. Nothing is changed then.
        """
        with self._guard.hold():
            self._subscription.refuse_mode_change(to=SUBSCRIBE)
            names, compiled = subscribe_args(topics, pattern)
            check_listener(listener)
            if compiled is None and not names:
                self._unsubscribe()
                return
            self._subscription.set(names, compiled)
            self._callbacks.listener = listener

    def subscription(self) -> set[str]:
        """The topics subscribed to (for a pattern: those it matches now).

        Cost: O(topics), O(topics of the log) for a pattern.
        Thread safety: the consumer's thread.
        Raises: ClosedError after close().
        """
        with self._guard.hold():
            sub = self._subscription
            topics = sub.topics_now(self._log, self.config.exclude_internal_topics)
            return set(topics) if sub.subscribed else set()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly ``partitions`` (no group membership); ``[]`` unassigns all.

        Positions of partitions kept are kept. With a group_id and auto-commit,
        the current positions are committed first.

        Cost: O(partitions), plus a commit with auto-commit.
        Thread safety: the consumer's thread.
        Raises: IllegalStateError if subscribed; UnknownTopicError /
            UnknownPartitionError for a partition that does not exist;
            InvalidConfigError for something that is not a (topic, partition).
            Nothing is changed then.
        """
        with self._guard.hold():
            self._subscription.refuse_mode_change(to=ASSIGN)
            wanted = {TopicPartition(*tp): self._positions.partition(tp)
                      for tp in partitions_arg(partitions)}
            self._membership.auto_commit()
            if not wanted:
                self._unsubscribe()
                return
            self._positions.replace(wanted)
            self._subscription.mode = ASSIGN

    def unsubscribe(self) -> None:
        """Drop the subscription or assignment: revoke (callback) and leave the group.

        A static member (``group_instance_id``) does not leave: its partitions
        stay assigned, unfetched, until ``session_timeout_ms`` passes.

        Cost: O(assigned partitions) plus the revoke callback.
        Thread safety: the consumer's thread.
        Raises: what the revoke callback raised (after leaving); ClosedError.
        """
        with self._guard.hold():
            self._unsubscribe()
            self._callbacks.raise_error()

    def _unsubscribe(self) -> None:
        if self._subscription.subscribed:
            self._membership.leave()
        self._positions.clear()
        self._subscription.clear()
        self._callbacks.listener = None

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now.

        Cost: O(assigned partitions).
        Thread safety: the consumer's thread.
        Raises: ClosedError after close().
        """
        with self._guard.hold():
            return set(self._positions.assigned)

    # ------------------------------------------------------------------ polling

    def poll(self, timeout_ms: float = 0, max_records: int | None = None) -> list[ConsumerRecord]:
        """Records from the assigned partitions, at most ``max_records``
        (default ``max_poll_records``), waiting up to ``timeout_ms`` for some.

        Also auto-commits, heartbeats, and runs rebalances and their callbacks
        (module docstring). Records of one partition come in offset order.
        Positions are unchanged by a failed fetch.

        Cost: O(records returned) C-level work plus O(assigned partitions).
        Thread safety: the consumer's thread; ``close()`` from another thread ends a
            waiting poll.
        Raises: ClosedError after close(); InvalidConfigError for a bad timeout or
            limit; NoOffsetForPartitionError (``auto_offset_reset="none"`` and
            nothing committed); OffsetOutOfRangeError (position out of range and
            reset "none"); FencedInstanceIdError (another consumer took this
            group_instance_id); whatever a rebalance callback or a deserializer raised.
        """
        limit = poll_limit(timeout_ms, max_records, self.config.max_poll_records)
        with self._guard.hold():
            chunks = self._poller.poll_chunks(timeout_ms, limit, apply=True)
        if len(chunks) == 1:
            return chunks[0].records
        out: list[ConsumerRecord] = []
        for chunk in chunks:
            out.extend(chunk.records)
        return out

    # ------------------------------------------------------------------ positions, offsets

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record poll() returns for ``tp`` (KAFKA_SEMANTICS 4.2).

        Resolves it first if unknown (committed offset, else ``auto_offset_reset``).

        Cost: O(1); one committed-offset lookup when unknown.
        Thread safety: the consumer's thread.
        Raises: IllegalStateError if ``tp`` is not assigned; NoOffsetForPartitionError
            as poll() does.
        """
        with self._guard.hold():
            st = self._positions.state_for(tp)
            return st.position if st.position is not None else self._positions.resolve(st)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make the next poll return ``tp``'s records from ``offset`` on.

        Cost: O(1).
        Thread safety: the consumer's thread.
        Raises: IllegalStateError if ``tp`` is not assigned; InvalidConfigError for
            a negative or non-int offset; OffsetOutOfRangeError if ``offset`` is
            outside [log start offset, log end offset] (Kafka accepts it and resets
            at the next fetch). Nothing is changed then.
        """
        with self._guard.hold():
            self._positions.seek(tp, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Lazily move to the log start offset (evaluated at the next poll or position).

        No arguments: every assigned partition.

        Cost: O(partitions).
        Thread safety: the consumer's thread.
        Raises: IllegalStateError for an unassigned partition (nothing is changed).
        """
        with self._guard.hold():
            self._positions.seek_to(flatten(partitions), "earliest")

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Lazily move to the log end offset (evaluated at the next poll or position).

        No arguments: every assigned partition.

        Cost: O(partitions).
        Thread safety: the consumer's thread.
        Raises: IllegalStateError for an unassigned partition (nothing is changed).
        """
        with self._guard.hold():
            self._positions.seek_to(flatten(partitions), "latest")

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records of ``partitions`` until resume(); no rebalance.

        A partition revoked and assigned again is no longer paused.

        Cost: O(partitions).
        Thread safety: the consumer's thread.
        Raises: IllegalStateError for an unassigned partition (nothing is changed).
        """
        with self._guard.hold():
            self._positions.set_paused(flatten(partitions), True)

    def resume(self, *partitions: TopicPartition) -> None:
        """Return records of ``partitions`` again.

        Cost: O(partitions).
        Thread safety: the consumer's thread.
        Raises: IllegalStateError for an unassigned partition (nothing is changed).
        """
        with self._guard.hold():
            self._positions.set_paused(flatten(partitions), False)

    def paused(self) -> set[TopicPartition]:
        """The paused partitions.

        Cost: O(assigned partitions).
        Thread safety: the consumer's thread.
        Raises: ClosedError after close().
        """
        with self._guard.hold():
            return {tp for tp, st in self._positions.assigned.items() if st.paused}

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The log start offset of each partition; the position does not move.

        Needs no assignment.

        Cost: O(partitions).
        Thread safety: the consumer's thread.
        Raises: UnknownTopicError / UnknownPartitionError; InvalidConfigError for
            something that is not a list of (topic, partition).
        """
        with self._guard.hold():
            return self._positions.start_offsets(partitions_arg(partitions))

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The log end offset (= high watermark) of each partition, or with
        ``isolation_level="read_committed"`` its last stable offset; 0 if never written.

        Cost: O(partitions).
        Thread safety: the consumer's thread.
        Raises: UnknownTopicError / UnknownPartitionError; InvalidConfigError for
            something that is not a list of (topic, partition).
        """
        with self._guard.hold():
            return self._positions.end_offsets(partitions_arg(partitions))

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The group id, generation, member id and instance id, for a transactional
        producer's ``send_offsets_to_transaction`` (KIP-447).

        Cost: O(1).
        Thread safety: the consumer's thread.
        Raises: InvalidConfigError without a ``group_id``.
        """
        with self._guard.hold():
            return self._membership.group_metadata()

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the first offset whose timestamp is >= the given ms.

        None where no record is that recent. Needs no assignment.

        Cost: O(log segments) per partition plus one batch scan.
        Thread safety: the consumer's thread.
        Raises: InvalidConfigError for a negative or non-int time; UnknownTopicError /
            UnknownPartitionError. Nothing is looked up then.
        """
        with self._guard.hold():
            found = self._positions.offsets_for_times(timestamps)
        return {tp: None if f is None else OffsetAndTimestamp(*f) for tp, f in found.items()}

    # ------------------------------------------------------------------ committing

    def committed(self, tp: TopicPartition, *, metadata: bool = False
                  ) -> int | OffsetAndMetadata | None:
        """The group's committed offset for ``tp`` (the next offset to read), or None.

        ``metadata=True`` returns an OffsetAndMetadata. Needs no assignment.

        Cost: O(1).
        Thread safety: the consumer's thread.
        Raises: InvalidConfigError without a group_id.
        """
        with self._guard.hold():
            self._committer.require_group("committed()")
            return self._committer.committed(tp, metadata)

    def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        """Commit ``offsets`` ({tp: next offset to read | OffsetAndMetadata}), by default
        the positions of every assigned partition (all that earlier polls returned).

        Cost: O(partitions committed): one append to ``__consumer_offsets``.
        Thread safety: the consumer's thread.
        Raises: InvalidConfigError (no group_id, bad offsets); ReadOnlyLogError (a
            read-only log); UnknownTopicError / UnknownPartitionError (a partition
            that does not exist: Kafka's UNKNOWN_TOPIC_OR_PARTITION);
            CommitFailedError (this member was evicted or the group moved to another
            generation: its partitions may belong to another member now; poll to
            rejoin); RebalanceInProgressError (this member is rejoining; poll, then
            commit again); FencedInstanceIdError. Nothing is committed then.
        """
        with self._guard.hold():
            checked = self._to_commit("commit()", offsets)
            if checked:
                self._committer.commit(checked, *self._membership.commit_identity())

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, Any] | None = None,
        callback: Callable[[dict[TopicPartition, OffsetAndMetadata], BaseException | None],
                           Any] | None = None,
    ) -> None:
        """Commit like ``commit()``, reporting the outcome to ``callback(offsets, error)``.

        In process the commit completes before this returns, and so does the
        callback (on the caller's thread).

        Cost: as ``commit()``, plus the callback.
        Thread safety: the consumer's thread.
        Raises: InvalidConfigError, ReadOnlyLogError and ClosedError; group errors
            go to the callback instead; what the callback raises.
        """
        with self._guard.hold():
            checked = self._to_commit("commit_async()", offsets)
            error: BaseException | None = None
            try:
                if checked:
                    self._committer.commit(checked, *self._membership.commit_identity())
            except GroupError as exc:
                error = exc
            if callback is not None:
                callback(checked, error)

    def _to_commit(self, what: str, offsets: Mapping[TopicPartition, Any] | None
                   ) -> dict[TopicPartition, OffsetAndMetadata]:
        self._committer.require_group(what)
        self._committer.refuse_read_only(what)
        return self._positions.consumed() if offsets is None else validate_offsets(offsets)

    # ------------------------------------------------------------------ iteration

    def __iter__(self) -> Consumer:
        return self

    def __next__(self) -> ConsumerRecord:
        """The next record; StopIteration after ``consumer_timeout_ms`` without one
        (never, if it is None) or once the consumer is closed.

        Positions move as records are handed out, so ``commit()`` inside the loop
        commits exactly what was iterated.
        """
        if self._iterator is None:
            self._iterator = self._poller.iterate()
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = None
            raise

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Commit (if auto-commit), revoke (callback) and leave the group; then close.

        Idempotent. A static member does not leave (KAFKA_SEMANTICS 4.12). Every
        other method raises ClosedError afterwards.

        Cost: a commit and the revoke callback, O(assigned partitions).
        Thread safety: any thread; a poll waiting in another thread returns first
            (close waits up to 30 s for it, then leaves the group without committing).
        Raises: a callback's exception, after the consumer is closed.
        """
        guard = self._guard
        if guard.closed:
            return
        if not self._log.closed:
            self._log.wake_waiters()
        acquired = guard.begin_close(close_wait_s)
        try:
            if guard.closed:
                return
            try:
                if acquired:
                    self._membership.auto_commit()
                    self._unsubscribe()
                else:  # the polling thread holds the consumer still: just leave
                    self._membership.leave_group()
            finally:
                guard.closed = True
                self._iterator = None
            self._callbacks.raise_error()
        finally:
            if acquired:
                guard.release()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def metrics(self) -> dict[str, float]:
        """Kafka's consumer metrics by Kafka's names (consumer-fetch-manager-metrics,
        consumer-coordinator-metrics, consumer-metrics; docs/operations.md lists them).

        Rates and averages cover Kafka's window (the last 30 to 60 s, sampled when
        read); an average or max without samples is NaN, as in Kafka.
        ``records-lag-max`` is the largest lag of an assigned partition now (log end
        offset minus position), NaN when no assigned partition has a position yet.

        Cost: O(assigned partitions).
        Thread safety: any thread, also while another polls, and after close().
        Raises: nothing.
        """
        positions = self._positions
        now_ms = self._log.clock.monotonic_ms()
        return self._stats.metrics(now_ms, positions.lags(), len(positions.assigned))

    def check(self) -> None:
        """Assert the consumer's invariants (and that the coordinator agrees on ownership).

        Cost: O(assigned partitions + members of the group).
        Thread safety: the consumer's thread (not guarded: for tests, between calls).
        Raises: AssertionError naming the broken invariant.
        """
        self._positions.check()
        self._subscription.check(bool(self._positions.assigned))
        self._membership.check()

    def __repr__(self) -> str:
        m = self._membership
        state = m.state.value if self._group_id else "standalone"
        state = "closed" if self._guard.closed else state
        return (
            f"Consumer(group_id={self._group_id!r}, member_id={m.member_id!r}, "
            f"generation={m.generation}, state={state}, "
            f"assigned={len(self._positions.assigned)})"
        )


def _deserializer(spec: Any, what: str) -> Callable[[Any], Any] | None:
    fn = resolve_deserializer(spec, what)
    return None if fn is DESERIALIZERS["bytes"] else fn


def _coordinator(log: EventLog, config: ConsumerConfig) -> GroupCoordinator:
    """The log's group coordinator, after checking the session timeout against it."""
    coordinator = coordinator_for(log)
    low, high = coordinator.min_session_timeout_ms, coordinator.max_session_timeout_ms
    if not low <= config.session_timeout_ms <= high:
        raise InvalidConfigError(
            f"session_timeout_ms must be in [{low}, {high}] (the coordinator's "
            f"group.min/max.session.timeout.ms), got {config.session_timeout_ms}"
        )
    return coordinator


def _membership(log: EventLog, config: ConsumerConfig, coordinator: GroupCoordinator | None,
                parts: tuple[Subscription, Positions, Callbacks, Committer, ConsumerStats]
                ) -> Membership:
    strategy = config.partition_assignment_strategy
    assignors: tuple[Assignor, ...] = tuple(resolve_assignors(
        list(strategy) if isinstance(strategy, (list, tuple)) else strategy))
    client_id = config.client_id or (
        f"consumer-{config.group_id}-{next(_client_ids)}" if config.group_id
        else f"consumer-{next(_client_ids)}"
    )
    return Membership(log, config, coordinator, client_id, assignors,
                      rebalance_protocol(list(assignors)), parts)
