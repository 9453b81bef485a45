"""A public test kit: a manual clock and contract checks for your own plug-ins.

``ManualClock`` makes time-dependent behaviour (retention, linger, session
timeouts, auto-commit) deterministic without sleeping. ``check_partitioner``
and ``check_assignor`` run the contracts eventlog's own partitioners and
assignors pass against yours.
"""

from .assignors import check_assignor
from .clock import ManualClock
from .partitioners import check_partitioner

__all__ = ["ManualClock", "check_assignor", "check_partitioner"]

from .kafka import KafkaClients, use_eventlog

__all__ += ["KafkaClients", "use_eventlog"]
