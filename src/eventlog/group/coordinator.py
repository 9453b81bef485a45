"""GroupCoordinator: the in-process coordinator of every consumer group of one EventLog.

It plays the part of Kafka's broker-side group coordinator in the classic
protocol (KAFKA_SEMANTICS 4.9-4.12): members, generations, rebalances, liveness,
commit fencing, static membership, and the committed offsets (kept by
:class:`~eventlog.group.offsets.OffsetStore` in ``__consumer_offsets``).

Theory of operation
-------------------
*No threads, no blocking.* The coordinator never waits and runs no background
thread. Consumers call it from ``poll()``; each call first applies liveness
(below) against ``log.clock``, then does its step and returns at once. A change
other members must notice (a rebalance starting, a join completing) calls
``log.wake_waiters()``, which wakes consumers waiting in ``poll()``.

*One rebalance, step by step* (the consumer drives its own steps, see
consumer/membership.py; the join phase's steps are group/rebalance.py's):

1. A change (a member joins, leaves, is evicted, changes subscription, a
   subscribed topic gains partitions) moves the group to PreparingRebalance.
2. Each member notices it at its next poll (``heartbeat`` raises
   RebalanceInProgressError), revokes partitions as its protocol requires, and
   calls ``join_group``.
3. When every member has joined, or the rebalance timeout passed (members that
   did not rejoin are dropped if dynamic and kept, without partitions, if
   static), the join completes: the group's assignor is chosen
   (``select_assignor``), run, and the generation incremented. The group is Stable.
4. Each member collects its assignment at its next ``join_group`` call (Kafka's
   SyncGroup) and starts fetching it.

So a group whose members are all polled from one thread converges as each is
polled in turn, and members in different threads wake each other.

*Ownership.* Besides each member's target assignment the coordinator tracks what
each member *owns*: what its consumer may fetch. A member owns its assignment
from the moment it collects it until it releases it (after its
``on_partitions_revoked`` callback) or leaves the group. Eager members release
everything before rejoining; a cooperative assignor never hands a partition to
one member while another still owns it, and the coordinator strips any such
partition from a (custom) assignor's result before handing it out. Hence no
partition is owned by two members at any moment (DESIGN invariant 5), which
:meth:`GroupCoordinator.check` asserts.

*Liveness*, applied lazily on every call about a group, on the log's clock:

* a dynamic member that has not polled for ``max_poll_interval_ms`` is removed
  (Kafka's client sends LeaveGroup when its poll timer expires);
* a static member that has not polled for ``max_poll_interval_ms`` stops
  heartbeating and is removed ``session_timeout_ms`` later; a closed static
  member is removed ``session_timeout_ms`` after ``close()`` (no LeaveGroup);
* members that do not rejoin within the rebalance timeout (the largest
  ``max_poll_interval_ms`` in the group) are dropped when the join completes.

Thread-safety: every public method takes the coordinator's lock; the lock is
never held while user code (listeners) runs. Lock order: coordinator, then a
partition of ``__consumer_offsets``, then the log's data condition.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..broker.core import Broker, LayerState
from ..errors import (
    FencedInstanceIdError,
    IllegalGenerationError,
    IllegalStateError,
    InvalidConfigError,
    RebalanceInProgressError,
    UnknownMemberError,
    UnknownTopicError,
)
from ..records import TopicPartition
from . import members_view
from .members import Group, JoinRequest, JoinResult, Member, check_group
from .offsets import CommittedOffset, OffsetAndMetadata, OffsetStore
from .rebalance import Rebalancer
from .state import GroupEvent, GroupState, next_state

__all__ = [
    "GroupCoordinator",
    "GroupDescription",
    "GroupListing",
    "JoinRequest",
    "JoinResult",
    "MemberDescription",
    "PartitionOffset",
    "coordinator_for",
    "delete_group",
    "describe_group",
    "list_groups",
]

# The log's GroupCoordinator, made on first use (coordinator_for).
coordinator_slot: LayerState[GroupCoordinator] = LayerState(
    "group coordinator", lambda log: GroupCoordinator(log))
group_min_session_timeout_ms_default = 6_000  # Kafka's group.min.session.timeout.ms
group_max_session_timeout_ms_default = 1_800_000  # Kafka's group.max.session.timeout.ms
# Kafka's broker default is 3000: the first join of an empty group waits that long for
# more members. In process there is no fleet of consumers starting over seconds, and
# tests want an assignment at the first poll, so the default here is 0.
group_initial_rebalance_delay_ms_default = 0
protocol_type = "consumer"



# ---------------------------------------------------------------------------------------
# Inspection results


@dataclass(frozen=True)
class MemberDescription:
    """A member as ``describe_group`` shows it."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class PartitionOffset:
    """A partition's committed offset, end offset and lag (None if nothing committed)."""

    topic_partition: TopicPartition
    committed_offset: int | None
    end_offset: int
    lag: int | None


@dataclass(frozen=True)
class GroupDescription:
    """What ``describe_group`` returns (Kafka's DescribeGroups plus offsets and lag)."""

    group_id: str
    state: GroupState
    generation: int
    protocol_type: str
    protocol: str | None
    members: tuple[MemberDescription, ...]
    offsets: tuple[PartitionOffset, ...]


@dataclass(frozen=True)
class GroupListing:
    """One row of ``list_groups``."""

    group_id: str
    state: GroupState
    protocol_type: str


# ---------------------------------------------------------------------------------------


def coordinator_for(log: Broker) -> GroupCoordinator:
    """The log's GroupCoordinator, created on first use. Thread-safe. O(1) after that.

    Creating it creates the ``__consumer_offsets`` topic if needed and loads the
    committed offsets from it. Raises ClosedError if the log is closed.
    """
    return log.layer_state(coordinator_slot)


def list_groups(log: Broker) -> list[GroupListing]:
    """Every group with members or committed offsets, sorted by id. Thread-safe."""
    return coordinator_for(log).list_groups()


def describe_group(log: Broker, group_id: str) -> GroupDescription:
    """State, generation, members and per-partition lag of ``group_id``. Thread-safe.

    An unknown group is described as Dead with no members (as Kafka does).
    """
    return coordinator_for(log).describe_group(group_id)


def delete_group(log: Broker, group_id: str) -> None:
    """Delete an empty group and its committed offsets. Thread-safe.

    Raises IllegalStateError if the group has members (Kafka's NON_EMPTY_GROUP):
    nothing is deleted.
    """
    coordinator_for(log).delete_group(group_id)


def _publishes(method: Any) -> Any:
    """After ``method``, publish the members view if a group's shape changed."""
    @functools.wraps(method)
    def wrapper(self: GroupCoordinator, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            if self._view_dir is not None:
                self._publish_members()
    return wrapper


class GroupCoordinator:
    """Membership, rebalances and committed offsets of the groups of one EventLog.

    Get it with :func:`coordinator_for`. Thread-safe: one lock around every call;
    each call is O(members + partitions of the group) at most, and runs the
    assignor when it completes a join. Any call about a group may complete its join
    (liveness runs first), so any may raise what the assignor raises.
    ``initial_rebalance_delay_ms``, ``min_session_timeout_ms`` and
    ``max_session_timeout_ms`` are Kafka's broker configs
    ``group.initial.rebalance.delay.ms`` (default 0 here, 3000 in Kafka) and
    ``group.min/max.session.timeout.ms``; they may be changed on the instance.
    """

    def __init__(
        self,
        log: Broker,
        *,
        initial_rebalance_delay_ms: int = group_initial_rebalance_delay_ms_default,
        min_session_timeout_ms: int = group_min_session_timeout_ms_default,
        max_session_timeout_ms: int = group_max_session_timeout_ms_default,
    ) -> None:
        self._log = log
        self._clock = log.clock
        self._lock = threading.RLock()
        self._groups: dict[str, Group] = {}
        self._offsets = OffsetStore(log)
        self._member_seq = 0
        self._rebalancer = Rebalancer(log, initial_rebalance_delay_ms)
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        # Readers in other processes see members through group/members_view.py.
        self._view_dir = None if log.read_only else log.path
        self._view_signature: tuple = ()
        with self._lock:
            self._offsets.load()

    def _now(self) -> float:
        return self._clock.monotonic_ms()

    @property
    def initial_rebalance_delay_ms(self) -> int:
        """Kafka's ``group.initial.rebalance.delay.ms``; may be changed on the instance."""
        return self._rebalancer.initial_rebalance_delay_ms

    @initial_rebalance_delay_ms.setter
    def initial_rebalance_delay_ms(self, value: int) -> None:
        self._rebalancer.initial_rebalance_delay_ms = value

    # ------------------------------------------------------------------ members view

    def _publish_members(self) -> None:
        """Write group/members_view.py's file if a group's state, generation or member
        count changed since the last write. O(groups) per call; a write per change."""
        assert self._view_dir is not None
        with self._lock:
            signature = tuple((g.group_id, g.state, g.generation, len(g.members))
                              for g in self._groups.values())
            if signature == self._view_signature:
                return
            self._view_signature = signature
            groups = [{
                "group": g.group_id, "state": g.state.name, "generation": g.generation,
                "protocol": g.protocol,
                "members": [[m.member_id, m.instance_id, m.request.client_id,
                             [[tp.topic, tp.partition] for tp in m.assignment]
                             if m.generation == g.generation else []]
                            for m in g.members.values()],
            } for g in self._groups.values() if g.members]
        members_view.publish(self._view_dir, groups)

    def _published(self) -> dict[str, members_view.PublishedGroup]:
        """A read-only log: the groups the writing process published (else {})."""
        if not self._log.read_only or self._log.path is None:
            return {}
        return members_view.read(self._log.path)

    # ------------------------------------------------------------------ membership

    @_publishes
    def join_group(self, group_id: str, member_id: str, request: JoinRequest) -> JoinResult:
        """Join (or rejoin) ``group_id``; returns the assignment once the join completes.

        ``member_id`` is "" for a new member; the result carries the id to use from
        then on. Call again (at the next poll) while the result's assignment is None.
        A call that completes the join runs the group's assignor.

        Raises:
            UnknownMemberError: ``member_id`` is no longer in the group (evicted);
                join again with "".
            FencedInstanceIdError: another member took over this group_instance_id.
            InvalidConfigError: the member's assignors share none with the group's
                members (Kafka's INCONSISTENT_GROUP_PROTOCOL), or its session timeout
                is outside the coordinator's limits. Nothing was changed.
            IllegalStateError: the group's assignor returned an invalid assignment
                (a partition twice, to a non-subscriber, or one that does not exist);
                the group stays in PreparingRebalance. An exception raised by a user
                assignor propagates the same way.
        """
        with self._lock:
            now = self._now()
            group = self._groups.get(group_id)
            if group is None:
                group = self._groups[group_id] = Group(group_id)
            self._rebalancer.expire(group, now)
            if not member_id:
                member = self._new_member(group, request, now)
            else:
                member = self._member(group, member_id, request.group_instance_id)
                member.last_poll_ms = now
                same = request.topics == member.request.topics
                if same and self._can_sync(group, member):
                    return self._rebalancer.sync(group, member)
                member.request = request
                self._rebalancer.rebalance(group, now)  # a rejoin, or a new subscription
            member.joined = group.state is GroupState.PREPARING_REBALANCE
            self._rebalancer.maybe_complete_join(group, now)
            if self._can_sync(group, member):
                return self._rebalancer.sync(group, member)
            return JoinResult(member.member_id, group.generation, None, group.protocol)

    @staticmethod
    def _can_sync(group: Group, member: Member) -> bool:
        return (
            group.state is GroupState.STABLE
            and member.generation == group.generation
            and not member.synced
        )

    def _new_member(self, group: Group, request: JoinRequest, now: float) -> Member:
        self._validate_request(group, request)
        self._member_seq += 1
        member_id = f"{request.client_id}-{self._member_seq:08d}"
        member = Member(member_id, request, last_poll_ms=now)
        instance_id = request.group_instance_id
        if instance_id is not None and instance_id in group.instances:
            self._replace_static(group, member, now)
            return member
        group.members[member_id] = member
        if instance_id is not None:
            group.instances[instance_id] = member_id
        if group.state is GroupState.PREPARING_REBALANCE and now < group.join_delay_deadline_ms:
            # Kafka's InitialDelayedJoin: each new member extends the delay, up to the
            # rebalance timeout.
            group.join_delay_deadline_ms = min(
                now + self._rebalancer.initial_rebalance_delay_ms, group.rebalance_deadline_ms
            )
        self._rebalancer.rebalance(group, now)
        return member

    def _replace_static(self, group: Group, member: Member, now: float) -> None:
        """A static member restarts: the new member id replaces the old (KAFKA_SEMANTICS 4.12)."""
        instance_id = member.instance_id
        assert instance_id is not None
        old = group.members[group.instances[instance_id]]
        member.generation, member.assignment = old.generation, old.assignment
        member.claimed, member.claimed_generation = old.claimed, old.claimed_generation
        member.joined = old.joined
        group.members = {
            (member.member_id if m is old else mid): (member if m is old else m)
            for mid, m in group.members.items()
        }
        group.instances[instance_id] = member.member_id
        unchanged = (
            old.request.topics == member.request.topics
            and group.protocol in {a.name for a in member.request.assignors}
        )
        if group.state is GroupState.STABLE and unchanged:
            return  # no rebalance: the new member collects the old one's assignment
        self._rebalancer.rebalance(group, now)
        self._log.wake_waiters()

    def _validate_request(self, group: Group, request: JoinRequest) -> None:
        timeout = request.session_timeout_ms
        if not self.min_session_timeout_ms <= timeout <= self.max_session_timeout_ms:
            raise InvalidConfigError(
                f"session_timeout_ms={timeout} is outside the coordinator's limits "
                f"[{self.min_session_timeout_ms}, {self.max_session_timeout_ms}] "
                "(Kafka's group.min/max.session.timeout.ms)"
            )
        names = {a.name for a in request.assignors}
        others = [m for m in group.members.values() if m.instance_id is None
                  or m.instance_id != request.group_instance_id]
        if others:
            common = set.intersection(*({a.name for a in m.request.assignors} for m in others))
            if not names & common:
                raise InvalidConfigError(
                    f"group {group.group_id!r} uses partition assignors {sorted(common)}; "
                    f"this consumer offers {sorted(names)}, none in common "
                    "(Kafka's INCONSISTENT_GROUP_PROTOCOL)"
                )

    def _member(self, group: Group, member_id: str, instance_id: str | None) -> Member:
        """The member, after Kafka's static-membership and unknown-member checks."""
        if instance_id is not None:
            current = group.instances.get(instance_id)
            if current is not None and current != member_id:
                raise FencedInstanceIdError(
                    f"group_instance_id {instance_id!r} of group {group.group_id!r} is now "
                    f"used by member {current}; member {member_id} was fenced. Close this "
                    "consumer: two consumers must not share a group_instance_id"
                )
        member = group.members.get(member_id)
        if member is None:
            raise UnknownMemberError(
                f"member {member_id} is not in group {group.group_id!r} (it was removed, "
                "e.g. after max_poll_interval_ms without a poll); poll to rejoin"
            )
        if member.instance_id != instance_id:
            raise FencedInstanceIdError(
                f"member {member_id} of group {group.group_id!r} has group_instance_id "
                f"{member.instance_id!r}, not {instance_id!r}"
            )
        return member

    @_publishes
    def heartbeat(
        self, group_id: str, member_id: str, generation: int, instance_id: str | None
    ) -> None:
        """A stable member's check-in from ``poll()``: keeps it alive, reports changes.

        Raises:
            RebalanceInProgressError: the group is rebalancing; rejoin.
            IllegalGenerationError: the group moved on without this member's knowledge
                (it missed a generation); its partitions were lost; rejoin.
            UnknownMemberError: the member was removed; rejoin with a new member id.
            FencedInstanceIdError: another consumer took this group_instance_id.
        """
        with self._lock:
            now = self._now()
            group = self._groups.get(group_id)
            if group is None:
                raise UnknownMemberError(f"group {group_id!r} has no members")
            self._rebalancer.expire(group, now)
            member = self._member(group, member_id, instance_id)
            member.last_poll_ms = now
            if group.state is GroupState.STABLE:
                self._rebalancer.check_metadata(group, now)
            if group.state is not GroupState.STABLE:
                raise RebalanceInProgressError(
                    f"group {group_id!r} is rebalancing (state {group.state}); rejoin"
                )
            if generation != group.generation:
                raise IllegalGenerationError(
                    f"member {member_id} is at generation {generation}, group {group_id!r} "
                    f"at {group.generation}"
                )

    @_publishes
    def release(self, group_id: str, member_id: str, partitions: Iterable[TopicPartition]) -> None:
        """The member stopped fetching ``partitions`` (after its revoke callback). O(n)."""
        with self._lock:
            group = self._groups.get(group_id)
            member = None if group is None else group.members.get(member_id)
            if member is not None:
                member.owned = member.owned.difference(partitions)

    @_publishes
    def leave_group(self, group_id: str, member_id: str) -> None:
        """The member's consumer closed or unsubscribed.

        A dynamic member leaves at once (rebalance); a static member sends no
        LeaveGroup (KAFKA_SEMANTICS 4.12): it keeps its assignment, unfetched,
        until ``session_timeout_ms`` passes or a consumer with its instance id
        returns. Unknown members are ignored.
        """
        with self._lock:
            now = self._now()
            group = self._groups.get(group_id)
            member = None if group is None else group.members.get(member_id)
            if group is None or member is None:
                return
            member.owned = frozenset()
            if member.instance_id is not None:
                member.departed_ms = now
            else:
                self._rebalancer.remove(group, member, now)
            self._rebalancer.maybe_complete_join(group, now)
            self._log.wake_waiters()

    # ------------------------------------------------------------------ rebalancing

    # ------------------------------------------------------------------ offsets

    @_publishes
    def commit_offsets(
        self,
        group_id: str,
        member_id: str,
        generation: int,
        instance_id: str | None,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
    ) -> None:
        """Validate the committer as Kafka does (KAFKA_SEMANTICS 4.9), then commit.

        ``generation`` < 0 with member "" is a standalone (``assign()``) commit, valid
        only while the group has no members. Offsets must already be validated
        (``offsets.validate_offsets``). Ownership of the partitions is not checked.

        Raises:
            UnknownMemberError, IllegalGenerationError: the member was removed or the
                group moved to another generation (the consumer reports
                CommitFailedError).
            RebalanceInProgressError: the group is completing a rebalance.
            FencedInstanceIdError: another consumer took this group_instance_id.
            Nothing was committed in any of these cases.
        """
        with self._lock:
            now = self._now()
            group = self._groups.get(group_id)
            if group is not None:
                self._rebalancer.expire(group, now)
            standalone = generation < 0 and (group is None or group.state is GroupState.EMPTY)
            if not standalone:
                self._validate_commit(group_id, group, member_id, generation, instance_id)
            self._offsets.commit(group_id, offsets, self._clock.time_ms())

    def validate_member(
        self, group_id: str, member_id: str, generation: int, instance_id: str | None
    ) -> None:
        """Check a transactional offset commit's sender as ``commit_offsets`` checks a
        commit (KIP-447: a zombie of an older generation is refused), committing nothing.
        Raises as ``commit_offsets``."""
        with self._lock:
            now = self._now()
            group = self._groups.get(group_id)
            if group is not None:
                self._rebalancer.expire(group, now)
            if generation < 0 and (group is None or group.state is GroupState.EMPTY):
                return
            self._validate_commit(group_id, group, member_id, generation, instance_id)

    def commit_transactional(
        self, group_id: str, offsets: Mapping[TopicPartition, OffsetAndMetadata]
    ) -> None:
        """Make offsets sent in a transaction visible: its commit decision was logged,
        and the sender was validated when it sent them. Raises as ``commit_offsets``'
        append does (then nothing was committed)."""
        with self._lock:
            self._offsets.commit(group_id, offsets, self._clock.time_ms())

    def _validate_commit(
        self,
        group_id: str,
        group: Group | None,
        member_id: str,
        generation: int,
        instance_id: str | None,
    ) -> None:
        if group is None:
            raise UnknownMemberError(f"group {group_id!r} has no member {member_id!r}")
        if group.state is GroupState.COMPLETING_REBALANCE:
            raise RebalanceInProgressError(f"group {group_id!r} is completing a rebalance")
        self._member(group, member_id, instance_id)
        if generation != group.generation:
            raise IllegalGenerationError(
                f"commit from generation {generation}, but group {group_id!r} is at "
                f"generation {group.generation}"
            )

    def committed(
        self, group_id: str, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, CommittedOffset | None]:
        """The committed offset of each partition for ``group_id`` (None: none). O(n)."""
        with self._lock:
            return {tp: self._offsets.get(group_id, tp) for tp in partitions}

    # ------------------------------------------------------------------ inspection

    @_publishes
    def list_groups(self) -> list[GroupListing]:
        """Groups with members or committed offsets, sorted by id (on a read-only log:
        with the members the writing process published)."""
        with self._lock:
            now = self._now()
            for group in self._groups.values():
                self._rebalancer.expire(group, now)
            with_offsets = set(self._offsets.groups())
            published = self._published()
            ids = with_offsets.union(
                g.group_id for g in self._groups.values() if g.members or g.generation
            ).union(published)  # not a group whose only join attempt was refused
            out = []
            for group_id in sorted(ids):
                group = self._groups.get(group_id)
                seen = published.get(group_id)
                if seen is not None and group is None:
                    out.append(GroupListing(group_id, GroupState[seen.state], protocol_type))
                    continue
                state = GroupState.EMPTY if group is None else group.state
                kind = protocol_type if group is not None and group.generation > 0 else ""
                out.append(GroupListing(group_id, state, kind))
            return out

    @_publishes
    def describe_group(self, group_id: str) -> GroupDescription:
        """See :func:`describe_group`. O(members + partitions)."""
        with self._lock:
            group = self._groups.get(group_id)
            if group is not None:
                self._rebalancer.expire(group, self._now())
            committed = self._offsets.group_offsets(group_id)
            seen = None if group is not None else self._published().get(group_id)
            if seen is not None:
                return self._describe_published(seen, committed)
            if group is None and not committed:
                return GroupDescription(group_id, GroupState.DEAD, -1, "", None, (), ())
            members = () if group is None else tuple(
                MemberDescription(m.member_id, m.instance_id, m.request.client_id,
                                  m.assignment if m.generation == group.generation else ())
                for m in group.members.values()
            )
            partitions = set(committed).union(*(m.assignment for m in members))
            offsets = tuple(self._partition_offset(tp, committed.get(tp))
                            for tp in sorted(partitions))
            if group is None:
                return GroupDescription(group_id, GroupState.EMPTY, -1, "", None, (), offsets)
            return GroupDescription(
                group_id, group.state, group.generation,
                protocol_type if group.generation > 0 else "", group.protocol, members, offsets,
            )

    def _describe_published(
        self, seen: members_view.PublishedGroup, committed: dict[TopicPartition, CommittedOffset]
    ) -> GroupDescription:
        members = tuple(MemberDescription(*m) for m in seen.members)
        partitions = set(committed).union(*(m.assignment for m in members))
        offsets = tuple(self._partition_offset(tp, committed.get(tp)) for tp in sorted(partitions))
        return GroupDescription(seen.group_id, GroupState[seen.state], seen.generation,
                                protocol_type, seen.protocol, members, offsets)

    def _partition_offset(
        self, tp: TopicPartition, committed: CommittedOffset | None
    ) -> PartitionOffset:
        try:
            end = int(self._log.topic(tp.topic).partitions[tp.partition].end_offset)
        except (UnknownTopicError, IndexError):
            end = 0
        if committed is None:
            return PartitionOffset(tp, None, end, None)
        return PartitionOffset(tp, committed.offset, end, max(0, end - committed.offset))

    @_publishes
    def delete_group(self, group_id: str) -> None:
        """See :func:`delete_group`."""
        with self._lock:
            group = self._groups.get(group_id)
            if group is not None:
                self._rebalancer.expire(group, self._now())
                if group.state is not GroupState.EMPTY:
                    raise IllegalStateError(
                        f"group {group_id!r} has {len(group.members)} member(s) and cannot be "
                        "deleted (Kafka's NON_EMPTY_GROUP); close its consumers first"
                    )
                group.state = next_state(group.state, GroupEvent.DELETE)
                del self._groups[group_id]
            self._offsets.delete_group(group_id)

    # ------------------------------------------------------------------ invariants

    def check(self) -> None:
        """Assert every group's invariants (DESIGN invariant 5) and the offsets view."""
        with self._lock:
            for group_id, group in self._groups.items():
                check_group(group_id, group)
            self._offsets.check()

    def group_state(self, group_id: str) -> GroupState | None:
        """The group's state without applying liveness (for tests), None if unknown."""
        with self._lock:
            group = self._groups.get(group_id)
            return None if group is None else group.state

    def owned(self, group_id: str) -> dict[str, frozenset[TopicPartition]]:
        """Member id -> the partitions it owns now (for tests and tools)."""
        with self._lock:
            group = self._groups.get(group_id)
            return {} if group is None else {m.member_id: m.owned for m in group.members.values()}

    def __repr__(self) -> str:
        return f"GroupCoordinator(groups={len(self._groups)})"
