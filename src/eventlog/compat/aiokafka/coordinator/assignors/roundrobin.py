"""aiokafka.coordinator.assignors.roundrobin: ``RoundRobinPartitionAssignor`` (eventlog's
"roundrobin")."""

from __future__ import annotations

from .abstract import AbstractPartitionAssignor

__all__ = ["RoundRobinPartitionAssignor"]


class RoundRobinPartitionAssignor(AbstractPartitionAssignor):
    name = "roundrobin"
