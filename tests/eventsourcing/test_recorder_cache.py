"""The recorders' cache of decoded events (EventLogRecorder's ``cache_events``): a
select or the version check of an insert served from it must give what the log
gives, whatever else changed the partition meanwhile (another writer, truncation,
compaction, a closed or reopened log), and it stays within its bound."""

from __future__ import annotations

import threading
import uuid

import pytest

pytest.importorskip(
    "eventsourcing",
    reason="pyeventsourcing is not installed: pip install -e '.[eventsourcing]'",
)

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

import eventlog
from eventlog.eventsourcing import EventLogAggregateRecorder, EventLogApplicationRecorder
from eventlog.eventsourcing.recorders import _packb, originator_key


def event(originator, version: int, state: bytes = b"{}") -> StoredEvent:
    return StoredEvent(originator, version, "Topic", state)


def uncached(recorder: EventLogAggregateRecorder, originator) -> list[StoredEvent]:
    """What the log holds for ``originator`` (a recorder without a cache)."""
    fresh = EventLogAggregateRecorder(recorder.log, recorder.topic, create_topic=False,
                                      cache_events=0)
    return list(fresh.select_events(originator))


@pytest.fixture
def log(tmp_path):
    with eventlog.open(str(tmp_path / "d")) as opened:
        yield opened


def test_cached_selects_and_filters_match_the_log(log) -> None:
    recorder = EventLogApplicationRecorder(log, "app")
    a, b = uuid.uuid4(), "acct-1"
    recorder.insert_events([event(a, 1), event(b, 1)])
    recorder.insert_events([event(a, 2, b"x")])
    recorder.insert_events([event(a, 3), event(a, 4), event(b, 2)])
    assert recorder._cache  # the inserts were cached
    for originator in (a, b):
        assert recorder.select_events(originator) == uncached(recorder, originator)
    assert [e.originator_version for e in recorder.select_events(a, gt=1, lte=3)] == [2, 3]
    assert [e.originator_version for e in recorder.select_events(a, desc=True, limit=2)] == [4, 3]
    assert recorder.select_events(a)[1].state == b"x"
    returned = recorder.select_events(a)
    returned.clear()  # the caller's list, not the cache's
    assert len(recorder.select_events(a)) == 4


def test_an_append_by_another_writer_is_seen(log) -> None:
    recorder = EventLogAggregateRecorder(log, "app")
    a = uuid.uuid4()
    recorder.insert_events([event(a, 1)])
    assert len(recorder.select_events(a)) == 1  # cached
    other = EventLogAggregateRecorder(log, "app", create_topic=False)
    other.insert_events([event(a, 2)])
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 2]
    # a raw append of the key: the next insert's version check sees it
    recorder.partition.append([(originator_key(a), _packb((7, "Topic", b"{}")))])
    with pytest.raises(IntegrityError, match="at version 7"):
        recorder.insert_events([event(a, 3)])


def test_truncation_to_an_equal_count_of_other_records_is_not_served(log) -> None:
    """A cache entry counts a key's records; a truncation and as many new records of
    that key must not make the old entry look exact (the index generation)."""
    recorder = EventLogAggregateRecorder(log, "app")
    a = uuid.uuid4()
    recorder.insert_events([event(a, 1)])
    recorder.insert_events([event(a, 2, b"old")])
    assert recorder.select_events(a)[1].state == b"old"
    partition = recorder.partition
    partition.truncate_to(1)
    partition.append([(originator_key(a), _packb((5, "Topic", b"new")))])
    assert partition.key_version(originator_key(a)) == 2  # as many records as cached
    found = recorder.select_events(a)
    assert [(e.originator_version, e.state) for e in found] == [(1, b"{}"), (5, b"new")]
    with pytest.raises(IntegrityError, match="at version 5"):
        recorder.insert_events([event(a, 3)])  # checked against 5, not the cached 2


def test_records_removed_between_the_check_and_the_append_make_it_check_again(log) -> None:
    """The version check reads the key's last record, then appends expecting its
    count: a truncation and another writer's record in between leave the count as
    it was, so the append must refuse (nothing removed may go unnoticed) and the
    check run again, against the record now there."""
    recorder = EventLogAggregateRecorder(log, "app", cache_events=0)
    a = uuid.uuid4()
    key = originator_key(a)
    recorder.insert_events([event(a, 1)])
    recorder.insert_events([event(a, 2)])
    partition = recorder.partition
    read = partition._key_state
    calls = []

    def state_then_swap(k: bytes):
        found = read(k)
        if not calls:  # once: the last record replaced by a later version
            partition.truncate_to(1)
            partition.append([(key, _packb((9, "Topic", b"{}")))])
        calls.append(found)
        return found

    partition._key_state = state_then_swap
    with pytest.raises(IntegrityError, match="at version 9"):
        recorder.insert_events([event(a, 3)])
    assert len(calls) == 2
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 9]


def test_compaction_is_seen(tmp_path) -> None:
    with eventlog.open(str(tmp_path / "d")) as log:
        log.create_topic("snapshots", cleanup_policy="compact", segment_bytes=200,
                         min_cleanable_dirty_ratio=0.0)
        recorder = EventLogAggregateRecorder(log, "snapshots", create_topic=False)
        ids = [uuid.uuid4() for _ in range(3)]
        for version in range(1, 6):
            for originator in ids:
                recorder.insert_events([event(originator, version)])
        assert [len(recorder.select_events(i)) for i in ids] == [5, 5, 5]
        recorder.partition.roll()
        assert recorder.partition.compact().records_removed > 0
        for originator in ids:
            found = recorder.select_events(originator)
            assert found == uncached(recorder, originator)
            assert len(found) < 5 and found[-1].originator_version == 5


def test_closed_and_reopened_log(tmp_path) -> None:
    path = str(tmp_path / "d")
    log = eventlog.open(path)
    recorder = EventLogAggregateRecorder(log, "app")
    a = uuid.uuid4()
    recorder.insert_events([event(a, 1)])
    assert len(recorder.select_events(a)) == 1
    log.close()
    with pytest.raises((OperationalError, eventlog.ClosedError)):
        recorder.select_events(a)  # not served from the cache
    with eventlog.open(path) as reopened:
        again = EventLogAggregateRecorder(reopened, "app")
        again.insert_events([event(a, 2)])
        assert [e.originator_version for e in again.select_events(a)] == [1, 2]


def test_the_cache_keeps_to_its_bound(log) -> None:
    recorder = EventLogAggregateRecorder(log, "app", cache_events=20)
    ids = [uuid.uuid4() for _ in range(30)]
    for version in (1, 2):
        for originator in ids:
            recorder.insert_events([event(originator, version)])
    for originator in ids:
        assert [e.originator_version for e in recorder.select_events(originator)] == [1, 2]
    held = sum(len(entry[2]) for entry in recorder._cache.values())
    assert held == recorder._cached_events <= 20
    big = uuid.uuid4()  # over a tenth of the bound: read from the log every time
    recorder.insert_events([event(big, v) for v in range(1, 4)])
    assert originator_key(big) not in recorder._cache
    assert len(recorder.select_events(big)) == 3


def test_bad_cache_size_is_refused(log) -> None:
    from eventsourcing.persistence import ProgrammingError

    for bad in (-1, 1.5, "10"):
        with pytest.raises(ProgrammingError, match="cache_events"):
            EventLogAggregateRecorder(log, "app", cache_events=bad)


def test_concurrent_writers_of_one_aggregate(log) -> None:
    """Two recorders (each its own cache) insert an aggregate's next version from two
    threads: every version lands once, and both select what the log holds."""
    recorders = [EventLogAggregateRecorder(log, "app") for _ in range(2)]
    a = uuid.uuid4()
    recorders[0].insert_events([event(a, 1)])
    won: list[int] = []

    def write(recorder: EventLogAggregateRecorder) -> None:
        for _ in range(200):
            current = recorder.select_events(a)
            version = current[-1].originator_version + 1
            try:
                recorder.insert_events([event(a, version)])
            except IntegrityError:
                continue
            won.append(version)

    threads = [threading.Thread(target=write, args=(r,)) for r in recorders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    versions = [e.originator_version for e in uncached(recorders[0], a)]
    assert versions == list(range(1, len(versions) + 1))
    assert sorted(won) == versions[1:]
    for recorder in recorders:
        assert recorder.select_events(a) == uncached(recorder, a)


def test_factory_cache_setting(tmp_path) -> None:
    from eventsourcing.persistence import ProgrammingError
    from eventsourcing.utils import Environment

    from eventlog.eventsourcing import Factory

    env = {"EVENTLOG_DATA_DIR": ":memory:", "EVENTLOG_CACHE_EVENTS": "0"}
    factory = Factory(Environment("Bank", env))
    recorder = factory.application_recorder()
    a = uuid.uuid4()
    recorder.insert_events([event(a, 1)])
    assert len(recorder.select_events(a)) == 1 and not recorder._cache
    factory.close()
    factory = Factory(Environment("Bank", {"EVENTLOG_DATA_DIR": ":memory:"}))
    assert factory.aggregate_recorder()._cache_limit == 10_000
    factory.close()
    with pytest.raises(ProgrammingError, match="EVENTLOG_CACHE_EVENTS"):
        Factory(Environment("Bank", {"EVENTLOG_DATA_DIR": ":memory:",
                                     "EVENTLOG_CACHE_EVENTS": "lots"}))


def test_a_read_only_recorder_sees_what_the_writer_appends_since(tmp_path) -> None:
    """A recorder over a read-only view of another writer's log (nothing cached
    there): a select after the writer's next insert returns it, as ``read_key`` does
    (the key index catches up with the view, not only when first built)."""
    path = str(tmp_path / "d")
    with eventlog.open(path) as log:
        writer = EventLogApplicationRecorder(log, "app")
        a = uuid.uuid4()
        writer.insert_events([event(a, 1)])
        with eventlog.open(path, read_only=True) as view:
            reader = EventLogApplicationRecorder(view, "app", create_topic=False)
            assert len(reader.select_events(a)) == 1
            writer.insert_events([event(a, 2)])
            reader.partition.refresh()
            assert reader.partition.end_offset == 2
            assert [e.originator_version for e in reader.select_events(a)] == [1, 2]
            assert reader.partition._key_last_value(originator_key(a))[0] == 2
            assert not reader._cache
