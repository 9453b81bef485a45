"""group/state.py: the transition table, one transition at a time (as h11's test_state)."""

from __future__ import annotations

import itertools

import pytest

from eventlog.group.state import TRANSITIONS, GroupEvent, GroupState, mermaid, next_state

S = GroupState
E = GroupEvent

LEGAL = [
    (S.EMPTY, E.REBALANCE, S.PREPARING_REBALANCE),
    (S.PREPARING_REBALANCE, E.REBALANCE, S.PREPARING_REBALANCE),
    (S.PREPARING_REBALANCE, E.JOIN_COMPLETE, S.COMPLETING_REBALANCE),
    (S.PREPARING_REBALANCE, E.JOIN_EMPTY, S.EMPTY),
    (S.COMPLETING_REBALANCE, E.REBALANCE, S.PREPARING_REBALANCE),
    (S.COMPLETING_REBALANCE, E.ASSIGNMENT_DONE, S.STABLE),
    (S.STABLE, E.REBALANCE, S.PREPARING_REBALANCE),
    (S.EMPTY, E.DELETE, S.DEAD),
]


@pytest.mark.parametrize(("state", "event", "target"), LEGAL)
def test_legal_transition(state: GroupState, event: GroupEvent, target: GroupState) -> None:
    assert next_state(state, event) is target


def test_table_is_exactly_the_legal_list() -> None:
    assert dict(TRANSITIONS) == {(s, e): t for s, e, t in LEGAL}


ILLEGAL = [
    (s, e) for s, e in itertools.product(GroupState, GroupEvent)
    if (s, e) not in {(a, b) for a, b, _ in LEGAL}
]


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_illegal_transition_is_a_bug(state: GroupState, event: GroupEvent) -> None:
    with pytest.raises(AssertionError, match="illegal group transition"):
        next_state(state, event)


def test_dead_is_terminal() -> None:
    for event in GroupEvent:
        with pytest.raises(AssertionError):
            next_state(S.DEAD, event)


def test_every_state_reachable_from_empty() -> None:
    reached = {S.EMPTY}
    frontier = [S.EMPTY]
    while frontier:
        state = frontier.pop()
        for (source, _event), target in TRANSITIONS.items():
            if source is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(GroupState)


def test_a_rebalance_cycle_follows_kafka_order() -> None:
    state = S.EMPTY
    seen = [state]
    for event in (E.REBALANCE, E.JOIN_COMPLETE, E.ASSIGNMENT_DONE, E.REBALANCE, E.JOIN_EMPTY):
        state = next_state(state, event)
        seen.append(state)
    assert [s.value for s in seen] == [
        "Empty", "PreparingRebalance", "CompletingRebalance", "Stable",
        "PreparingRebalance", "Empty",
    ]


def test_states_compare_as_kafka_names() -> None:
    assert S.STABLE == "Stable"
    assert str(S.PREPARING_REBALANCE) == "PreparingRebalance"


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[(S.DEAD, E.REBALANCE)] = S.EMPTY  # type: ignore[index]


def test_mermaid_diagram_lists_every_transition() -> None:
    diagram = mermaid()
    assert diagram.startswith("stateDiagram-v2")
    for (state, event), target in TRANSITIONS.items():
        assert f"{state.value} --> {target.value}: {event.value}" in diagram
