"""Drop-in client modules: Kafka client code runs on an in-process EventLog, unmodified.

* :mod:`eventlog.compat.confluent_kafka`: confluent-kafka's ``Producer``,
  ``Consumer``, ``Message``, ``KafkaError``, ``TopicPartition``, ``admin`` and
  ``serialization``.
* :mod:`eventlog.compat.kafka`: kafka-python's ``KafkaProducer``,
  ``KafkaConsumer``, ``KafkaAdminClient``, ``kafka.errors``.

Which log a client uses is chosen by its bootstrap servers setting
(``bootstrap.servers`` / ``bootstrap_servers``), see :func:`resolve_log`:

* ``"eventlog://NAME"``: the log registered with ``register(NAME, log)``;
* anything else (a ``host:port`` list, or nothing): the default log, set by
  ``eventlog.testing.use_eventlog(log)`` or :func:`set_default`.

``eventlog.testing.use_eventlog(log)`` also makes ``import confluent_kafka`` and
``import kafka`` resolve to these modules. See docs/compat.md.
"""

from __future__ import annotations

import threading
from typing import Any

from ..log import EventLog

__all__ = ["SCHEME", "get_default", "register", "resolve_log", "set_default", "unregister"]

SCHEME = "eventlog://"

_lock = threading.Lock()
_registry: dict[str, EventLog] = {}
_defaults: list[EventLog] = []  # a stack: nested use_eventlog() blocks


def register(name: str, log: EventLog) -> None:
    """Make ``"eventlog://NAME"`` select ``log``. Replaces an earlier registration of ``name``.

    Raises TypeError if ``log`` is not an EventLog, ValueError for an empty name or
    one containing ``,`` or ``/``.
    """
    if not isinstance(log, EventLog):
        raise TypeError(f"register() needs an EventLog, got {type(log).__name__}")
    if not isinstance(name, str) or not name or "," in name or "/" in name:
        raise ValueError(f"a log name must be a non-empty str without ',' or '/', got {name!r}")
    with _lock:
        _registry[name] = log


def unregister(name: str) -> None:
    """Forget the log registered as ``name`` (nothing happens if there is none)."""
    with _lock:
        _registry.pop(name, None)


def set_default(log: EventLog | None) -> None:
    """Make ``log`` the default log (``None``: drop every default). Prefer ``use_eventlog``."""
    if log is not None and not isinstance(log, EventLog):
        raise TypeError(f"set_default() needs an EventLog or None, got {type(log).__name__}")
    with _lock:
        _defaults.clear()
        if log is not None:
            _defaults.append(log)


def push_default(log: EventLog) -> None:
    """Make ``log`` the default until the matching :func:`pop_default` (nests)."""
    if not isinstance(log, EventLog):
        raise TypeError(f"use_eventlog() needs an EventLog, got {type(log).__name__}")
    with _lock:
        _defaults.append(log)


def pop_default(log: EventLog) -> None:
    """Undo the latest :func:`push_default` of ``log``."""
    with _lock:
        for i in range(len(_defaults) - 1, -1, -1):
            if _defaults[i] is log:
                del _defaults[i]
                return


def get_default() -> EventLog | None:
    """The default log, or None."""
    with _lock:
        return _defaults[-1] if _defaults else None


def resolve_log(servers: Any) -> EventLog:
    """The EventLog a client configured with these bootstrap servers uses.

    ``servers`` is a str (comma-separated) or a list of str. The first entry that
    starts with ``eventlog://`` names a registered log; without one, the default
    log is used. Raises LookupError, naming the fix, when neither gives a log, and
    ValueError for a name that is not registered.
    """
    entries: list[str]
    if servers is None:
        entries = []
    elif isinstance(servers, str):
        entries = [s.strip() for s in servers.split(",") if s.strip()]
    elif isinstance(servers, (list, tuple)) and all(isinstance(s, str) for s in servers):
        entries = [s.strip() for s in servers if s.strip()]
    else:
        raise ValueError(f"bootstrap servers must be a str or a list of str, got {servers!r}")
    with _lock:
        for entry in entries:
            if entry.startswith(SCHEME):
                name = entry[len(SCHEME):]
                log = _registry.get(name)
                if log is None:
                    known = ", ".join(sorted(_registry)) or "none"
                    raise ValueError(
                        f"bootstrap servers {entry!r} names no registered log (registered: "
                        f"{known}); call eventlog.compat.register({name!r}, log) first"
                    )
                return log
        if _defaults:
            return _defaults[-1]
    raise LookupError(
        f"bootstrap servers {servers!r} select no in-process log: use 'eventlog://NAME' "
        "after eventlog.compat.register(NAME, log), or run the code inside "
        "eventlog.testing.use_eventlog(log)"
    )
