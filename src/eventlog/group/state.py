"""Consumer-group states and the table of transitions between them.

The states are those of Kafka's classic group protocol (``ClassicGroup.java``,
KAFKA_SEMANTICS 4.10). This module is pure: no clock, no I/O, no locks. The
:class:`~eventlog.group.coordinator.GroupCoordinator` decides *when* an event
happens; this table decides *what state follows*. An event that the table does
not list for the current state is a bug in the coordinator, never the user's
doing, so :func:`next_state` raises ``AssertionError`` for it.

Rules
-----
1. ``EMPTY``: the group has no members. It may still have committed offsets
   (standalone ``assign()`` consumers commit into an empty group).
2. ``PREPARING_REBALANCE``: something changed (a member joined, left, was
   evicted, changed its subscription, or a subscribed topic gained partitions).
   Every member must rejoin; the join phase ends when all have, or when the
   rebalance timeout (the largest ``max_poll_interval_ms`` of the members)
   passes, or, for a group that was empty, not before
   ``group_initial_rebalance_delay_ms``.
3. ``COMPLETING_REBALANCE``: the join phase ended with members; the generation
   has been incremented and the assignment is being computed.
4. ``STABLE``: every member of the current generation has its assignment waiting
   for it (it collects it at its next poll).
5. ``DEAD``: the group was deleted. Terminal: a later member of the same name
   starts a new group.

Theory of operation
-------------------
Kafka's coordinator waits for the group leader (a client) to compute the
assignment and send it back in SyncGroup, so ``COMPLETING_REBALANCE`` lasts a
network round trip. In process the coordinator runs the assignor itself, in the
same call that ends the join phase, so the group passes through
``COMPLETING_REBALANCE`` to ``STABLE`` within one coordinator call; the state
stays in the table so that the sequence of states (and the generation numbers)
is Kafka's. Members collect ("sync") their assignment lazily, at their next
poll, which is how a group polled from one thread converges with no waiting.

Events
------
``REBALANCE``       something requires every member to rejoin (rule 2)
``JOIN_COMPLETE``   the join phase ended and at least one member is left
``JOIN_EMPTY``      the join phase ended with no member left
``ASSIGNMENT_DONE`` the assignment of the new generation is available to all
``DELETE``          an administrator deleted the (empty) group

Draw the diagram from the table with :func:`mermaid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .transitions import Named, follow
from .transitions import mermaid as draw

__all__ = ["TRANSITIONS", "GroupEvent", "GroupState", "mermaid", "next_state"]


class GroupState(Named):
    """A consumer group's state; the values are Kafka's names (compare with str)."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class GroupEvent(Named):
    """What happened to a group (see the module docstring)."""

    REBALANCE = "rebalance"
    JOIN_COMPLETE = "join_complete"
    JOIN_EMPTY = "join_empty"
    ASSIGNMENT_DONE = "assignment_done"
    DELETE = "delete"


_S = GroupState
_E = GroupEvent

TRANSITIONS: Mapping[tuple[GroupState, GroupEvent], GroupState] = MappingProxyType({
    # A member joins an empty group.
    (_S.EMPTY, _E.REBALANCE): _S.PREPARING_REBALANCE,
    # More changes while members are rejoining: nothing new to do, keep waiting.
    (_S.PREPARING_REBALANCE, _E.REBALANCE): _S.PREPARING_REBALANCE,
    (_S.PREPARING_REBALANCE, _E.JOIN_COMPLETE): _S.COMPLETING_REBALANCE,
    (_S.PREPARING_REBALANCE, _E.JOIN_EMPTY): _S.EMPTY,
    # A change before the assignment was handed out starts the join phase again.
    (_S.COMPLETING_REBALANCE, _E.REBALANCE): _S.PREPARING_REBALANCE,
    (_S.COMPLETING_REBALANCE, _E.ASSIGNMENT_DONE): _S.STABLE,
    (_S.STABLE, _E.REBALANCE): _S.PREPARING_REBALANCE,
    # Kafka deletes only empty groups (NON_EMPTY_GROUP otherwise).
    (_S.EMPTY, _E.DELETE): _S.DEAD,
})
"""(state, event) -> next state. Pairs not listed are illegal: a coordinator bug."""


def next_state(state: GroupState, event: GroupEvent) -> GroupState:
    """The state that follows ``state`` when ``event`` happens. O(1). Pure.

    Raises:
        AssertionError: the table has no such transition (a bug in the caller).
    """
    return follow(TRANSITIONS, state, event, "group")


def mermaid() -> str:
    """The transition table as a Mermaid ``stateDiagram-v2`` (for the docs). Pure."""
    return draw(TRANSITIONS, _S.EMPTY, final=(_S.DEAD,))
