"""Tests for eventlog.group.assignors and eventlog.testing.assignors.

The scenarios are Kafka's (RangeAssignorTest, RoundRobinAssignorTest,
AbstractStickyAssignorTest, CooperativeStickyAssignorTest), rewritten as golden
tables; expected results are Kafka's wherever Kafka's are deterministic. Where Kafka's
result depends on Java HashMap order, the test checks balance and stickiness instead.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest

from eventlog.errors import InvalidConfigError
from eventlog.group.assignors import (
    COOPERATIVE,
    EAGER,
    Assignment,
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
    Subscription,
    rebalance_protocol,
    resolve_assignors,
    select_assignor,
)
from eventlog.records import TopicPartition
from eventlog.testing.assignors import (
    AssignorCase,
    assignor_cases,
    check_assignment,
    check_assignor,
    check_balance,
    simulate_cooperative_rebalances,
)

ALL_ASSIGNORS = [
    RangeAssignor(),
    RoundRobinAssignor(),
    StickyAssignor(),
    CooperativeStickyAssignor(),
]
STICKY_ASSIGNORS = [StickyAssignor(), CooperativeStickyAssignor()]


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def tps(text: str) -> list[TopicPartition]:
    """'t1-0, t1-1' -> [tp('t1', 0), tp('t1', 1)], sorted as assignors return them."""
    result = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        topic, _, partition = item.rpartition("-")
        result.append(tp(topic, int(partition)))
    return sorted(result)


def sub(
    *topics: str,
    owned: Sequence[TopicPartition] | str = (),
    generation: int = -1,
    instance: str | None = None,
) -> Subscription:
    if isinstance(owned, str):
        owned = tps(owned)
    return Subscription(tuple(sorted(topics)), tuple(owned), generation, instance)


def expected(**lists: str) -> dict[str, list[TopicPartition]]:
    return {member: tps(text) for member, text in lists.items()}


def owning(
    assignment: Mapping[str, Sequence[TopicPartition]],
    subscriptions: Mapping[str, Subscription],
    generation: int = 1,
) -> dict[str, Subscription]:
    """The members' next subscriptions: same topics, owning what they were assigned."""
    return {
        member: subscription._replace(
            owned_partitions=tuple(assignment.get(member, ())), generation=generation
        )
        for member, subscription in subscriptions.items()
    }


def retained(
    subscriptions: Mapping[str, Subscription], assignment: Mapping[str, Sequence[TopicPartition]]
) -> dict[str, int]:
    return {
        member: len(set(subscription.owned_partitions) & set(assignment[member]))
        for member, subscription in subscriptions.items()
    }


def assert_valid_and_balanced(
    assignor: object,
    partitions_per_topic: Mapping[str, int],
    subscriptions: Mapping[str, Subscription],
    assignment: Assignment,
) -> Assignment:
    """Kafka's verifyValidityAndBalance; for cooperative, after the follow-up rebalances.

    Returns the final (settled) assignment.
    """
    if isinstance(assignor, CooperativeStickyAssignor):
        rounds = simulate_cooperative_rebalances(assignor, partitions_per_topic, subscriptions)
        assert rounds[0] == assignment
        assignment = dict(rounds[-1])
    check_assignment(partitions_per_topic, subscriptions, assignment)
    check_balance(subscriptions, assignment)
    return assignment


def assert_fully_balanced(assignment: Mapping[str, Sequence[TopicPartition]]) -> None:
    counts = [len(partitions) for partitions in assignment.values()]
    assert max(counts) - min(counts) <= 1, counts


def assert_no_movement_cycles(
    before: Mapping[str, Sequence[TopicPartition]], after: Mapping[str, Sequence[TopicPartition]]
) -> None:
    """Kafka's isSticky(): per topic, the graph of partition moves has no cycle.

    A cycle (a partition moving A -> B while another of the same topic moves B -> A)
    is a wasted pair of moves.
    """
    owner_before = {p: m for m, partitions in before.items() for p in partitions}
    edges: dict[str, set[tuple[str, str]]] = {}
    for member, partitions in after.items():
        for p in partitions:
            source = owner_before.get(p)
            if source is not None and source != member:
                edges.setdefault(p.topic, set()).add((source, member))
    for topic, topic_edges in edges.items():
        graph: dict[str, set[str]] = {}
        for source, target in topic_edges:
            graph.setdefault(source, set()).add(target)
        assert not _has_cycle(graph), f"moves of {topic!r} form a cycle: {sorted(topic_edges)}"


def _has_cycle(graph: Mapping[str, set[str]]) -> bool:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str) -> bool:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1 or (nxt not in state and visit(nxt)):
                return True
        state[node] = 2
        return False

    return any(node not in state and visit(node) for node in list(graph))


# ---------------------------------------------------------------------------------------
# Range (RangeAssignorTest, KAFKA_SEMANTICS 3.3)

T12 = ("topic1", "topic2")
ALL3 = ("t1", "t2", "t3")

RANGE_CASES = [
    ("one consumer, no topic", {}, {"consumer1": sub()}, expected(consumer1="")),
    (
        "one consumer, nonexistent topic",
        {},
        {"consumer1": sub("topic1")},
        expected(consumer1=""),
    ),
    (
        "one consumer, one topic",
        {"topic1": 3},
        {"consumer1": sub("topic1")},
        expected(consumer1="topic1-0, topic1-1, topic1-2"),
    ),
    (
        "only assigns partitions from subscribed topics",
        {"topic1": 3, "other": 3},
        {"consumer1": sub("topic1")},
        expected(consumer1="topic1-0, topic1-1, topic1-2"),
    ),
    (
        "one consumer, multiple topics",
        {"topic1": 1, "topic2": 2},
        {"consumer1": sub(*T12)},
        expected(consumer1="topic1-0, topic2-0, topic2-1"),
    ),
    (
        "two consumers, one topic, one partition",
        {"topic1": 1},
        {"consumer1": sub("topic1"), "consumer2": sub("topic1")},
        expected(consumer1="topic1-0", consumer2=""),
    ),
    (
        "two consumers, one topic, two partitions",
        {"topic1": 2},
        {"consumer1": sub("topic1"), "consumer2": sub("topic1")},
        expected(consumer1="topic1-0", consumer2="topic1-1"),
    ),
    (
        "multiple consumers, mixed topics",
        {"topic1": 3, "topic2": 2},
        {"consumer1": sub("topic1"), "consumer2": sub(*T12), "consumer3": sub("topic1")},
        expected(
            consumer1="topic1-0", consumer2="topic1-1, topic2-0, topic2-1", consumer3="topic1-2"
        ),
    ),
    (
        "two consumers, two topics, six partitions",
        {"topic1": 3, "topic2": 3},
        {"consumer1": sub(*T12), "consumer2": sub(*T12)},
        expected(
            consumer1="topic1-0, topic1-1, topic2-0, topic2-1", consumer2="topic1-2, topic2-2"
        ),
    ),
    (
        "two static consumers: instance ids decide, not member ids",
        {"topic1": 3, "topic2": 3},
        {
            "consumer-b": sub(*T12, instance="instance1"),
            "consumer-a": sub(*T12, instance="instance2"),
        },
        {
            "consumer-b": tps("topic1-0, topic1-1, topic2-0, topic2-1"),
            "consumer-a": tps("topic1-2, topic2-2"),
        },
    ),
    (
        "a static consumer sorts before a dynamic one",
        {"topic1": 3, "topic2": 3},
        {"consumer-b": sub(*T12, instance="instance1"), "consumer-a": sub(*T12)},
        {
            "consumer-b": tps("topic1-0, topic1-1, topic2-0, topic2-1"),
            "consumer-a": tps("topic1-2, topic2-2"),
        },
    ),
    (
        "javadoc example (KAFKA_SEMANTICS 3.3)",
        {"t0": 3, "t1": 3},
        {"C0": sub("t0", "t1"), "C1": sub("t0", "t1")},
        expected(C0="t0-0, t0-1, t1-0, t1-1", C1="t0-2, t1-2"),
    ),
    (
        "uniform subscription, unequal topics",
        {"t1": 6, "t2": 7, "t3": 2},
        {"c0": sub(*ALL3), "c1": sub(*ALL3), "c2": sub(*ALL3)},
        expected(
            c0="t1-0, t1-1, t2-0, t2-1, t2-2, t3-0",
            c1="t1-2, t1-3, t2-3, t2-4, t3-1",
            c2="t1-4, t1-5, t2-5, t2-6",
        ),
    ),
    (
        "non-equal subscription",
        {"t1": 6, "t2": 7, "t3": 2},
        {"c0": sub(*ALL3), "c1": sub(*ALL3), "c2": sub("t1", "t3")},
        expected(
            c0="t1-0, t1-1, t2-0, t2-1, t2-2, t2-3, t3-0",
            c1="t1-2, t1-3, t2-4, t2-5, t2-6, t3-1",
            c2="t1-4, t1-5",
        ),
    ),
    (
        "uniform partitions, non-equal subscription",
        {"t1": 5, "t2": 5, "t3": 5},
        {"c0": sub(*ALL3), "c1": sub(*ALL3), "c2": sub("t1", "t3")},
        expected(
            c0="t1-0, t1-1, t2-0, t2-1, t2-2, t3-0, t3-1",
            c1="t1-2, t1-3, t2-3, t2-4, t3-2, t3-3",
            c2="t1-4, t3-4",
        ),
    ),
    (
        "co-partitioning: two groups of topics",
        {"t1": 6, "t2": 6, "t3": 2, "t4": 2},
        {
            "c0": sub("t1", "t2"),
            "c1": sub("t1", "t2"),
            "c2": sub("t3", "t4"),
            "c3": sub("t3", "t4"),
        },
        expected(
            c0="t1-0, t1-1, t1-2, t2-0, t2-1, t2-2",
            c1="t1-3, t1-4, t1-5, t2-3, t2-4, t2-5",
            c2="t3-0, t4-0",
            c3="t3-1, t4-1",
        ),
    ),
    (
        "co-partitioning, same subscription with topics missing from metadata",
        {"t1": 6, "t2": 6, "t3": 2, "t4": 2, "t5": 4, "t6": 4},
        {c: sub(*(f"t{i}" for i in range(1, 10))) for c in ("c0", "c1", "c2")},
        expected(
            c0="t1-0, t1-1, t2-0, t2-1, t3-0, t4-0, t5-0, t5-1, t6-0, t6-1",
            c1="t1-2, t1-3, t2-2, t2-3, t3-1, t4-1, t5-2, t6-2",
            c2="t1-4, t1-5, t2-4, t2-5, t5-3, t6-3",
        ),
    ),
]


@pytest.mark.parametrize(
    ("partitions_per_topic", "subscriptions", "want"),
    [case[1:] for case in RANGE_CASES],
    ids=[case[0] for case in RANGE_CASES],
)
def test_range(partitions_per_topic, subscriptions, want):
    got = RangeAssignor().assign(partitions_per_topic, subscriptions)
    assert got == want
    check_assignment(partitions_per_topic, subscriptions, got)


def test_range_static_members_keep_their_assignment_when_a_dynamic_member_is_replaced():
    partitions_per_topic = {"topic1": 5, "topic2": 4}
    members = {f"consumer{i}": sub(*T12, instance=f"instance{i}") for i in (1, 2, 3)} | {
        "consumer4": sub(*T12)
    }
    want = expected(
        consumer1="topic1-0, topic1-1, topic2-0",
        consumer2="topic1-2, topic2-1",
        consumer3="topic1-3, topic2-2",
        consumer4="topic1-4, topic2-3",
    )
    assert RangeAssignor().assign(partitions_per_topic, members) == want
    members["consumer5"] = members.pop("consumer4")
    want["consumer5"] = want.pop("consumer4")
    assert RangeAssignor().assign(partitions_per_topic, members) == want


@pytest.mark.parametrize("assignor", [RangeAssignor(), RoundRobinAssignor()], ids=repr)
def test_static_assignment_survives_member_id_changes(assignor):
    partitions_per_topic = {"topic1": 5, "topic2": 5}
    by_member = {f"consumer{i}": f"instance{i}" for i in (1, 2, 3)}
    swapped = {"consumer4": "instance3", "consumer5": "instance2", "consumer1": "instance1"}

    def by_instance(members: dict[str, str]) -> dict[str, list[TopicPartition]]:
        subscriptions = {m: sub(*T12, instance=i) for m, i in members.items()}
        assignment = assignor.assign(partitions_per_topic, subscriptions)
        return {members[m]: partitions for m, partitions in assignment.items()}

    assert by_instance(by_member) == by_instance(swapped)
    if isinstance(assignor, RangeAssignor):
        assert by_instance(by_member) == {
            "instance1": tps("topic1-0, topic1-1, topic2-0, topic2-1"),
            "instance2": tps("topic1-2, topic1-3, topic2-2, topic2-3"),
            "instance3": tps("topic1-4, topic2-4"),
        }


def test_member_order_is_java_string_order():
    # U+FF41 sorts before U+1D41A in Python, after it in Java (UTF-16: 0xFF41 > 0xD835).
    fullwidth, astral = "m\uff41", "m\N{MATHEMATICAL BOLD SMALL A}"
    assert fullwidth < astral
    subscriptions = {fullwidth: sub("t"), astral: sub("t")}
    got = RangeAssignor().assign({"t": 3}, subscriptions)
    assert got == {astral: tps("t-0, t-1"), fullwidth: tps("t-2")}


# ---------------------------------------------------------------------------------------
# Round robin (RoundRobinAssignorTest, KAFKA_SEMANTICS 3.4)

ROUND_ROBIN_CASES = [
    ("one consumer, no topic", {}, {"consumer": sub()}, expected(consumer="")),
    ("one consumer, nonexistent topic", {}, {"consumer": sub("topic")}, expected(consumer="")),
    (
        "one consumer, one topic",
        {"topic": 3},
        {"consumer": sub("topic")},
        expected(consumer="topic-0, topic-1, topic-2"),
    ),
    (
        "only assigns partitions from subscribed topics",
        {"topic": 3, "other": 3},
        {"consumer": sub("topic")},
        expected(consumer="topic-0, topic-1, topic-2"),
    ),
    (
        "one consumer, multiple topics",
        {"topic1": 1, "topic2": 2},
        {"consumer": sub(*T12)},
        expected(consumer="topic1-0, topic2-0, topic2-1"),
    ),
    (
        "two consumers, one topic, one partition",
        {"topic": 1},
        {"consumer1": sub("topic"), "consumer2": sub("topic")},
        expected(consumer1="topic-0", consumer2=""),
    ),
    (
        "two consumers, one topic, two partitions",
        {"topic": 2},
        {"consumer1": sub("topic"), "consumer2": sub("topic")},
        expected(consumer1="topic-0", consumer2="topic-1"),
    ),
    (
        "multiple consumers, mixed topics",
        {"topic1": 3, "topic2": 2},
        {"consumer1": sub("topic1"), "consumer2": sub(*T12), "consumer3": sub("topic1")},
        expected(
            consumer1="topic1-0", consumer2="topic1-1, topic2-0, topic2-1", consumer3="topic1-2"
        ),
    ),
    (
        "two dynamic consumers, two topics, six partitions",
        {"topic1": 3, "topic2": 3},
        {"consumer1": sub(*T12), "consumer2": sub(*T12)},
        expected(
            consumer1="topic1-0, topic1-2, topic2-1", consumer2="topic1-1, topic2-0, topic2-2"
        ),
    ),
    (
        "two static consumers: instance ids decide, not member ids",
        {"topic1": 3, "topic2": 3},
        {
            "consumer-b": sub(*T12, instance="instance1"),
            "consumer-a": sub(*T12, instance="instance2"),
        },
        {
            "consumer-b": tps("topic1-0, topic1-2, topic2-1"),
            "consumer-a": tps("topic1-1, topic2-0, topic2-2"),
        },
    ),
    (
        "a static consumer sorts before a dynamic one",
        {"topic1": 3, "topic2": 3},
        {"consumer-b": sub(*T12, instance="instance1"), "consumer-a": sub(*T12)},
        {
            "consumer-b": tps("topic1-0, topic1-2, topic2-1"),
            "consumer-a": tps("topic1-1, topic2-0, topic2-2"),
        },
    ),
    (
        "javadoc example: unequal subscriptions are unbalanced (KAFKA_SEMANTICS 3.4)",
        {"t0": 1, "t1": 2, "t2": 3},
        {"C0": sub("t0"), "C1": sub("t0", "t1"), "C2": sub("t0", "t1", "t2")},
        expected(C0="t0-0", C1="t1-0", C2="t1-1, t2-0, t2-1, t2-2"),
    ),
]


@pytest.mark.parametrize(
    ("partitions_per_topic", "subscriptions", "want"),
    [case[1:] for case in ROUND_ROBIN_CASES],
    ids=[case[0] for case in ROUND_ROBIN_CASES],
)
def test_round_robin(partitions_per_topic, subscriptions, want):
    got = RoundRobinAssignor().assign(partitions_per_topic, subscriptions)
    assert got == want
    check_assignment(partitions_per_topic, subscriptions, got)


def test_round_robin_static_members_keep_their_assignment_when_a_dynamic_member_is_replaced():
    partitions_per_topic = {"topic1": 3, "topic2": 3}
    members = {f"consumer{i}": sub(*T12, instance=f"instance{i}") for i in (1, 2, 3)} | {
        "consumer4": sub(*T12)
    }
    want = expected(
        consumer1="topic1-0, topic2-1",
        consumer2="topic1-1, topic2-2",
        consumer3="topic1-2",
        consumer4="topic2-0",
    )
    assert RoundRobinAssignor().assign(partitions_per_topic, members) == want
    members["consumer5"] = members.pop("consumer4")
    want["consumer5"] = want.pop("consumer4")
    assert RoundRobinAssignor().assign(partitions_per_topic, members) == want


@pytest.mark.parametrize("assignor", [RangeAssignor(), RoundRobinAssignor()], ids=repr)
def test_partition_counts_are_validated(assignor):
    with pytest.raises(InvalidConfigError, match="topic1"):
        assignor.assign({"topic1": -1}, {"m": sub("topic1")})
    with pytest.raises(InvalidConfigError):
        assignor.assign({"topic1": 1.5}, {"m": sub("topic1")})


# ---------------------------------------------------------------------------------------
# Sticky and cooperative sticky: single rebalances with Kafka's exact results
# (AbstractStickyAssignorTest); the same for both, as nothing is owned by another member.

ALL3_T = ("topic", "topic2", "topic3")
ALL4_T = ("topic", "topic1", "topic2", "topic3")

STICKY_CASES = [
    ("one consumer, no topic", {}, {"consumer": sub()}, expected(consumer="")),
    (
        "one consumer, nonexistent topic",
        {"topic": 0},
        {"consumer": sub("topic")},
        expected(consumer=""),
    ),
    (
        "one consumer, one topic",
        {"topic": 3},
        {"consumer": sub("topic")},
        expected(consumer="topic-0, topic-1, topic-2"),
    ),
    (
        "only assigns partitions from subscribed topics",
        {"topic": 2},
        {"consumer": sub("topic", owned="topic-0, topic-1, other-0, other-1", generation=1)},
        expected(consumer="topic-0, topic-1"),
    ),
    (
        "one consumer, multiple topics",
        {"topic1": 1, "topic2": 2},
        {"consumer": sub(*T12)},
        expected(consumer="topic1-0, topic2-0, topic2-1"),
    ),
    (
        "two consumers, one topic, one partition",
        {"topic": 1},
        {"consumer1": sub("topic"), "consumer2": sub("topic")},
        expected(consumer1="topic-0", consumer2=""),
    ),
    (
        "two consumers, one topic, two partitions",
        {"topic": 2},
        {"consumer1": sub("topic"), "consumer2": sub("topic")},
        expected(consumer1="topic-0", consumer2="topic-1"),
    ),
    (
        "multiple consumers, mixed topic subscriptions",
        {"topic1": 3, "topic2": 2},
        {"consumer1": sub("topic1"), "consumer2": sub(*T12), "consumer3": sub("topic1")},
        expected(
            consumer1="topic1-0, topic1-2", consumer2="topic2-0, topic2-1", consumer3="topic1-1"
        ),
    ),
    (
        "two consumers, two topics, six partitions: fresh uniform = round robin",
        {"topic1": 3, "topic2": 3},
        {"consumer1": sub(*T12), "consumer2": sub(*T12)},
        expected(
            consumer1="topic1-0, topic1-2, topic2-1", consumer2="topic1-1, topic2-0, topic2-2"
        ),
    ),
    (
        "consumer owning min quota, expected to get max quota",
        {"topic1": 2, "topic2": 3},
        {
            "consumer1": sub(*T12, owned="topic1-0, topic2-1", generation=1),
            "consumer2": sub(*T12, owned="topic1-1, topic2-2", generation=1),
        },
        expected(consumer1="topic1-0, topic2-1, topic2-0", consumer2="topic1-1, topic2-2"),
    ),
    (
        "all consumers are under min quota",
        {"topic1": 2, "topic2": 3},
        {
            "consumer1": sub(*T12, owned="topic1-0", generation=1),
            "consumer2": sub(*T12, owned="topic1-1", generation=1),
            "consumer3": sub(*T12, generation=1),
        },
        expected(
            consumer1="topic1-0, topic2-1", consumer2="topic1-1, topic2-2", consumer3="topic2-0"
        ),
    ),
    (
        "all consumers reach expected quota and are considered filled",
        {"topic": 4},
        {
            "consumer1": sub("topic", owned="topic-0, topic-1", generation=1),
            "consumer2": sub("topic", owned="topic-2", generation=1),
            "consumer3": sub("topic", generation=1),
        },
        expected(consumer1="topic-0, topic-1", consumer2="topic-2", consumer3="topic-3"),
    ),
    (
        "owned partitions are invalidated for a consumer with a stale generation",
        {"topic": 3, "topic2": 3},
        {
            "consumer1": sub("topic", "topic2", owned="topic-0, topic-2, topic2-1", generation=10),
            "consumer2": sub("topic", "topic2", owned="topic-0, topic-2, topic2-1", generation=9),
        },
        expected(consumer1="topic-0, topic-2, topic2-1", consumer2="topic-1, topic2-0, topic2-2"),
    ),
    (
        "owned partitions are invalidated for a consumer with no generation",
        {"topic": 3, "topic2": 3},
        {
            "consumer1": sub("topic", "topic2", owned="topic-0, topic-2, topic2-1", generation=10),
            "consumer2": sub("topic", "topic2", owned="topic-0, topic-2, topic2-1", generation=-1),
        },
        expected(consumer1="topic-0, topic-2, topic2-1", consumer2="topic-1, topic2-0, topic2-2"),
    ),
    (
        "owned partitions are invalidated for a consumer with an older generation",
        {"topic": 3, "topic2": 3},
        {
            "consumer1": sub("topic", "topic2", owned="topic-0, topic2-1, topic-1", generation=10),
            "consumer2": sub("topic", "topic2", owned="topic-0, topic2-1, topic2-2", generation=8),
        },
        expected(consumer1="topic-0, topic-1, topic2-1", consumer2="topic-2, topic2-0, topic2-2"),
    ),
    (
        "partitions go to the claimant with the highest generation",
        {"topic": 3, "topic2": 3, "topic3": 3},
        {
            "consumer1": sub(*ALL3_T, owned="topic-0, topic2-0, topic3-0", generation=10),
            "consumer2": sub(*ALL3_T, owned="topic-1, topic2-1, topic3-1", generation=9),
            "consumer3": sub(*ALL3_T, owned="topic2-1, topic3-0, topic3-2", generation=8),
        },
        expected(
            consumer1="topic-0, topic2-0, topic3-0",
            consumer2="topic-1, topic2-1, topic3-1",
            consumer3="topic-2, topic2-2, topic3-2",
        ),
    ),
    (
        "no reassignment of current members' partitions",
        {"topic": 3, "topic1": 3, "topic2": 3, "topic3": 3},
        {
            "consumer1": sub(*ALL4_T, generation=-1),
            "consumer2": sub(*ALL4_T, owned="topic-0, topic2-0, topic1-0", generation=9),
            "consumer3": sub(*ALL4_T, owned="topic3-2, topic2-2, topic1-1", generation=8),
            "consumer4": sub(*ALL4_T, owned="topic3-1, topic-1, topic-2", generation=7),
        },
        expected(
            consumer1="topic1-2, topic2-1, topic3-0",
            consumer2="topic-0, topic1-0, topic2-0",
            consumer3="topic1-1, topic2-2, topic3-2",
            consumer4="topic-1, topic-2, topic3-1",
        ),
    ),
    (
        "topic deleted: the only subscribed topic is gone",
        {},
        {"consumer": sub("topic", owned="topic-0, topic-1, topic-2", generation=1)},
        expected(consumer=""),
    ),
    (
        "non-equal subscription, fresh (rack-unaware result)",
        {"t1": 6, "t2": 7, "t3": 2},
        {"c0": sub(*ALL3), "c1": sub(*ALL3), "c2": sub("t1", "t3")},
        expected(
            c0="t1-5, t2-0, t2-2, t2-4, t2-6",
            c1="t1-3, t2-1, t2-3, t2-5, t3-0",
            c2="t1-0, t1-1, t1-2, t1-4, t3-1",
        ),
    ),
    (
        "uniform subscription, fresh (rack-unaware result)",
        {"t1": 6, "t2": 7, "t3": 2},
        {"c0": sub(*ALL3), "c1": sub(*ALL3), "c2": sub(*ALL3)},
        expected(
            c0="t1-0, t1-3, t2-0, t2-3, t2-6",
            c1="t1-1, t1-4, t2-1, t2-4, t3-0",
            c2="t1-2, t1-5, t2-2, t2-5, t3-1",
        ),
    ),
]


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
@pytest.mark.parametrize(
    ("partitions_per_topic", "subscriptions", "want"),
    [case[1:] for case in STICKY_CASES],
    ids=[case[0] for case in STICKY_CASES],
)
def test_sticky(assignor, partitions_per_topic, subscriptions, want):
    got = assignor.assign(partitions_per_topic, subscriptions)
    assert got == want
    assert_valid_and_balanced(assignor, partitions_per_topic, subscriptions, got)
    # Fed its own result as ownership, the assignor changes nothing (stability).
    again = assignor.assign(partitions_per_topic, owning(got, subscriptions, generation=11))
    assert again == got


# ---------------------------------------------------------------------------------------
# Sticky: where Kafka's exact result depends on HashMap order, or on several rebalances


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_more_max_quota_owners_than_max_quota_slots(assignor):
    # testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers: 4 partitions, 3 members,
    # one slot of 2; both owners of 2 qualify, Kafka picks by HashMap order.
    ppt = {"topic1": 2, "topic2": 2}
    subscriptions = {
        "consumer1": sub(*T12, owned="topic1-0, topic2-0", generation=1),
        "consumer2": sub(*T12, owned="topic1-1, topic2-1", generation=1),
        "consumer3": sub(*T12, generation=1),
    }
    got = StickyAssignor().assign(ppt, subscriptions)
    assert sorted(len(partitions) for partitions in got.values()) == [1, 1, 2]
    assert sum(retained(subscriptions, got).values()) == 3  # the maximum possible
    assert got == expected(  # our tie-break: the first member in id order gets the slot
        consumer1="topic1-0, topic2-0", consumer2="topic1-1", consumer3="topic2-1"
    )
    if isinstance(assignor, CooperativeStickyAssignor):
        first = assignor.assign(ppt, subscriptions)
        assert first == expected(consumer1="topic1-0, topic2-0", consumer2="topic1-1", consumer3="")
    assert_valid_and_balanced(assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions))


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_add_remove_consumer_one_topic(assignor):
    ppt = {"topic": 3}
    subscriptions = {"consumer1": sub("topic")}
    first = assignor.assign(ppt, subscriptions)
    assert first == expected(consumer1="topic-0, topic-1, topic-2")

    subscriptions = owning(first, subscriptions) | {"consumer2": sub("topic", generation=1)}
    second = assignor.assign(ppt, subscriptions)
    if isinstance(assignor, CooperativeStickyAssignor):
        assert second == expected(consumer1="topic-0, topic-1", consumer2="")  # topic-2 moves
    else:
        assert second == expected(consumer1="topic-0, topic-1", consumer2="topic-2")
    second = assert_valid_and_balanced(assignor, ppt, subscriptions, second)
    assert second == expected(consumer1="topic-0, topic-1", consumer2="topic-2")

    subscriptions = {"consumer2": sub("topic", owned=second["consumer2"], generation=1)}
    third = assignor.assign(ppt, subscriptions)
    assert third == expected(consumer2="topic-0, topic-1, topic-2")


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_add_remove_two_consumers_two_topics(assignor):
    ppt = {"topic1": 3, "topic2": 4}
    subscriptions = {"consumer1": sub(*T12), "consumer2": sub(*T12)}
    first = assignor.assign(ppt, subscriptions)
    assert first == expected(
        consumer1="topic1-0, topic1-2, topic2-1, topic2-3", consumer2="topic1-1, topic2-0, topic2-2"
    )

    subscriptions = owning(first, subscriptions) | {
        "consumer3": sub(*T12, generation=1),
        "consumer4": sub(*T12, generation=1),
    }
    second = assignor.assign(ppt, subscriptions)
    want = expected(
        consumer1="topic1-0, topic2-1",
        consumer2="topic1-1, topic2-0",
        consumer3="topic1-2, topic2-3",
        consumer4="topic2-2",
    )
    if isinstance(assignor, CooperativeStickyAssignor):
        # Kafka's partitionsTransferringOwnership: topic1-2, topic2-3 -> c3, topic2-2 -> c4.
        assert second == want | {"consumer3": [], "consumer4": []}
    else:
        assert second == want
    assert assert_valid_and_balanced(assignor, ppt, subscriptions, second) == want

    subscriptions = {
        member: sub(*T12, owned=want[member], generation=1) for member in ("consumer3", "consumer4")
    }
    third = assignor.assign(ppt, subscriptions)
    assert third == expected(
        consumer3="topic1-2, topic2-3, topic1-0, topic2-1",
        consumer4="topic2-2, topic1-1, topic2-0",
    )


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_topic_balance_after_reassignment(assignor):
    ppt = {"topic1": 12, "topic2": 12}
    subscriptions = {"consumer1": sub(*T12)}
    steps = [
        (["consumer1"], 12),
        (["consumer1", "consumer2"], 6),
        (["consumer1", "consumer2", "consumer3", "consumer4"], 3),
        (["consumer3", "consumer4"], 6),
    ]
    assignment: Assignment = {}
    for members, per_topic in steps:
        subscriptions = {
            member: sub(*T12, owned=assignment.get(member, ()), generation=1) for member in members
        }
        assignment = assignor.assign(ppt, subscriptions)
        assignment = assert_valid_and_balanced(assignor, ppt, subscriptions, assignment)
        for partitions in assignment.values():
            for topic in T12:
                assert sum(p.topic == topic for p in partitions) == per_topic


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_add_remove_topic_two_consumers(assignor):
    ppt = {"topic": 3}
    subscriptions = {"consumer1": sub("topic"), "consumer2": sub("topic")}
    first = assignor.assign(ppt, subscriptions)
    assert sorted(len(p) for p in first.values()) == [1, 2]

    ppt = {"topic": 3, "topic2": 3}
    subscriptions = {m: sub("topic", "topic2", owned=first[m], generation=1) for m in first}
    second = assignor.assign(ppt, subscriptions)
    assert [len(p) for p in second.values()] == [3, 3]
    assert all(set(first[m]) <= set(second[m]) for m in first)

    ppt = {"topic2": 3}
    subscriptions = {m: sub("topic2", owned=second[m], generation=1) for m in second}
    third = assignor.assign(ppt, subscriptions)
    assert sorted(len(p) for p in third.values()) == [1, 2]
    assert all(set(third[m]) <= set(second[m]) for m in second)


def _name(prefix: str, number: int, count: int) -> str:
    return f"{prefix}{number:0{len(str(count))}d}"


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_reassignment_after_one_consumer_leaves(assignor):
    ppt = {_name("t", i, 20): i for i in range(1, 20)}
    subscriptions = {
        _name("c", i, 20): sub(*(_name("t", j, 20) for j in range(1, i + 1))) for i in range(1, 20)
    }
    first = assignor.assign(ppt, subscriptions)
    first = assert_valid_and_balanced(assignor, ppt, subscriptions, first)

    subscriptions = owning(first, subscriptions)
    del subscriptions["c10"]
    second = assignor.assign(ppt, subscriptions)
    second = assert_valid_and_balanced(assignor, ppt, subscriptions, second)
    assert_no_movement_cycles(first, second)


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_reassignment_after_one_consumer_added(assignor):
    ppt = {"topic": 20}
    subscriptions = {_name("c", i, 10): sub("topic") for i in range(1, 10)}
    first = assignor.assign(ppt, subscriptions)
    assert_fully_balanced(first)

    subscriptions = owning(first, subscriptions) | {"c10": sub("topic", generation=1)}
    second = assignor.assign(ppt, subscriptions)
    settled = assert_valid_and_balanced(assignor, ppt, subscriptions, second)
    assert_fully_balanced(settled)
    # Uniform stickiness: every member keeps min(owned, its final count).
    for member, kept in retained(subscriptions, settled).items():
        assert kept == min(len(subscriptions[member].owned_partitions), len(settled[member]))


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_same_subscriptions_after_a_consumer_leaves(assignor):
    ppt = {_name("t", i, 15): i for i in range(1, 15)}
    topics = tuple(ppt)
    subscriptions = {_name("c", i, 9): sub(*topics) for i in range(1, 9)}
    first = assignor.assign(ppt, subscriptions)
    assert_fully_balanced(first)

    subscriptions = owning(first, subscriptions)
    del subscriptions["c5"]
    second = assert_valid_and_balanced(
        assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions)
    )
    assert_fully_balanced(second)
    for member, kept in retained(subscriptions, second).items():
        assert kept == min(len(first[member]), len(second[member]))


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_stickiness_when_the_group_leader_leaves(assignor):
    ppt = {"topic1": 3}
    subscriptions = {f"consumer{i}": sub("topic1") for i in range(1, 5)}
    first = assignor.assign(ppt, subscriptions)
    assert all(len(partitions) <= 1 for partitions in first.values())

    subscriptions = owning(first, subscriptions)
    del subscriptions["consumer1"]
    second = assert_valid_and_balanced(
        assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions)
    )
    assert all(len(partitions) == 1 for partitions in second.values())
    for member, partitions in first.items():
        if member in second:
            assert set(partitions) <= set(second[member]), member


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_new_subscription(assignor):
    ppt = {_name("t", i, 5): 1 for i in range(1, 5)}
    subscriptions = {
        _name("c", i, 3): sub(*(_name("t", j, 5) for j in range(i, 3 * i - 1))) for i in range(3)
    }
    first = assert_valid_and_balanced(
        assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions)
    )
    subscriptions = owning(first, subscriptions)
    subscriptions["c0"] = subscriptions["c0"]._replace(topics=("t1",))
    second = assert_valid_and_balanced(
        assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions)
    )
    assert_no_movement_cycles(first, second)


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_move_existing_assignments(assignor):
    ppt = {f"topic{i}": 1 for i in range(1, 7)}
    subscriptions = {
        "consumer1": sub("topic1", "topic2", owned="topic1-0", generation=1),
        "consumer2": sub(
            "topic1", "topic2", "topic3", "topic4", owned="topic2-0, topic3-0", generation=1
        ),
        "consumer3": sub(
            "topic2",
            "topic3",
            "topic4",
            "topic5",
            "topic6",
            owned="topic4-0, topic5-0, topic6-0",
            generation=1,
        ),
    }
    assert_valid_and_balanced(assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions))


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_poor_round_robin_scenario(assignor):
    ppt = {f"topic{i}": (i % 2) + 1 for i in range(1, 6)}
    everything = tuple(ppt)
    odd = ("topic1", "topic3", "topic5")
    subscriptions = {
        "consumer1": sub(*everything),
        "consumer2": sub(*odd),
        "consumer3": sub(*odd),
        "consumer4": sub(*everything),
    }
    got = assignor.assign(ppt, subscriptions)
    assert_valid_and_balanced(assignor, ppt, subscriptions, got)
    assert [len(p) for p in got.values()] == [2, 2, 2, 2]


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_assignment_updated_for_deleted_topic(assignor):
    ppt = {"topic1": 1, "topic3": 100}
    got = assignor.assign(ppt, {"consumer": sub("topic1", "topic2", "topic3")})
    assert len(got["consumer"]) == 101


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_same_partition_claimed_in_three_generations(assignor):
    ppt = {"topic": 6, "topic1": 1}
    for g1, g2, g3 in [(1, 2, 3), (1, 3, 2), (2, 1, 3), (2, 3, 1), (3, 1, 2), (3, 2, 1)]:
        subscriptions = {
            "consumer1": sub("topic", owned="topic-0, topic-2", generation=g1),
            "consumer2": sub("topic", owned="topic-1, topic-2, topic-3", generation=g2),
            "consumer3": sub("topic", owned="topic-2, topic-4, topic-5", generation=g3),
            "consumer4": sub("topic1", owned="topic1-0", generation=2),
        }
        got = assignor.assign(ppt, subscriptions)
        flat = [p for partitions in got.values() for p in partitions]
        assert len(flat) == len(set(flat))
        assert all(1 <= len(partitions) <= 2 for partitions in got.values())


def test_same_generation_double_claim_is_kept_by_neither():
    # testPartitionsTransferringOwnershipIncludeThePartitionClaimedByMultipleConsumers...
    ppt = {"topic": 3}
    subscriptions = {
        "consumer1": sub("topic", owned="topic-0, topic-1", generation=1),
        "consumer2": sub("topic", owned="topic-0, topic-2", generation=1),
        "consumer3": sub("topic", generation=1),
    }
    assert StickyAssignor().assign(ppt, subscriptions) == expected(
        consumer1="topic-1", consumer2="topic-2", consumer3="topic-0"
    )
    # Cooperative: topic-0 counts as owned until both claimants have revoked it.
    got = CooperativeStickyAssignor().assign(ppt, subscriptions)
    assert got == expected(consumer1="topic-1", consumer2="topic-2", consumer3="")
    settled = assert_valid_and_balanced(CooperativeStickyAssignor(), ppt, subscriptions, got)
    assert settled == expected(consumer1="topic-1", consumer2="topic-2", consumer3="topic-0")


def test_same_generation_double_claim_with_unequal_quotas():
    ppt = {"topic": 4}
    subscriptions = {
        "consumer1": sub("topic", owned="topic-0, topic-1", generation=1),
        "consumer2": sub("topic", owned="topic-0, topic-2", generation=1),
        "consumer3": sub("topic", generation=1),
    }
    got = CooperativeStickyAssignor().assign(ppt, subscriptions)
    assert got == expected(consumer1="topic-1, topic-3", consumer2="topic-2", consumer3="")
    assert_valid_and_balanced(CooperativeStickyAssignor(), ppt, subscriptions, got)


def test_same_generation_double_claim_on_the_general_path():
    # Kafka's general path lets one claimant keep it (HashMap order); we never do.
    ppt = {"a": 2, "b": 2}
    subscriptions = {
        "m1": sub("a", "b", owned="a-0, b-0", generation=4),
        "m2": sub("a", owned="a-0, a-1", generation=4),
        "m3": sub("b", generation=4),
    }
    sticky = StickyAssignor().assign(ppt, subscriptions)
    check_balance(subscriptions, sticky)
    # The claim counts for neither: the result is as if nobody had claimed a-0.
    unclaimed = {
        member: subscription._replace(
            owned_partitions=tuple(p for p in subscription.owned_partitions if p != tp("a", 0))
        )
        for member, subscription in subscriptions.items()
    }
    assert sticky == StickyAssignor().assign(ppt, unclaimed)
    cooperative = CooperativeStickyAssignor().assign(ppt, subscriptions)
    assert all(tp("a", 0) not in partitions for partitions in cooperative.values())
    assert_valid_and_balanced(CooperativeStickyAssignor(), ppt, subscriptions, cooperative)


def test_cooperative_assigns_unowned_partitions_at_once():
    # testAssignorWithOldVersionSubscriptions.
    ppt = {"topic1": 3}
    subscriptions = {
        "consumer1": sub("topic1", owned="topic1-0", generation=1),
        "consumer2": sub("topic1", owned="topic1-1", generation=1),
        "consumer3": sub("topic1", generation=1),
    }
    assert CooperativeStickyAssignor().assign(ppt, subscriptions) == expected(
        consumer1="topic1-0", consumer2="topic1-1", consumer3="topic1-2"
    )


def test_cooperative_waits_for_a_stale_claimant_to_revoke():
    # consumer2's claim on topic-0 is stale (older generation): consumer1 keeps it.
    # If consumer2 were handed a partition that consumer1 still claims, both would own it.
    ppt = {"topic": 4}
    subscriptions = {
        "consumer1": sub("topic", owned="topic-0, topic-1, topic-2, topic-3", generation=5),
        "consumer2": sub("topic", owned="topic-0", generation=4),
    }
    got = CooperativeStickyAssignor().assign(ppt, subscriptions)
    assert got == expected(consumer1="topic-0, topic-1", consumer2="")
    settled = assert_valid_and_balanced(CooperativeStickyAssignor(), ppt, subscriptions, got)
    assert settled == expected(consumer1="topic-0, topic-1", consumer2="topic-2, topic-3")


def test_cooperative_waits_for_a_member_that_dropped_the_topic():
    ppt = {"a": 2, "b": 2}
    subscriptions = {
        "m1": sub("b", owned="a-0, a-1, b-0", generation=3),  # no longer subscribes to a
        "m2": sub("a", "b", owned="b-1", generation=3),
    }
    # Balance makes b-1 move from m2 to m1 (m2 must take a-0 and a-1); every move waits:
    # a-0 and a-1 until m1 revokes them, b-1 until m2 does.
    assert StickyAssignor().assign(ppt, subscriptions) == expected(m1="b-0, b-1", m2="a-0, a-1")
    got = CooperativeStickyAssignor().assign(ppt, subscriptions)
    assert got == expected(m1="b-0", m2="")
    settled = assert_valid_and_balanced(CooperativeStickyAssignor(), ppt, subscriptions, got)
    assert settled == expected(m1="b-0, b-1", m2="a-0, a-1")


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
@pytest.mark.parametrize("seed", range(6))
def test_reassignment_with_random_subscriptions_and_changes(assignor, seed):
    rng = random.Random(seed)
    topics = [_name("t", i, 20) for i in range(rng.randint(10, 19))]
    ppt = {topic: i + 1 for i, topic in enumerate(topics)}
    members = [_name("c", i, 40) for i in range(rng.randint(20, 39))]

    def random_subscription(owned: Sequence[TopicPartition] = ()) -> Subscription:
        chosen = rng.sample(topics, rng.randint(1, len(topics)))
        return sub(*chosen, owned=owned, generation=1 if owned else -1)

    subscriptions = {member: random_subscription() for member in members}
    first = assert_valid_and_balanced(
        assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions)
    )
    subscriptions = {member: random_subscription(first[member]) for member in members}
    second = assert_valid_and_balanced(
        assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions)
    )
    assert_no_movement_cycles(first, second)


@pytest.mark.parametrize("assignor", STICKY_ASSIGNORS, ids=repr)
def test_many_consumers_leave_with_random_subscriptions(assignor):
    rng = random.Random(7)
    ppt = {_name("t", i, 40): rng.randint(1, 10) for i in range(40)}
    topics = list(ppt)
    subscriptions = {
        _name("c", i, 200): sub(*rng.sample(topics, rng.randint(1, 19))) for i in range(200)
    }
    first = assert_valid_and_balanced(
        assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions)
    )
    subscriptions = owning(first, subscriptions)
    for member in rng.sample(sorted(subscriptions), 50):
        del subscriptions[member]
    second = assert_valid_and_balanced(
        assignor, ppt, subscriptions, assignor.assign(ppt, subscriptions)
    )
    assert_no_movement_cycles(first, second)


# ---------------------------------------------------------------------------------------
# Protocols, configuration and the group's choice of assignor


def test_names_and_protocols():
    assert [a.name for a in ALL_ASSIGNORS] == [
        "range",
        "roundrobin",
        "sticky",
        "cooperative-sticky",
    ]
    assert RangeAssignor.protocols == (EAGER,)
    assert RoundRobinAssignor.protocols == (EAGER,)
    assert StickyAssignor.protocols == (EAGER,)
    assert CooperativeStickyAssignor.protocols == (COOPERATIVE, EAGER)
    assert repr(CooperativeStickyAssignor()) == "CooperativeStickyAssignor()"
    assert RangeAssignor() == RangeAssignor() != StickyAssignor()


class _CustomAssignor:
    name = "custom"

    def assign(self, partitions_per_topic, subscriptions):
        return RoundRobinAssignor().assign(partitions_per_topic, subscriptions)


@pytest.mark.parametrize(
    ("assignors", "want"),
    [
        ([CooperativeStickyAssignor()], COOPERATIVE),
        ([RangeAssignor(), CooperativeStickyAssignor()], EAGER),  # Kafka's default
        ([CooperativeStickyAssignor(), StickyAssignor()], EAGER),
        ([_CustomAssignor()], EAGER),  # no protocols attribute: eager only
    ],
)
def test_rebalance_protocol(assignors, want):
    assert rebalance_protocol(assignors) == want


def test_rebalance_protocol_without_a_common_protocol():
    class CooperativeOnly(_CustomAssignor):
        protocols = (COOPERATIVE,)

    with pytest.raises(InvalidConfigError, match="share no rebalance protocol"):
        rebalance_protocol([CooperativeOnly(), RangeAssignor()])
    with pytest.raises(InvalidConfigError):
        rebalance_protocol([])


def test_resolve_assignors():
    assert resolve_assignors(None) == [RangeAssignor(), CooperativeStickyAssignor()]
    assert resolve_assignors("range") == [RangeAssignor()]
    assert resolve_assignors("round_robin") == [RoundRobinAssignor()]
    assert resolve_assignors(["cooperative_sticky", "sticky"]) == [
        CooperativeStickyAssignor(),
        StickyAssignor(),
    ]
    custom = _CustomAssignor()
    assert resolve_assignors(custom) == [custom]
    assert resolve_assignors(("roundrobin", custom)) == [RoundRobinAssignor(), custom]
    assert resolve_assignors(StickyAssignor) == [StickyAssignor()]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fair", "known names: 'range', 'roundrobin', 'sticky', 'cooperative-sticky'"),
        ([], "at least one"),
        (42, "not a partition assignor"),
        (["range", RangeAssignor()], "distinct names"),
        ([object()], "not a partition assignor"),
    ],
)
def test_resolve_assignors_rejects(spec, message):
    with pytest.raises(InvalidConfigError, match=message):
        resolve_assignors(spec)


@pytest.mark.parametrize(
    ("preferences", "want"),
    [
        ({"a": ["range"]}, "range"),
        ({"a": ["range", "sticky"], "b": ["sticky", "range"], "c": ["sticky", "range"]}, "sticky"),
        # Only names every member supports are candidates: "roundrobin" has 2 first votes
        # but c does not support it.
        (
            {
                "a": ["roundrobin", "range", "sticky"],
                "b": ["roundrobin", "sticky", "range"],
                "c": ["sticky", "range"],
            },
            "sticky",
        ),
        # A tie in votes goes to the name the group ranks higher overall...
        (
            {"a": ["range", "sticky", "x"], "b": ["sticky", "x", "range"], "c": ["x", "sticky"]},
            "sticky",
        ),
        # ... then to the smaller name.
        ({"a": ["range", "sticky"], "b": ["sticky", "range"]}, "range"),
    ],
)
def test_select_assignor(preferences, want):
    assert select_assignor(preferences) == want


def test_select_assignor_without_a_common_name():
    with pytest.raises(InvalidConfigError, match="no partition assignor is supported"):
        select_assignor({"a": ["range"], "b": ["sticky"]})
    with pytest.raises(InvalidConfigError):
        select_assignor({})


# ---------------------------------------------------------------------------------------
# The public contract check (eventlog.testing.assignors)


@pytest.mark.parametrize("assignor", ALL_ASSIGNORS, ids=repr)
def test_builtin_assignors_pass_the_contract_check(assignor):
    check_assignor(assignor)


def test_assignor_cases_are_deterministic():
    assert assignor_cases(seed=3, count=20) == assignor_cases(seed=3, count=20)
    assert assignor_cases(seed=3, count=20) != assignor_cases(seed=4, count=20)


class _Broken:
    """A wrapper that breaks the sticky result in one way."""

    name = "broken"

    def __init__(self, damage, protocols=(EAGER,)):
        self.damage = damage
        self.protocols = protocols

    def assign(self, partitions_per_topic, subscriptions):
        result = StickyAssignor().assign(partitions_per_topic, subscriptions)
        return self.damage(result, partitions_per_topic, subscriptions)


def _drop_a_member(result, ppt, subscriptions):
    return dict(list(result.items())[1:])


def _duplicate(result, ppt, subscriptions):
    members = list(result)
    for member in members:
        if result[member] and len(members) > 1:
            other = members[0] if member != members[0] else members[1]
            if result[member][0].topic in subscriptions[other].topics:
                result[other] = [*result[other], result[member][0]]
    return result


def _unsubscribed(result, ppt, subscriptions):
    for member, subscription in subscriptions.items():
        for topic, count in ppt.items():
            if topic not in subscription.topics and count:
                result[member] = [*result[member], tp(topic, 0)]
                return result
    return result


def _lose_one(result, ppt, subscriptions):
    for partitions in result.values():
        if partitions:
            partitions.pop()
            return result
    return result


def _nonexistent(result, ppt, subscriptions):
    for member, subscription in subscriptions.items():
        if subscription.topics and subscription.topics[0] in ppt:
            topic = subscription.topics[0]
            result[member] = [*result[member], tp(topic, ppt[topic])]
            return result
    return result


def _mutates_input(result, ppt, subscriptions):
    ppt["injected"] = 1
    return result


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_drop_a_member, "members missing from the result"),
        (_duplicate, "was assigned to both"),
        (_unsubscribed, "does not subscribe to"),
        (_lose_one, "left unassigned"),
        (_nonexistent, "not in metadata"),
        (_mutates_input, "modified partitions_per_topic"),
    ],
)
def test_contract_check_catches(damage, message):
    with pytest.raises(AssertionError, match=message):
        check_assignor(_Broken(damage))


def test_contract_check_catches_an_eager_assignor_claiming_to_be_cooperative():
    with pytest.raises(AssertionError, match=r"revoked from .* and assigned to"):
        check_assignor(_Broken(lambda result, ppt, subs: result, protocols=(COOPERATIVE, EAGER)))


def test_contract_check_catches_a_cooperative_assignor_that_never_hands_over():
    def withhold_everything_owned(result, ppt, subscriptions):
        owned = {p for s in subscriptions.values() for p in s.owned_partitions}
        return {m: [p for p in parts if p not in owned] for m, parts in result.items()}

    # Once something is owned it is never assigned again: members keep revoking.
    with pytest.raises(AssertionError, match="still revoke partitions"):
        check_assignor(_Broken(withhold_everything_owned, protocols=(COOPERATIVE,)))


def test_contract_check_catches_bad_identity():
    broken = _Broken(lambda result, ppt, subs: result, protocols=("eager", "telepathy"))
    with pytest.raises(AssertionError, match="unknown rebalance protocols"):
        check_assignor(broken)
    broken = _Broken(lambda result, ppt, subs: result)
    broken.name = ""
    with pytest.raises(AssertionError, match="name must be a non-empty str"):
        check_assignor(broken)


def test_contract_check_runs_given_cases():
    case = AssignorCase("single", {"t": 2}, {"m": sub("t")})
    check_assignor(RangeAssignor(), cases=[case])
    with pytest.raises(AssertionError, match=r"single: .*left unassigned"):
        check_assignor(_Broken(_lose_one), cases=[case])


def test_check_balance_names_the_members():
    subscriptions = {"heavy": sub("t"), "light": sub("t")}
    with pytest.raises(AssertionError, match=r"'heavy' holds 3 partitions .* 'light'"):
        check_balance(subscriptions, {"heavy": tps("t-0, t-1, t-2"), "light": []})
    # Round robin's javadoc result is valid but not balanced in the sticky sense.
    ppt, subscriptions, want = ROUND_ROBIN_CASES[-1][1:]
    with pytest.raises(AssertionError, match="unbalanced"):
        check_balance(subscriptions, want)
    check_balance(subscriptions, StickyAssignor().assign(ppt, subscriptions))
