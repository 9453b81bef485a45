"""Consumer: reads records at its own position, alone (``assign``) or in a group (``subscribe``).

The client half of Kafka's consumer (KAFKA_SEMANTICS 4): positions, fetching,
committing, seeking, pausing, and the member side of the group protocol, whose
coordinator half is :mod:`eventlog.group.coordinator`.

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

*Protocols.* Eager: before every rejoin ``on_partitions_revoked(all owned)`` (even
if empty), after it ``on_partitions_assigned(new assignment)``. Cooperative: before
rejoining revoke only partitions of topics no longer subscribed; after the join
``on_partitions_revoked(owned - assigned)`` if any (then rejoin at once for the
follow-up rebalance), then ``on_partitions_assigned(assigned - owned)``, always.
A member that lost its membership (evicted, fenced) gets
``on_partitions_lost(owned)``. A callback's exception propagates out of ``poll``
after the step that called it completed: the assignment is not affected.

*Fetching fast.* Records are built from a batch's decoded columns with C-level
``zip``/``map`` (no Python code per record unless a deserializer is configured).
A partition keeps the batches decoded by its last read and serves the next polls
from them, so a large producer batch is decoded once, not once per
``max_poll_records``.

Thread-safety: a Consumer is used by one thread at a time (as Kafka's): a call
from a second thread while one is running raises IllegalStateError, except
``close()``, which may be called from any thread: it stops a ``poll`` waiting in
another thread and waits for it to return.
"""

from __future__ import annotations

import itertools
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

from .broker import Broker as EventLog  # the broker layer; eventlog.EventLog subclasses it
from .broker.partition import Partition
from .broker.topic import validate_topic_name
from .config import client_config
from .errors import (
    ClosedError,
    CommitFailedError,
    CorruptLogError,
    FencedInstanceIdError,
    GroupError,
    IllegalGenerationError,
    IllegalStateError,
    InvalidConfigError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    ReadOnlyLogError,
    RebalanceInProgressError,
    RecordDeserializationError,
    TopicError,
    UnknownMemberError,
    UnknownTopicError,
)
from .group.assignors import Assignor, rebalance_protocol, resolve_assignors
from .group.coordinator import GroupCoordinator, JoinRequest, JoinResult, coordinator_for
from .group.offsets import OffsetAndMetadata, validate_offsets
from .group.txn_coordinator import coordinator_slot as transactions_slot
from .metrics.window import Window, WindowedMax, average, rate_per_s
from .records import ConsumerGroupMetadata, ConsumerRecord, TimestampType, TopicPartition
from .serde import DESERIALIZERS, resolve_deserializer
from .storage.batch import (
    BatchHeader,
    Columns,
    attr_control,
    attr_log_append_time,
    attr_transactional,
)

__all__ = [
    "Consumer",
    "ConsumerConfig",
    "ConsumerRebalanceListener",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
]

_EAGER = "eager"
_make_record = partial(tuple.__new__, ConsumerRecord)
_no_headers: tuple = ()
_client_ids = itertools.count(1)
coordinate_steps_max = 8  # protocol steps per poll: revoke, join, collect, revoke, rejoin...
iteration_wait_ms = 1000  # one wait of an endless iteration (consumer_timeout_ms=None)
close_wait_s = 30.0  # how long close() waits for a poll running in another thread
_OFFSET_RESETS = ("earliest", "latest", "none")


class OffsetAndTimestamp(NamedTuple):
    """What ``offsets_for_times`` finds: the first offset at or after a time, and its time."""

    offset: int
    timestamp_ms: int


class ConsumerRebalanceListener:
    """Callbacks around rebalances; subclass and override (all default to doing nothing).

    They run inside ``poll()`` (and ``close()``/``unsubscribe()``) on the consumer's
    thread, and may call the consumer (``commit``, ``position``, ``seek``...).
    Partitions are given as a sorted list of TopicPartition.
    """

    def on_partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        """The consumer stops fetching these; commit what was processed now."""

    def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        """The consumer will fetch these from their committed offsets (or the reset policy)."""

    def on_partitions_lost(self, partitions: list[TopicPartition]) -> None:
        """These were taken away without a revoke (the member was evicted or fenced):
        another member may already own them, so do not commit. Defaults to
        ``on_partitions_revoked`` (as Kafka's default does)."""
        self.on_partitions_revoked(partitions)


# ---------------------------------------------------------------------------------------
# Configuration


def _is_int(value: Any) -> bool:
    return type(value) is int


@dataclass(frozen=True)
class ConsumerConfig:
    """Consumer configs: Kafka's names in snake_case and Kafka's defaults.

    ``auto_offset_reset``: where to start when nothing is committed or the position
    is out of range: "earliest", "latest" or "none" (raise).
    ``enable_auto_commit`` / ``auto_commit_interval_ms``: at the start of a poll
    once the interval passed, before a rebalance revokes, and on close, commit the
    positions (everything earlier polls returned).
    ``fetch_min_bytes`` / ``fetch_max_wait_ms``: once some records are fetched, poll
    waits up to ``fetch_max_wait_ms`` (and never past its timeout) for at least
    ``fetch_min_bytes``, counted as Kafka's fetch counts them: bytes of stored
    batches. ``max_partition_fetch_bytes``: bytes decoded per partition read (at
    least one batch). ``fetch_max_bytes``: bytes fetched per poll (at least one batch).
    ``consumer_timeout_ms``: iteration stops after this long without a record
    (None: iterate until closed).
    ``isolation_level``: "read_uncommitted" (Kafka's default: every record, up to
    the log end) or "read_committed": up to the last stable offset, without the
    records of aborted transactions (docs/transactions.md).
    ``partition_assignment_strategy``: assignor names ("range", "roundrobin",
    "sticky", "cooperative-sticky") or objects, in order of preference.
    """

    group_id: str | None = None
    client_id: str | None = None
    group_instance_id: str | None = None
    key_deserializer: Any = None
    value_deserializer: Any = None
    auto_offset_reset: str = "latest"
    enable_auto_commit: bool = True
    auto_commit_interval_ms: int = 5_000
    max_poll_records: int = 500
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 3_000
    fetch_min_bytes: int = 1
    fetch_max_wait_ms: int = 500
    fetch_max_bytes: int = 52_428_800
    max_partition_fetch_bytes: int = 1_048_576
    partition_assignment_strategy: Any = ("range", "cooperative-sticky")
    consumer_timeout_ms: float | None = None
    exclude_internal_topics: bool = True
    isolation_level: str = "read_uncommitted"

    def __post_init__(self) -> None:
        for name in ("group_id", "client_id", "group_instance_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidConfigError(f"{name} must be None or a non-empty str, got {value!r}")
        if self.auto_offset_reset not in _OFFSET_RESETS:
            raise InvalidConfigError(
                f"auto_offset_reset must be one of {', '.join(_OFFSET_RESETS)}, "
                f"got {self.auto_offset_reset!r}"
            )
        for name, minimum in (
            ("auto_commit_interval_ms", 0), ("max_poll_records", 1),
            ("max_poll_interval_ms", 1), ("session_timeout_ms", 1),
            ("heartbeat_interval_ms", 1), ("fetch_min_bytes", 0), ("fetch_max_wait_ms", 0),
            ("fetch_max_bytes", 1), ("max_partition_fetch_bytes", 1),
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise InvalidConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
        if self.isolation_level not in ("read_uncommitted", "read_committed"):
            raise InvalidConfigError(
                "isolation_level must be 'read_uncommitted' or 'read_committed', got "
                f"{self.isolation_level!r}"
            )
        self._check_relations()

    def _check_relations(self) -> None:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise InvalidConfigError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be lower than "
                f"session_timeout_ms ({self.session_timeout_ms})"
            )
        timeout = self.consumer_timeout_ms
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
        ):
            raise InvalidConfigError(f"consumer_timeout_ms must be None or >= 0, got {timeout!r}")
        for name in ("enable_auto_commit", "exclude_internal_topics"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidConfigError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.group_instance_id is not None and self.group_id is None:
            raise InvalidConfigError("group_instance_id needs a group_id")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ConsumerConfig:
        """Build from keyword configs: snake_case or Kafka's dotted names, string values
        parsed as Kafka does (config.client_config); an unknown name raises
        InvalidConfigError suggesting the closest known one and listing the rest."""
        return cls(**client_config(values, cls, "consumer"))


# ---------------------------------------------------------------------------------------
# Per-partition state


class _PartitionState:
    """An assigned partition: position, pause flag, pending reset, decoded batches."""

    __slots__ = ("buffer", "partition", "paused", "pending_error", "position", "reset", "tp")

    def __init__(self, tp: TopicPartition, partition: Partition | None) -> None:
        self.tp = tp
        self.partition = partition
        self.position: int | None = None  # None: resolve (committed, else reset policy)
        self.paused = False
        self.reset: str | None = None  # "earliest"/"latest": a lazy seek_to_*
        self.buffer: list[tuple[BatchHeader, Columns]] = []
        self.pending_error: RecordDeserializationError | None = None  # raised at next fetch


class _Chunk(NamedTuple):
    state: _PartitionState
    records: list[ConsumerRecord]
    next_position: int
    size_bytes: int


class Consumer:
    """Reads records from an EventLog: ``Consumer(log, *topics, group_id=None, **config)``.

    With ``topics``, subscribes to them at once. Configs are ConsumerConfig's fields.
    Raises InvalidConfigError for an unknown or invalid config, ClosedError if the
    log is closed. A context manager (``close()`` on exit) and an iterator of
    records (ending after ``consumer_timeout_ms`` without one).
    """

    def __init__(self, log: EventLog, *topics: str, group_id: str | None = None,
                 **config: Any) -> None:
        if not isinstance(log, EventLog):
            raise InvalidConfigError(f"Consumer needs an EventLog, got {type(log).__name__}")
        if log.closed:
            raise ClosedError("the EventLog is closed; open it again")
        given = config if group_id is None else {"group_id": group_id, **config}
        self.config = ConsumerConfig.from_mapping(given)
        cfg = self.config
        self._log = log
        self._group_id = cfg.group_id
        self._assignors: tuple[Assignor, ...] = tuple(
            resolve_assignors(list(cfg.partition_assignment_strategy)
                              if isinstance(cfg.partition_assignment_strategy, (list, tuple))
                              else cfg.partition_assignment_strategy)
        )
        self._protocol = rebalance_protocol(list(self._assignors))
        self._key_de = self._deserializer(cfg.key_deserializer, "key_deserializer")
        self._value_de = self._deserializer(cfg.value_deserializer, "value_deserializer")
        self._client_id = cfg.client_id or (
            f"consumer-{cfg.group_id}-{next(_client_ids)}" if cfg.group_id
            else f"consumer-{next(_client_ids)}"
        )
        self._read_committed = cfg.isolation_level == "read_committed"
        self._coordinator: GroupCoordinator | None = None
        # A read-only log (another process writes it): a group is only a view of the
        # committed offsets there; subscribe() owns every partition (docs/consumers.md).
        self._read_only = bool(log.read_only)
        if cfg.group_id is not None:
            self._coordinator = coordinator_for(log)
            self._check_session_timeout(self._coordinator)
        self._init_state()
        log.register_client(self)
        if topics:
            self.subscribe(list(topics))

    @staticmethod
    def _deserializer(spec: Any, what: str) -> Callable[[Any], Any] | None:
        fn = resolve_deserializer(spec, what)
        return None if fn is DESERIALIZERS["bytes"] else fn

    def _check_session_timeout(self, coordinator: GroupCoordinator) -> None:
        low, high = coordinator.min_session_timeout_ms, coordinator.max_session_timeout_ms
        if not low <= self.config.session_timeout_ms <= high:
            raise InvalidConfigError(
                f"session_timeout_ms must be in [{low}, {high}] (the coordinator's "
                f"group.min/max.session.timeout.ms), got {self.config.session_timeout_ms}"
            )

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._close_requested = False
        self._closer = 0  # the thread running close(): its callbacks may use the consumer
        self._mode: str | None = None  # None, "subscribe" or "assign"
        self._topics: tuple[str, ...] = ()  # explicit subscription, sorted
        self._pattern: re.Pattern[str] | None = None
        self._listener: Any = None
        self._assigned: dict[TopicPartition, _PartitionState] = {}
        self._member_id = ""
        self._generation = -1
        self._mstate = "unjoined"  # "unjoined", "joining", "stable" or "fenced"
        self._joined_topics: tuple[str, ...] = ()
        self._rejoin_needed = False
        self._callback_error: BaseException | None = None
        self._fetch_error: BaseException | None = None
        self._standalone_signature: tuple = ()
        self._rr = 0
        self._iterator: Iterator[ConsumerRecord] | None = None
        self._next_auto_commit_ms = (
            self._log.clock.monotonic_ms() + self.config.auto_commit_interval_ms
        )
        self._stats = _ConsumerStats(self._log.clock.monotonic_ms())

    # ------------------------------------------------------------------ properties

    @property
    def group_id(self) -> str | None:
        return self._group_id

    @property
    def member_id(self) -> str:
        """The member id the coordinator gave this consumer ("" before it joined)."""
        return self._member_id

    @property
    def generation(self) -> int:
        """The group generation of the current assignment (-1 if not a stable member)."""
        return self._generation

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ guards

    def _ensure_open(self) -> None:
        if self._closed or (self._close_requested and threading.get_ident() != self._closer):
            raise ClosedError("this consumer is closed; create a new one")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            self._ensure_open()  # close() from another thread holds the lock
            raise IllegalStateError(
                "this Consumer is being used by another thread; a Consumer is not safe for "
                "concurrent use: give each thread its own consumer"
            )
        try:
            self._ensure_open()
            yield
        finally:
            self._lock.release()

    def _require_group(self, what: str) -> GroupCoordinator:
        if self._coordinator is None:
            raise InvalidConfigError(
                f"{what} needs a group_id: committed offsets belong to a consumer group; "
                "create the consumer with group_id=..."
            )
        return self._coordinator

    def _state_for(self, tp: Any) -> _PartitionState:
        state = self._assigned.get(tp)
        if state is None:
            raise IllegalStateError(
                f"partition {tp!r} is not assigned to this consumer; assigned: "
                f"{sorted(self._assigned) or 'none'}"
            )
        return state

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

        Raises IllegalStateError if partitions were ``assign``-ed,
        InvalidConfigError for a bad topic name, pattern or listener, or for
        neither or both of topics and pattern. Nothing is changed then.
        """
        with self._guard():
            if self._mode == "assign":
                raise IllegalStateError(
                    "this consumer used assign(); subscribe() and assign() are mutually "
                    "exclusive: call unsubscribe() first"
                )
            if (topics is None) == (pattern is None):
                raise InvalidConfigError("subscribe() takes topics or pattern (exactly one)")
            _check_listener(listener)
            compiled = _compile(pattern) if pattern is not None else None
            names = _topic_names(topics) if topics is not None else ()
            if compiled is None and not names:
                self._unsubscribe()
                return
            self._topics, self._pattern, self._listener = names, compiled, listener
            self._mode = "subscribe"

    def subscription(self) -> set[str]:
        """The topics subscribed to (for a pattern: those it matches now)."""
        with self._guard():
            return set(self._subscribed_topics()) if self._mode == "subscribe" else set()

    def _subscribed_topics(self) -> tuple[str, ...]:
        pattern = self._pattern
        if pattern is None:
            return self._topics
        names = self._log.topics(include_internal=not self.config.exclude_internal_topics)
        return tuple(t for t in names if pattern.fullmatch(t))

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly ``partitions`` (no group membership); ``[]`` unassigns all.

        Positions of partitions kept are kept. With a group_id and auto-commit,
        the current positions are committed first.

        Raises IllegalStateError if subscribed, UnknownTopicError /
        UnknownPartitionError for a partition that does not exist,
        InvalidConfigError for something that is not a (topic, partition). Nothing
        is changed then.
        """
        with self._guard():
            if self._mode == "subscribe":
                raise IllegalStateError(
                    "this consumer is subscribed; subscribe() and assign() are mutually "
                    "exclusive: call unsubscribe() first"
                )
            wanted = {TopicPartition(*tp): self._partition(tp)
                      for tp in _partitions_arg(partitions)}
            self._auto_commit_quietly()
            if not wanted:
                self._unsubscribe()
                return
            kept = {tp: st for tp, st in self._assigned.items() if tp in wanted}
            for tp, part in wanted.items():
                kept.setdefault(tp, _PartitionState(tp, part))
            self._assigned = kept
            self._fetch_error = None
            self._mode = "assign"

    def _partition(self, tp: Any) -> Partition:
        if not (isinstance(tp, tuple) and len(tp) == 2):
            raise InvalidConfigError(f"expected a TopicPartition(topic, partition), got {tp!r}")
        partition: Partition = self._log.topic(tp[0]).partition(tp[1])
        return partition

    def unsubscribe(self) -> None:
        """Drop the subscription or assignment: revoke (callback) and leave the group.

        A static member (``group_instance_id``) does not leave: its partitions
        stay assigned, unfetched, until ``session_timeout_ms`` passes.
        """
        with self._guard():
            self._unsubscribe()
            self._raise_callback_error()

    def _unsubscribe(self) -> None:
        if self._mode == "subscribe":
            self._leave()
        self._assigned = {}
        self._mode = None
        self._topics, self._pattern, self._listener = (), None, None
        self._standalone_signature = ()
        self._fetch_error = None

    def _leave(self) -> None:
        """Kafka's onLeavePrepare + maybeLeaveGroup: revoke (or lose), then leave."""
        owned = sorted(self._assigned)
        if owned:
            stable = self._coordinator is None or self._mstate == "stable"
            self._call_listener("on_partitions_revoked" if stable else "on_partitions_lost", owned)
        self._drop(owned)
        if self._coordinator is not None and self._member_id:
            assert self._group_id is not None
            self._coordinator.leave_group(self._group_id, self._member_id)
        self._member_id, self._generation, self._mstate = "", -1, "unjoined"
        self._joined_topics = ()

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now. O(partitions)."""
        with self._guard():
            return set(self._assigned)

    # ------------------------------------------------------------------ listener calls

    def _call_listener(self, name: str, partitions: list[TopicPartition]) -> None:
        listener = self._listener
        if listener is None:
            return
        method = getattr(listener, name, None)
        if method is None and name == "on_partitions_lost":
            method = listener.on_partitions_revoked
        try:
            method(partitions)
        except Exception as exc:  # propagated after the step completes (4.13)
            if self._callback_error is None:
                self._callback_error = exc

    def _raise_callback_error(self) -> None:
        error = self._callback_error
        if error is not None:
            self._callback_error = None
            raise error

    # ------------------------------------------------------------------ group protocol

    def _coordinate(self) -> None:
        """Take the group-protocol steps possible now (module docstring). Non-blocking."""
        if self._mode != "subscribe":
            return
        if self._coordinator is None or self._read_only:
            self._coordinate_standalone()
            return
        if self._mstate == "fenced":
            raise FencedInstanceIdError(
                f"group_instance_id {self.config.group_instance_id!r} was taken over by "
                "another consumer; close this one"
            )
        topics = self._subscribed_topics()
        for _ in range(coordinate_steps_max):
            if self._callback_error is not None:
                return
            if self._mstate == "stable":
                if topics != self._joined_topics or self._rejoin_needed:
                    self._prepare_join(topics)
                elif self._heartbeat(topics):
                    return
            elif not self._join(topics):
                return

    def _heartbeat(self, topics: tuple[str, ...]) -> bool:
        """True if the member is stable and nothing needs doing."""
        assert self._coordinator is not None and self._group_id is not None
        try:
            self._coordinator.heartbeat(
                self._group_id, self._member_id, self._generation, self.config.group_instance_id
            )
        except RebalanceInProgressError:
            self._prepare_join(topics)
            return False
        except IllegalGenerationError:
            self._lose(reset_member=False)
            return False
        except UnknownMemberError:
            self._lose(reset_member=True)
            return False
        except FencedInstanceIdError:
            self._lose(reset_member=False)
            self._mstate = "fenced"
            raise
        return True

    def _join(self, topics: tuple[str, ...]) -> bool:
        """Send (or repeat) the join; True if a step was taken, False if pending."""
        assert self._coordinator is not None and self._group_id is not None
        cfg = self.config
        request = JoinRequest(
            self._client_id, cfg.group_instance_id, topics, self._assignors, self._protocol,
            cfg.session_timeout_ms, cfg.max_poll_interval_ms,
        )
        try:
            result = self._coordinator.join_group(self._group_id, self._member_id, request)
        except UnknownMemberError:
            self._lose(reset_member=True)
            return True
        except FencedInstanceIdError:
            self._lose(reset_member=False)
            self._mstate = "fenced"
            raise
        self._member_id = result.member_id
        self._joined_topics = topics
        if result.assignment is None:
            self._mstate = "joining"
            return False
        self._on_join_complete(result)
        return True

    def _prepare_join(self, topics: tuple[str, ...]) -> None:
        """Kafka's onJoinPrepare: commit, revoke what the protocol requires, then rejoin."""
        self._auto_commit_quietly()
        if self._protocol == _EAGER:
            revoked = sorted(self._assigned)
            self._call_listener("on_partitions_revoked", revoked)
        else:
            wanted = set(topics)
            revoked = sorted(tp for tp in self._assigned if tp.topic not in wanted)
            if revoked:
                self._call_listener("on_partitions_revoked", revoked)
        self._drop(revoked)
        self._mstate = "joining"
        self._rejoin_needed = False

    def _on_join_complete(self, result: JoinResult) -> None:
        """Kafka's onJoinComplete: take the new assignment, with the protocol's callbacks."""
        assignment = result.assignment
        assert assignment is not None
        self._generation = result.generation
        self._mstate = "stable"
        self._stats.rebalanced(self._log.clock.monotonic_ms())
        new = set(assignment)
        revoked = sorted(tp for tp in self._assigned if tp not in new)
        added = sorted(tp for tp in assignment if tp not in self._assigned)
        if revoked:  # cooperative only: an eager member revoked everything before joining
            self._auto_commit_quietly()
            self._call_listener("on_partitions_revoked", revoked)
            self._drop(revoked)
            self._rejoin_needed = True
        for tp in added:
            self._assigned[tp] = _PartitionState(tp, self._partition_or_none(tp))
        self._next_auto_commit_ms = (
            self._log.clock.monotonic_ms() + self.config.auto_commit_interval_ms
        )
        self._call_listener("on_partitions_assigned",
                            sorted(assignment) if self._protocol == _EAGER else added)

    def _lose(self, *, reset_member: bool) -> None:
        """Kafka's onPartitionsLost: the membership is gone; drop everything owned."""
        lost = sorted(self._assigned)
        if lost:
            self._call_listener("on_partitions_lost", lost)
        self._drop(lost)
        self._generation = -1
        self._mstate = "unjoined"
        if reset_member:
            self._member_id = ""

    def _drop(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            del self._assigned[tp]
        if partitions:
            self._fetch_error = None
        if partitions and self._coordinator is not None and self._member_id:
            assert self._group_id is not None
            self._coordinator.release(self._group_id, self._member_id, partitions)

    def _partition_or_none(self, tp: TopicPartition) -> Partition | None:
        try:
            return self._log.topic(tp.topic).partition(tp.partition)
        except (UnknownTopicError, KeyError):
            return None

    def _coordinate_standalone(self) -> None:
        """subscribe() without a group: own every partition of the subscribed topics."""
        topics = self._subscribed_topics()
        counts = []
        for topic in topics:
            try:
                counts.append((topic, self._log.topic(topic).num_partitions))
            except UnknownTopicError:
                pass
        signature = tuple(counts)
        if signature == self._standalone_signature:
            return
        self._standalone_signature = signature
        target = [TopicPartition(t, i) for t, n in counts for i in range(n)]
        wanted = set(target)
        revoked = sorted(tp for tp in self._assigned if tp not in wanted)
        if revoked:
            self._call_listener("on_partitions_revoked", revoked)
            self._drop(revoked)
        added = [tp for tp in target if tp not in self._assigned]
        for tp in added:
            self._assigned[tp] = _PartitionState(tp, self._partition_or_none(tp))
        self._call_listener("on_partitions_assigned", added)

    # ------------------------------------------------------------------ polling

    def poll(self, timeout_ms: float = 0, max_records: int | None = None) -> list[ConsumerRecord]:
        """Records from the assigned partitions, at most ``max_records``
        (default ``max_poll_records``), waiting up to ``timeout_ms`` for some.

        Also auto-commits, heartbeats, and runs rebalances and their callbacks
        (module docstring). Records of one partition come in offset order.
        Cost: O(records returned) C-level work plus O(assigned partitions).

        Raises ClosedError after close(); NoOffsetForPartitionError
        (``auto_offset_reset="none"`` and nothing committed);
        OffsetOutOfRangeError (position out of range and reset "none");
        FencedInstanceIdError (another consumer took this group_instance_id);
        whatever a rebalance callback or a deserializer raised. Positions are
        unchanged by a failed fetch.
        """
        if not isinstance(timeout_ms, (int, float)) or isinstance(timeout_ms, bool) \
                or timeout_ms < 0:
            raise InvalidConfigError(f"timeout_ms must be a number >= 0, got {timeout_ms!r}")
        limit = self.config.max_poll_records if max_records is None else max_records
        if not _is_int(limit) or limit < 1:
            raise InvalidConfigError(f"max_records must be an int >= 1, got {max_records!r}")
        with self._guard():
            chunks = self._poll_chunks(timeout_ms, limit, apply=True)
        if len(chunks) == 1:
            return chunks[0].records
        out: list[ConsumerRecord] = []
        for chunk in chunks:
            out.extend(chunk.records)
        return out

    def _poll_chunks(self, timeout_ms: float, limit: int, *, apply: bool) -> list[_Chunk]:
        """The poll loop, counted in the metrics (per poll: two clock reads, two sums)."""
        clock = self._log.clock
        started_ms = clock.monotonic_ms()
        self._stats.last_poll_ms = started_ms
        chunks = self._poll_loop(timeout_ms, limit, apply=apply)
        self._stats.fetched(sum(len(c.records) for c in chunks),
                            sum(c.size_bytes for c in chunks), started_ms, clock.monotonic_ms())
        return chunks

    def _poll_loop(self, timeout_ms: float, limit: int, *, apply: bool) -> list[_Chunk]:
        """The poll loop. ``apply``: move positions past what is returned."""
        clock = self._log.clock
        now = clock.monotonic_ms()
        deadline = now + timeout_ms
        self._maybe_auto_commit(now)
        if self._read_committed:
            transactions = self._log.existing_layer_state(transactions_slot)
            if transactions is not None:  # transactions past their timeout hold the LSO
                transactions.expire()
        out: list[_Chunk] = []
        count = size = 0
        min_bytes_deadline: float | None = None
        while True:
            version = self._log.data_version
            if not out:
                self._coordinate()
                self._raise_callback_error()
            chunks = self._fetch(limit - count)
            if apply:
                for chunk in chunks:
                    chunk.state.position = chunk.next_position
            out.extend(chunks)
            count += sum(len(c.records) for c in chunks)
            size += sum(c.size_bytes for c in chunks)
            min_bytes = self.config.fetch_min_bytes
            if count >= limit or (count and (not apply or min_bytes <= 1 or size >= min_bytes)):
                return out
            now = clock.monotonic_ms()
            if count:
                if min_bytes_deadline is None:
                    min_bytes_deadline = now + self.config.fetch_max_wait_ms
                until = min(min_bytes_deadline, deadline)
            else:
                until = deadline
            if now >= until or self._close_requested:
                return out
            wait_ms = until - now
            if not count and self._coordinator is not None:
                wait_ms = min(wait_ms, self.config.heartbeat_interval_ms)
            self._log.wait_for_data(version, wait_ms)

    def _fetch(self, limit: int) -> list[_Chunk]:
        """One pass over the fetchable partitions, starting at a rotating one."""
        states = [st for st in self._assigned.values() if not st.paused]
        if not states:
            return []
        error = self._fetch_error
        if error is not None:
            self._fetch_error = None
            raise error
        start = self._rr % len(states)
        self._rr += 1
        chunks: list[_Chunk] = []
        budget = self.config.fetch_max_bytes
        for st in itertools.chain(states[start:], states[:start]):
            try:
                chunk = self._fetch_partition(st, limit, budget)
            except (OffsetOutOfRangeError, UnknownTopicError, ClosedError,
                    RecordDeserializationError, CorruptLogError) as exc:
                if not chunks:
                    raise
                self._fetch_error = exc  # raised at the next poll; return what we have
                break
            if chunk is None:
                continue
            chunks.append(chunk)
            limit -= len(chunk.records)
            budget -= chunk.size_bytes
            if limit <= 0 or budget <= 0:
                break
        return chunks

    def _fetch_partition(self, st: _PartitionState, limit: int, budget: int) -> _Chunk | None:
        """Records of one partition: what its decoded batches still hold, then one read."""
        part = st.partition
        if part is None:
            return None
        position = st.position
        error = st.pending_error
        if error is not None:
            st.pending_error = None
            if position == error.offset:
                raise error
        if position is None:
            position = self._resolve_position(st)
        if part.lingering:  # a producer of this log holds records for it: append them
            part.flush_lingering()
        end = part.end_offset
        if self._read_committed:  # stop at the LSO; between it and the end is in range
            end = part.last_stable_offset
            if end <= position <= part.end_offset:
                return None
        if position == end:
            return None
        if position > part.end_offset or position < part.start_offset:
            position = self._reset_out_of_range(st, position)
        records: list[ConsumerRecord] = []
        size = 0
        fresh = False
        while position < end and limit > 0 and not fresh:
            batches = st.buffer
            if not (batches and batches[0][0].base_offset <= position
                    <= batches[-1][0].last_offset):
                batches = part.read_batches(
                    position, limit, min(self.config.max_partition_fetch_bytes, max(budget, 1))
                )
                st.buffer, fresh = batches, True
            if self._read_committed:
                batches = _committed_view(part, batches, end)
            chunk = self._records_from(st, batches, position, limit)
            if chunk is None:
                break
            records.extend(chunk.records)
            size += chunk.size_bytes
            limit -= len(chunk.records)
            position = chunk.next_position
            if st.pending_error is not None:  # stopped before a record it cannot deserialize
                break
        if not records and position == st.position:
            return None
        return _Chunk(st, records, position, size)

    def _records_from(
        self, st: _PartitionState, batches: list[tuple[BatchHeader, Columns]],
        position: int, limit: int,
    ) -> _Chunk | None:
        """Build records at and after ``position`` from decoded batches. C-level per batch."""
        out: list[ConsumerRecord] = []
        size = 0
        next_position = position
        for header, cols in batches:
            last = header.last_offset
            if last < next_position:
                continue
            offsets = cols.offsets
            if header.attributes & attr_control:
                next_position = last + 1
                continue
            first = _index_of(offsets, next_position)
            available = len(offsets) - first
            take = min(available, limit)
            if take > 0:
                stop = first + take
                done = len(out)
                try:
                    out.extend(self._build(st.tp, header, cols, first, stop))
                except Exception as exc:  # a deserializer failed: stop at that record
                    bad = offsets[first + len(out) - done]
                    error = RecordDeserializationError(
                        f"cannot deserialize the record at offset {bad} of "
                        f"{st.tp.topic}-{st.tp.partition}: {exc!r}; seek to offset {bad + 1} "
                        "to skip it", st.tp, bad,
                    )
                    error.__cause__ = exc
                    if not out:
                        raise error from exc
                    st.pending_error = error  # raised when the fetch reaches it again
                    return _Chunk(st, out, bad, size)
                # Bytes as Kafka's fetch counts them (fetch_min_bytes, fetch_max_bytes):
                # the stored batch, its share for the records taken. O(1) per batch.
                size += header.total_bytes * take // len(offsets)
                limit -= take
            if take < available:
                next_position = offsets[first + take - 1] + 1
                break
            next_position = last + 1  # past records compaction removed from the batch end
            if limit <= 0:
                break
        if not out and next_position == position:
            return None
        return _Chunk(st, out, next_position, size)

    def _build(
        self, tp: TopicPartition, header: BatchHeader, cols: Columns, first: int, stop: int
    ) -> Iterable[ConsumerRecord]:
        offsets, timestamps, keys, values, headers = cols
        if first or stop != len(offsets):
            offsets, timestamps = offsets[first:stop], timestamps[first:stop]
            keys, values = keys[first:stop], values[first:stop]
            if headers is not None:
                headers = headers[first:stop]
        if self._key_de is not None:
            keys = map(self._key_de, keys)
        if self._value_de is not None:
            values = map(self._value_de, values)
        ts_type = (
            TimestampType.LOG_APPEND_TIME if header.attributes & attr_log_append_time
            else TimestampType.CREATE_TIME
        )
        return map(_make_record, zip(
            repeat(tp.topic), repeat(tp.partition), offsets, timestamps, repeat(ts_type),
            keys, values, repeat(_no_headers) if headers is None else headers,
        ))

    # ------------------------------------------------------------------ positions

    def _resolve_position(self, st: _PartitionState) -> int:
        """Committed offset, else the reset policy (or a pending seek_to_*)."""
        policy = st.reset
        if policy is None and self._coordinator is not None:
            assert self._group_id is not None
            committed = self._coordinator.committed(self._group_id, [st.tp])[st.tp]
            if committed is not None:
                st.position = committed.offset
                return committed.offset
        if policy is None:
            policy = self.config.auto_offset_reset
            if policy == "none":
                raise NoOffsetForPartitionError(
                    f"no committed offset for {st.tp.topic}-{st.tp.partition} in group "
                    f"{self._group_id!r} and auto_offset_reset='none'; seek() to a position"
                )
        part = st.partition
        if part is None:
            raise UnknownTopicError(f"topic {st.tp.topic!r} no longer exists")
        position = part.start_offset if policy == "earliest" else self._end_of(part)
        st.position, st.reset = position, None
        return position

    def _reset_out_of_range(self, st: _PartitionState, position: int) -> int:
        part = st.partition
        assert part is not None
        policy = self.config.auto_offset_reset
        if policy == "none":
            raise OffsetOutOfRangeError(
                f"position {position} of {st.tp.topic}-{st.tp.partition} is outside "
                f"[{part.start_offset}, {part.end_offset}] and auto_offset_reset='none'; "
                "seek() to a valid offset"
            )
        st.position = part.start_offset if policy == "earliest" else self._end_of(part)
        return st.position

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record poll() returns for ``tp`` (KAFKA_SEMANTICS 4.2).

        Resolves it first if unknown (committed offset, else ``auto_offset_reset``).
        Raises IllegalStateError if ``tp`` is not assigned, NoOffsetForPartitionError
        as poll() does. O(1).
        """
        with self._guard():
            st = self._state_for(tp)
            return st.position if st.position is not None else self._resolve_position(st)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make the next poll return ``tp``'s records from ``offset`` on.

        Raises IllegalStateError if ``tp`` is not assigned; InvalidConfigError for
        a negative or non-int offset; OffsetOutOfRangeError if ``offset`` is outside
        [log start offset, log end offset] (Kafka accepts it and resets at the next
        fetch). Nothing is changed then.
        """
        with self._guard():
            st = self._state_for(tp)
            if not _is_int(offset) or offset < 0:
                raise InvalidConfigError(f"offset must be an int >= 0, got {offset!r}")
            part = st.partition
            if part is None:
                raise UnknownTopicError(f"topic {st.tp.topic!r} no longer exists")
            start, end = part.start_offset, part.end_offset
            if not start <= offset <= end:
                raise OffsetOutOfRangeError(
                    f"cannot seek {st.tp.topic}-{st.tp.partition} to {offset}: its log holds "
                    f"offsets [{start}, {end}] (end = the next offset to be written)"
                )
            st.position, st.reset = offset, None
            self._fetch_error = None

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Lazily move to the log start offset (evaluated at the next poll or position).

        No arguments: every assigned partition. Raises IllegalStateError for an
        unassigned partition (nothing is changed).
        """
        self._seek_to(partitions, "earliest")

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Lazily move to the log end offset (evaluated at the next poll or position).

        No arguments: every assigned partition. Raises IllegalStateError for an
        unassigned partition (nothing is changed).
        """
        self._seek_to(partitions, "latest")

    def _seek_to(self, partitions: tuple[Any, ...], policy: str) -> None:
        with self._guard():
            tps = _flatten(partitions)
            states = [self._state_for(tp) for tp in tps] if tps else list(self._assigned.values())
            for st in states:
                st.position, st.reset = None, policy
            self._fetch_error = None

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records of ``partitions`` until resume(); no rebalance.

        Raises IllegalStateError for an unassigned partition (nothing is changed).
        A partition revoked and assigned again is no longer paused.
        """
        self._set_paused(partitions, True)

    def resume(self, *partitions: TopicPartition) -> None:
        """Return records of ``partitions`` again. IllegalStateError if unassigned."""
        self._set_paused(partitions, False)

    def _set_paused(self, partitions: tuple[Any, ...], paused: bool) -> None:
        with self._guard():
            states = [self._state_for(tp) for tp in _flatten(partitions)]
            for st in states:
                st.paused = paused

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        with self._guard():
            return {tp for tp, st in self._assigned.items() if st.paused}

    # ------------------------------------------------------------------ offsets lookups

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The log start offset of each partition; the position does not move.

        Raises UnknownTopicError / UnknownPartitionError. Needs no assignment.
        """
        with self._guard():
            return {TopicPartition(*tp): self._partition(tp).start_offset
                    for tp in _partitions_arg(partitions)}

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The log end offset (= high watermark) of each partition, or with
        ``isolation_level="read_committed"`` its last stable offset; 0 if never written."""
        with self._guard():
            return {TopicPartition(*tp): self._end_of(self._partition(tp))
                    for tp in _partitions_arg(partitions)}

    def _end_of(self, part: Partition) -> int:
        """Where this consumer's reads end: the LSO under read_committed, else the HW."""
        return part.last_stable_offset if self._read_committed else part.end_offset

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The group id, generation, member id and instance id, for a transactional
        producer's ``send_offsets_to_transaction`` (KIP-447). Raises InvalidConfigError
        without a ``group_id``."""
        with self._guard():
            if self._group_id is None:
                raise InvalidConfigError(
                    "group_metadata() needs a consumer with a group_id (Kafka's "
                    "InvalidGroupIdException)"
                )
            return ConsumerGroupMetadata(self._group_id, self._generation, self._member_id,
                                         self.config.group_instance_id)

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the first offset whose timestamp is >= the given ms.

        None where no record is that recent. Needs no assignment. Raises
        InvalidConfigError for a negative or non-int time, UnknownTopicError /
        UnknownPartitionError. Cost: O(log segments) per partition plus one batch scan.
        """
        with self._guard():
            for tp, ts in timestamps.items():
                if not _is_int(ts) or ts < 0:
                    raise InvalidConfigError(
                        f"the target time for {tp!r} must be an int >= 0 (ms), got {ts!r}"
                    )
            parts = {TopicPartition(*tp): (self._partition(tp), ts)
                     for tp, ts in timestamps.items()}
            out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
            for tp, (part, ts) in parts.items():
                found = part.offset_and_timestamp_for_time(ts)
                if found is not None and found[0] >= self._end_of(part):
                    found = None  # at or past the LSO under read_committed (Kafka's rule)
                out[tp] = None if found is None else OffsetAndTimestamp(*found)
            return out

    # ------------------------------------------------------------------ committing

    def committed(self, tp: TopicPartition, *, metadata: bool = False
                  ) -> int | OffsetAndMetadata | None:
        """The group's committed offset for ``tp`` (the next offset to read), or None.

        ``metadata=True`` returns an OffsetAndMetadata. Needs no assignment.
        Raises InvalidConfigError without a group_id.
        """
        with self._guard():
            coordinator = self._require_group("committed()")
            assert self._group_id is not None
            key = TopicPartition(*tp)
            found = coordinator.committed(self._group_id, [key])[key]
            if found is None:
                return None
            return OffsetAndMetadata(found.offset, found.metadata) if metadata else found.offset

    def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        """Commit ``offsets`` ({tp: next offset to read | OffsetAndMetadata}), by default
        the positions of every assigned partition (all that earlier polls returned).

        Raises InvalidConfigError (no group_id, bad offsets); UnknownTopicError /
        UnknownPartitionError (a partition that does not exist: Kafka's
        UNKNOWN_TOPIC_OR_PARTITION);
        CommitFailedError (this member was evicted or the group moved to another
        generation: its partitions may belong to another member now; poll to
        rejoin); RebalanceInProgressError (this member is rejoining; poll, then
        commit again); FencedInstanceIdError. Nothing is committed then.
        """
        with self._guard():
            self._require_group("commit()")
            self._refuse_read_only("commit()")
            checked = self._consumed() if offsets is None else validate_offsets(offsets)
            if checked:
                self._commit_now(checked)

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, Any] | None = None,
        callback: Callable[[dict[TopicPartition, OffsetAndMetadata], BaseException | None],
                           Any] | None = None,
    ) -> None:
        """Commit like ``commit()``, reporting the outcome to ``callback(offsets, error)``.

        In process the commit completes before this returns, and so does the
        callback (on the caller's thread). Group errors go to the callback, not
        raised; InvalidConfigError and ClosedError are raised.
        """
        with self._guard():
            self._require_group("commit_async()")
            self._refuse_read_only("commit_async()")
            checked = self._consumed() if offsets is None else validate_offsets(offsets)
            error: BaseException | None = None
            try:
                if checked:
                    self._commit_now(checked)
            except GroupError as exc:
                error = exc
            if callback is not None:
                callback(checked, error)

    def _refuse_read_only(self, what: str) -> None:
        if self._read_only:
            raise ReadOnlyLogError(
                f"{what}: this consumer reads a log opened read-only; its group "
                f"{self._group_id!r} is a view of the offsets the writing process "
                "committed, and only that process can commit: nothing was committed"
            )

    def _consumed(self) -> dict[TopicPartition, OffsetAndMetadata]:
        return {tp: OffsetAndMetadata(st.position) for tp, st in self._assigned.items()
                if st.position is not None}

    def _commit_now(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        coordinator = self._coordinator
        assert coordinator is not None and self._group_id is not None
        member_id, generation = "", -1
        if self._mode == "subscribe":
            if self._mstate == "joining":
                raise RebalanceInProgressError(
                    "this member is rejoining its group; poll() to finish the rebalance, "
                    "then commit the offsets of the partitions it still owns"
                )
            if self._mstate != "stable":
                raise CommitFailedError(
                    "this consumer is not an active member of its group (it has not joined "
                    "yet, or it was removed); poll() to join, then commit"
                )
            member_id, generation = self._member_id, self._generation
        clock = self._log.clock
        started_ms = clock.monotonic_ms()
        try:
            coordinator.commit_offsets(self._group_id, member_id, generation,
                                       self.config.group_instance_id, offsets)
            self._stats.committed(started_ms, clock.monotonic_ms())
        except (UnknownMemberError, IllegalGenerationError) as exc:
            raise CommitFailedError(
                "commit cannot be completed: the group has rebalanced and may have given "
                "the partitions to another member (this one was evicted after "
                "max_poll_interval_ms without a poll, or missed a generation); poll() to "
                f"rejoin, then process and commit again ({exc})"
            ) from exc

    def _auto_commit_quietly(self) -> None:
        """Commit the positions if auto-commit is on; failures are ignored (Kafka logs them)."""
        if not self.config.enable_auto_commit or self._coordinator is None or self._read_only:
            return
        offsets = self._consumed()
        if not offsets or (self._mode == "subscribe" and self._mstate != "stable"):
            return
        try:
            self._commit_now(offsets)
        except (GroupError, TopicError):  # TopicError: a topic deleted under the consumer
            pass

    def _maybe_auto_commit(self, now: float) -> None:
        if now < self._next_auto_commit_ms:
            return
        self._next_auto_commit_ms = now + self.config.auto_commit_interval_ms
        self._auto_commit_quietly()

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
            self._iterator = self._iterate()
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = None
            raise

    def _iterate(self) -> Iterator[ConsumerRecord]:
        clock = self._log.clock
        timeout = self.config.consumer_timeout_ms
        idle_since = clock.monotonic_ms()
        while not self._closed:
            now = clock.monotonic_ms()
            wait = iteration_wait_ms if timeout is None else max(0.0, idle_since + timeout - now)
            with self._guard():
                chunks = self._poll_chunks(wait, self.config.max_poll_records, apply=False)
            if not any(c.records for c in chunks):
                for chunk in chunks:
                    chunk.state.position = chunk.next_position
                if timeout is not None and clock.monotonic_ms() - idle_since >= timeout:
                    return
                continue
            for chunk in chunks:
                yield from self._hand_out(chunk)
            idle_since = clock.monotonic_ms()

    def _hand_out(self, chunk: _Chunk) -> Iterator[ConsumerRecord]:
        """Yield a chunk's records, moving the position; stop if it was seeked or revoked."""
        st = chunk.state
        expected = st.position
        for record in chunk.records:
            if self._assigned.get(st.tp) is not st or st.paused or st.position != expected:
                return
            st.position = expected = record.offset + 1
            yield record
        if self._assigned.get(st.tp) is st and st.position == expected:
            st.position = chunk.next_position

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Commit (if auto-commit), revoke (callback) and leave the group; then close.

        Idempotent; callable from any thread (a poll waiting in another thread
        returns first). A static member does not leave (KAFKA_SEMANTICS 4.12).
        Every other method raises ClosedError afterwards. A callback's exception
        is raised after the consumer is closed.
        """
        if self._closed:
            return
        self._closer = threading.get_ident()
        self._close_requested = True
        if not self._log.closed:
            self._log.wake_waiters()
        acquired = self._lock.acquire(timeout=close_wait_s)
        try:
            if self._closed:
                return
            try:
                if acquired:
                    self._auto_commit_quietly()
                    self._unsubscribe()
                elif self._coordinator is not None and self._member_id:
                    assert self._group_id is not None
                    self._coordinator.leave_group(self._group_id, self._member_id)
            finally:
                self._closed = True
                self._iterator = None
            self._raise_callback_error()
        finally:
            if acquired:
                self._lock.release()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ metrics

    def metrics(self) -> dict[str, float]:
        """Kafka's consumer metrics by Kafka's names (consumer-fetch-manager-metrics,
        consumer-coordinator-metrics, consumer-metrics; docs/operations.md lists them).

        Rates and averages cover Kafka's window (the last 30 to 60 s, sampled when
        read); an average or max without samples is NaN, as in Kafka.
        ``records-lag-max`` is the largest lag of an assigned partition now (log end
        offset minus position), NaN when no assigned partition has a position yet.
        Callable from any thread, also while another polls, and after close().
        Cost: O(assigned partitions).
        """
        st = self._stats
        now_ms = self._log.clock.monotonic_ms()
        totals = st.totals()
        with st.lock:
            elapsed_ms, d = st.window.deltas(now_ms, totals)
        records, size, fetches, fetch_ms, commits, commit_ms, rebalances = d
        lags = [st_.partition.end_offset - st_.position
                for st_ in list(self._assigned.values())
                if st_.position is not None and st_.partition is not None
                and not st_.partition.closed]
        return {
            "records-consumed-total": totals[0],
            "records-consumed-rate": rate_per_s(records, elapsed_ms),
            "bytes-consumed-total": totals[1],
            "bytes-consumed-rate": rate_per_s(size, elapsed_ms),
            "fetch-total": totals[2],
            "fetch-rate": rate_per_s(fetches, elapsed_ms),
            "fetch-latency-avg": average(fetch_ms, fetches),
            "fetch-latency-max": st.fetch_max.value(now_ms),
            "fetch-size-avg": average(size, fetches),
            "records-per-request-avg": average(records, fetches),
            "records-lag-max": float(max(lags)) if lags else float("nan"),
            "commit-total": totals[4],
            "commit-rate": rate_per_s(commits, elapsed_ms),
            "commit-latency-avg": average(commit_ms, commits),
            "commit-latency-max": st.commit_max.value(now_ms),
            "assigned-partitions": len(self._assigned),
            "rebalance-total": totals[6],
            "rebalance-rate-per-hour": rate_per_s(rebalances, elapsed_ms) * 3600.0,
            "last-rebalance-seconds-ago": (now_ms - st.last_rebalance_ms) / 1000.0
            if st.last_rebalance_ms is not None else float("nan"),
            "last-poll-seconds-ago": (now_ms - st.last_poll_ms) / 1000.0
            if st.last_poll_ms is not None else float("nan"),
        }

    # ------------------------------------------------------------------ invariants

    def check(self) -> None:
        """Assert the consumer's invariants (and that the coordinator agrees on ownership)."""
        for tp, st in self._assigned.items():
            assert st.tp == tp
            assert st.position is None or st.position >= 0, (tp, st.position)
            assert st.reset in (None, "earliest", "latest")
        assert self._mode in (None, "subscribe", "assign")
        assert self._mode is not None or not self._assigned
        if self._coordinator is not None and self._group_id and self._member_id:
            owned = self._coordinator.owned(self._group_id).get(self._member_id)
            if owned is not None and self._mstate in ("stable", "joining"):
                assert owned <= set(self._assigned), (owned, set(self._assigned))

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._mstate if self._group_id else "standalone"
        return (
            f"Consumer(group_id={self._group_id!r}, member_id={self._member_id!r}, "
            f"generation={self._generation}, state={state}, assigned={len(self._assigned)})"
        )


class _ConsumerStats:
    """A consumer's cumulative totals for metrics(): updated per poll, per commit and
    per rebalance by the thread holding the consumer's lock; windowed when read."""

    __slots__ = (
        "commit_max", "commit_ms", "commits", "fetch_max", "fetch_ms", "fetches",
        "last_poll_ms", "last_rebalance_ms", "lock", "rebalances", "records", "size",
        "window",
    )

    def __init__(self, now_ms: float) -> None:
        self.records = self.size = self.fetches = self.commits = self.rebalances = 0
        self.fetch_ms = self.commit_ms = 0.0
        self.fetch_max = WindowedMax()
        self.commit_max = WindowedMax()
        self.last_poll_ms: float | None = None
        self.last_rebalance_ms: float | None = None
        self.lock = threading.Lock()  # serialises readings of the window
        self.window = Window(now_ms, 7)

    def fetched(self, records: int, size: int, started_ms: float, now_ms: float) -> None:
        self.records += records
        self.size += size
        self.fetches += 1
        self.fetch_ms += now_ms - started_ms
        self.fetch_max.record(now_ms - started_ms, now_ms)

    def committed(self, started_ms: float, now_ms: float) -> None:
        self.commits += 1
        self.commit_ms += now_ms - started_ms
        self.commit_max.record(now_ms - started_ms, now_ms)

    def rebalanced(self, now_ms: float) -> None:
        self.rebalances += 1
        self.last_rebalance_ms = now_ms

    def totals(self) -> tuple[float, ...]:
        return (self.records, self.size, self.fetches, self.fetch_ms, self.commits,
                self.commit_ms, self.rebalances)


# ---------------------------------------------------------------------------------------
# Argument helpers (pure)


def _committed_view(part: Partition, batches: list[tuple[BatchHeader, Columns]], end: int
                    ) -> list[tuple[BatchHeader, Columns]]:
    """``batches`` as a read_committed consumer sees them: those below the LSO ``end``,
    the batches of aborted transactions marked as control batches (skipped, the
    position moves past them). O(batches) plus one lookup per transactional batch."""
    out = []
    aborted: dict[int, list[tuple[int, int]]] | None = None
    for header, cols in batches:
        if header.base_offset >= end:
            break
        attributes = header.attributes
        if attributes & attr_transactional and not attributes & attr_control:
            if aborted is None:
                aborted = {}
                for entry in part.aborted_transactions(batches[0][0].base_offset, end):
                    aborted.setdefault(entry.producer_id, []).append(
                        (entry.first_offset, entry.last_offset))
            ranges = aborted.get(header.producer_id)
            if ranges is not None and any(
                    first <= header.base_offset <= last for first, last in ranges):
                header = header._replace(attributes=attributes | attr_control)
        out.append((header, cols))
    return out


def _index_of(offsets: Any, offset: int) -> int:
    """Index of the first record at or after ``offset``. O(1) dense, O(log n) compacted."""
    if isinstance(offsets, range):
        return max(0, offset - offsets.start)
    return bisect_left(offsets, offset)


def _topic_names(topics: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(topics, str):
        topics = [topics]
    try:
        names = list(topics)
    except TypeError:
        raise InvalidConfigError(
            f"topics must be a list of topic names, got {type(topics).__name__}"
        ) from None
    for name in names:
        validate_topic_name(name)
    return tuple(sorted(set(names)))


def _compile(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise InvalidConfigError(f"pattern must be a str or re.Pattern, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidConfigError(f"invalid pattern {pattern!r}: {exc}") from None


def _check_listener(listener: Any) -> None:
    if listener is None:
        return
    for name in ("on_partitions_revoked", "on_partitions_assigned"):
        if not callable(getattr(listener, name, None)):
            raise InvalidConfigError(
                f"listener must have an {name}(partitions) method (see "
                "ConsumerRebalanceListener), got {listener!r}"
            )


def _is_tp(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and type(value[1]) is int)


def _flatten(partitions: tuple[Any, ...]) -> list[Any]:
    """``f(tp1, tp2)`` and ``f([tp1, tp2])`` both mean the two partitions."""
    if len(partitions) == 1 and not _is_tp(partitions[0]) and isinstance(
        partitions[0], (list, tuple, set, frozenset)
    ):
        return list(partitions[0])
    return list(partitions)


def _partitions_arg(partitions: Iterable[Any]) -> list[Any]:
    if _is_tp(partitions) or isinstance(partitions, (str, bytes)):
        raise InvalidConfigError(
            f"expected a list of TopicPartition, got {partitions!r}"
        )
    try:
        items = list(partitions)
    except TypeError:
        raise InvalidConfigError(
            f"expected a list of TopicPartition, got {type(partitions).__name__}"
        ) from None
    return items
