"""Rebalancer: a group's join phase: starting it, liveness, completing it with the assignor.

The coordinator decides which call does what; these steps move a group through
:mod:`~eventlog.group.state`'s table: a change starts a join phase
(PreparingRebalance), liveness removes members that stopped polling, and the join
completes (CompletingRebalance, then Stable) when every member rejoined or the
rebalance timeout passed. Called with the coordinator's lock held; never blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..broker import Broker
from ..errors import IllegalStateError, UnknownTopicError
from ..records import TopicPartition
from .assignors import select_assignor
from .members import EAGER, Group, JoinResult, Member
from .state import GroupEvent, GroupState, next_state

__all__ = ["COOPERATIVE", "Rebalancer", "validated"]

COOPERATIVE = "cooperative"


class Rebalancer:
    """Join phases of the groups of one log (``log.clock`` time, ``log.wake_waiters``).

    ``initial_rebalance_delay_ms``: Kafka's ``group.initial.rebalance.delay.ms``.
    """

    def __init__(self, log: Broker, initial_rebalance_delay_ms: int) -> None:
        self._log = log
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms

    def rebalance(self, group: Group, now: float) -> None:
        """Start a join phase (or keep the one in progress)."""
        if group.state is GroupState.PREPARING_REBALANCE:
            return
        was_empty = group.state is GroupState.EMPTY
        group.state = next_state(group.state, GroupEvent.REBALANCE)
        for member in group.members.values():
            member.joined = False
        timeout = max((m.request.rebalance_timeout_ms for m in group.members.values()), default=0)
        group.rebalance_deadline_ms = now + timeout
        delay = self.initial_rebalance_delay_ms if was_empty else 0
        group.join_delay_deadline_ms = min(now + delay, group.rebalance_deadline_ms)
        self._log.wake_waiters()

    def remove(self, group: Group, member: Member, now: float) -> None:
        del group.members[member.member_id]
        instance_id = member.instance_id
        if instance_id is not None and group.instances.get(instance_id) == member.member_id:
            del group.instances[instance_id]
        self.rebalance(group, now)

    def expire(self, group: Group, now: float) -> None:
        """Remove members whose liveness deadline passed; maybe end the join phase."""
        for member in list(group.members.values()):
            if now >= member.expires_at_ms():
                self.remove(group, member, now)
        self.maybe_complete_join(group, now)

    def check_metadata(self, group: Group, now: float) -> None:
        """Rebalance if a subscribed topic's partition count changed since the assignment."""
        for topic, count in group.partition_counts.items():
            if self.partition_count(topic) != count:
                self.rebalance(group, now)
                return

    def partition_count(self, topic: str) -> int:
        try:
            return int(self._log.topic(topic).num_partitions)
        except UnknownTopicError:
            return 0

    def maybe_complete_join(self, group: Group, now: float) -> None:
        if group.state is not GroupState.PREPARING_REBALANCE:
            return
        if now < group.join_delay_deadline_ms:
            return
        everyone = all(m.joined for m in group.members.values())
        if not everyone and now < group.rebalance_deadline_ms:
            return
        self._complete_join(group, now)

    def _complete_join(self, group: Group, now: float) -> None:
        """End the join phase: drop laggards, run the assignor, start a generation."""
        staying = [m for m in group.members.values() if m.joined or m.instance_id is not None]
        if not staying:
            for member in list(group.members.values()):
                self.remove(group, member, now)
            group.generation += 1
            group.protocol = None
            group.partition_counts = {}
            group.state = next_state(group.state, GroupEvent.JOIN_EMPTY)
            self._log.wake_waiters()
            return
        name, assignment, counts = self._assign(group, staying)  # may raise: nothing changed
        for member in list(group.members.values()):
            if not member.joined and member.instance_id is None:
                del group.members[member.member_id]
            elif not member.joined:
                member.owned = frozenset()  # a static member that missed it: partitions lost
        group.generation += 1
        group.state = next_state(group.state, GroupEvent.JOIN_COMPLETE)
        group.protocol = name
        group.partition_counts = counts
        for member in group.members.values():
            member.assignment = assignment[member.member_id]
            member.generation = group.generation
            member.synced = False
            member.joined = False
        group.state = next_state(group.state, GroupEvent.ASSIGNMENT_DONE)
        self._log.wake_waiters()

    def _assign(
        self, group: Group, members: Sequence[Member]
    ) -> tuple[str, dict[str, tuple[TopicPartition, ...]], dict[str, int]]:
        """Select and run the group's assignor over ``members``. Changes nothing."""
        name = select_assignor({m.member_id: [a.name for a in m.request.assignors]
                                for m in members})
        assignor = next(a for a in members[0].request.assignors if a.name == name)
        topics = sorted({t for m in members for t in m.request.topics})
        counts = {t: self.partition_count(t) for t in topics}
        eager_assignor = COOPERATIVE not in getattr(assignor, "protocols", (EAGER,))
        subscriptions = {m.member_id: m.subscription(eager_assignor) for m in members}
        result = assignor.assign({t: c for t, c in counts.items() if c}, subscriptions)
        checked = validated(name, result, members, counts)
        # A static member that did not rejoin loses what it owned (it is not fetching:
        # a polling consumer would have rejoined), so only rejoined members' claims count.
        owner = {tp: m.member_id for m in members if m.joined for tp in m.owned}
        final = {
            member_id: tuple(tp for tp in tps if owner.get(tp, member_id) == member_id)
            for member_id, tps in checked.items()
        }
        return name, final, counts

    def sync(self, group: Group, member: Member) -> JoinResult:
        """The member collects its assignment (Kafka's SyncGroup) and owns it from now."""
        member.synced = True
        member.owned = member.owned.union(member.assignment)
        member.claimed = member.assignment
        member.claimed_generation = member.generation
        return JoinResult(member.member_id, group.generation, member.assignment, group.protocol)


def validated(
    name: str,
    result: Mapping[str, Sequence[TopicPartition]],
    members: Sequence[Member],
    counts: Mapping[str, int],
) -> dict[str, tuple[TopicPartition, ...]]:
    """Check an assignor's result; raises IllegalStateError naming the assignor's bug."""
    by_id = {m.member_id: m for m in members}
    unknown = set(result) - set(by_id)
    if unknown:
        raise IllegalStateError(f"assignor {name!r} assigned to unknown members {sorted(unknown)}")
    seen: set[TopicPartition] = set()
    out: dict[str, tuple[TopicPartition, ...]] = {}
    for member_id, member in by_id.items():
        tps = tuple(TopicPartition(*tp) for tp in result.get(member_id, ()))
        for tp in tps:
            if tp in seen or tp.topic not in member.request.topics:
                raise IllegalStateError(
                    f"assignor {name!r} assigned {tp} twice or to a member not subscribed "
                    "to its topic"
                )
            if not 0 <= tp.partition < counts.get(tp.topic, 0):
                raise IllegalStateError(f"assignor {name!r} assigned {tp}, which does not exist")
            seen.add(tp)
        out[member_id] = tps
    return out
