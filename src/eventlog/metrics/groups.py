"""Consumer groups as monitoring sees them: each group's description (state, members,
committed offsets and lag per partition), without creating anything on a log where
no group was ever used."""

from __future__ import annotations

from typing import Any

from ..broker.core import Broker
from ..group.coordinator import coordinator_slot
from ..group.offsets import offsets_topic

__all__ = ["describe_groups"]


def describe_groups(log: Broker) -> list[Any]:
    """GroupDescription of every group, sorted by id. O(groups x partitions).

    A log on which no group was ever used has none: it is answered without creating
    the group coordinator, which would create the ``__consumer_offsets`` topic (what
    only looks must not write)."""
    if (log.existing_layer_state(coordinator_slot) is None
            and offsets_topic not in log.topics(include_internal=True)):
        return []
    return [log.describe_group(g.group_id) for g in log.list_groups()]
