"""Partition assignors: which member of a consumer group consumes which partition.

When a group rebalances, one member (Kafka's group leader; here the coordinator)
calls an assignor with the partition count of every topic in metadata and each
member's :class:`Subscription`, and hands each member its part of the result.
Assignors are pure: values in, values out, no clock, no files, no state kept
between calls. Every member id in the input appears in the result (possibly with
an empty list), only partitions of topics in metadata are assigned, and each
member's list is sorted by (topic, partition).

Theory of operation
-------------------
**Member order** (range and roundrobin; KAFKA_SEMANTICS 3.1). Static members (those
with a ``group_instance_id``) come first, ordered by instance id, then dynamic
members by member id. A restarted static member gets a new member id but keeps its
instance id, so it keeps its place and its partitions. Strings are compared as Java
compares them (UTF-16 code units), which equals Python's order except for text
outside the Basic Multilingual Plane.

**Range** (3.3), one topic at a time: the topic's subscribers in member order, its
partitions in numeric order, ``q, r = divmod(P, C)``; the first ``r`` subscribers get
``q + 1`` consecutive partitions and the rest ``q``. Topics with the same partition
count and the same subscribers are therefore co-partitioned (partition i of each goes
to the same member), which joins rely on; the price is imbalance across topics (with
T single-partition topics the first member gets all T).

**RoundRobin** (3.4): every partition of every subscribed topic, sorted by topic then
partition, is dealt from ONE circular cursor over the members in member order; the
cursor skips members not subscribed to the partition's topic and is never reset
between topics. Identical subscriptions give counts that differ by at most one;
unequal ones can be badly unbalanced (the javadoc example in the tests).

**Sticky** (3.5) has two goals, in priority order: (1) balance: counts differ by at
most one, or, when subscriptions differ, no member with two or more partitions more
than another holds a partition of a topic the lighter member subscribes to; (2) keep
as many previously owned partitions as possible.

1. *Validate ownership.* A member's claim on a partition counts only if the topic is
   in metadata, the member still subscribes to it and the partition index exists.
   A partition claimed by several members goes to the claimant with the highest
   ``generation``; if two or more claimants tie at the highest generation, nobody
   keeps it and it is reassigned.
2. *Uniform path* (every member subscribes to the same topics in metadata), Kafka's
   constrained algorithm: ``min_quota = P // N``, ``max_quota = ceil(P / N)``, and
   exactly ``P % N`` members end with ``max_quota``. Members are visited in member-id
   order; each keeps its owned partitions sorted by (partition, topic): all of them
   if fewer than ``min_quota``; ``max_quota`` of them if it owns at least that many
   and fewer than ``P % N`` members have been granted ``max_quota`` so far; else
   ``min_quota``. The unowned partitions, sorted by (topic, partition), are dealt
   round robin to the members under ``min_quota`` (member-id order), then one each
   to members at ``min_quota`` in the order they got there, until all are placed.
   A fresh group therefore gets exactly round robin over sorted members.
3. *General path* (subscriptions differ), our own two-phase algorithm: keep every
   validated owned partition; give each unowned partition (those with the fewest
   eligible members first, then by topic and partition) to the eligible member with
   the fewest partitions (ties: member-id order); then, while some member A holds a
   partition of a topic that a member B with ``count(A) - count(B) >= 2`` subscribes
   to, move one such partition from the most loaded such A to the least loaded
   subscriber, preferring partitions A did not own before (moving those costs no
   stickiness). Each move lowers the sum of squared counts by at least 2, so the loop
   ends, and it ends exactly when goal (1) holds.

**CooperativeSticky** (3.6) computes the sticky assignment, then removes from each
member every partition it did not validly own that another member claims (a
partition moving between members, or one double-claimed in one generation). The
previous owner sees the partition missing, revokes it and rejoins; the follow-up
rebalance hands it over. So no partition is revoked from one member and added to
another in the same rebalance, while unowned partitions are assigned at once.

**Protocols** (3.7). Each assignor lists the rebalance protocols it supports in
Kafka's order of preference; a consumer uses the highest protocol ("cooperative" >
"eager") that all its configured assignors support (:func:`rebalance_protocol`).
The group uses the assignor chosen by :func:`select_assignor`.

Differences from Kafka (deliberate)
-----------------------------------
* Where Kafka breaks a tie by Java ``HashMap`` iteration order we use member-id
  order, e.g. for which members on the uniform path get the ``max_quota`` slots.
* A partition claimed by two members in the same (highest) generation is kept by
  neither on both paths; Kafka's general path may let one of them keep it.
* With three or more conflicting claims the unique highest generation always wins;
  in Kafka the result can depend on the order the claims are visited in.
* The general path is our own algorithm with Kafka's two goals, not a port of
  Kafka's; its results can differ from Kafka's where Kafka's balancing loop makes
  different (equally valid) moves.
* Owned partitions whose index no longer exists are dropped (Kafka checks only the
  topic, as its partition counts never shrink).
* :func:`select_assignor` breaks vote ties deterministically (see there).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from ..errors import InvalidConfigError
from ..records import TopicPartition

__all__ = [
    "COOPERATIVE",
    "EAGER",
    "Assignment",
    "Assignor",
    "AssignorSpec",
    "CooperativeStickyAssignor",
    "RangeAssignor",
    "RoundRobinAssignor",
    "StickyAssignor",
    "Subscription",
    "rebalance_protocol",
    "resolve_assignors",
    "select_assignor",
]

EAGER = "eager"
"""Rebalance protocol: every member revokes all its partitions before each rebalance."""

COOPERATIVE = "cooperative"
"""Rebalance protocol: members revoke only the partitions that move (KIP-429)."""

# Higher wins when choosing a consumer's protocol (Kafka's RebalanceProtocol ordinals).
_protocol_rank = {EAGER: 0, COOPERATIVE: 1}

Assignment = dict[str, list[TopicPartition]]
"""An assignor's result: member id -> the partitions it is assigned."""


class Subscription(NamedTuple):
    """What a member tells the assignor when it joins a rebalance."""

    topics: tuple[str, ...]
    """Sorted names of the topics the member subscribes to."""
    owned_partitions: tuple[TopicPartition, ...] = ()
    """Partitions the member owned before this rebalance (sticky assignors use them)."""
    generation: int = -1
    """Generation in which ``owned_partitions`` were owned; -1 if unknown."""
    group_instance_id: str | None = None
    """Static membership id (``group.instance.id``), or None for a dynamic member."""


class Assignor(Protocol):
    """A partition assignment strategy (Kafka's ``ConsumerPartitionAssignor``).

    ``name`` is what members vote with (:func:`select_assignor`); ``protocols`` lists
    the supported rebalance protocols, most preferred first. ``assign`` must return
    every member id of ``subscriptions`` and assign each partition at most once, only
    to a subscriber of its topic; :func:`eventlog.testing.assignors.check_assignor`
    checks that contract.
    """

    name: str
    protocols: tuple[str, ...]

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> Assignment: ...


# ---------------------------------------------------------------------------------------
# Shared helpers


def _java_key(text: str) -> bytes:
    """Sort key giving Java's ``String.compareTo`` order (UTF-16 code units). O(len)."""
    return text.encode("utf-16-be", "surrogatepass")


def _partition_key(tp: TopicPartition) -> tuple[bytes, int]:
    """Sort key for (topic, partition) order."""
    return (_java_key(tp.topic), tp.partition)


def _checked_counts(partitions_per_topic: Mapping[str, int]) -> dict[str, int]:
    """Copy ``partitions_per_topic``, rejecting counts that are not ints >= 0. O(topics).

    Raises:
        InvalidConfigError: a count is negative or not an int; nothing was assigned.
    """
    counts: dict[str, int] = {}
    for topic, count in partitions_per_topic.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidConfigError(
                f"partition count of topic {topic!r} must be an int >= 0, got {count!r}"
            )
        counts[topic] = count
    return counts


def _subscribed_in_metadata(
    counts: Mapping[str, int], subscriptions: Mapping[str, Subscription]
) -> dict[str, frozenset[str]]:
    """Member -> the subscribed topics that are in metadata. O(total subscriptions)."""
    return {
        member: frozenset(topic for topic in sub.topics if topic in counts)
        for member, sub in subscriptions.items()
    }


def _sorted_members(members: Iterable[str]) -> list[str]:
    """Member ids in Java string order. O(N log N)."""
    return sorted(members, key=_java_key)


def _member_order(subscriptions: Mapping[str, Subscription]) -> list[str]:
    """Members in Kafka's MemberInfo order: static by instance id, then dynamic by id.

    Two static members with the same instance id (which a coordinator never allows)
    are ordered by member id, so the order is total. O(N log N).
    """

    def key(member: str) -> tuple[int, bytes, bytes]:
        instance_id = subscriptions[member].group_instance_id
        if instance_id is not None:
            return (0, _java_key(instance_id), _java_key(member))
        return (1, _java_key(member), b"")

    return sorted(subscriptions, key=key)


def _sorted_assignment(assignment: Mapping[str, list[TopicPartition]]) -> Assignment:
    """Each member's list sorted by (topic, partition), members in id order. O(P log P)."""
    return {
        member: sorted(assignment[member], key=_partition_key)
        for member in _sorted_members(assignment)
    }


def _partitions_of(counts: Mapping[str, int], topics: Iterable[str]) -> list[TopicPartition]:
    """All partitions of ``topics``, sorted by (topic, partition). O(P + T log T)."""
    return [
        TopicPartition(topic, partition)
        for topic in sorted(set(topics), key=_java_key)
        for partition in range(counts[topic])
    ]


class _BuiltinAssignor:
    """Equality, hash and repr for the stateless built-in assignors."""

    name: str = ""
    protocols: tuple[str, ...] = (EAGER,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


# ---------------------------------------------------------------------------------------
# Range and round robin


class RangeAssignor(_BuiltinAssignor):
    """Kafka's ``range``: per topic, consecutive ranges of partitions in member order."""

    name = "range"
    protocols = (EAGER,)

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> Assignment:
        """Assign each topic's partitions in consecutive ranges (module docstring).

        Cost: O(P + T * N + N log N) for T topics in metadata.
        Thread safety: any thread; pure (the assignor holds no state).
        Raises: InvalidConfigError if a partition count is not an int >= 0.
        """
        counts = _checked_counts(partitions_per_topic)
        subscribed = _subscribed_in_metadata(counts, subscriptions)
        assignment: Assignment = {member: [] for member in subscriptions}
        members = _member_order(subscriptions)
        for topic, count in counts.items():
            subscribers = [member for member in members if topic in subscribed[member]]
            if not subscribers:
                continue
            quotient, remainder = divmod(count, len(subscribers))
            start = 0
            for index, member in enumerate(subscribers):
                length = quotient + (1 if index < remainder else 0)
                assignment[member].extend(
                    TopicPartition(topic, partition) for partition in range(start, start + length)
                )
                start += length
            assert start == count
        return _sorted_assignment(assignment)


class RoundRobinAssignor(_BuiltinAssignor):
    """Kafka's ``roundrobin``: one circular cursor over members deals all partitions."""

    name = "roundrobin"
    protocols = (EAGER,)

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> Assignment:
        """Deal sorted partitions round robin, skipping non-subscribers (module docstring).

        Cost: O(P * N) in the worst case (the cursor may skip up to N - 1 members per
            partition), O(P + N log N) when subscriptions are identical.
        Thread safety: any thread; pure (the assignor holds no state).
        Raises: InvalidConfigError if a partition count is not an int >= 0.
        """
        counts = _checked_counts(partitions_per_topic)
        subscribed = _subscribed_in_metadata(counts, subscriptions)
        assignment: Assignment = {member: [] for member in subscriptions}
        members = _member_order(subscriptions)
        topics = set().union(*subscribed.values())
        cursor = 0
        for tp in _partitions_of(counts, topics):
            while tp.topic not in subscribed[members[cursor]]:
                cursor = (cursor + 1) % len(members)
            assignment[members[cursor]].append(tp)
            cursor = (cursor + 1) % len(members)
        return _sorted_assignment(assignment)


# ---------------------------------------------------------------------------------------
# Sticky: ownership validation


class _Ownership(NamedTuple):
    """Previous ownership after validation (step 1 of the sticky algorithm)."""

    owned: dict[str, list[TopicPartition]]
    """Member -> the owned partitions it may keep, in the order it listed them."""
    owner: dict[TopicPartition, str]
    """Partition -> the member that validly owned it."""
    claimants: dict[TopicPartition, set[str]]
    """Partition -> every member that listed it as owned, valid or not."""


def _validate_ownership(
    counts: Mapping[str, int],
    subscribed: Mapping[str, frozenset[str]],
    subscriptions: Mapping[str, Subscription],
) -> _Ownership:
    """Resolve the members' ownership claims (module docstring, sticky step 1).

    Cost: O(total owned partitions). Pure.
    """
    claimants: dict[TopicPartition, set[str]] = {}
    best: dict[TopicPartition, tuple[int, list[str]]] = {}
    for member in _sorted_members(subscriptions):
        subscription = subscriptions[member]
        for claimed in dict.fromkeys(subscription.owned_partitions):
            tp = TopicPartition(*claimed)
            claimants.setdefault(tp, set()).add(member)
            if tp.topic not in subscribed[member] or not 0 <= tp.partition < counts[tp.topic]:
                continue
            generation = subscription.generation
            current = best.get(tp)
            if current is None or generation > current[0]:
                best[tp] = (generation, [member])
            elif generation == current[0]:
                current[1].append(member)
    owner = {tp: members[0] for tp, (_, members) in best.items() if len(members) == 1}
    owned: dict[str, list[TopicPartition]] = {member: [] for member in subscriptions}
    for tp, member in owner.items():
        owned[member].append(tp)
    return _Ownership(owned, owner, claimants)


def _sticky_assign(
    partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
) -> tuple[Assignment, _Ownership]:
    """The eager sticky assignment, plus the validated ownership it started from.

    Raises:
        InvalidConfigError: a partition count is not an int >= 0.
    """
    counts = _checked_counts(partitions_per_topic)
    subscribed = _subscribed_in_metadata(counts, subscriptions)
    ownership = _validate_ownership(counts, subscribed, subscriptions)
    if not subscriptions:
        return {}, ownership
    if len(set(subscribed.values())) == 1:
        topics = next(iter(subscribed.values()))
        assignment = _assign_uniform(_partitions_of(counts, topics), ownership.owned)
    else:
        assignment = _assign_general(counts, subscribed, ownership.owned)
    return _sorted_assignment(assignment), ownership


# ---------------------------------------------------------------------------------------
# Sticky: uniform subscriptions (Kafka's constrained algorithm)


class _Quota(NamedTuple):
    """How many partitions each member ends with on the uniform path."""

    min_quota: int
    max_quota: int
    max_members: int
    """Exactly this many members end with ``max_quota`` (``P % N``)."""


def _assign_uniform(
    partitions: list[TopicPartition], owned: Mapping[str, list[TopicPartition]]
) -> Assignment:
    """Sticky step 2: keep owned partitions up to quota, deal the rest round robin.

    ``partitions`` are all partitions of the common topics, sorted by (topic,
    partition). Cost: O(P log P + N log N). Pure.
    """
    members = _sorted_members(owned)
    min_quota, max_members = divmod(len(partitions), len(members))
    quota = _Quota(min_quota, min_quota + (1 if max_members else 0), max_members)
    assignment, under_min, at_min = _keep_owned_within_quota(members, owned, quota)
    taken = {tp for tps in assignment.values() for tp in tps}
    unassigned = [tp for tp in partitions if tp not in taken]
    _deal_round_robin(assignment, unassigned, under_min, at_min, quota)
    assert all(quota.min_quota <= len(tps) <= quota.max_quota for tps in assignment.values())
    if quota.max_members:
        at_max = sum(len(tps) == quota.max_quota for tps in assignment.values())
        assert at_max == quota.max_members, (at_max, quota)
    return assignment


def _keep_owned_within_quota(
    members: list[str], owned: Mapping[str, list[TopicPartition]], quota: _Quota
) -> tuple[Assignment, list[str], list[str]]:
    """Let each member keep what it owned, up to its quota.

    Returns the assignment so far, the members still under ``min_quota`` and the
    members at exactly ``min_quota`` that may still take one more (both in member
    order). Cost: O(owned log owned). Pure.
    """
    assignment: Assignment = {}
    under_min: list[str] = []
    at_min: list[str] = []
    granted_max = 0
    for member in members:
        mine = sorted(owned[member], key=lambda tp: (tp.partition, _java_key(tp.topic)))
        if len(mine) < quota.min_quota:
            assignment[member] = mine
            under_min.append(member)
        elif len(mine) >= quota.max_quota and granted_max < quota.max_members:
            assignment[member] = mine[: quota.max_quota]
            granted_max += 1
            if granted_max == quota.max_members:
                at_min.clear()  # every max_quota slot is taken
        else:
            assignment[member] = mine[: quota.min_quota]
            if granted_max < quota.max_members:
                at_min.append(member)
    return assignment, under_min, at_min


def _deal_round_robin(
    assignment: Assignment,
    unassigned: list[TopicPartition],
    under_min: list[str],
    at_min: list[str],
    quota: _Quota,
) -> None:
    """Deal ``unassigned`` to members under ``min_quota``, then one each at ``min_quota``.

    Mutates ``assignment``. Cost: O(len(unassigned) + N).
    """
    cycle = deque(under_min)
    one_more = deque(at_min)
    for tp in unassigned:
        if cycle:
            member = cycle.popleft()
            assignment[member].append(tp)
            if len(assignment[member]) == quota.min_quota:
                one_more.append(member)
            else:
                cycle.append(member)
        else:
            assert one_more, f"no member can take {tp}: quota arithmetic is wrong"
            member = one_more.popleft()
            assignment[member].append(tp)
    assert not cycle, "members left under min_quota with no partitions left"


# ---------------------------------------------------------------------------------------
# Sticky: general subscriptions


def _assign_general(
    counts: Mapping[str, int],
    subscribed: Mapping[str, frozenset[str]],
    owned: Mapping[str, list[TopicPartition]],
) -> Assignment:
    """Sticky step 3: keep owned, place unowned on the lightest, then rebalance.

    Cost: O(P * S) to place the unowned partitions (S = most subscribers of a topic),
    then O(N log N + T log(N * T) + F) per balancing move (T = most topics a member
    subscribes to, F = most partitions a member holds that it did not own before).
    The number of moves is at most half the sum of squared counts, in practice about
    the number of partitions that must change hands. Pure.
    """
    kept = {tp: member for member, tps in owned.items() for tp in tps}
    balancer = _Balancer(owned, subscribed, kept)
    unassigned = [tp for tp in _partitions_of(counts, balancer.subscribers) if tp not in kept]
    unassigned.sort(key=lambda tp: len(balancer.subscribers[tp.topic]))  # stable
    for tp in unassigned:
        balancer.place(tp)
    balancer.balance()
    return balancer.assignment()


class _Balancer:
    """The general path's working state: who holds what, loads, lightest subscribers.

    Ties between equally loaded members go to member-id order. While balancing, each
    topic keeps a heap of (load, rank, member) for its subscribers; an entry whose
    load is out of date is dropped when it reaches the top (lazy deletion).
    """

    def __init__(
        self,
        owned: Mapping[str, list[TopicPartition]],
        subscribed: Mapping[str, frozenset[str]],
        kept: Mapping[TopicPartition, str],
    ) -> None:
        members = _sorted_members(owned)
        self.rank = {member: index for index, member in enumerate(members)}
        self.subscribed = subscribed
        self.subscribers = {
            topic: [member for member in members if topic in subscribed[member]]
            for topic in sorted(set().union(*subscribed.values()), key=_java_key)
        }
        self.topic_key = {topic: _java_key(topic) for topic in self.subscribers}
        self.kept = kept
        self.held: dict[str, dict[str, set[int]]] = {member: {} for member in members}
        self.fresh: dict[str, set[TopicPartition]] = {member: set() for member in members}
        self.loads = dict.fromkeys(members, 0)
        self.heaps: dict[str, list[tuple[int, int, str]]] = {}
        for member in members:
            for tp in owned[member]:
                self._add(member, tp)

    def assignment(self) -> Assignment:
        """The current assignment. O(P)."""
        return {
            member: [TopicPartition(t, p) for t, partitions in held.items() for p in partitions]
            for member, held in self.held.items()
        }

    def place(self, tp: TopicPartition) -> None:
        """Give an unowned partition to its topic's lightest subscriber. O(S)."""
        subscribers = self.subscribers[tp.topic]
        self._add(min(subscribers, key=lambda m: (self.loads[m], self.rank[m])), tp)

    def balance(self) -> None:
        """Move partitions until goal (1) holds (module docstring, sticky step 3)."""
        self.heaps = {
            topic: sorted((self.loads[m], self.rank[m], m) for m in members)
            for topic, members in self.subscribers.items()
        }
        while (move := self._find_move()) is not None:
            tp, source, target = move
            self._remove(source, tp)
            self._add(target, tp)
            for member in (source, target):
                entry = (self.loads[member], self.rank[member], member)
                for topic in self.subscribed[member]:
                    heapq.heappush(self.heaps[topic], entry)

    def _add(self, member: str, tp: TopicPartition) -> None:
        self.held[member].setdefault(tp.topic, set()).add(tp.partition)
        self.loads[member] += 1
        if self.kept.get(tp) != member:
            self.fresh[member].add(tp)

    def _remove(self, member: str, tp: TopicPartition) -> None:
        partitions = self.held[member][tp.topic]
        partitions.remove(tp.partition)
        if not partitions:
            del self.held[member][tp.topic]
        self.loads[member] -= 1
        self.fresh[member].discard(tp)

    def _lightest(self, topic: str) -> str:
        """The least loaded subscriber of ``topic``. Amortized O(log(heap size))."""
        heap = self.heaps[topic]
        while heap[0][0] != self.loads[heap[0][2]]:
            heapq.heappop(heap)  # stale: that member's load has changed since
        return heap[0][2]

    def _find_move(self) -> tuple[TopicPartition, str, str] | None:
        """One move that improves balance, or None if goal (1) holds.

        Takes a partition from the most loaded member that holds a partition of a
        topic whose lightest subscriber has at least 2 fewer, preferring partitions
        that member did not own before (then by topic and partition), and gives it to
        that lightest subscriber. Cost: O(N log N + T log(N * T) + F).
        """
        floor = min(self.loads.values())
        for source in sorted(self.loads, key=lambda m: (-self.loads[m], self.rank[m])):
            load = self.loads[source]
            if load - floor < 2:
                return None  # nobody is 2 heavier than anybody else any more
            movable = {
                topic
                for topic in self.held[source]
                if load - self.loads[self._lightest(topic)] >= 2
            }
            if movable:
                tp = self._pick(source, movable)
                return tp, source, self._lightest(tp.topic)
        return None

    def _pick(self, source: str, movable: set[str]) -> TopicPartition:
        """The partition of a ``movable`` topic that ``source`` gives up first. O(F)."""
        fresh = [tp for tp in self.fresh[source] if tp.topic in movable]
        if fresh:
            return min(fresh, key=lambda tp: (self.topic_key[tp.topic], tp.partition))
        topic = min(movable, key=self.topic_key.__getitem__)
        return TopicPartition(topic, min(self.held[source][topic]))


# ---------------------------------------------------------------------------------------
# Sticky assignors


class StickyAssignor(_BuiltinAssignor):
    """Kafka's ``sticky`` (eager): balanced, and keeps as much previous ownership as it can."""

    name = "sticky"
    protocols = (EAGER,)

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> Assignment:
        """Balance first, then stickiness (module docstring, steps 1-3).

        Each member's ``owned_partitions`` and ``generation`` describe its previous
        assignment (under the eager protocol, the one it had before revoking).

        Cost: O(P log P + N log N) for identical subscriptions; see
            ``_assign_general`` otherwise.
        Thread safety: any thread; pure (the assignor holds no state).
        Raises: InvalidConfigError if a partition count is not an int >= 0.
        """
        assignment, _ = _sticky_assign(partitions_per_topic, subscriptions)
        return assignment


class CooperativeStickyAssignor(_BuiltinAssignor):
    """Kafka's ``cooperative-sticky``: sticky, but a moving partition is first revoked."""

    name = "cooperative-sticky"
    protocols = (COOPERATIVE, EAGER)

    def assign(
        self,
        partitions_per_topic: Mapping[str, int],
        subscriptions: Mapping[str, Subscription],
    ) -> Assignment:
        """The sticky assignment minus partitions that another member still claims.

        A partition stays out of its new owner's list while any other member lists it
        in ``owned_partitions`` (unless the new owner is its validated owner); the
        owner revokes it and the follow-up rebalance assigns it.

        Cost: as :meth:`StickyAssignor.assign`, plus O(P).
        Thread safety: any thread; pure (the assignor holds no state).
        Raises: InvalidConfigError if a partition count is not an int >= 0.
        """
        assignment, ownership = _sticky_assign(partitions_per_topic, subscriptions)
        return {
            member: [tp for tp in tps if not _must_wait(tp, member, ownership)]
            for member, tps in assignment.items()
        }


def _must_wait(tp: TopicPartition, member: str, ownership: _Ownership) -> bool:
    """Whether ``member`` must wait for another member to revoke ``tp`` first. O(1)."""
    if ownership.owner.get(tp) == member:
        return False
    return bool(ownership.claimants.get(tp, set()) - {member})


# ---------------------------------------------------------------------------------------
# Configuration: which assignors, which protocol, which assignor for the group

_builtin: dict[str, type[_BuiltinAssignor]] = {
    "range": RangeAssignor,
    "roundrobin": RoundRobinAssignor,
    "sticky": StickyAssignor,
    "cooperative-sticky": CooperativeStickyAssignor,
}
_aliases = {"round_robin": "roundrobin", "cooperative_sticky": "cooperative-sticky"}


def rebalance_protocol(assignors: Sequence[Assignor]) -> str:
    """The highest rebalance protocol ("cooperative" > "eager") all ``assignors`` support.

    An assignor without a ``protocols`` attribute supports "eager" only, as Kafka's
    default ``supportedProtocols()`` does. Names other than "eager" and "cooperative"
    are ignored. Cost: O(total protocols).

    Raises:
        InvalidConfigError: ``assignors`` is empty or they share no protocol.
    """
    if not assignors:
        raise InvalidConfigError("at least one partition assignor is required")
    common = set(_protocol_rank)
    for assignor in assignors:
        common &= set(getattr(assignor, "protocols", (EAGER,)))
    if not common:
        described = ", ".join(
            f"{getattr(a, 'name', a)!s}: {tuple(getattr(a, 'protocols', (EAGER,)))}"
            for a in assignors
        )
        raise InvalidConfigError(
            f"the partition assignors share no rebalance protocol ({described})"
        )
    return max(common, key=_protocol_rank.__getitem__)


AssignorSpec = str | Assignor | type | Sequence[str | Assignor | type] | None
"""What :func:`resolve_assignors` accepts (``partition_assignment_strategy``)."""


def resolve_assignors(spec: AssignorSpec = None) -> list[Assignor]:
    """Turn a ``partition_assignment_strategy`` value into assignor objects.

    ``spec`` is None (Kafka's default: ``[RangeAssignor(), CooperativeStickyAssignor()]``),
    a name ("range", "roundrobin", "sticky", "cooperative-sticky"; "round_robin" and
    "cooperative_sticky" are accepted too), an assignor object (anything with a
    ``name`` and a callable ``assign``), an assignor class (instantiated with no
    arguments), or a list or tuple of those, in order of preference. Cost: O(len(spec)).

    Raises:
        InvalidConfigError: a name is unknown, an object is not an assignor, the list
            is empty, or two assignors have the same name. Nothing was changed.
    """
    if spec is None:
        return [RangeAssignor(), CooperativeStickyAssignor()]
    items = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    if not items:
        raise InvalidConfigError("partition_assignment_strategy must name at least one assignor")
    assignors = [_resolve_one(item) for item in items]
    names = [assignor.name for assignor in assignors]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidConfigError(
            f"partition assignors must have distinct names, repeated: {duplicates}"
        )
    return assignors


def _resolve_one(item: Any) -> Assignor:
    """One element of a ``partition_assignment_strategy`` (see resolve_assignors)."""
    if isinstance(item, str):
        name = _aliases.get(item, item)
        if name not in _builtin:
            known = ", ".join(repr(name) for name in [*_builtin, *_aliases])
            raise InvalidConfigError(f"unknown partition assignor {item!r}; known names: {known}")
        return _builtin[name]()
    if isinstance(item, type):
        try:
            item = item()
        except TypeError as error:
            raise InvalidConfigError(
                f"cannot instantiate assignor class {item!r}: {error}"
            ) from None
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name or not callable(getattr(item, "assign", None)):
        raise InvalidConfigError(
            f"{item!r} is not a partition assignor: it needs a non-empty str 'name' and an "
            "'assign(partitions_per_topic, subscriptions)' method"
        )
    result: Assignor = item
    return result


def select_assignor(member_preferences: Mapping[str, Sequence[str]]) -> str:
    """The group's assignor name, chosen as Kafka's ``ClassicGroup.selectProtocol`` does.

    ``member_preferences`` maps each member id to the assignor names it supports, most
    preferred first. The candidates are the names every member supports; each member
    votes for the first candidate in its own list; the most votes wins. Kafka breaks a
    tie by hash-map order; we break it by the lowest sum over members of the name's
    position in their lists (the name the group prefers overall), then by name.
    Cost: O(C * total preferences) for C common names.

    Raises:
        InvalidConfigError: there are no members, or no name is supported by all.
    """
    if not member_preferences:
        raise InvalidConfigError("cannot select an assignor for a group with no members")
    lists = [list(names) for names in member_preferences.values()]
    candidates = set(lists[0]).intersection(*lists[1:])
    if not candidates:
        raise InvalidConfigError(
            f"no partition assignor is supported by every member: {dict(member_preferences)}"
        )
    votes = dict.fromkeys(candidates, 0)
    for names in lists:
        votes[next(name for name in names if name in candidates)] += 1
    position_sum = {name: sum(names.index(name) for names in lists) for name in candidates}
    return min(candidates, key=lambda name: (-votes[name], position_sum[name], _java_key(name)))
