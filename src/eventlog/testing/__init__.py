"""A public test kit: a manual clock, disk faults, contract checks for your own
plug-ins, the Kafka client swap and assertion helpers.

``ManualClock`` makes time-dependent behaviour (retention, linger, session
timeouts, auto-commit) deterministic without sleeping. ``FaultyFiles`` fails
the storage layer's file-system calls on demand (a full disk, EIO, a failed
fsync, a short write). ``check_partitioner`` and ``check_assignor`` run the
contracts eventlog's own partitioners and assignors pass against yours.
``use_eventlog`` swaps in the Kafka client modules; ``records``, ``wait_for`` and
``assert_produced`` check what a test produced.
"""

from .assignors import check_assignor
from .clock import ManualClock
from .faults import FaultyFiles
from .helpers import assert_produced, records, wait_for
from .kafka import KafkaClients, use_eventlog
from .partitioners import check_partitioner

__all__ = [
    "FaultyFiles",
    "KafkaClients",
    "ManualClock",
    "assert_produced",
    "check_assignor",
    "check_partitioner",
    "records",
    "use_eventlog",
    "wait_for",
]
