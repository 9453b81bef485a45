"""Contract checks for partition assignors: run them against your own assignor.

    from eventlog.testing.assignors import check_assignor
    check_assignor(MyAssignor())          # raises AssertionError naming the broken case

:func:`check_assignor` runs an assignor over a deterministic set of generated groups
(:func:`assignor_cases`) and checks each result with :func:`check_assignment`:

* every member id appears in the result, and nothing else does;
* every assigned partition exists in metadata and is assigned once;
* a member is only assigned partitions of topics it subscribes to;
* every partition of a topic with at least one subscriber is assigned, except, for
  an assignor that supports the cooperative protocol, partitions some member still
  lists as owned (they are handed over in a follow-up rebalance);
* for a cooperative assignor, no partition is added to one member while another
  member that owned it loses it in the same rebalance; and, applying each result as
  the new ownership (:func:`simulate_cooperative_rebalances`), every partition is
  assigned after at most ``cooperative_follow_ups_max`` follow-up rebalances (as
  Kafka's CooperativeStickyAssignorTest requires).

:func:`check_balance` checks Kafka's balance goal for sticky assignors; it is not
part of the general contract (range and roundrobin are not balanced in that sense).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

from eventlog.group.assignors import COOPERATIVE, EAGER, Assignor, Subscription
from eventlog.records import TopicPartition

__all__ = [
    "AssignorCase",
    "assignor_cases",
    "check_assignment",
    "check_assignor",
    "check_balance",
    "cooperative_follow_ups_max",
    "simulate_cooperative_rebalances",
]

cooperative_follow_ups_max = 4
"""Follow-up rebalances a cooperative assignor may need (Kafka's CooperativeStickyAssignorTest)."""

_case_count_default = 300  # about 0.1 s for the built-in cooperative-sticky assignor
_topic_pool = ("alpha", "beta", "gamma", "delta", "t\N{MATHEMATICAL BOLD SMALL A}", "t\uff41")


_Fail = Callable[[str], NoReturn]


class AssignorCase(NamedTuple):
    """One group to assign: what an assignor receives, and a label for messages."""

    description: str
    partitions_per_topic: Mapping[str, int]
    subscriptions: Mapping[str, Subscription]


def check_assignor(assignor: Assignor, *, cases: Iterable[AssignorCase] | None = None) -> None:
    """Check that ``assignor`` honours the assignor contract (module docstring).

    ``cases`` defaults to :func:`assignor_cases`. Each input is given as a fresh copy,
    and must be left unchanged. Cost: one ``assign`` per case, plus up to
    ``cooperative_follow_ups_max`` more per case for a cooperative assignor.

    Raises:
        AssertionError: the first violation, with the case and the result.
    """
    _check_identity(assignor)
    cooperative = COOPERATIVE in assignor.protocols
    for case in assignor_cases() if cases is None else cases:
        if cooperative:
            simulate_cooperative_rebalances(
                assignor, case.partitions_per_topic, case.subscriptions, context=case.description
            )
        else:
            assignment = _assign_copy(assignor, case)
            check_assignment(
                case.partitions_per_topic,
                case.subscriptions,
                assignment,
                context=case.description,
            )


def simulate_cooperative_rebalances(
    assignor: Assignor,
    partitions_per_topic: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
    *,
    context: str = "",
) -> list[Mapping[str, Sequence[TopicPartition]]]:
    """Rebalance a cooperative group until no member revokes anything.

    After each rebalance every member owns exactly what it was assigned (it revoked
    the rest), in the next generation, and rebalances again if anything was revoked,
    as a cooperative consumer does. Each result is checked with
    :func:`check_assignment` (``cooperative=True``); the last one must also assign
    every partition. Returns the assignment of every rebalance, the first included.
    Cost: at most ``1 + cooperative_follow_ups_max`` calls to ``assign``.

    Raises:
        AssertionError: a check failed, or members still revoke partitions after
            ``cooperative_follow_ups_max`` follow-up rebalances.
    """
    case = AssignorCase(context or "cooperative group", partitions_per_topic, subscriptions)
    generation = max((sub.generation for sub in subscriptions.values()), default=-1)
    rounds: list[Mapping[str, Sequence[TopicPartition]]] = []
    for follow_up in range(cooperative_follow_ups_max + 1):
        label = case.description + (f", follow-up rebalance {follow_up}" if follow_up else "")
        assignment = _assign_copy(assignor, case)
        check_assignment(
            partitions_per_topic, case.subscriptions, assignment, cooperative=True, context=label
        )
        rounds.append(assignment)
        if _revokes_nothing(case.subscriptions, assignment):
            check_assignment(partitions_per_topic, case.subscriptions, assignment, context=label)
            return rounds
        generation += 1
        owned_now = {
            member: sub._replace(owned_partitions=tuple(assignment[member]), generation=generation)
            for member, sub in case.subscriptions.items()
        }
        case = case._replace(subscriptions=owned_now)
    raise AssertionError(
        f"{case.description}: members still revoke partitions after "
        f"{cooperative_follow_ups_max} follow-up rebalances"
    )


def check_assignment(
    partitions_per_topic: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
    assignment: Mapping[str, Sequence[TopicPartition]],
    *,
    cooperative: bool = False,
    context: str = "",
) -> None:
    """Check one assignment against the contract (module docstring).

    With ``cooperative=True`` a partition may stay unassigned while some member lists
    it as owned, and no partition may be added to one member while another member
    that owned it loses it. Cost: O(P + total subscriptions + total owned).

    Raises:
        AssertionError: a violation, with ``context`` and the inputs in the message.
    """

    def fail(message: str) -> NoReturn:
        raise AssertionError(
            _describe(message, context, partitions_per_topic, subscriptions, assignment)
        )

    if not isinstance(assignment, Mapping):
        fail(f"assign() returned {type(assignment).__name__}, not a mapping")
    missing = [member for member in subscriptions if member not in assignment]
    extra = [member for member in assignment if member not in subscriptions]
    if missing or extra:
        fail(f"members missing from the result: {missing}; unknown members in it: {extra}")
    holder = _check_placement(partitions_per_topic, subscriptions, assignment, fail)
    _check_completeness(partitions_per_topic, subscriptions, holder, cooperative, fail)
    if cooperative:
        _check_no_revoke_and_assign(subscriptions, assignment, fail)


def check_balance(
    subscriptions: Mapping[str, Subscription],
    assignment: Mapping[str, Sequence[TopicPartition]],
    *,
    context: str = "",
) -> None:
    """Check Kafka's sticky balance goal.

    Counts differ by at most one, or else no member with two or more partitions more
    than another member holds a partition of a topic that the lighter member
    subscribes to (AbstractStickyAssignorTest.verifyValidityAndBalance, stated with
    subscriptions). Cost: O(N * T + P).

    Raises:
        AssertionError: names the heavier and lighter member and the partition.
    """
    loads = {member: len(assignment[member]) for member in subscriptions}
    if not loads or max(loads.values()) - min(loads.values()) <= 1:
        return
    lightest: dict[str, str] = {}
    for member, subscription in subscriptions.items():
        for topic in subscription.topics:
            if topic not in lightest or loads[member] < loads[lightest[topic]]:
                lightest[topic] = member
    for member, partitions in assignment.items():
        for tp in partitions:
            lighter = lightest.get(tp.topic)
            if lighter is not None and loads[member] - loads[lighter] >= 2:
                raise AssertionError(
                    _describe(
                        f"unbalanced: {member!r} holds {loads[member]} partitions including "
                        f"{tp}, while {lighter!r} subscribes to {tp.topic!r} and holds "
                        f"{loads[lighter]}",
                        context,
                        {},
                        subscriptions,
                        assignment,
                    )
                )


def assignor_cases(*, seed: int = 0, count: int = _case_count_default) -> list[AssignorCase]:
    """A deterministic list of groups for :func:`check_assignor`.

    Hand-written edge cases first (no topics, a topic missing from metadata, a topic
    with no partitions, more members than partitions, static members), then ``count``
    random groups from ``random.Random(seed)``: uniform and mixed subscriptions, fresh
    and with previous ownership, including stale generations, partitions claimed by
    two members, and claims on topics no longer subscribed or no longer existing.
    Cost: O(count * group size).
    """
    rng = random.Random(seed)
    return [*_edge_cases(), *(_random_case(rng, index) for index in range(count))]


# ---------------------------------------------------------------------------------------
# Checks


def _check_identity(assignor: Any) -> None:
    """``name`` is a non-empty str and ``protocols`` a non-empty subset of the known ones."""
    name = getattr(assignor, "name", None)
    assert isinstance(name, str) and name, f"{assignor!r}: name must be a non-empty str"
    protocols = tuple(getattr(assignor, "protocols", ()))
    assert protocols, f"{assignor!r}: protocols must list at least one rebalance protocol"
    unknown = [p for p in protocols if p not in (EAGER, COOPERATIVE)]
    assert not unknown, f"{assignor!r}: unknown rebalance protocols {unknown}"


def _assign_copy(assignor: Assignor, case: AssignorCase) -> Mapping[str, Sequence[TopicPartition]]:
    """Call ``assign`` on copies of the inputs and check it left them unchanged."""
    partitions_per_topic = dict(case.partitions_per_topic)
    subscriptions = dict(case.subscriptions)
    assignment = assignor.assign(partitions_per_topic, subscriptions)
    assert partitions_per_topic == dict(case.partitions_per_topic), (
        f"{case.description}: assign() modified partitions_per_topic"
    )
    assert subscriptions == dict(case.subscriptions), (
        f"{case.description}: assign() modified subscriptions"
    )
    return assignment


def _check_placement(
    partitions_per_topic: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
    assignment: Mapping[str, Sequence[TopicPartition]],
    fail: _Fail,
) -> dict[TopicPartition, str]:
    """Each partition exists, is assigned once, to a subscriber. Returns partition -> member."""
    holder: dict[TopicPartition, str] = {}
    for member, partitions in assignment.items():
        topics = set(subscriptions[member].topics)
        for item in partitions:
            if not (isinstance(item, tuple) and len(item) == 2):
                fail(f"{member!r} was assigned {item!r}, which is not a (topic, partition)")
            tp = TopicPartition(*item)
            if not 0 <= tp.partition < partitions_per_topic.get(tp.topic, 0):
                fail(f"{member!r} was assigned {tp}, which is not in metadata")
            if tp.topic not in topics:
                fail(f"{member!r} was assigned {tp} but does not subscribe to {tp.topic!r}")
            if tp in holder:
                fail(f"{tp} was assigned to both {holder[tp]!r} and {member!r}")
            holder[tp] = member
    return holder


def _check_completeness(
    partitions_per_topic: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
    holder: Mapping[TopicPartition, str],
    cooperative: bool,
    fail: _Fail,
) -> None:
    """Every partition of a subscribed topic is assigned (cooperative: unless owned)."""
    subscribed = {topic for sub in subscriptions.values() for topic in sub.topics}
    owned = {TopicPartition(*tp) for sub in subscriptions.values() for tp in sub.owned_partitions}
    unassigned = [
        TopicPartition(topic, partition)
        for topic, count in partitions_per_topic.items()
        if topic in subscribed
        for partition in range(count)
        if TopicPartition(topic, partition) not in holder
    ]
    if cooperative:
        unassigned = [tp for tp in unassigned if tp not in owned]
    if unassigned:
        fail(f"partitions of subscribed topics left unassigned: {sorted(unassigned)}")


def _check_no_revoke_and_assign(
    subscriptions: Mapping[str, Subscription],
    assignment: Mapping[str, Sequence[TopicPartition]],
    fail: _Fail,
) -> None:
    """No partition is added to a member while another member that owned it loses it."""
    added: dict[TopicPartition, str] = {}
    revoked: dict[TopicPartition, str] = {}
    for member, subscription in subscriptions.items():
        owned = {TopicPartition(*tp) for tp in subscription.owned_partitions}
        assigned = {TopicPartition(*tp) for tp in assignment[member]}
        added.update(dict.fromkeys(assigned - owned, member))
        revoked.update(dict.fromkeys(owned - assigned, member))
    both = sorted(set(added) & set(revoked))
    if both:
        tp = both[0]
        fail(
            f"cooperative rule broken: {tp} is revoked from {revoked[tp]!r} and assigned to "
            f"{added[tp]!r} in the same rebalance (all such partitions: {both})"
        )


def _revokes_nothing(
    subscriptions: Mapping[str, Subscription], assignment: Mapping[str, Sequence[TopicPartition]]
) -> bool:
    """Whether every member keeps all it owned (so no further rebalance is needed)."""
    return all(
        set(sub.owned_partitions) <= set(assignment[member])
        for member, sub in subscriptions.items()
    )


def _describe(
    message: str,
    context: str,
    partitions_per_topic: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
    assignment: Any,
) -> str:
    """A failure message with the inputs and result, one member per line."""
    lines = [f"{context}: {message}" if context else message]
    if partitions_per_topic:
        lines.append(f"  partitions_per_topic: {dict(partitions_per_topic)}")
    for member, subscription in subscriptions.items():
        result = assignment.get(member) if isinstance(assignment, Mapping) else None
        owned = [f"{tp[0]}-{tp[1]}" for tp in subscription.owned_partitions]
        got = None if result is None else [f"{tp[0]}-{tp[1]}" for tp in result]
        lines.append(
            f"  {member!r}: topics={list(subscription.topics)} owned={owned} "
            f"generation={subscription.generation} -> {got}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Generated cases


def _edge_cases() -> list[AssignorCase]:
    """Hand-written corner cases (Kafka's RangeAssignorTest and AbstractStickyAssignorTest)."""
    s = Subscription
    both = ("alpha", "beta")
    return [
        AssignorCase("one member, no topics", {}, {"m1": s(())}),
        AssignorCase("topic missing from metadata", {}, {"m1": s(("alpha",))}),
        AssignorCase("topic with no partitions", {"alpha": 0}, {"m1": s(("alpha",))}),
        AssignorCase("unsubscribed topic", {"alpha": 3, "beta": 2}, {"m1": s(("alpha",))}),
        AssignorCase(
            "more members than partitions",
            {"alpha": 1},
            {"m1": s(("alpha",)), "m2": s(("alpha",)), "m3": s(("alpha",))},
        ),
        AssignorCase(
            "static members",
            {"alpha": 3, "beta": 3},
            {
                "m-b": s(both, group_instance_id="i1"),
                "m-a": s(both, group_instance_id="i2"),
                "m-c": s(both),
            },
        ),
        AssignorCase(
            "same-generation double claim",
            {"alpha": 3},
            {
                "m1": s(("alpha",), (TopicPartition("alpha", 0), TopicPartition("alpha", 1)), 1),
                "m2": s(("alpha",), (TopicPartition("alpha", 0), TopicPartition("alpha", 2)), 1),
                "m3": s(("alpha",), (), 1),
            },
        ),
        AssignorCase(
            "owned partition of a deleted topic and of an unsubscribed topic",
            {"alpha": 2, "beta": 2},
            {
                "m1": s(("alpha",), (TopicPartition("alpha", 0), TopicPartition("gone", 0)), 3),
                "m2": s(
                    ("alpha", "beta"), (TopicPartition("beta", 1), TopicPartition("alpha", 1)), 3
                ),
            },
        ),
    ]


def _random_case(rng: random.Random, index: int) -> AssignorCase:
    """One random group: topics, members, subscriptions and previous ownership."""
    topic_count = rng.randint(1, len(_topic_pool))
    counts = {
        topic: rng.choice((0, 1, 1, 2, 3, 4, 6, 9))
        for topic in rng.sample(_topic_pool, topic_count)
    }
    known = sorted(counts)
    members = [f"member-{rng.randrange(100):02d}-{n}" for n in range(rng.randint(1, 7))]
    uniform = rng.random() < 0.5
    common = tuple(sorted(rng.sample(known, rng.randint(1, len(known)))))
    subscriptions: dict[str, Subscription] = {}
    for member in members:
        topics = common if uniform else tuple(sorted(rng.sample(known, rng.randint(0, len(known)))))
        if rng.random() < 0.1:
            topics = tuple(sorted({*topics, "missing"}))
        instance_id = f"instance-{rng.randrange(10)}-{member}" if rng.random() < 0.3 else None
        subscriptions[member] = Subscription(topics, group_instance_id=instance_id)
    if rng.random() < 0.7:
        subscriptions = _with_ownership(rng, counts, subscriptions)
    kind = "uniform" if uniform else "mixed"
    return AssignorCase(f"random case {index} ({kind})", counts, subscriptions)


def _with_ownership(
    rng: random.Random, counts: Mapping[str, int], subscriptions: Mapping[str, Subscription]
) -> dict[str, Subscription]:
    """Give members previous ownership: mostly a partition each, plus stale and odd claims."""
    members = list(subscriptions)
    owned: dict[str, list[TopicPartition]] = {member: [] for member in members}
    for topic, count in counts.items():
        for partition in range(count):
            if rng.random() < 0.8:
                owned[rng.choice(members)].append(TopicPartition(topic, partition))
            if rng.random() < 0.1:  # a second claimant
                owned[rng.choice(members)].append(TopicPartition(topic, partition))
    if rng.random() < 0.2:
        owned[rng.choice(members)].append(TopicPartition("deleted", 0))
    generation = rng.randint(1, 5)
    return {
        member: sub._replace(
            owned_partitions=tuple(dict.fromkeys(owned[member])),
            generation=generation - (1 if rng.random() < 0.2 else 0),
        )
        for member, sub in subscriptions.items()
    }
