"""A persistence module for pyeventsourcing (``pip install 'eventlog-embedded[eventsourcing]'``).

Select it with the environment of a pyeventsourcing application::

    PERSISTENCE_MODULE=eventlog.eventsourcing
    EVENTLOG_DATA_DIR=/path/to/data      (or ":memory:" for a log in memory)

Optional settings: ``EVENTLOG_FSYNC`` (``never`` (default), ``interval`` or
``always``: eventlog.open's ``fsync``), ``EVENTLOG_CACHE_EVENTS`` (the events each
recorder keeps decoded, default 10,000; 0: none) and ``CREATE_TABLE`` (``y``
(default): create the recorders' topics). Like every pyeventsourcing setting they may be
prefixed with the application's name (``BANKACCOUNTS_EVENTLOG_DATA_DIR``).

Factories of one process that name the same directory share one open EventLog
(an EventLog locks its directory against every other opener). Topics:
``<application name>.events`` (the application and process recorders),
``<application name>.<purpose>`` (aggregate recorders: ``.snapshots``) and
``<application name>.tracking``. See docs/event-sourcing.md.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from eventsourcing.persistence import InfrastructureFactory as _InfrastructureFactory
from eventsourcing.persistence import ProgrammingError
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

from ..log import EventLog
from ..log import open as _open_log
from .recorders import (
    EventLogAggregateRecorder,
    EventLogApplicationRecorder,
    EventLogProcessRecorder,
    EventLogRecorder,
    EventLogSubscription,
    EventLogTrackingRecorder,
    cache_events_default,
)

__all__ = [
    "EventLogAggregateRecorder",
    "EventLogApplicationRecorder",
    "EventLogProcessRecorder",
    "EventLogRecorder",
    "EventLogSubscription",
    "EventLogTrackingRecorder",
    "Factory",
]

_shared_lock = threading.Lock()
_shared: dict[str, tuple[EventLog, int]] = {}  # real path -> (open log, factories using it)
_UNSAFE = re.compile(r"[^a-zA-Z0-9._-]")


def _acquire(path: str, fsync: str) -> EventLog:
    key = os.path.realpath(path)
    with _shared_lock:
        found = _shared.get(key)
        if found is not None and not found[0].closed:
            _shared[key] = (found[0], found[1] + 1)
            return found[0]
        log = _open_log(path, fsync=fsync)
        _shared[key] = (log, 1)
        return log


def _release(log: EventLog) -> None:
    with _shared_lock:
        for key, (shared, users) in list(_shared.items()):
            if shared is log:
                if users > 1:
                    _shared[key] = (shared, users - 1)
                    return
                del _shared[key]
                break
    log.close()


class Factory(_InfrastructureFactory[EventLogTrackingRecorder]):
    """pyeventsourcing's InfrastructureFactory for eventlog: constructs the recorders
    over the EventLog in ``EVENTLOG_DATA_DIR``.

    Raises OSError (as pyeventsourcing's SQLite factory does) when the directory is
    not set, or cannot be opened (another process holds it: LogDirLockedError).
    """

    EVENTLOG_DATA_DIR = "EVENTLOG_DATA_DIR"
    EVENTLOG_FSYNC = "EVENTLOG_FSYNC"
    EVENTLOG_CACHE_EVENTS = "EVENTLOG_CACHE_EVENTS"
    CREATE_TABLE = "CREATE_TABLE"

    aggregate_recorder_class = EventLogAggregateRecorder
    application_recorder_class = EventLogApplicationRecorder
    tracking_recorder_class = EventLogTrackingRecorder
    process_recorder_class = EventLogProcessRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        path = self.env.get(self.EVENTLOG_DATA_DIR)
        if not path:
            raise OSError(
                "eventlog data directory not found in the environment; set one of "
                f"{', '.join(self.env.create_keys(self.EVENTLOG_DATA_DIR))} "
                "(a directory path, or ':memory:')"
            )
        fsync = self.env.get(self.EVENTLOG_FSYNC) or "never"
        cache = self.env.get(self.EVENTLOG_CACHE_EVENTS)
        if cache is None or cache == "":
            self.cache_events = cache_events_default
        elif cache.strip().isdigit():
            self.cache_events = int(cache)
        else:
            raise ProgrammingError(
                f"{self.EVENTLOG_CACHE_EVENTS} must be a whole number of events >= 0 "
                f"(0: no cache), got {cache!r}"
            )
        self._shared = path != ":memory:"
        self.log = _acquire(path, fsync) if self._shared else _open_log(None, fsync=fsync)
        self._closed = False
        prefix = _UNSAFE.sub("_", self.env.name) if self.env.name else "eventsourcing"
        self.topic_prefix = prefix + "."

    def _create(self) -> bool:
        return bool(strtobool(self.env.get(self.CREATE_TABLE) or "yes"))

    def aggregate_recorder(self, purpose: str = "events") -> EventLogAggregateRecorder:
        return self.aggregate_recorder_class(
            self.log, self.topic_prefix + _UNSAFE.sub("_", purpose), create_topic=self._create(),
            cache_events=self.cache_events,
        )

    def application_recorder(self) -> EventLogApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls: Any = resolve_topic(topic) if topic else self.application_recorder_class
        assert issubclass(cls, EventLogApplicationRecorder), cls
        return cls(self.log, self.topic_prefix + "events", create_topic=self._create(),
                   cache_events=self.cache_events)

    def tracking_recorder(
        self, tracking_recorder_class: type[EventLogTrackingRecorder] | None = None
    ) -> EventLogTrackingRecorder:
        cls: Any = tracking_recorder_class
        if cls is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            cls = resolve_topic(topic) if topic else self.tracking_recorder_class
        assert issubclass(cls, EventLogTrackingRecorder), cls
        return cls(self.log, self.topic_prefix + "tracking", create_topic=self._create(),
                   cache_events=self.cache_events)

    def process_recorder(self) -> EventLogProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls: Any = resolve_topic(topic) if topic else self.process_recorder_class
        assert issubclass(cls, EventLogProcessRecorder), cls
        return cls(self.log, self.topic_prefix + "events", create_topic=self._create(),
                   cache_events=self.cache_events)

    def close(self) -> None:
        """Release the EventLog (closed when the last factory sharing it closes)."""
        if self._closed:
            return
        self._closed = True
        if self._shared:
            _release(self.log)
        else:
            self.log.close()
