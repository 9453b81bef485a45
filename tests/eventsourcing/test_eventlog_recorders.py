"""eventlog.eventsourcing beyond pyeventsourcing's own cases: its settings, shared logs,
atomicity of tracking with events, subscriptions that see other writers."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip(
    "eventsourcing",
    reason="pyeventsourcing is not installed: pip install -e '.[eventsourcing]'",
)

from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import Environment

import eventlog
from eventlog.eventsourcing import (
    EventLogApplicationRecorder,
    EventLogProcessRecorder,
    Factory,
)
from eventlog.eventsourcing.recorders import originator_id_of, originator_key


def event(originator, version: int, state: bytes = b"{}") -> StoredEvent:
    return StoredEvent(originator, version, "Topic", state)


def test_factory_needs_a_data_directory() -> None:
    with pytest.raises(OSError, match="EVENTLOG_DATA_DIR"):
        Factory(Environment("Bank", {}))


def test_factories_of_one_directory_share_one_log(tmp_path) -> None:
    env = {"EVENTLOG_DATA_DIR": str(tmp_path / "d")}
    a = Factory(Environment("Bank", env))
    b = Factory(Environment("Bank", env))
    assert a.log is b.log
    a.application_recorder().insert_events([event(uuid.uuid4(), 1)])
    assert b.application_recorder().max_notification_id() == 1
    a.close()
    assert not b.log.closed
    b.close()
    assert b.log.closed
    with eventlog.open(str(tmp_path / "d")) as log:  # the lock was released
        assert log.topics() == ["Bank.events"]


def test_memory_data_directory() -> None:
    factory = Factory(Environment("", {"EVENTLOG_DATA_DIR": ":memory:"}))
    recorder = factory.application_recorder()
    assert recorder.insert_events([event("abc", 1)]) == [1]
    assert recorder.select_events("abc")[0].originator_id == "abc"
    factory.close()


def test_without_create_table_a_missing_topic_is_an_operational_error(tmp_path) -> None:
    factory = Factory(Environment("X", {"EVENTLOG_DATA_DIR": str(tmp_path), "CREATE_TABLE": "n"}))
    recorder = factory.aggregate_recorder()
    with pytest.raises(OperationalError, match="create it first"):
        recorder.select_events(uuid.uuid4())
    factory.close()


def test_originator_keys_round_trip() -> None:
    u = uuid.uuid4()
    assert originator_id_of(originator_key(u)) == u
    assert originator_id_of(originator_key("acct-1")) == "acct-1"
    assert originator_key(u) != originator_key(str(u)[:15])


def test_tracking_conflict_appends_no_event(tmp_path) -> None:
    with eventlog.open(str(tmp_path)) as log:
        recorder = EventLogProcessRecorder(log, "p.events")
        recorder.insert_events([event("a", 1)], tracking=Tracking("up", 5))
        end = recorder.partition.end_offset
        with pytest.raises(IntegrityError):
            recorder.insert_events([event("b", 1)], tracking=Tracking("up", 5))
        assert recorder.partition.end_offset == end
        assert recorder.select_events("b") == []
        assert recorder.max_tracking_id("up") == 5
        # events and tracking record in one batch: ids skip the tracking record's offset
        assert recorder.insert_events([event("b", 1)], tracking=Tracking("up", 6)) == [3]
        assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 3]
        assert recorder.max_notification_id() == 3


def test_versions_of_one_originator_must_rise(tmp_path) -> None:
    with eventlog.open(str(tmp_path)) as log:
        recorder = EventLogApplicationRecorder(log, "a.events")
        recorder.insert_events([event("a", 5)])
        with pytest.raises(IntegrityError, match="must rise"):
            recorder.insert_events([event("a", 3)])
        with pytest.raises(IntegrityError, match="strictly increasing"):
            recorder.insert_events([event("b", 2), event("b", 1)])
        assert [e.originator_version for e in recorder.select_events("a")] == [5]


def test_subscription_sees_events_of_another_recorder(tmp_path) -> None:
    with eventlog.open(str(tmp_path)) as log:
        reader = EventLogApplicationRecorder(log, "a.events")
        writer = EventLogApplicationRecorder(log, "a.events")
        with reader.subscribe(gt=None) as subscription:
            writer.insert_events([event("a", 1)])
            notification = next(subscription)
            assert (notification.id, notification.originator_id) == (1, "a")
            writer.insert_events([event("a", 2)])
            assert next(subscription).originator_version == 2
