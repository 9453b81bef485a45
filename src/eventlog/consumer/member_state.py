"""A group member's states, as its consumer sees them, and the table of transitions.

The member half of Kafka's classic group protocol (``AbstractCoordinator.MemberState``
in Kafka's Java client; KAFKA_SEMANTICS 4.10-4.12); the group half is
:mod:`eventlog.group.state`. This module is pure: no clock, no I/O, no locks.
:class:`~eventlog.consumer.membership.Membership` decides *when* an event happens;
this table decides *what state follows*. An event the table does not list for the
current state is a bug in the consumer, never the user's doing, so
:func:`next_state` raises ``AssertionError`` for it.

States
------
``UNJOINED``  not a member: never joined, left, or its membership was lost (evicted,
              missed a generation); the next poll joins.
``JOINING``   a join was sent and the group has not completed it yet (the member
              revoked what its protocol requires first).
``STABLE``    the member holds the assignment of the group's current generation.
``FENCED``    another consumer took this member's ``group_instance_id``; every poll
              raises FencedInstanceIdError until ``unsubscribe()`` or ``close()``.

Events
------
``JOIN_PENDING``   the coordinator accepted the join; the assignment is not ready
``JOIN_COMPLETE``  the member collected its assignment (Kafka's SyncGroup response)
``REJOIN``         a stable member must rejoin: a rebalance started, its subscription
                   changed, or a cooperative rebalance needs a follow-up
``LOST``           the coordinator no longer knows the member (evicted) or it missed a
                   generation: its partitions are lost, not revoked
``FENCED``         the coordinator refused the member's ``group_instance_id``
``LEAVE``          ``unsubscribe()`` or ``close()``: the member leaves (a static member
                   only forgets its membership, the coordinator keeps it)

Draw the diagram from the table with :func:`mermaid` (docs/consumers.md shows it).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..group.transitions import Named, follow
from ..group.transitions import mermaid as draw

__all__ = ["TRANSITIONS", "MemberEvent", "MemberState", "mermaid", "next_state"]


class MemberState(Named):
    """A consumer's state as a group member (see the module docstring)."""

    UNJOINED = "unjoined"
    JOINING = "joining"
    STABLE = "stable"
    FENCED = "fenced"


class MemberEvent(Named):
    """What happened to a member (see the module docstring)."""

    JOIN_PENDING = "join_pending"
    JOIN_COMPLETE = "join_complete"
    REJOIN = "rejoin"
    LOST = "lost"
    FENCED = "fenced"
    LEAVE = "leave"


_S = MemberState
_E = MemberEvent

TRANSITIONS: Mapping[tuple[MemberState, MemberEvent], MemberState] = MappingProxyType({
    # A first join, or the join after a loss, waits for the other members.
    (_S.UNJOINED, _E.JOIN_PENDING): _S.JOINING,
    (_S.JOINING, _E.JOIN_PENDING): _S.JOINING,
    # A join can complete in the call that sends it (the last member to rejoin, or a
    # static member taking its old assignment back).
    (_S.UNJOINED, _E.JOIN_COMPLETE): _S.STABLE,
    (_S.JOINING, _E.JOIN_COMPLETE): _S.STABLE,
    (_S.STABLE, _E.REJOIN): _S.JOINING,
    # Heartbeat: evicted or a generation behind; join: the member id is unknown.
    (_S.STABLE, _E.LOST): _S.UNJOINED,
    (_S.JOINING, _E.LOST): _S.UNJOINED,
    (_S.UNJOINED, _E.LOST): _S.UNJOINED,
    (_S.UNJOINED, _E.FENCED): _S.FENCED,
    (_S.JOINING, _E.FENCED): _S.FENCED,
    (_S.STABLE, _E.FENCED): _S.FENCED,
    # unsubscribe() / close() from any state; a fenced consumer may subscribe again.
    (_S.UNJOINED, _E.LEAVE): _S.UNJOINED,
    (_S.JOINING, _E.LEAVE): _S.UNJOINED,
    (_S.STABLE, _E.LEAVE): _S.UNJOINED,
    (_S.FENCED, _E.LEAVE): _S.UNJOINED,
})
"""(state, event) -> next state. Pairs not listed are illegal: a consumer bug."""


def next_state(state: MemberState, event: MemberEvent) -> MemberState:
    """The state that follows ``state`` when ``event`` happens. O(1). Pure.

    Raises:
        AssertionError: the table has no such transition (a bug in the caller).
    """
    return follow(TRANSITIONS, state, event, "member")


def mermaid() -> str:
    """The transition table as a Mermaid ``stateDiagram-v2`` (for the docs). Pure."""
    return draw(TRANSITIONS, _S.UNJOINED)
