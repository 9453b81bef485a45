"""Offset resets of a consumer group, as Kafka's kafka-consumer-groups --reset-offsets:
a plan first (the dry run), then its execution, refused while the group has members."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import IllegalStateError, InvalidConfigError
from ..group.coordinator import coordinator_for
from ..group.offsets import OffsetAndMetadata
from ..group.state import GroupState
from ..log import EventLog
from ..records import TopicPartition

__all__ = ["STRATEGIES", "ResetRow", "execute_reset", "plan_reset"]

# Kafka's --to-earliest, --to-latest, --to-offset N, --to-datetime ISO, --shift-by N
STRATEGIES = ("to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by")


@dataclass(frozen=True)
class ResetRow:
    topic_partition: TopicPartition
    current: int | None  # the committed offset now (None: nothing committed)
    new: int


def _check_inactive(log: EventLog, group_id: str) -> None:
    description = log.describe_group(group_id)
    if description.members or description.state not in (GroupState.EMPTY, GroupState.DEAD):
        raise IllegalStateError(
            f"group {group_id!r} is {description.state} with {len(description.members)} "
            "member(s): offsets can only be reset while the group is inactive (Kafka's "
            "rule); stop its consumers first"
        )


def plan_reset(log: EventLog, group_id: str, topic: str, strategy: str,
               value: str | None = None) -> list[ResetRow]:
    """The new committed offset of each partition of ``topic``, clamped to the log
    as Kafka clamps it. Changes nothing.

    Raises InvalidConfigError for an unknown strategy or a bad value,
    UnknownTopicError, IllegalStateError while the group has members.
    """
    from .views import parse_time_ms  # one parser for the browser and resets

    if strategy not in STRATEGIES:
        raise InvalidConfigError(
            f"unknown reset strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if not group_id:
        raise InvalidConfigError("give the group id whose offsets to reset")
    number = None
    if strategy in ("to-offset", "shift-by"):
        try:
            number = int(str(value).strip())
        except ValueError:
            raise InvalidConfigError(f"{strategy} needs an integer, got {value!r}") from None
    when = parse_time_ms(str(value)) if strategy == "to-datetime" else None
    t = log.topic(topic)
    _check_inactive(log, group_id)
    committed = coordinator_for(log).committed(
        group_id, [TopicPartition(topic, p.index) for p in t.partitions])
    rows = []
    for p in t.partitions:
        tp = TopicPartition(topic, p.index)
        current = committed.get(tp)
        current_offset = None if current is None else current.offset
        start, end = p.start_offset, p.end_offset
        if strategy == "to-earliest":
            new = start
        elif strategy == "to-latest":
            new = end
        elif strategy == "to-offset":
            assert number is not None
            new = number
        elif strategy == "shift-by":
            assert number is not None
            new = (end if current_offset is None else current_offset) + number
        else:
            assert when is not None
            found = p.offset_for_time(when)
            new = end if found is None else found
        rows.append(ResetRow(tp, current_offset, min(max(new, start), end)))
    return rows


def execute_reset(log: EventLog, group_id: str, rows: list[ResetRow]) -> None:
    """Commit ``rows``' new offsets for ``group_id`` (all or nothing: one commit).

    Raises IllegalStateError if the group gained members since the plan."""
    _check_inactive(log, group_id)
    coordinator_for(log).commit_offsets(
        group_id, "", -1, None,
        {row.topic_partition: OffsetAndMetadata(row.new) for row in rows},
    )
