"""consumer/member_state.py's table, and the consumer making exactly the table's transitions.

The table is tested one transition at a time (as group/test_state.py does). Then
scenarios on a ManualClock drive real consumers through every row of the table while
a recorder wraps ``next_state``: every transition the code made is in the table (an
unlisted one raises AssertionError in the consumer), and every row was made, so the
table holds no row the code cannot reach. A source scan checks that nothing but
``Membership._transition`` assigns the member state.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventlog
from eventlog.consumer import Consumer, ConsumerRebalanceListener
from eventlog.consumer import membership as membership_module
from eventlog.consumer.member_state import (
    TRANSITIONS,
    MemberEvent,
    MemberState,
    mermaid,
    next_state,
)
from eventlog.errors import FencedInstanceIdError
from eventlog.group.coordinator import coordinator_for
from eventlog.records import TopicPartition as TP
from eventlog.testing import ManualClock

S, E = MemberState, MemberEvent
ROOT = Path(__file__).resolve().parents[2]
CONSUMER_SOURCE = ROOT / "src" / "eventlog" / "consumer"
# Short timeouts (on the manual clock) so that eviction takes one advance().
FAST = {"max_poll_interval_ms": 10_000, "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 1_000, "auto_offset_reset": "earliest"}

LEGAL = sorted(TRANSITIONS.items(), key=str)
ILLEGAL = [(s, e) for s in S for e in E if (s, e) not in TRANSITIONS]


# ---------------------------------------------------------------------------------------
# The table


@pytest.mark.parametrize(("pair", "target"), LEGAL)
def test_legal_transition(pair: tuple[MemberState, MemberEvent], target: MemberState) -> None:
    assert next_state(*pair) is target


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_illegal_transition_is_a_bug(state: MemberState, event: MemberEvent) -> None:
    with pytest.raises(AssertionError, match="illegal member transition"):
        next_state(state, event)


def test_every_state_is_reachable_and_every_state_can_leave() -> None:
    reached, frontier = {S.UNJOINED}, [S.UNJOINED]
    while frontier:
        state = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(S)
    assert all(TRANSITIONS[(state, E.LEAVE)] is S.UNJOINED for state in S)


def test_states_compare_as_the_strings_they_replaced() -> None:
    assert S.STABLE == "stable" and str(S.JOINING) == "joining"


def test_docs_show_the_diagram_drawn_from_the_table() -> None:
    docs = (ROOT / "docs" / "consumers.md").read_text()
    blocks = re.findall(r"```mermaid\n(.*?)```", docs, re.S)
    assert mermaid() + "\n" in blocks
    for (state, event), target in TRANSITIONS.items():
        assert f"    {state.value} --> {target.value}: {event.value}" in mermaid()


def test_only_transition_assigns_the_member_state() -> None:
    """``state = ...`` on an object happens in Membership._transition and nowhere else."""
    found = []
    for path in sorted(CONSUMER_SOURCE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                targets = (node.targets if isinstance(node, ast.Assign)
                           else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign))
                           else [])
                for target in targets:
                    names = target.elts if isinstance(target, ast.Tuple) else [target]
                    for t in names:  # the assigned attribute itself, not ``x.state.y = ...``
                        if isinstance(t, ast.Attribute) and t.attr in ("state", "_mstate"):
                            found.append((path.name, func.name))
    assert sorted(set(found)) == [("membership.py", "__init__"), ("membership.py", "_transition")]


# ---------------------------------------------------------------------------------------
# The consumer makes exactly the table's transitions


@pytest.fixture
def log(clock: ManualClock) -> Iterator[eventlog.EventLog]:
    with eventlog.open(None, clock=clock) as log:
        log.create_topic("t", 3)
        yield log


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[MemberState, MemberEvent]]:
    """Every (state, event) the consumers pass to next_state from now on."""
    seen: list[tuple[MemberState, MemberEvent]] = []

    def recording(state: MemberState, event: MemberEvent) -> MemberState:
        seen.append((state, event))
        return next_state(state, event)

    monkeypatch.setattr(membership_module, "next_state", recording)
    return seen


class FailsOnLost(ConsumerRebalanceListener):
    """Raises from on_partitions_lost once: the poll stops right after the loss."""

    def __init__(self) -> None:
        self.armed = True

    def on_partitions_lost(self, partitions: list[TP]) -> None:
        if self.armed:
            self.armed = False
            raise RuntimeError("lost")


def consumer(log: eventlog.EventLog, group: str, **config: object) -> Consumer:
    return Consumer(log, group_id=group, **{**FAST, **config})


def state(c: Consumer) -> MemberState:
    c.check()
    coordinator_for(c._log).check()
    return c._membership.state


def scenario_rebalance_and_leave(log: eventlog.EventLog) -> None:
    a = consumer(log, "rebalance")
    a.subscribe(["t"])
    a.poll()
    assert state(a) is S.STABLE  # alone: the join completes in the call that sends it
    b = consumer(log, "rebalance")
    b.subscribe(["t"])
    b.poll()
    assert state(b) is S.JOINING  # a has not rejoined
    b.poll()
    assert state(b) is S.JOINING
    a.poll()  # heartbeat: a rebalance; a rejoins, which completes the join
    assert state(a) is S.STABLE
    b.poll()
    assert state(b) is S.STABLE
    c = consumer(log, "rebalance")
    c.subscribe(["t"])
    c.close()  # never polled: leaves unjoined
    b.close()  # stable
    a.poll()  # b left: a rejoins, alone
    assert state(a) is S.STABLE
    a.close()


def scenario_evicted_while_stable_and_while_joining(
    log: eventlog.EventLog, clock: ManualClock
) -> None:
    a, b = consumer(log, "evicted"), consumer(log, "evicted")
    a.subscribe(["t"])
    a.poll()
    b.subscribe(["t"])
    b.poll()
    assert (state(a), state(b)) == (S.STABLE, S.JOINING)
    clock.advance(FAST["max_poll_interval_ms"])  # both miss max_poll_interval_ms
    a.poll()  # heartbeat: unknown member -> lost; joins anew, alone
    assert state(a) is S.STABLE
    b.poll()  # join: unknown member -> lost; joins anew, waits for a
    assert state(b) is S.JOINING
    a.close()
    b.close()


def scenario_static_member_a_generation_behind(
    log: eventlog.EventLog, clock: ManualClock
) -> None:
    """A static member that missed a rebalance: IllegalGeneration at its heartbeat;
    its listener fails on the loss, so it stays unjoined with its member id, and its
    next join is refused: unknown (expired) for one, fenced (replaced) for another."""
    x_listener, y_listener = FailsOnLost(), FailsOnLost()
    x = consumer(log, "behind", group_instance_id="X")
    x.subscribe(["t"], listener=x_listener)
    y = consumer(log, "behind", group_instance_id="Y")
    y.subscribe(["t"], listener=y_listener)
    for _ in range(3):
        x.poll()
        y.poll()
    assert (state(x), state(y)) == (S.STABLE, S.STABLE)
    d = consumer(log, "behind")
    d.subscribe(["t"])
    d.poll()  # a rebalance; x and y do not rejoin: static, they are kept without partitions
    for _ in range(2):  # d polls within its max_poll_interval_ms until the join times out
        clock.advance(FAST["max_poll_interval_ms"] // 2)
        d.poll()
    assert state(d) is S.STABLE
    for member in (x, y):
        with pytest.raises(RuntimeError, match="lost"):
            member.poll()  # heartbeat: a generation behind -> lost
        assert state(member) is S.UNJOINED and member.member_id
    # x and y expire (max_poll_interval_ms + session_timeout_ms after their last poll)
    clock.advance(FAST["max_poll_interval_ms"] + FAST["session_timeout_ms"])
    y2 = consumer(log, "behind", group_instance_id="Y")
    y2.subscribe(["t"])
    y2.poll()
    x.poll()  # join: unknown member -> lost; joins anew
    with pytest.raises(FencedInstanceIdError):
        y.poll()  # join: y2 holds the instance id now
    assert state(y) is S.FENCED
    for c in (x, y, y2, d):
        c.close()


def scenario_fenced_while_stable_and_while_joining(log: eventlog.EventLog) -> None:
    a = consumer(log, "fenced", group_instance_id="A")
    a.subscribe(["t"])
    a.poll()
    a2 = consumer(log, "fenced", group_instance_id="A")
    a2.subscribe(["t"])
    a2.poll()  # takes a's place and assignment, no rebalance
    with pytest.raises(FencedInstanceIdError):
        a.poll()  # heartbeat: fenced
    assert state(a) is S.FENCED
    a.close()  # fenced -> leave
    b = consumer(log, "fenced", group_instance_id="B")
    b.subscribe(["t"])
    b.poll()
    assert state(b) is S.JOINING  # a2 has not rejoined
    b2 = consumer(log, "fenced", group_instance_id="B")
    b2.subscribe(["t"])
    b2.poll()
    with pytest.raises(FencedInstanceIdError):
        b.poll()  # join: fenced
    assert state(b) is S.FENCED
    joining = consumer(log, "fenced")
    joining.subscribe(["t"])
    joining.poll()
    assert state(joining) is S.JOINING
    joining.close()  # joining -> leave
    for c in (b, b2, a2):
        c.close()


def test_the_consumer_makes_every_transition_of_the_table_and_no_other(
    log: eventlog.EventLog, clock: ManualClock, made: list[tuple[MemberState, MemberEvent]]
) -> None:
    scenario_rebalance_and_leave(log)
    scenario_evicted_while_stable_and_while_joining(log, clock)
    scenario_static_member_a_generation_behind(log, clock)
    scenario_fenced_while_stable_and_while_joining(log)
    assert set(made) <= set(TRANSITIONS)
    assert set(TRANSITIONS) - set(made) == set(), "rows of the table no scenario reached"


def test_an_unlisted_transition_stops_the_consumer(
    log: eventlog.EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table is enforced: with the join-complete rows removed, joining is a bug."""
    shrunk = {k: v for k, v in TRANSITIONS.items() if k[1] is not E.JOIN_COMPLETE}

    def strict(state: MemberState, event: MemberEvent) -> MemberState:
        try:
            return shrunk[(state, event)]
        except KeyError:
            raise AssertionError(f"illegal member transition: {event} in {state}") from None

    monkeypatch.setattr(membership_module, "next_state", strict)
    c = consumer(log, "strict")
    c.subscribe(["t"])
    with pytest.raises(AssertionError, match="join_complete in unjoined"):
        c.poll()


class Recorder(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[TP]]] = []

    def on_partitions_revoked(self, partitions: list[TP]) -> None:
        self.calls.append(("revoked", partitions))

    def on_partitions_assigned(self, partitions: list[TP]) -> None:
        self.calls.append(("assigned", partitions))

    def on_partitions_lost(self, partitions: list[TP]) -> None:
        self.calls.append(("lost", partitions))


def test_a_group_view_on_a_read_only_log_revokes_on_unsubscribe(tmp_path: Path) -> None:
    """A group consumer of a read-only log owns every partition without joining
    (it never leaves ``unjoined``); unsubscribing revokes them: nothing was lost."""
    with eventlog.open(tmp_path / "data") as writer:
        writer.create_topic("t", 2)
        with eventlog.open(writer.path, read_only=True) as reader:
            listener = Recorder()
            view = Consumer(reader, group_id="g")
            view.subscribe(["t"], listener=listener)
            view.poll()
            assert view._membership.state is S.UNJOINED
            view.unsubscribe()
            owned = [TP("t", 0), TP("t", 1)]
            assert listener.calls == [("assigned", owned), ("revoked", owned)]
            view.close()
