"""pyeventsourcing recorders over eventlog partitions.

Each recorder owns one single-partition topic of an EventLog (retention off):

- an aggregate's events are the records keyed by its originator id, found through the
  partition's key index (``Partition.read_key``), and appended with
  ``expected_key_versions`` so that two writers of one aggregate cannot both win;
- a notification id is the record's offset + 1, so ids are gap-free and in order in an
  application recorder (one batch per ``insert_events``: never interleaved);
- a tracking record (``Tracking(application_name, notification_id)``) is a record keyed
  ``b"t" + application_name`` appended in the same batch as the events it goes with, so
  both land or neither does (a batch is atomic, on disk and after a crash).

Record layout: key ``b"u" + uuid.bytes`` (a UUID originator id) or ``b"s" + utf-8``
(a str one) or ``b"t" + utf-8`` (tracking); value the msgpack of
``[originator_version, topic, state]`` (events) or of ``notification_id`` (tracking).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Sequence
from functools import partial
from itertools import pairwise, repeat
from operator import attrgetter
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    OperationalError,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from ..broker.partition import Partition
from ..errors import (
    ClosedError,
    KeyVersionConflictError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)
from ..log import EventLog

__all__ = [
    "EventLogAggregateRecorder",
    "EventLogApplicationRecorder",
    "EventLogProcessRecorder",
    "EventLogRecorder",
    "EventLogSubscription",
    "EventLogTrackingRecorder",
]

_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb
_unpack_row = partial(msgpack.unpackb, use_list=False)  # an event's value: a tuple
_originator_id = attrgetter("originator_id")
_originator_version = attrgetter("originator_version")
_topic = attrgetter("topic")
_state = attrgetter("state")
_UUID_TAG, _STR_TAG, _TRACKING_TAG = b"u", b"s", b"t"
_TRACKING_BYTE = _TRACKING_TAG[0]
_UUID_TAG_BITS = _UUID_TAG[0] << 128  # a UUID's int is below 2**128
notifications_read_records = 500  # records per read when selecting notifications
subscription_wait_s = 0.2  # how long a subscription's watcher waits before re-checking stop
# The offset index at Kafka's default density: an event read by key goes straight to
# its batch (the key index holds each record's batch position), so a denser index
# would only cost appends and memory (20 bytes an entry, in the Python heap).
topic_index_interval_bytes = 4096
cache_events_default = 10_000  # events a recorder keeps decoded (see EventLogRecorder)
cache_aggregate_share = 10  # no aggregate of over 1/10 of that is cached
_id_types = frozenset((UUID, str))
small_aggregate_events = 4  # up to this many events are built one by one (stored_events)


def originator_key(originator_id: UUID | str) -> bytes:
    """The record key of an originator id."""
    if type(originator_id) is UUID:  # b"u" + its 16 bytes, in one int-to-bytes call
        return (originator_id.int | _UUID_TAG_BITS).to_bytes(17, "big")
    if isinstance(originator_id, UUID):
        return _UUID_TAG + originator_id.bytes
    if isinstance(originator_id, str):
        return _STR_TAG + originator_id.encode()
    raise ProgrammingError(
        f"originator_id must be a UUID or a str, got {type(originator_id).__name__}"
    )


def originator_id_of(key: bytes) -> UUID | str:
    """The originator id a record key stands for (the inverse of ``originator_key``)."""
    if key[:1] == _UUID_TAG:
        return UUID(bytes=key[1:])
    return key[1:].decode()


def tracking_key(application_name: str) -> bytes:
    return _TRACKING_TAG + application_name.encode()


# Stored events are built from decoded values without a Python-level __init__ per
# event: ``object.__new__`` and one ``__dict__`` each, in C-level passes (``map``).
# StoredEvent is a plain frozen dataclass (no slots, no __post_init__); the probe
# below checks that this builds what its constructor builds, else the constructor
# is used (a later pyeventsourcing may change the class).
_EVENT_FIELDS = ("originator_id", "originator_version", "topic", "state")
_new_object = object.__new__
_set_attribute = object.__setattr__


def _built_by_dict(cls: type, args: tuple) -> bool:
    """True if ``cls`` instances built by ``object.__new__`` and a ``__dict__`` of
    ``args`` by field name equal ``cls(*args)``."""
    try:
        names = tuple(field.name for field in dataclasses.fields(cls))
        probe = _new_object(cls)
        _set_attribute(probe, "__dict__", dict(zip(names, args)))
        return (len(names) == len(args) and hasattr(cls, "__dict__")
                and "__post_init__" not in dir(cls) and probe == cls(*args)
                and repr(probe) == repr(cls(*args)))
    except Exception:
        return False


_FAST_EVENTS = _built_by_dict(StoredEvent, (UUID(int=1), 1, "t", b"s"))
_FAST_NOTIFICATIONS = _built_by_dict(Notification, (UUID(int=1), 1, "t", b"s", 1))


def stored_events(originator_id: UUID | str, rows: Sequence[Sequence[Any]]) -> list[StoredEvent]:
    """StoredEvents of ``originator_id`` from ``(version, topic, state)`` rows."""
    n = len(rows)
    if not _FAST_EVENTS:
        return [StoredEvent(originator_id, *row) for row in rows]
    if n <= small_aggregate_events:  # one by one: the passes' set-up costs more
        events = []
        for version, topic, state in rows:
            event = _new_object(StoredEvent)
            _set_attribute(event, "__dict__", {
                "originator_id": originator_id, "originator_version": version,
                "topic": topic, "state": state,
            })
            events.append(event)
        return events
    events = list(map(_new_object, repeat(StoredEvent, n)))
    dicts = map(dict, map(zip, repeat(_EVENT_FIELDS, n),
                          zip(repeat(originator_id, n), *zip(*rows))))
    deque(map(_set_attribute, events, repeat("__dict__", n), dicts), 0)
    return events


def notification(originator_id: UUID | str, version: int, topic: str, state: bytes,
                 notification_id: int) -> Notification:
    """A Notification (as its constructor, without its Python-level __init__)."""
    if not _FAST_NOTIFICATIONS:
        return Notification(originator_id=originator_id, originator_version=version,
                            topic=topic, state=state, id=notification_id)
    found = _new_object(Notification)
    _set_attribute(found, "__dict__", {
        "originator_id": originator_id, "originator_version": version, "topic": topic,
        "state": state, "id": notification_id,
    })
    return found


class EventLogRecorder:
    """The partition a recorder works on: topic ``topic`` of ``log``, created with one
    partition and no retention if ``create_topic`` and missing, else looked up at
    first use (OperationalError if it does not exist by then).

    ``cache_events``: the most events the recorder keeps decoded in memory (default
    ``cache_events_default``; 0: none), the latest aggregates it wrote or read whole,
    so that a select of one of them, and the version check of the next insert,
    need no read of the log. An entry is used only while it is exact: the
    partition's key index still gives its key the number of records it holds, and
    no record has left the partition since it was made (the index's generation);
    anything else (another writer's append, a truncation, compaction, retention,
    a closed log) makes it miss and the log is read. A read-only log caches nothing.
    """

    def __init__(self, log: EventLog, topic: str, *, create_topic: bool = True,
                 cache_events: int | None = None) -> None:
        if cache_events is None:
            cache_events = cache_events_default
        if type(cache_events) is not int or cache_events < 0:
            raise ProgrammingError(
                f"cache_events must be an int >= 0 (0: no cache), got {cache_events!r}")
        self.log = log
        self.topic = topic
        self._partition: Partition | None = None
        # {originator key: (key index generation, record count, its StoredEvents)}, in
        # the order last written (the first is evicted first); read lock-free, changed
        # under _cache_lock.
        self._cache: dict[bytes, tuple[int, int, tuple[StoredEvent, ...]]] = {}
        self._cache_limit = 0 if getattr(log, "read_only", False) else cache_events
        self._cache_aggregate_max = max(1, cache_events // cache_aggregate_share)
        self._cached_events = 0
        self._cache_lock = threading.Lock()
        if create_topic:
            self.create_table()

    def create_table(self) -> None:
        """Create the recorder's topic if it does not exist (the name follows SQL
        recorders: the ``CREATE_TABLE`` setting decides whether a factory calls it)."""
        if self.topic in self.log.topics():
            return
        try:
            self.log.create_topic(self.topic, 1, retention_ms=-1, retention_bytes=-1,
                                  index_interval_bytes=topic_index_interval_bytes)
        except TopicExistsError:
            pass  # another recorder created it first
        except (StorageError, ClosedError) as exc:
            raise OperationalError(f"cannot create topic {self.topic!r}: {exc}") from exc

    @property
    def partition(self) -> Partition:
        p = self._partition
        if p is None:
            try:
                p = self._partition = self.log.topic(self.topic).partition(0)
            except (UnknownTopicError, ClosedError) as exc:
                raise OperationalError(
                    f"topic {self.topic!r} is not available ({exc}); create it first "
                    "(CREATE_TABLE=y, the default)"
                ) from exc
        return p

    def _last(self, key: bytes) -> tuple[int, Any]:
        """(record count, decoded value of the last record) of ``key``; (0, None)."""
        _generation, count, last = self._state(key)
        return count, last

    def _state(self, key: bytes) -> tuple[int, int, Any]:
        """(key index generation, record count, decoded value of the last record) of
        ``key``, from the log; (generation, 0, None) for a key with none."""
        try:
            generation, count, value = self.partition._key_state(key)
        except StorageError as exc:
            raise OperationalError(f"cannot read {self.topic!r}: {exc}") from exc
        return generation, count, (None if value is None else _unpackb(value))

    # ------------------------------------------------------------------ the cache

    def _cached(self, partition: Partition, key: bytes
                ) -> tuple[int, int, tuple[StoredEvent, ...]] | None:
        """``key``'s cache entry if it is exact now (see the class docstring): its
        generation is the partition's and the key index counts its records."""
        entry = self._cache.get(key)
        if entry is None:
            return None
        index = partition._key_index
        if index is None or entry[0] != partition._key_index_generation or partition._closed:
            return None
        return entry if index.count(key) == entry[1] else None

    def _remember(self, key: bytes, generation: int, count: int,
                  events: tuple[StoredEvent, ...] | None) -> None:
        """Cache ``events``, all ``count`` records of ``key`` at ``generation`` (None:
        not known whole, or not cacheable: forget the key), evicting the entries
        written longest ago beyond the limit."""
        with self._cache_lock:
            cache = self._cache
            old = cache.pop(key, None)
            if old is not None:
                self._cached_events -= len(old[2])
            if events is None or len(events) > self._cache_aggregate_max:
                return
            cache[key] = (generation, count, events)
            cached = self._cached_events + len(events)
            if cached > self._cache_limit:
                # An eighth of the bound at once, the dict rebuilt from the rest: popping
                # its first entry one at a time costs a scan over every entry deleted
                # before it (7 µs a pop at 10,000 entries).
                target = self._cache_limit - self._cache_limit // 8
                entries = iter(cache.items())
                for _key, entry in entries:
                    cached -= len(entry[2])
                    if cached <= target:
                        break
                self._cache = dict(entries)
            self._cached_events = cached

    # ------------------------------------------------------------------ writing

    def _append(
        self,
        stored_events: Sequence[StoredEvent],
        tracking: Tracking | None = None,
    ) -> int | None:
        """Append the events (and tracking record) as one batch, checked per originator
        (versions must rise) and per tracking name (ids must rise), atomically with
        the append. Returns the offset of the first record, None if nothing to append."""
        partition = self._partition or self.partition
        if partition.lingering:
            partition.flush_lingering()  # their records count in the versions checked
        if len(stored_events) == 1 and tracking is None:  # one command's event: kept flat
            return self._append_one(partition, stored_events[0])
        return self._append_many(partition, stored_events, tracking)

    def _append_one(self, partition: Partition, event: StoredEvent) -> int:
        """``_append`` of one event without tracking (one command's): the version
        check from the cache where it is exact, else from the log."""
        key = originator_key(event.originator_id)
        version = event.originator_version
        value = _packb((version, event.topic, event.state))
        while True:
            generation = partition._key_index_generation
            index = partition._key_index
            entry = self._cached(partition, key)
            if entry is not None and entry[0] == generation:
                count, events = entry[1], entry[2]
                _check_rises(key, version, events[-1].originator_version)
            elif index is not None and key not in index:  # a new originator
                count, events = 0, None
            else:
                events = None
                generation, count, last = self._state(key)
                if count:
                    _check_rises(key, version, last[0])
            try:
                base = partition._append_one_expecting(key, value, count, generation)
            except KeyVersionConflictError:
                continue  # another writer got in first: check again, against its records
            except StorageError as exc:
                raise OperationalError(f"append to {self.topic!r} failed: {exc}") from exc
            if self._cache_limit:
                self._remember(key, generation, count + 1, _extended(events, count, event))
            return base

    def _append_many(self, partition: Partition, stored_events: Sequence[StoredEvent],
                     tracking: Tracking | None) -> int | None:
        """``_append`` of several events, or with a tracking record: one batch."""
        keys = list(map(originator_key, map(_originator_id, stored_events)))
        versions = list(map(_originator_version, stored_events))
        values = list(map(_packb, zip(versions, map(_topic, stored_events),
                                      map(_state, stored_events))))
        firsts = _first_versions(keys, versions)
        if tracking is not None:
            keys.append(tracking_key(tracking.application_name))
            values.append(_packb(tracking.notification_id))
        if not keys:
            return None
        while True:
            # The generation first: a removal after it makes the append refuse.
            generation = partition._key_index_generation
            expected: dict[bytes, int] = {}
            known: dict[bytes, tuple[StoredEvent, ...] | None] = {}
            for key, first in firsts.items():
                entry = self._cached(partition, key) if self._cache_limit else None
                if entry is not None and entry[0] == generation:
                    count, events = entry[1], entry[2]
                    _check_rises(key, first, events[-1].originator_version)
                else:
                    events = None
                    found, count, last = self._state(key)
                    if found != generation:
                        break  # records left meanwhile: read every key again
                    if count:
                        _check_rises(key, first, last[0])
                expected[key] = count
                known[key] = events
            else:
                if tracking is not None:
                    key = keys[-1]
                    count, last = self._last(key)
                    if last is not None and tracking.notification_id <= last:
                        raise IntegrityError(
                            f"tracking notification id {tracking.notification_id} of "
                            f"{tracking.application_name!r} is not greater than the "
                            f"recorded {last}"
                        )
                    expected[key] = count
                try:
                    base = partition._append_expecting(keys, values, expected, generation)
                except KeyVersionConflictError:
                    continue  # another writer got in first: check again, against its records
                except StorageError as exc:
                    raise OperationalError(f"append to {self.topic!r} failed: {exc}") from exc
                if self._cache_limit:
                    self._remember_all(generation, expected, known, keys, stored_events)
                return base

    def _remember_all(self, generation: int, expected: dict[bytes, int],
                      known: dict[bytes, tuple[StoredEvent, ...] | None], keys: list[bytes],
                      stored_events: Sequence[StoredEvent]) -> None:
        """After a batch of events landed at ``generation`` with each originator at
        its ``expected`` count: cache each originator's events, where known whole."""
        added: dict[bytes, list[StoredEvent]] = {}
        for key, event in zip(keys, stored_events):
            added.setdefault(key, []).append(event)
        for key, new in added.items():
            count, events = expected[key], known[key]
            for event in new:
                events = _extended(events, count, event)
                count += 1
            self._remember(key, generation, count, events)


def _check_rises(key: bytes, version: Any, last: Any) -> None:
    """IntegrityError unless ``version`` (an originator's next) is above ``last`` (its
    recorded last)."""
    if version <= last:
        raise IntegrityError(
            f"originator {originator_id_of(key)} is at version {last}; version "
            f"{version} is already recorded or older (versions of one originator must rise)"
        )


def _extended(events: tuple[StoredEvent, ...] | None, count: int, event: StoredEvent
              ) -> tuple[StoredEvent, ...] | None:
    """An originator's cached events after ``event`` landed behind its ``count``
    records: None unless those are known (``events``, or none) and ``event`` is what a
    select of it would build (a StoredEvent of exactly the stored types)."""
    if (type(event) is not StoredEvent or type(event.originator_version) is not int
            or type(event.topic) is not str or type(event.state) is not bytes
            or type(event.originator_id) not in _id_types):
        return None
    if not count:
        return (event,)
    return None if events is None else (*events, event)


def _first_versions(keys: list[bytes], versions: list[Any]) -> dict[bytes, Any]:
    """{originator key: its first version among ``versions``}, IntegrityError unless
    each originator's versions (in insert order) strictly rise."""
    grouped: dict[bytes, list[Any]] = {}
    for key, version in zip(keys, versions):
        grouped.setdefault(key, []).append(version)
    for key, group in grouped.items():
        if any(a >= b for a, b in pairwise(group)):
            raise IntegrityError(
                f"the versions of originator {originator_id_of(key)} in one insert are "
                f"not strictly increasing: {group}"
            )
    return {key: group[0] for key, group in grouped.items()}


class EventLogAggregateRecorder(EventLogRecorder, AggregateRecorder):
    """Stored events of aggregates (also snapshots): ``insert_events`` returns None."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._append(stored_events)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        key = originator_key(originator_id)
        partition = self._partition or self.partition
        if partition.lingering:
            partition.flush_lingering()
        if self._cache_limit:
            entry = self._cached(partition, key)
            if entry is not None:
                if gt is None and lte is None and not desc and limit is None:
                    return list(entry[2])
                return _selected(entry[2], gt, lte, desc, limit)
        from_version = 0
        if desc and lte is None and limit is not None:
            # the newest ``limit`` records are the highest versions: read only them
            from_version = max(0, partition.key_version(key) - limit)
        generation = partition._key_index_generation  # before the read (see _remember)
        values = partition._key_values(key, from_version)
        if not values:
            return []
        rows = list(map(_unpack_row, values))
        if from_version == 0 and self._cache_limit and len(rows) <= self._cache_aggregate_max:
            # Whole: cached as read (an entry counting fewer records than the index
            # holds, one read while records were removed, is never used).
            events = stored_events(originator_id, rows)
            if type(originator_id) in _id_types:
                self._remember(key, generation, len(events), tuple(events))
            if gt is None and lte is None and not desc and limit is None:
                return events
            return _selected(events, gt, lte, desc, limit)
        if gt is not None or lte is not None:
            rows = [row for row in rows
                    if (gt is None or row[0] > gt) and (lte is None or row[0] <= lte)]
        if desc:
            rows.reverse()
        if limit is not None:
            rows = rows[:limit]
        return stored_events(originator_id, rows)


def _selected(events: Sequence[StoredEvent], gt: int | None, lte: int | None, desc: bool,
              limit: int | None) -> list[StoredEvent]:
    """``select_events``' filters over an originator's events (oldest first)."""
    out = [event for event in events
           if (gt is None or event.originator_version > gt)
           and (lte is None or event.originator_version <= lte)]
    if desc:
        out.reverse()
    return out if limit is None else out[:limit]


class EventLogApplicationRecorder(EventLogAggregateRecorder, ApplicationRecorder):
    """Events in aggregate sequences and in one application sequence, the notification
    log: notification id = offset + 1."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        base = self._append(stored_events, kwargs.get("tracking"))
        if base is None:
            return []
        if len(stored_events) == 1:
            return [base + 1]
        return list(range(base + 1, base + 1 + len(stored_events)))

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        partition = self.partition
        first_id = 1 if start is None else (start if inclusive_of_start else start + 1)
        offset = max(first_id - 1, partition.start_offset)
        end = partition.end_offset
        if stop is not None:
            end = min(end, stop)  # ids <= stop are offsets < stop
        wanted = frozenset(topics)
        out: list[Notification] = []
        while offset < end and len(out) < limit:
            batch = partition.read(offset, min(notifications_read_records, end - offset))
            if not batch:
                break
            for record in batch:
                if record.offset >= end:
                    break
                key = record.key
                if key is None or key[0] == _TRACKING_BYTE:
                    continue
                version, topic, state = _unpackb(record.value)
                if wanted and topic not in wanted:
                    continue
                out.append(notification(originator_id_of(key), version, topic, state,
                                        record.offset + 1))
                if len(out) == limit:
                    break
            offset = batch[-1].offset + 1
        return out

    def max_notification_id(self) -> int | None:
        partition = self.partition
        offset = partition.end_offset - 1
        while offset >= partition.start_offset:  # the last record that is an event
            records = partition.read(offset, 1)
            if not records:
                break
            key = records[0].key
            if key is not None and key[0] != _TRACKING_BYTE:
                return offset + 1
            offset -= 1
        return None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return EventLogSubscription(self, gt=gt, topics=topics)


class EventLogSubscription(ListenNotifySubscription[EventLogApplicationRecorder]):
    """Notifications after ``gt``, then new ones as any writer of the partition (this
    recorder, another recorder, a producer) appends them: a watcher thread waits on
    the partition (``Partition.wait_for``) and wakes the pulling thread."""

    def __init__(
        self,
        recorder: EventLogApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self._partition = recorder.partition
        self._watch_from = self._partition.end_offset
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._watcher = threading.Thread(target=self._watch, daemon=True,
                                         name=f"eventlog-subscription-{recorder.topic}")
        self._watcher.start()

    def _watch(self) -> None:
        partition = self._partition
        seen = self._watch_from  # the log end offset the pulling thread knows about
        while not self._has_been_stopped and not partition.closed:
            if partition.wait_for(seen, timeout=subscription_wait_s):  # end > seen
                seen = partition.end_offset
                self._has_been_notified.set()


class EventLogTrackingRecorder(EventLogRecorder, TrackingRecorder):
    """Tracking records alone (a projection's position), in their own topic."""

    def insert_tracking(self, tracking: Tracking) -> None:
        self._append((), tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        _count, last = self._last(tracking_key(application_name))
        return last


class EventLogProcessRecorder(EventLogTrackingRecorder, EventLogApplicationRecorder,
                              ProcessRecorder):
    """An application recorder whose ``insert_events(events, tracking=t)`` records the
    tracking record in the same batch as the events: both are committed or neither.
    Notification ids stay in order but skip the offsets of tracking records."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return EventLogApplicationRecorder.insert_events(self, stored_events, **kwargs)
