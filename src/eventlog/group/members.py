"""What the group coordinator keeps per group and per member, and the join messages.

``JoinRequest`` / ``JoinResult`` are Kafka's JoinGroup request and answer, in process;
``Member`` and ``Group`` are the coordinator's records (mutated under its lock);
:func:`check_group` asserts a group's invariants (DESIGN invariant 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..records import TopicPartition
from .assignors import Assignor, Subscription
from .state import GroupState

__all__ = ["Group", "JoinRequest", "JoinResult", "Member", "check_group"]

EAGER = "eager"


class JoinRequest(NamedTuple):
    """What a consumer sends when it joins (Kafka's JoinGroup request, in process)."""

    client_id: str
    group_instance_id: str | None
    topics: tuple[str, ...]  # sorted
    assignors: tuple[Assignor, ...]  # in order of preference
    protocol: str  # the consumer's rebalance protocol: "eager" or "cooperative"
    session_timeout_ms: int
    rebalance_timeout_ms: int  # the consumer's max_poll_interval_ms


class JoinResult(NamedTuple):
    """The answer to ``join_group``: the assignment, or None while the join is pending."""

    member_id: str
    generation: int
    assignment: tuple[TopicPartition, ...] | None
    protocol: str | None  # the group's assignor name


@dataclass(eq=False)
class Member:
    member_id: str
    request: JoinRequest
    last_poll_ms: float
    departed_ms: float | None = None  # a static member's close(): no LeaveGroup
    joined: bool = False  # rejoined the rebalance in progress
    generation: int = -1  # generation of ``assignment``
    assignment: tuple[TopicPartition, ...] = ()
    synced: bool = False  # collected ``assignment``
    owned: frozenset[TopicPartition] = frozenset()  # what its consumer may fetch
    claimed: tuple[TopicPartition, ...] = ()  # last collected assignment (sticky memory)
    claimed_generation: int = -1

    @property
    def instance_id(self) -> str | None:
        return self.request.group_instance_id

    def expires_at_ms(self) -> float:
        """When liveness removes the member (module docstring)."""
        request = self.request
        if self.departed_ms is not None:
            return self.departed_ms + request.session_timeout_ms
        if request.group_instance_id is None:
            return self.last_poll_ms + request.rebalance_timeout_ms
        return self.last_poll_ms + request.rebalance_timeout_ms + request.session_timeout_ms

    def subscription(self, eager_assignor: bool) -> Subscription:
        """What the assignor sees. An eager member revoked everything before joining,
        so it owns nothing; but an eager-only assignor (sticky) still gets what it last
        held, as Kafka's StickyAssignor keeps it in its user data, so stickiness
        survives. A cooperative assignor must see true ownership: it withholds what
        another member owns until that member revokes it."""
        if self.request.protocol == EAGER and eager_assignor:
            owned = self.claimed
        else:
            owned = tuple(sorted(self.owned))
        return Subscription(self.request.topics, owned, self.claimed_generation,
                            self.instance_id)


@dataclass(eq=False)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol: str | None = None  # the selected assignor's name
    members: dict[str, Member] = field(default_factory=dict)  # in join order
    instances: dict[str, str] = field(default_factory=dict)  # group_instance_id -> member
    rebalance_deadline_ms: float = 0.0
    join_delay_deadline_ms: float = 0.0
    partition_counts: dict[str, int] = field(default_factory=dict)  # at the last assignment


def check_group(group_id: str, group: Group) -> None:
    assert group.state is not GroupState.DEAD, group_id
    assert group.generation >= 0, group_id
    assert (group.state is GroupState.EMPTY) == (not group.members), (group_id, group.state)
    assert group.state is not GroupState.COMPLETING_REBALANCE, group_id  # never left there
    owner: dict[TopicPartition, str] = {}
    for member_id, member in group.members.items():
        assert member.member_id == member_id
        for tp in member.owned:
            assert tp not in owner, f"{tp} owned by {owner.get(tp)} and {member_id}"
            owner[tp] = member_id
        assert member.generation <= group.generation
        if member.instance_id is not None:
            assert group.instances[member.instance_id] == member_id
    assert len(group.instances) == sum(m.instance_id is not None for m in group.members.values())
    if group.state is GroupState.STABLE:
        assigned: set[TopicPartition] = set()
        for member in group.members.values():
            if member.generation == group.generation:
                assert assigned.isdisjoint(member.assignment), group_id
                assigned.update(member.assignment)

