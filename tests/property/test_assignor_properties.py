"""Property tests for the partition assignors (eventlog.group.assignors).

Random groups: topics with random partition counts (some missing from metadata),
members with uniform or mixed subscriptions, static members, and random previous
ownership (stale generations, double claims, claims on unsubscribed topics).
Example counts come from the hypothesis profile (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from eventlog.group.assignors import (
    COOPERATIVE,
    Assignor,
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
    Subscription,
)
from eventlog.records import TopicPartition
from eventlog.testing.assignors import (
    check_assignment,
    check_balance,
    simulate_cooperative_rebalances,
)

ASSIGNORS: list[Assignor] = [
    RangeAssignor(),
    RoundRobinAssignor(),
    StickyAssignor(),
    CooperativeStickyAssignor(),
]
TOPICS = ("a", "b", "c", "d", "e")
MEMBERS = ("m0", "m1", "m2", "m3", "m4", "m5", "m6")


class Group:
    """One generated group, printed readably when hypothesis shrinks a failure."""

    def __init__(
        self, partitions_per_topic: dict[str, int], subscriptions: dict[str, Subscription]
    ) -> None:
        self.partitions_per_topic = partitions_per_topic
        self.subscriptions = subscriptions

    def __repr__(self) -> str:
        return f"Group({self.partitions_per_topic!r}, {self.subscriptions!r})"


@st.composite
def groups(draw: st.DrawFn, *, uniform: bool | None = None, clean_ownership: bool = False) -> Group:
    """A random group.

    ``clean_ownership`` gives every partition at most one owner, all in one generation,
    and only on subscribed topics (a previous assignment of the same group, then changed).
    """
    topics = draw(st.lists(st.sampled_from(TOPICS), min_size=1, max_size=4, unique=True))
    counts = {topic: draw(st.integers(0, 7)) for topic in topics}
    members = draw(st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=6, unique=True))
    if uniform is None:
        uniform = draw(st.booleans())
    common = draw(st.lists(st.sampled_from(TOPICS), min_size=1, unique=True))
    subscriptions: dict[str, Subscription] = {}
    for member in members:
        chosen = common if uniform else draw(st.lists(st.sampled_from(TOPICS), unique=True))
        tag = draw(st.none() | st.sampled_from(("i0", "i1", "i2")))
        instance = None if tag is None else f"{tag}-{member}"
        subscriptions[member] = Subscription(tuple(sorted(chosen)), group_instance_id=instance)
    if clean_ownership:
        subscriptions = _clean_ownership(draw, counts, subscriptions)
    elif draw(st.booleans()):
        subscriptions = _messy_ownership(draw, counts, subscriptions)
    return Group(counts, subscriptions)


def _clean_ownership(
    draw: st.DrawFn, counts: Mapping[str, int], subscriptions: Mapping[str, Subscription]
) -> dict[str, Subscription]:
    owned: dict[str, list[TopicPartition]] = {member: [] for member in subscriptions}
    for topic, count in counts.items():
        subscribers = [m for m, s in subscriptions.items() if topic in s.topics]
        for partition in range(count):
            owner = draw(st.none() | st.sampled_from(subscribers)) if subscribers else None
            if owner is not None:
                owned[owner].append(TopicPartition(topic, partition))
    return {
        m: s._replace(owned_partitions=tuple(owned[m]), generation=3)
        for m, s in subscriptions.items()
    }


def _messy_ownership(
    draw: st.DrawFn, counts: Mapping[str, int], subscriptions: Mapping[str, Subscription]
) -> dict[str, Subscription]:
    partitions = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
    partitions.append(TopicPartition("gone", 0))
    return {
        member: subscription._replace(
            owned_partitions=tuple(draw(st.lists(st.sampled_from(partitions), unique=True))),
            generation=draw(st.integers(-1, 3)),
        )
        for member, subscription in subscriptions.items()
    }


def _owning(
    assignment: Mapping[str, list[TopicPartition]], group: Group, generation: int
) -> dict[str, Subscription]:
    return {
        member: subscription._replace(
            owned_partitions=tuple(assignment[member]), generation=generation
        )
        for member, subscription in group.subscriptions.items()
    }


@given(group=groups(), assignor=st.sampled_from(ASSIGNORS))
def test_every_assignor_keeps_the_contract(group: Group, assignor: Assignor) -> None:
    assignment = assignor.assign(group.partitions_per_topic, group.subscriptions)
    cooperative = COOPERATIVE in assignor.protocols
    check_assignment(
        group.partitions_per_topic, group.subscriptions, assignment, cooperative=cooperative
    )
    for partitions in assignment.values():
        assert partitions == sorted(partitions)
    # Pure: the same input gives the same output.
    assert assignor.assign(group.partitions_per_topic, group.subscriptions) == assignment


@given(group=groups())
def test_sticky_is_balanced_and_stable(group: Group) -> None:
    assignor = StickyAssignor()
    assignment = assignor.assign(group.partitions_per_topic, group.subscriptions)
    check_balance(group.subscriptions, assignment)
    again = assignor.assign(group.partitions_per_topic, _owning(assignment, group, generation=10))
    assert again == assignment


@given(group=groups(uniform=True))
def test_uniform_sticky_counts_differ_by_at_most_one(group: Group) -> None:
    assignment = StickyAssignor().assign(group.partitions_per_topic, group.subscriptions)
    counts = [len(partitions) for partitions in assignment.values()]
    assert max(counts) - min(counts) <= 1


@given(group=groups(uniform=True, clean_ownership=True))
def test_uniform_sticky_keeps_the_most_it_can(group: Group) -> None:
    """Each member keeps min(owned, final count), and the total kept is the maximum.

    With P partitions and N members, r = P % N members end with max_quota; the most
    that can be kept is sum(min(owned, min_quota)) plus one for each of at most r
    members owning max_quota or more (KAFKA_SEMANTICS 3.5, ``max_retained``).
    """
    assignment = StickyAssignor().assign(group.partitions_per_topic, group.subscriptions)
    owned = {m: set(s.owned_partitions) for m, s in group.subscriptions.items()}
    kept = {m: len(owned[m] & set(assignment[m])) for m in assignment}
    for member in assignment:
        assert kept[member] == min(len(owned[member]), len(assignment[member])), member
    total = sum(len(partitions) for partitions in assignment.values())
    min_quota, max_members = divmod(total, len(assignment))
    max_quota = min_quota + (1 if max_members else 0)
    big_owners = sum(len(o) >= max_quota for o in owned.values()) if max_members else 0
    best = sum(min(len(o), min_quota) for o in owned.values()) + min(max_members, big_owners)
    assert sum(kept.values()) == best


@given(group=groups())
def test_cooperative_settles_balanced_without_revoke_and_assign(group: Group) -> None:
    assignor = CooperativeStickyAssignor()
    rounds = simulate_cooperative_rebalances(
        assignor, group.partitions_per_topic, group.subscriptions
    )
    final = rounds[-1]
    check_balance(group.subscriptions, final)
    # The settled assignment is the eager sticky assignment of the settled ownership.
    settled = _owning({m: list(p) for m, p in final.items()}, group, generation=20)
    assert StickyAssignor().assign(group.partitions_per_topic, settled) == final
    assert assignor.assign(group.partitions_per_topic, settled) == final


@given(group=groups())
def test_cooperative_is_sticky_minus_partitions_changing_hands(group: Group) -> None:
    sticky = StickyAssignor().assign(group.partitions_per_topic, group.subscriptions)
    cooperative = CooperativeStickyAssignor().assign(
        group.partitions_per_topic, group.subscriptions
    )
    for member, partitions in cooperative.items():
        assert set(partitions) <= set(sticky[member])
    withheld = {p for m in sticky for p in set(sticky[m]) - set(cooperative[m])}
    claimed = {p for s in group.subscriptions.values() for p in s.owned_partitions}
    assert withheld <= claimed
