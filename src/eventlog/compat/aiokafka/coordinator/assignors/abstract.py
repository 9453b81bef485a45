"""aiokafka.coordinator.assignors.abstract: the assignor base class. In process only its
``name`` counts: it selects eventlog's assignor of that name."""

from __future__ import annotations

from typing import ClassVar

__all__ = ["AbstractPartitionAssignor"]


class AbstractPartitionAssignor:
    """A ``partition_assignment_strategy`` entry; ``name`` is the assignor's protocol name
    ("range", "roundrobin", "sticky"). A subclass with its own ``assign()`` logic is not
    run in process: the consumer refuses a name eventlog lacks."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 0
