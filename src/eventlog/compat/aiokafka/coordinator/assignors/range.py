"""aiokafka.coordinator.assignors.range: ``RangePartitionAssignor`` (eventlog's "range")."""

from __future__ import annotations

from .abstract import AbstractPartitionAssignor

__all__ = ["RangePartitionAssignor"]


class RangePartitionAssignor(AbstractPartitionAssignor):
    name = "range"
