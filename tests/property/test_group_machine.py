"""GroupMachine: a hypothesis state machine over one consumer group (DESIGN invariants 5, 6).

Members join (eager or cooperative, dynamic or static), poll, commit, seek back and
commit, close, crash (are never polled again), topics gain partitions, records
arrive, and the clock moves. After every step:

* the coordinator's ``check()``: no partition is owned by two members;
* every live consumer's ``check()`` (it holds what the coordinator says it owns);
* committed offsets never move backwards, except by an explicit seek and commit.

The ``settle`` rule polls every live member (moving the clock in steps short enough
to keep them alive and long enough to expire crashed and departed ones) until the
group is stable, then checks that every partition of every subscribed topic is
owned by exactly one live member. All on a ManualClock, in one thread.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import eventlog
from eventlog.consumer import Consumer
from eventlog.errors import CommitFailedError, RebalanceInProgressError
from eventlog.group.coordinator import GroupCoordinator, coordinator_for, describe_group
from eventlog.group.state import GroupState
from eventlog.records import TopicPartition
from eventlog.testing import ManualClock

GROUP = "g"
TOPICS = ("a", "b")
MEMBERS_MAX = 5
PARTITIONS_MAX = 5
# Every list shares cooperative-sticky, so any mix of members can form a group; the
# first two are eager (range / sticky win the vote), the last cooperative.
STRATEGIES = (["range", "cooperative-sticky"], ["sticky", "cooperative-sticky"],
              ["cooperative-sticky"])
SETTLE_STEP_MS = 20_000  # < max_poll_interval_ms: live members stay; crashed ones expire
SETTLE_STEPS_MAX = 30  # 600 s: past max_poll_interval_ms + session_timeout_ms


class GroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(autojump=False)
        self.log = eventlog.open(None, clock=self.clock)
        self.log.create_topic("a", 2)
        self.log.create_topic("b", 1)
        self.coordinator: GroupCoordinator = coordinator_for(self.log)
        self.live: list[Consumer] = []
        self.crashed: list[Consumer] = []
        self.committed: dict[TopicPartition, int] = {}
        self.strategy_mode = 0
        self.instances = 0

    @initialize(mode=st.integers(0, len(STRATEGIES)))
    def choose_strategies(self, mode: int) -> None:
        """mode < len(STRATEGIES): every member uses that list; else a mix of all."""
        self.strategy_mode = mode

    def teardown(self) -> None:
        self.log.close()

    # ------------------------------------------------------------------ helpers

    def member(self, i: int) -> Consumer:
        return self.live[i % len(self.live)]

    def group_offsets(self) -> dict[TopicPartition, int]:
        return {o.topic_partition: o.committed_offset
                for o in describe_group(self.log, GROUP).offsets
                if o.committed_offset is not None}

    def poll(self, consumer: Consumer) -> None:
        consumer.poll()
        consumer.check()

    # ------------------------------------------------------------------ rules

    @precondition(lambda self: len(self.live) < MEMBERS_MAX)
    @rule(topics=st.sampled_from([("a",), ("b",), ("a", "b")]), static=st.booleans(),
          auto_commit=st.booleans(), pick=st.integers(0, 2))
    def join(self, topics: tuple[str, ...], static: bool, auto_commit: bool,
             pick: int) -> None:
        strategy = STRATEGIES[pick if self.strategy_mode == len(STRATEGIES)
                              else self.strategy_mode]
        self.instances += 1
        consumer = Consumer(
            self.log, group_id=GROUP, auto_offset_reset="earliest",
            enable_auto_commit=auto_commit, partition_assignment_strategy=strategy,
            group_instance_id=f"static-{self.instances}" if static else None,
        )
        consumer.subscribe(list(topics))
        self.live.append(consumer)

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, MEMBERS_MAX))
    def poll_one(self, i: int) -> None:
        self.poll(self.member(i))

    @precondition(lambda self: self.live)
    @rule()
    def poll_all(self) -> None:
        for consumer in self.live:
            self.poll(consumer)

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, MEMBERS_MAX))
    def commit(self, i: int) -> None:
        try:
            self.member(i).commit()
        except (CommitFailedError, RebalanceInProgressError):
            pass  # evicted or mid-rebalance: the group must refuse, not move offsets back

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, MEMBERS_MAX), back=st.integers(1, 5))
    def seek_back_and_commit(self, i: int, back: int) -> None:
        consumer = self.member(i)
        owned = sorted(consumer.assignment())
        if not owned or consumer._membership.state != "stable":
            return
        tp = owned[0]
        target = max(consumer.beginning_offsets([tp])[tp], consumer.position(tp) - back)
        consumer.seek(tp, target)
        try:
            consumer.commit({tp: target})
        except (CommitFailedError, RebalanceInProgressError):
            return
        self.committed[tp] = target  # the one way a committed offset may move back

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, MEMBERS_MAX))
    def close(self, i: int) -> None:
        consumer = self.member(i)
        self.live.remove(consumer)
        consumer.close()

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, MEMBERS_MAX))
    def crash(self, i: int) -> None:
        consumer = self.member(i)
        self.live.remove(consumer)
        self.crashed.append(consumer)  # never polled again, never closed

    @rule(topic=st.sampled_from(TOPICS))
    def add_partition(self, topic: str) -> None:
        count = self.log.topic(topic).num_partitions
        if count < PARTITIONS_MAX:
            self.log.create_partitions(topic, count + 1)

    @rule(topic=st.sampled_from(TOPICS), index=st.integers(0, PARTITIONS_MAX - 1),
          n=st.integers(1, 20))
    def produce(self, topic: str, index: int, n: int) -> None:
        t = self.log.topic(topic)
        t.partitions[index % t.num_partitions].append([(None, b"x")] * n)

    @rule(ms=st.sampled_from([1, 1_000, 10_000, 50_000, 200_000, 310_000]))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def settle(self) -> None:
        for _ in range(SETTLE_STEPS_MAX):
            for _round in range(4):
                for consumer in self.live:
                    self.poll(consumer)
                self.coordinator.check()
                if self.settled():
                    self.check_coverage()
                    event(f"settled with {len(self.live)} live, {len(self.crashed)} crashed")
                    return
            self.clock.advance(SETTLE_STEP_MS)
        raise AssertionError(f"the group did not settle: {describe_group(self.log, GROUP)}")

    # ------------------------------------------------------------------ settling

    def settled(self) -> bool:
        description = describe_group(self.log, GROUP)
        if not self.live:
            return description.state in (GroupState.EMPTY, GroupState.DEAD)
        ids = {m.member_id for m in description.members}
        return (
            description.state is GroupState.STABLE
            and ids == {c.member_id for c in self.live}
            and all(c._membership.state == "stable" and not c._membership.rejoin_needed
                    and c.generation == description.generation for c in self.live)
        )

    def check_coverage(self) -> None:
        owned = self.coordinator.owned(GROUP)
        subscribed = set().union(*(c.subscription() for c in self.live)) if self.live else set()
        expected = {TopicPartition(t, i) for t in subscribed
                    for i in range(self.log.topic(t).num_partitions)}
        seen: list[TopicPartition] = []
        for consumer in self.live:
            assert owned[consumer.member_id] == consumer.assignment()
            seen.extend(consumer.assignment())
        assert sorted(seen) == sorted(expected), (seen, expected)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def coordinator_invariants(self) -> None:
        self.coordinator.check()
        for consumer in self.live:
            consumer.check()

    @invariant()
    def committed_offsets_never_move_back(self) -> None:
        now = self.group_offsets()
        for tp, offset in now.items():
            assert offset >= self.committed.get(tp, 0), (tp, offset, self.committed)
        self.committed = now


TestGroupMachine: Any = GroupMachine.TestCase
