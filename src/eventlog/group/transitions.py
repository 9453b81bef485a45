"""What every state table here shares: named states and events, the lookup that
refuses an unlisted transition, and the diagram drawn from the table.

The group's table (:mod:`eventlog.group.state`), a member's
(:mod:`eventlog.consumer.member_state`) and a transaction's
(:mod:`eventlog.group.txn_state`) are each a mapping of ``(state, event)`` to the
next state. This module is pure: no clock, no I/O, no locks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import TypeVar

__all__ = ["Named", "follow", "mermaid"]


class Named(str, enum.Enum):
    """A state or event whose ``str()`` is its value (Kafka's name, where it has one),
    and which compares equal to that string."""

    def __str__(self) -> str:
        return str(self.value)


S = TypeVar("S", bound=Named)
E = TypeVar("E", bound=Named)


def follow(table: Mapping[tuple[S, E], S], state: S, event: E, machine: str) -> S:
    """The state that follows ``state`` when ``event`` happens. O(1). Pure.

    Raises AssertionError naming ``machine`` ("group", "member") if the table has no
    such transition: the caller has a bug, the user did nothing wrong.
    """
    try:
        return table[(state, event)]
    except KeyError:
        raise AssertionError(
            f"illegal {machine} transition: event {event} in state {state}"
        ) from None


def mermaid(table: Mapping[tuple[S, E], S], initial: S, final: Iterable[S] = ()) -> str:
    """``table`` as a Mermaid ``stateDiagram-v2``, one edge per row, in the table's
    order, entered at ``initial`` and left from each of ``final``. Pure."""
    lines = ["stateDiagram-v2", f"    [*] --> {initial.value}"]
    for (state, event), target in table.items():
        lines.append(f"    {state.value} --> {target.value}: {event.value}")
    lines.extend(f"    {state.value} --> [*]" for state in final)
    return "\n".join(lines)
