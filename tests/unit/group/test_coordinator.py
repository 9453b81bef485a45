"""GroupCoordinator: membership, rebalances, liveness, fencing, offsets (called directly).

Every test that changes the coordinator calls ``check()`` afterwards. Time is a
ManualClock that only moves when a test says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import eventlog
from eventlog.errors import (
    FencedInstanceIdError,
    IllegalGenerationError,
    IllegalStateError,
    InvalidConfigError,
    RebalanceInProgressError,
    UnknownMemberError,
)
from eventlog.group.assignors import (
    CooperativeStickyAssignor,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
    Subscription,
)
from eventlog.group.coordinator import (
    GroupCoordinator,
    JoinRequest,
    coordinator_for,
    delete_group,
    describe_group,
    list_groups,
)
from eventlog.group.offsets import OffsetAndMetadata, offsets_topic
from eventlog.group.state import GroupState
from eventlog.records import TopicPartition as TP
from eventlog.testing import ManualClock

G = "g"
MAX_POLL = 300_000
SESSION = 45_000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(autojump=False)


@pytest.fixture
def log(clock: ManualClock) -> Iterator[eventlog.EventLog]:
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t", 4)
        log.create_topic("u", 2)
        yield log


@pytest.fixture
def coord(log: eventlog.EventLog) -> GroupCoordinator:
    return coordinator_for(log)


def request(
    client: str = "c",
    topics: tuple[str, ...] = ("t",),
    *,
    assignors: tuple = (RangeAssignor(),),
    protocol: str = "eager",
    instance: str | None = None,
    session_timeout_ms: int = SESSION,
    rebalance_timeout_ms: int = MAX_POLL,
) -> JoinRequest:
    return JoinRequest(client, instance, topics, assignors, protocol, session_timeout_ms,
                       rebalance_timeout_ms)


def join_all(coord: GroupCoordinator, members: dict[str, JoinRequest],
             state: dict | None = None) -> dict[str, tuple]:
    """Drive eager members (name -> request) as their consumers would, in turn, until a
    round in which every member is stable. Returns member id -> assignment. Pass the
    same ``state`` dict to continue with the same members."""
    state = {} if state is None else state
    for _ in range(6):
        stable = True
        for name, req in members.items():
            member_id, generation, assignment = state.get(name, ("", -1, None))
            if assignment is not None:
                try:
                    coord.heartbeat(G, member_id, generation, req.group_instance_id)
                    continue
                except RebalanceInProgressError:
                    coord.release(G, member_id, assignment)  # eager: revoke all first
            stable = False
            r = coord.join_group(G, member_id, req)
            state[name] = (r.member_id, r.generation, r.assignment)
            coord.check()
        if stable:
            return {member_id: assignment for member_id, _, assignment in state.values()}
    raise AssertionError(f"did not converge: {state}")


def test_coordinator_is_one_per_log(log: eventlog.EventLog) -> None:
    assert coordinator_for(log) is coordinator_for(log)
    assert offsets_topic in log.topics(include_internal=True)
    assert offsets_topic not in log.topics()


def test_single_member_gets_everything_at_once(coord: GroupCoordinator) -> None:
    r = coord.join_group(G, "", request())
    coord.check()
    assert r.generation == 1
    assert r.protocol == "range"
    assert r.assignment == tuple(TP("t", i) for i in range(4))
    assert coord.group_state(G) is GroupState.STABLE
    coord.heartbeat(G, r.member_id, 1, None)


def test_second_member_triggers_rebalance_and_both_converge(coord: GroupCoordinator) -> None:
    a = coord.join_group(G, "", request("a"))
    b = coord.join_group(G, "", request("b"))
    coord.check()
    assert b.assignment is None
    assert coord.group_state(G) is GroupState.PREPARING_REBALANCE
    with pytest.raises(RebalanceInProgressError):
        coord.heartbeat(G, a.member_id, 1, None)
    coord.release(G, a.member_id, a.assignment or ())  # eager: revoke before rejoining
    a2 = coord.join_group(G, a.member_id, request("a"))
    coord.check()
    assert a2.generation == 2
    assert a2.assignment == (TP("t", 0), TP("t", 1))
    b2 = coord.join_group(G, b.member_id, request("b"))
    assert b2.assignment == (TP("t", 2), TP("t", 3))
    coord.check()
    coord.heartbeat(G, b.member_id, 2, None)


def test_join_is_idempotent_while_pending(coord: GroupCoordinator) -> None:
    a = coord.join_group(G, "", request("a"))
    b = coord.join_group(G, "", request("b"))
    for _ in range(3):
        assert coord.join_group(G, b.member_id, request("b")).assignment is None
    assert coord.group_state(G) is GroupState.PREPARING_REBALANCE
    coord.release(G, a.member_id, a.assignment or ())
    assert coord.join_group(G, a.member_id, request("a")).assignment is not None


def test_dynamic_leave_rebalances_and_last_leave_empties(coord: GroupCoordinator) -> None:
    ids = join_all(coord, {"new1": request("a"), "new2": request("b")})
    first, second = sorted(ids)
    coord.release(G, first, ids[first])
    coord.leave_group(G, first)
    coord.check()
    assert coord.group_state(G) is GroupState.PREPARING_REBALANCE
    coord.release(G, second, ids[second])
    r = coord.join_group(G, second, request("b"))
    assert r.assignment == tuple(TP("t", i) for i in range(4))
    generation = r.generation
    coord.release(G, second, r.assignment)
    coord.leave_group(G, second)
    coord.check()
    assert coord.group_state(G) is GroupState.EMPTY
    assert describe_group(coord._log, G).generation == generation + 1  # Kafka bumps it too


def test_unknown_member_errors(coord: GroupCoordinator) -> None:
    coord.join_group(G, "", request())
    with pytest.raises(UnknownMemberError):
        coord.heartbeat(G, "nobody", 1, None)
    with pytest.raises(UnknownMemberError):
        coord.join_group(G, "nobody", request())
    with pytest.raises(UnknownMemberError):
        coord.heartbeat("no-such-group", "nobody", 1, None)
    coord.check()


def test_member_not_polled_within_max_poll_interval_is_evicted(
    coord: GroupCoordinator, clock: ManualClock
) -> None:
    ids = join_all(coord, {"new1": request("a"), "new2": request("b")})
    lazy, busy = sorted(ids)
    clock.advance(MAX_POLL - 1)
    coord.heartbeat(G, busy, 2, None)
    clock.advance(1)  # lazy has not polled for exactly max_poll_interval_ms now
    with pytest.raises(RebalanceInProgressError):
        coord.heartbeat(G, busy, 2, None)
    assert lazy not in coord.owned(G)
    coord.check()
    with pytest.raises(UnknownMemberError):
        coord.heartbeat(G, lazy, 2, None)
    with pytest.raises(UnknownMemberError):
        coord.commit_offsets(G, lazy, 2, None, {TP("t", 0): OffsetAndMetadata(1)})
    assert coord.committed(G, [TP("t", 0)]) == {TP("t", 0): None}


def test_member_that_does_not_rejoin_is_dropped_at_rebalance_timeout(
    coord: GroupCoordinator, clock: ManualClock
) -> None:
    a = coord.join_group(G, "", request("a", rebalance_timeout_ms=10_000))
    clock.advance(5_000)
    b = coord.join_group(G, "", request("b", rebalance_timeout_ms=10_000))  # deadline 15 s
    clock.advance(1_000)
    with pytest.raises(RebalanceInProgressError):  # a hears of it (and is alive) ...
        coord.heartbeat(G, a.member_id, 1, None)
    clock.advance(8_999)  # ... but does not rejoin
    assert coord.join_group(G, b.member_id, request("b")).assignment is None
    clock.advance(1)
    r = coord.join_group(G, b.member_id, request("b"))
    assert r.assignment == tuple(TP("t", i) for i in range(4))
    assert list(coord.owned(G)) == [b.member_id]
    with pytest.raises(UnknownMemberError):
        coord.heartbeat(G, a.member_id, 1, None)
    coord.check()


def test_commit_fencing_rules(coord: GroupCoordinator) -> None:
    offsets = {TP("t", 0): OffsetAndMetadata(5)}
    coord.commit_offsets(G, "", -1, None, offsets)  # standalone into an unknown group
    a = coord.join_group(G, "", request("a"))
    with pytest.raises(UnknownMemberError):  # standalone once the group has members
        coord.commit_offsets(G, "", -1, None, {TP("t", 0): OffsetAndMetadata(6)})
    with pytest.raises(IllegalGenerationError):
        coord.commit_offsets(G, a.member_id, 0, None, {TP("t", 0): OffsetAndMetadata(6)})
    coord.commit_offsets(G, a.member_id, 1, None, {TP("t", 0): OffsetAndMetadata(7, "m")})
    coord.join_group(G, "", request("b"))  # PreparingRebalance: the current generation commits
    coord.commit_offsets(G, a.member_id, 1, None, {TP("t", 0): OffsetAndMetadata(8)})
    found = coord.committed(G, [TP("t", 0)])[TP("t", 0)]
    assert found is not None
    assert (found.offset, found.metadata) == (8, "")
    coord.check()


def test_static_member_restart_keeps_assignment_without_rebalance(
    coord: GroupCoordinator, clock: ManualClock
) -> None:
    ids = join_all(coord, {"new1": request("a", instance="i-a"),
                           "new2": request("b", instance="i-b")})
    old_a = next(m for m in ids if m.startswith("a-"))
    generation = describe_group(coord._log, G).generation
    coord.leave_group(G, old_a)  # a static member's close: no LeaveGroup
    coord.check()
    assert coord.group_state(G) is GroupState.STABLE
    clock.advance(SESSION - 1)
    new = coord.join_group(G, "", request("a", instance="i-a"))
    coord.check()
    assert new.generation == generation  # no rebalance
    assert new.assignment == ids[old_a]
    with pytest.raises(FencedInstanceIdError):
        coord.heartbeat(G, old_a, generation, "i-a")
    with pytest.raises(FencedInstanceIdError):
        coord.commit_offsets(G, old_a, generation, "i-a", {TP("t", 0): OffsetAndMetadata(1)})


def test_closed_static_member_removed_after_session_timeout(
    coord: GroupCoordinator, clock: ManualClock
) -> None:
    ids = join_all(coord, {"new1": request("a", instance="i-a"), "new2": request("b")})
    static = next(m for m in ids if m.startswith("a-"))
    dynamic = next(m for m in ids if m.startswith("b-"))
    coord.release(G, static, ids[static])
    coord.leave_group(G, static)
    clock.advance(SESSION - 1)
    coord.heartbeat(G, dynamic, 2, None)
    clock.advance(1)
    with pytest.raises(RebalanceInProgressError):
        coord.heartbeat(G, dynamic, 2, None)
    assert static not in coord.owned(G)
    coord.check()


def test_static_member_not_polling_removed_after_poll_interval_plus_session(
    coord: GroupCoordinator, clock: ManualClock
) -> None:
    ids = join_all(coord, {"new1": request("a", instance="i-a"), "new2": request("b")})
    static = next(m for m in ids if m.startswith("a-"))
    dynamic = next(m for m in ids if m.startswith("b-"))
    for _ in range(6):  # the dynamic member keeps polling every 60 s
        clock.advance(57_000)
        coord.heartbeat(G, dynamic, 2, None)
    assert static in coord.owned(G)  # 342 s: still within 300 s + 45 s
    clock.advance(3_000)
    with pytest.raises(RebalanceInProgressError):
        coord.heartbeat(G, dynamic, 2, None)
    assert static not in coord.owned(G)


def test_static_member_missing_a_rebalance_keeps_its_place_but_loses_ownership(
    coord: GroupCoordinator, clock: ManualClock
) -> None:
    s = coord.join_group(G, "", request("s", instance="i-s", rebalance_timeout_ms=1_000))
    assert s.assignment
    clock.advance(500)
    b = coord.join_group(G, "", request("b", rebalance_timeout_ms=2_000))
    clock.advance(1_000)
    assert coord.join_group(G, b.member_id, request("b")).assignment is None  # b polls
    clock.advance(1_000)  # the rebalance timed out; s never rejoined
    r = coord.join_group(G, b.member_id, request("b", rebalance_timeout_ms=2_000))
    coord.check()
    assert r.assignment is not None
    assert coord.owned(G)[s.member_id] == frozenset()
    with pytest.raises(IllegalGenerationError):
        coord.heartbeat(G, s.member_id, s.generation, "i-s")
    again = coord.join_group(G, s.member_id, request("s", instance="i-s"))
    assert again.generation == r.generation  # collects its part, no new rebalance
    assert set(again.assignment or ()) | set(r.assignment) == {TP("t", i) for i in range(4)}
    coord.check()


def test_inconsistent_assignors_are_rejected_and_nothing_changes(
    coord: GroupCoordinator,
) -> None:
    a = coord.join_group(G, "", request("a"))
    with pytest.raises(InvalidConfigError, match="INCONSISTENT_GROUP_PROTOCOL"):
        coord.join_group(G, "", request("b", assignors=(RoundRobinAssignor(),)))
    assert coord.group_state(G) is GroupState.STABLE
    coord.heartbeat(G, a.member_id, 1, None)
    coord.check()


def test_session_timeout_outside_limits_is_rejected(coord: GroupCoordinator) -> None:
    with pytest.raises(InvalidConfigError, match="session_timeout_ms"):
        coord.join_group(G, "", request(session_timeout_ms=5_999))
    coord.check()


def test_group_assignor_is_the_one_most_members_prefer(coord: GroupCoordinator) -> None:
    both = (RoundRobinAssignor(), RangeAssignor())
    ids = join_all(coord, {
        "new1": request("a", assignors=both),
        "new2": request("b", assignors=both),
        "new3": request("c", assignors=(RangeAssignor(), RoundRobinAssignor())),
    })
    assert describe_group(coord._log, G).protocol == "roundrobin"
    assert sorted(len(a) for a in ids.values()) == [1, 1, 2]


class Spy:
    """Range, recording the subscriptions it is given."""

    def __init__(self, name: str, protocols: tuple[str, ...]) -> None:
        self.name, self.protocols = name, protocols
        self.calls: list[dict[str, Subscription]] = []

    def assign(self, partitions_per_topic: Mapping[str, int],
               subscriptions: Mapping[str, Subscription]) -> dict[str, list[TP]]:
        self.calls.append(dict(subscriptions))
        return RangeAssignor().assign(partitions_per_topic, subscriptions)


@pytest.mark.parametrize(("protocols", "sees_previous"), [
    (("eager",), True),  # like StickyAssignor's user data: what the member last held
    (("cooperative", "eager"), False),  # true ownership: an eager member revoked it all
])
def test_what_an_assignor_sees_of_eager_members(
    coord: GroupCoordinator, protocols: tuple[str, ...], sees_previous: bool
) -> None:
    spy = Spy("spy", protocols)
    state: dict = {}
    ids = join_all(coord, {"a": request("a", assignors=(spy,)),
                           "b": request("b", assignors=(spy,))}, state)
    join_all(coord, {"a": request("a", assignors=(spy,)),
                     "b": request("b", assignors=(spy,)),
                     "c": request("c", assignors=(spy,))}, state)
    seen = spy.calls[-1]
    for member_id, before in ids.items():
        sub = seen[member_id]
        assert sub.owned_partitions == (before if sees_previous else ())
        assert sub.generation == 2
    assert isinstance(StickyAssignor().assign({"t": 1}, seen), dict)


def test_cooperative_partition_moves_only_after_release(coord: GroupCoordinator) -> None:
    coop = {"assignors": (CooperativeStickyAssignor(),), "protocol": "cooperative"}
    a = coord.join_group(G, "", request("a", **coop))
    assert a.assignment == tuple(TP("t", i) for i in range(4))
    b = coord.join_group(G, "", request("b", **coop))
    with pytest.raises(RebalanceInProgressError):
        coord.heartbeat(G, a.member_id, 1, None)
    a2 = coord.join_group(G, a.member_id, request("a", **coop))  # still owns all four
    b2 = coord.join_group(G, b.member_id, request("b", **coop))
    coord.check()
    assert b2.assignment == ()  # nothing moves while a owns it
    assert a2.assignment is not None
    assert len(a2.assignment) == 2
    revoked = set(a.assignment or ()) - set(a2.assignment)
    coord.release(G, a.member_id, revoked)
    coord.join_group(G, a.member_id, request("a", **coop))  # follow-up rebalance
    b3 = coord.join_group(G, b.member_id, request("b", **coop))
    a3 = coord.join_group(G, a.member_id, request("a", **coop))
    coord.check()
    assert set(b3.assignment or ()) == revoked
    assert a3.assignment == a2.assignment


class GreedyCooperative:
    """A buggy cooperative assignor: gives everything to the newest member at once."""

    name = "greedy"
    protocols = ("cooperative",)

    def assign(self, partitions_per_topic: Mapping[str, int],
               subscriptions: Mapping[str, Subscription]) -> dict[str, list[TP]]:
        newest = max(subscriptions)
        return {m: ([TP(t, p) for t, n in sorted(partitions_per_topic.items())
                     for p in range(n)] if m == newest else []) for m in subscriptions}


def test_coordinator_never_hands_out_a_partition_another_member_owns(
    coord: GroupCoordinator,
) -> None:
    greedy = {"assignors": (GreedyCooperative(),), "protocol": "cooperative"}
    a = coord.join_group(G, "", request("a", **greedy))
    b = coord.join_group(G, "", request("b", **greedy))
    coord.join_group(G, a.member_id, request("a", **greedy))
    b2 = coord.join_group(G, b.member_id, request("b", **greedy))
    coord.check()
    assert b2.assignment == ()  # stripped: a still owns them all
    coord.release(G, a.member_id, a.assignment or ())
    coord.join_group(G, a.member_id, request("a", **greedy))  # rejoins, owning nothing
    b3 = coord.join_group(G, b.member_id, request("b", **greedy))
    coord.check()
    assert b3.assignment is not None
    assert len(b3.assignment) == 4


class BrokenAssignor:
    name = "broken"
    protocols = ("eager",)

    def assign(self, partitions_per_topic: Mapping[str, int],
               subscriptions: Mapping[str, Subscription]) -> dict[str, list[TP]]:
        return {m: [TP("t", 99)] for m in subscriptions}


def test_invalid_assignor_result_raises_and_group_stays_preparing(
    coord: GroupCoordinator,
) -> None:
    with pytest.raises(IllegalStateError, match="broken"):
        coord.join_group(G, "", request("a", assignors=(BrokenAssignor(),)))
    assert coord.group_state(G) is GroupState.PREPARING_REBALANCE
    coord.check()


def test_new_partitions_trigger_rebalance(
    coord: GroupCoordinator, log: eventlog.EventLog
) -> None:
    a = coord.join_group(G, "", request("a"))
    log.create_partitions("t", 6)
    with pytest.raises(RebalanceInProgressError):
        coord.heartbeat(G, a.member_id, 1, None)
    coord.release(G, a.member_id, a.assignment or ())
    r = coord.join_group(G, a.member_id, request("a"))
    assert r.assignment == tuple(TP("t", i) for i in range(6))
    coord.check()


def test_subscription_change_while_pending_is_honoured(coord: GroupCoordinator) -> None:
    a = coord.join_group(G, "", request("a"))
    b = coord.join_group(G, "", request("b"))
    coord.release(G, a.member_id, a.assignment or ())
    coord.join_group(G, a.member_id, request("a"))
    # b changes its subscription before collecting the assignment of generation 2
    r = coord.join_group(G, b.member_id, request("b", topics=("t", "u")))
    assert r.assignment is None
    coord.release(G, a.member_id, coord.owned(G)[a.member_id])
    ra = coord.join_group(G, a.member_id, request("a"))
    rb = coord.join_group(G, b.member_id, request("b", topics=("t", "u")))
    assert ra.generation == rb.generation == 3
    assert {tp.topic for tp in rb.assignment or ()} >= {"u"}
    coord.check()


def test_initial_rebalance_delay_waits_for_more_members(
    log: eventlog.EventLog, clock: ManualClock
) -> None:
    coord = GroupCoordinator(log, initial_rebalance_delay_ms=3_000)
    a = coord.join_group(G, "", request("a"))
    assert a.assignment is None
    clock.advance(2_000)
    b = coord.join_group(G, "", request("b"))  # extends the delay to t=5000
    clock.advance(2_000)
    assert coord.join_group(G, a.member_id, request("a")).assignment is None
    clock.advance(1_000)
    ra = coord.join_group(G, a.member_id, request("a"))
    rb = coord.join_group(G, b.member_id, request("b"))
    assert ra.generation == rb.generation == 1  # one rebalance for both
    coord.check()


def test_list_describe_and_delete_groups(
    coord: GroupCoordinator, log: eventlog.EventLog
) -> None:
    log.partition("t", 0).append([(None, b"x")] * 10)
    coord.commit_offsets("solo", "", -1, None, {TP("t", 0): OffsetAndMetadata(4)})
    a = coord.join_group(G, "", request("a"))
    listing = {g.group_id: g for g in list_groups(log)}
    assert listing["solo"].state is GroupState.EMPTY
    assert listing[G].state is GroupState.STABLE
    assert listing[G].protocol_type == "consumer"
    d = describe_group(log, "solo")
    assert [(o.topic_partition, o.committed_offset, o.end_offset, o.lag)
            for o in d.offsets] == [(TP("t", 0), 4, 10, 6)]
    d = describe_group(log, G)
    assert d.members[0].member_id == a.member_id
    assert d.members[0].assignment == a.assignment
    assert [o.lag for o in d.offsets] == [None] * 4
    assert describe_group(log, "nope").state is GroupState.DEAD
    with pytest.raises(IllegalStateError, match="NON_EMPTY_GROUP"):
        delete_group(log, G)
    delete_group(log, "solo")
    assert "solo" not in {g.group_id for g in list_groups(log)}
    coord.check()


def test_committed_offsets_survive_reopen(tmp_path: Path) -> None:
    clock = ManualClock()
    with eventlog.open(tmp_path, clock=clock) as log:
        log.create_topic("t", 2)
        coord = coordinator_for(log)
        coord.commit_offsets("g1", "", -1, None, {TP("t", 0): OffsetAndMetadata(3, "meta"),
                                                  TP("t", 1): OffsetAndMetadata(4)})
        coord.commit_offsets("g1", "", -1, None, {TP("t", 0): OffsetAndMetadata(5)})
        coord.commit_offsets("g2", "", -1, None, {TP("t", 0): OffsetAndMetadata(1)})
        delete_group(log, "g2")
    with eventlog.open(tmp_path, clock=clock) as log:
        coord = coordinator_for(log)
        found = coord.committed("g1", [TP("t", 0), TP("t", 1)])
        assert {tp: (c.offset, c.metadata) for tp, c in found.items() if c} == {
            TP("t", 0): (5, ""), TP("t", 1): (4, ""),
        }
        assert coord.committed("g2", [TP("t", 0)]) == {TP("t", 0): None}
        assert [g.group_id for g in list_groups(log)] == ["g1"]
        coord.check()
