"""A public test kit: a manual clock, disk faults, and contract checks for your own
plug-ins.

``ManualClock`` makes time-dependent behaviour (retention, linger, session
timeouts, auto-commit) deterministic without sleeping. ``FaultyFiles`` fails
the storage layer's file-system calls on demand (a full disk, EIO, a failed
fsync, a short write). ``check_partitioner`` and ``check_assignor`` run the
contracts eventlog's own partitioners and assignors pass against yours.
"""

from .assignors import check_assignor
from .clock import ManualClock
from .faults import FaultyFiles
from .partitioners import check_partitioner

__all__ = ["FaultyFiles", "ManualClock", "check_assignor", "check_partitioner"]

from .kafka import KafkaClients, use_eventlog

__all__ += ["KafkaClients", "use_eventlog"]
