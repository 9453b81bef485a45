"""Consumer groups: states, the in-process coordinator, committed offsets and assignors.

``state`` (pure transition table), ``assignors`` (pure partition assignment),
``offsets`` (the ``__consumer_offsets`` topic), ``members`` (the records kept per
group and member), ``rebalance`` (join phases: liveness, completing a join with the
assignor) and ``coordinator`` (the calls: joins, heartbeats, commits, inspection).
Consumers use the coordinator through :class:`eventlog.Consumer`; tools use
:func:`list_groups`, :func:`describe_group` and :func:`delete_group`.
"""

from .coordinator import (
    GroupCoordinator,
    GroupDescription,
    GroupListing,
    MemberDescription,
    PartitionOffset,
    coordinator_for,
    delete_group,
    describe_group,
    list_groups,
)
from .offsets import OffsetAndMetadata
from .state import GroupState

__all__ = [
    "GroupCoordinator",
    "GroupDescription",
    "GroupListing",
    "GroupState",
    "MemberDescription",
    "OffsetAndMetadata",
    "PartitionOffset",
    "coordinator_for",
    "delete_group",
    "describe_group",
    "list_groups",
]
