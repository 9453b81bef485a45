"""use_eventlog: make ``import confluent_kafka`` / ``import kafka`` give eventlog's modules."""

from __future__ import annotations

import contextlib
import importlib
import itertools
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from .. import compat
from ..log import EventLog
from ..log import open as open_log
from .clock import ManualClock

__all__ = ["KafkaClients", "use_eventlog"]

# the names code imports -> eventlog's modules
MODULES = {
    "confluent_kafka": "eventlog.compat.confluent_kafka",
    "confluent_kafka.admin": "eventlog.compat.confluent_kafka.admin",
    "confluent_kafka.serialization": "eventlog.compat.confluent_kafka.serialization",
    "kafka": "eventlog.compat.kafka",
    "kafka.admin": "eventlog.compat.kafka.admin",
    "kafka.errors": "eventlog.compat.kafka.errors",
    "kafka.structs": "eventlog.compat.kafka.structs",
    "aiokafka": "eventlog.compat.aiokafka",
    "aiokafka.errors": "eventlog.compat.aiokafka.errors",
    "aiokafka.structs": "eventlog.compat.aiokafka.structs",
    "aiokafka.abc": "eventlog.compat.aiokafka.abc",
    "aiokafka.admin": "eventlog.compat.aiokafka.admin",
    "aiokafka.admin.client": "eventlog.compat.aiokafka.admin.client",
    "aiokafka.consumer": "eventlog.compat.aiokafka.consumer",
    "aiokafka.consumer.consumer": "eventlog.compat.aiokafka.consumer.consumer",
    "aiokafka.producer": "eventlog.compat.aiokafka.producer",
    "aiokafka.producer.producer": "eventlog.compat.aiokafka.producer.producer",
    "aiokafka.partitioner": "eventlog.compat.aiokafka.partitioner",
    "aiokafka.coordinator": "eventlog.compat.aiokafka.coordinator",
    "aiokafka.coordinator.assignors": "eventlog.compat.aiokafka.coordinator.assignors",
    "aiokafka.coordinator.assignors.abstract":
        "eventlog.compat.aiokafka.coordinator.assignors.abstract",
    "aiokafka.coordinator.assignors.range":
        "eventlog.compat.aiokafka.coordinator.assignors.range",
    "aiokafka.coordinator.assignors.roundrobin":
        "eventlog.compat.aiokafka.coordinator.assignors.roundrobin",
    "aiokafka.coordinator.assignors.sticky":
        "eventlog.compat.aiokafka.coordinator.assignors.sticky",
}
_ROOTS = tuple(sorted({name.split(".")[0] for name in MODULES}))
_swap_lock = threading.RLock()
_names = itertools.count(1)


class KafkaClients:
    """What ``use_eventlog`` yields: the log, a ``bootstrap_servers`` string naming it, and
    the client modules (``confluent_kafka``, ``kafka``, ``aiokafka``)."""

    def __init__(self, log: EventLog, bootstrap_servers: str) -> None:
        self.log = log
        self.bootstrap_servers = bootstrap_servers
        self.confluent_kafka: Any = importlib.import_module(MODULES["confluent_kafka"])
        self.kafka: Any = importlib.import_module(MODULES["kafka"])
        self.aiokafka: Any = importlib.import_module(MODULES["aiokafka"])

    def __repr__(self) -> str:
        return f"KafkaClients({self.log!r}, bootstrap_servers={self.bootstrap_servers!r})"


def _owned(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in _ROOTS)


@contextlib.contextmanager
def use_eventlog(log: EventLog | None = None) -> Iterator[KafkaClients]:
    """Inside the block, ``import confluent_kafka`` (with ``.admin``, ``.serialization``),
    ``import kafka`` (with ``.admin``, ``.errors``, ``.structs``) and ``import aiokafka``
    (with ``.errors``, ``.structs``, ``.abc``, ``.admin``, ``.partitioner``, the
    ``.coordinator.assignors`` classes and ``.producer``/``.consumer``) give eventlog's
    modules,
    in every thread, and every client whatever its bootstrap servers uses ``log``.

    ``log=None`` opens an in-memory log (ManualClock, ``auto_create_topics=True``) and
    closes it afterwards. On exit every ``sys.modules`` entry of those packages is as it
    was before (the real libraries come back if they were imported), and the default
    log is the previous one. Nests. Modules imported before the block keep whatever they
    bound then: import the application inside the block, or import the package
    (``import confluent_kafka``) rather than names from it.
    """
    own = log is None
    if log is None:
        log = open_log(None, clock=ManualClock(), auto_create_topics=True)
    elif not isinstance(log, EventLog):
        raise TypeError(f"use_eventlog() needs an EventLog, got {type(log).__name__}")
    name = f"use_eventlog-{next(_names)}"
    mods = {alias: importlib.import_module(target) for alias, target in MODULES.items()}
    with _swap_lock:
        saved: dict[str, ModuleType] = {n: m for n, m in sys.modules.items() if _owned(n)}
        for n in saved:
            del sys.modules[n]
        sys.modules.update(mods)
        compat.push_default(log)
        compat.register(name, log)
    try:
        yield KafkaClients(log, compat.SCHEME + name)
    finally:
        with _swap_lock:
            compat.unregister(name)
            compat.pop_default(log)
            for n in [n for n in sys.modules if _owned(n)]:
                del sys.modules[n]
            sys.modules.update(saved)
        if own:
            log.close()
