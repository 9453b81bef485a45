"""Internal topics (``__consumer_offsets``): readable by clients, written only by eventlog.

Kafka refuses produce requests to internal topics from clients (INVALID_TOPIC_EXCEPTION,
"Cannot append to internal topic") and refuses to create or delete them; a stored
record that is not a committed offset is a CorruptLogError naming it, never a raw
msgpack error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

import eventlog
from eventlog.broker.partition import InternalPartition
from eventlog.errors import CorruptLogError, InvalidTopicError
from eventlog.group.coordinator import describe_group
from eventlog.group.offsets import offsets_topic
from eventlog.records import TopicPartition
from eventlog.storage import batch as codec
from eventlog.testing import ManualClock

T0 = TopicPartition("t", 0)


@pytest.fixture
def log() -> Iterator[eventlog.EventLog]:
    with eventlog.open(None, clock=ManualClock()) as log:
        log.create_topic("t")
        yield log


def commit(log: eventlog.EventLog, group: str, offset: int) -> None:
    with log.consumer(group_id=group, enable_auto_commit=False) as c:
        c.assign([T0])
        c.commit({T0: offset})


def committed(log: eventlog.EventLog, group: str) -> int | None:
    with log.consumer(group_id=group, enable_auto_commit=False) as c:
        return c.committed(T0)


@pytest.mark.parametrize("name", [offsets_topic, "__transaction_state"])
def test_users_cannot_create_an_internal_topic(log: eventlog.EventLog, name: str) -> None:
    with pytest.raises(InvalidTopicError, match=f"cannot create internal topic '{name}'"):
        log.create_topic(name)
    assert name not in log.topics(include_internal=True)
    commit(log, "g", 1)  # the log still creates __consumer_offsets itself, correctly
    assert log.topic(offsets_topic).config.compacted
    assert committed(log, "g") == 1


def test_auto_creation_does_not_create_an_internal_topic() -> None:
    with eventlog.open(None, auto_create_topics=True) as log:
        with pytest.raises(InvalidTopicError, match="Cannot append to internal topic"):
            log.producer().send(offsets_topic, b"garbage", key=b"k")
        assert offsets_topic not in log.topics(include_internal=True)


def test_clients_cannot_produce_to_an_internal_topic(log: eventlog.EventLog) -> None:
    commit(log, "g", 2)
    offsets = log.partition(offsets_topic, 0)
    end = offsets.end_offset
    producer = log.producer()
    lingering = log.producer(linger_ms=60_000)
    attempts = [
        lambda: producer.send(offsets_topic, b"garbage"),
        lambda: producer.send(offsets_topic, b"garbage", key=b"k", partition=0),
        lambda: lingering.send(offsets_topic, b"garbage"),  # raised at once, not later
        lambda: producer.send_batch(offsets_topic, [(b"k", b"garbage")]),
        lambda: offsets.append([(b"k", b"garbage")]),
        lambda: offsets.append_batch([(b"k", b"garbage")]),
        lambda: offsets.append_columns([b"k"], [b"garbage"], None, [0]),
        lambda: offsets.append_record(b"k", b"garbage", None, 0, 0),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidTopicError, match="Cannot append to internal topic"):
            attempt()
    lingering.flush()
    assert offsets.end_offset == end
    assert producer.partitions_for(offsets_topic) == [0]  # reading its metadata is fine
    assert committed(log, "g") == 2


def test_users_cannot_delete_an_internal_topic(log: eventlog.EventLog) -> None:
    commit(log, "g", 3)
    with pytest.raises(InvalidTopicError, match="cannot delete internal topic"):
        log.delete_topic(offsets_topic)
    assert committed(log, "g") == 3


def test_internal_topics_reopen_as_internal(tmp_path: Path) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("t")
        commit(log, "g", 4)
    with eventlog.open(tmp_path) as log:
        assert isinstance(log.partition(offsets_topic, 0), InternalPartition)
        assert not isinstance(log.partition("t", 0), InternalPartition)
        with pytest.raises(InvalidTopicError):
            log.producer().send(offsets_topic, b"garbage")
        assert committed(log, "g") == 4


def plant(log: eventlog.EventLog, key: bytes | None, value: bytes | None) -> int:
    """Append a record to __consumer_offsets below every public API (a foreign writer
    or a bug): a CRC-valid batch straight into the partition's storage log."""
    storage = log.partition(offsets_topic, 0)._log
    base = storage.end_offset
    data = codec.encode_batch(base, [0], [key], [value], None)
    storage.append_encoded(data, codec.decode_header(data), now_ms=0)
    return base


GARBAGE = [
    (b"garbage", b"x"),  # a key that is msgpack for a different type
    (msgpack.packb(["g", "t", 0]) + b"extra", None),  # ExtraData
    (msgpack.packb(["g", "t"]), None),  # wrong length
    (msgpack.packb(["g", "t", "0"]), msgpack.packb([1, "", 0])),  # wrong type
    (msgpack.packb(["g", "t", -1]), msgpack.packb([1, "", 0])),  # negative partition
    (msgpack.packb(["g", "t", 0]), b"\xc1"),  # never-used msgpack byte
    (msgpack.packb(["g", "t", 0]), msgpack.packb([-5, "", 0])),  # negative offset
    (msgpack.packb(["g", "t", 0]), msgpack.packb({"offset": 1})),  # a map
    (b"\xa3\xff\xfe\xfd", None),  # invalid UTF-8 in a str
]


@pytest.mark.parametrize(("key", "value"), GARBAGE)
def test_a_bad_stored_offset_record_is_corrupt_log_error_naming_it(
    tmp_path: Path, key: bytes, value: bytes | None
) -> None:
    with eventlog.open(tmp_path) as log:
        log.create_topic("t")
        commit(log, "g", 5)
        bad = plant(log, key, value)
    with eventlog.open(tmp_path) as log:
        for call in (lambda: committed(log, "g"), lambda: describe_group(log, "g"),
                     lambda: log.consumer("t", group_id="g").poll(timeout_ms=0)):
            with pytest.raises(CorruptLogError, match=f"record {bad} of the internal topic "
                                                      f"{offsets_topic}-0"):
                call()
        log.partition(offsets_topic, 0).truncate_to(bad)  # the way out the error names
    with eventlog.open(tmp_path) as log:
        assert committed(log, "g") == 5
