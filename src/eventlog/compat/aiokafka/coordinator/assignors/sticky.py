"""aiokafka.coordinator.assignors.sticky: ``StickyPartitionAssignor`` (eventlog's
"sticky")."""

from __future__ import annotations

from .abstract import AbstractPartitionAssignor

__all__ = ["StickyPartitionAssignor"]


class StickyPartitionAssignor(AbstractPartitionAssignor):
    name = "sticky"
