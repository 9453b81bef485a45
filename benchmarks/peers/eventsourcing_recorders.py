"""eventsourcing's application recorders (POPO in memory, and SQLite) as a log.

A record becomes a ``StoredEvent``: the key is the originator id, the value is the
state, and the version counts that key's records (1, 2, ...), so keys drawn from the
entity pool make aggregates with many versions. Stored events are built before the
timed region (an application would build them from its domain events). Reading
walks ``select_notifications`` (the application log, in insertion order) by 1,000.
The SQLite recorder commits one transaction per ``insert_events`` call.
"""

from __future__ import annotations

from pathlib import Path
from time import perf_counter
from typing import Any

from ..harness import Case
from ..scratch import make_dir, remove_dir
from ..workloads import BATCH_RECORDS, Dataset
from . import require

__all__ = ["append_batch", "append_one", "read_seq"]

_TOPIC = "benchmarks:Recorded"
_SELECT_LIMIT = 1_000


def _stored_events(data: Dataset) -> list[Any]:
    persistence = require("eventsourcing.persistence")
    versions: dict[bytes, int] = {}
    events = []
    for key, value in data.records:
        version = versions.get(key, 0) + 1
        versions[key] = version
        events.append(persistence.StoredEvent(key.decode(), version, _TOPIC, value))
    return events


class _Recorder:
    """A fresh recorder of one kind, and the scratch folder it may use."""

    def __init__(self, kind: str) -> None:
        self.folder: Path | None = None
        if kind == "popo":
            self.recorder = require("eventsourcing.popo").POPOApplicationRecorder()
            return
        sqlite = require("eventsourcing.sqlite")
        self.folder = make_dir("eventsourcing")
        self.datastore = sqlite.SQLiteDatastore(
            str(self.folder / "events.db"), originator_id_type="text"
        )
        self.recorder = sqlite.SQLiteApplicationRecorder(self.datastore)
        self.recorder.create_table()

    def close(self) -> None:
        if self.folder is not None:
            self.datastore.close()
            remove_dir(self.folder)


def _time_inserts(kind: str, calls: list[list[Any]]) -> float:
    holder = _Recorder(kind)
    try:
        insert = holder.recorder.insert_events
        start = perf_counter()
        for events in calls:
            insert(events)
        return perf_counter() - start
    finally:
        holder.close()


def _system(kind: str) -> str:
    return {"popo": "eventsourcing POPO recorder", "sqlite": "eventsourcing SQLite recorder"}[kind]


def append_batch(kind: str) -> Case:
    def setup(data: Dataset) -> list[list[Any]]:
        events = _stored_events(data)
        return [events[i : i + BATCH_RECORDS] for i in range(0, len(events), BATCH_RECORDS)]

    return Case(
        _system(kind),
        setup=setup,
        run=lambda calls: _time_inserts(kind, calls),
        note="1,000 events per insert_events call",
    )


def append_one(kind: str) -> Case:
    return Case(
        _system(kind),
        setup=lambda data: [[event] for event in _stored_events(data)],
        run=lambda calls: _time_inserts(kind, calls),
        max_records=(1_000, 5_000) if kind == "sqlite" else None,
        note="one event per insert_events call",
    )


def _read_notifications(state: tuple[_Recorder, int]) -> float:
    holder, expected = state
    select = holder.recorder.select_notifications
    count = 0
    start = perf_counter()
    position = 1
    while notifications := select(position, _SELECT_LIMIT):
        count += len(notifications)
        position = notifications[-1].id + 1
    elapsed = perf_counter() - start
    if count != expected:
        raise RuntimeError(f"read {count} notifications, expected {expected}")
    return elapsed


def read_seq(kind: str) -> Case:
    def setup(data: Dataset) -> tuple[_Recorder, int]:
        events = _stored_events(data)
        holder = _Recorder(kind)
        for i in range(0, len(events), BATCH_RECORDS):
            holder.recorder.insert_events(events[i : i + BATCH_RECORDS])
        return holder, len(events)

    return Case(
        _system(kind),
        setup=setup,
        run=_read_notifications,
        teardown=lambda state: state[0].close(),
        # The SQLite recorder's setup (inserting at ~100k/s) costs more than its reads.
        max_records=(20_000, 100_000) if kind == "sqlite" else None,
        note="select_notifications, 1,000 per call",
    )
