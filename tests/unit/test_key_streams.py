"""Per-key streams in a partition: read_key, key_version, expected_key_versions,
and the key index kept right through every append path, truncation, retention,
compaction, reopening; plus Partition.iter / Topic.iter."""

from __future__ import annotations

import threading
from array import array

import pytest

import eventlog
from eventlog.errors import (
    InvalidConfigError,
    KeyVersionConflictError,
    OffsetConflictError,
    OffsetOutOfRangeError,
)
from eventlog.storage.key_index import KeyIndex

DAY_MS = 24 * 3600 * 1000


def values(records) -> list[bytes]:
    return [r.value for r in records]


def test_key_index_structure() -> None:
    index = KeyIndex()
    index.add(b"a", 0)
    index.add(b"b", 1)
    index.add(b"a", 5)
    index.add_all([b"a", None, b"c"], [6, 7, 8])
    index.end_offset = 9
    index.check()
    assert index.count(b"a") == 3 and index.count(b"b") == 1 and index.count(b"x") == 0
    assert list(index.offsets(b"a")) == [0, 5, 6]
    assert list(index.offsets(b"a", 1, 2)) == [5]
    assert list(index.offsets(b"b", 1)) == []
    assert len(index) == 3


def test_read_key_and_versions_across_append_paths(elog) -> None:
    p = elog.create_topic("t").partition(0)
    p.append([(b"a", b"a0"), (b"b", b"b0")])
    assert p.key_version(b"a") == 1  # built from the log on first use
    p.append([(b"a", b"a1"), (None, b"n"), (b"a", b"a2")])  # maintained by append
    with elog.producer() as producer:  # the producer's paths: send, then a batch
        producer.send("t", key=b"a", value=b"a3", partition=0)
        producer.flush()
        for i in range(4, 7):
            producer.send("t", key=b"a", value=b"a%d" % i, partition=0)
        producer.flush()
    assert p.key_version(b"a") == 7
    assert values(p.read_key(b"a")) == [b"a%d" % i for i in range(7)]
    assert values(p.read_key(b"a", from_version=2, limit=3)) == [b"a2", b"a3", b"a4"]
    assert values(p.read_key(b"a", from_version=7)) == []
    assert values(p.read_key(b"b")) == [b"b0"]
    assert p.read_key(b"nobody") == [] and p.key_version(b"nobody") == 0
    records = p.read_key(b"a")
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    assert all(r.key == b"a" for r in records)
    p._key_index.check()


def test_index_rebuilt_on_reopen_matches(tmp_path, clock) -> None:
    path = str(tmp_path / "d")
    with eventlog.open(path, clock=clock) as log:
        p = log.create_topic("t", segment_bytes=400).partition(0)
        for i in range(50):
            p.append([(b"k%d" % (i % 7), b"v%d" % i)])
        before = {k: values(p.read_key(k)) for k in (b"k%d" % j for j in range(7))}
    with eventlog.open(path, clock=clock) as log:
        p = log.topic("t").partition(0)
        assert p._key_index is None  # opening stays fast: the index is built on first use
        after = {k: values(p.read_key(k)) for k in before}
        assert after == before
        assert p.key_version(b"k0") == 8


def test_expected_key_versions_atomic_for_several_keys(elog) -> None:
    p = elog.create_topic("t").partition(0)
    p.append([(b"a", b"1")], expected_key_versions={b"a": 0})
    p.append([(b"a", b"2"), (b"b", b"1")], expected_key_versions={b"a": 1, b"b": 0})
    end = p.end_offset
    with pytest.raises(KeyVersionConflictError) as info:
        p.append([(b"a", b"3"), (b"b", b"2")], expected_key_versions={b"a": 2, b"b": 0})
    err = info.value
    assert isinstance(err, OffsetConflictError)
    assert (err.key, err.expected, err.actual) == (b"b", 0, 1)
    assert "version 0" in str(err) and "at 1" in str(err)
    assert p.end_offset == end  # nothing appended, not even a's record
    assert values(p.read_key(b"a")) == [b"1", b"2"]
    # a key not among the appended records can be checked too
    p.append([(b"c", b"1")], expected_key_versions={b"a": 2})
    with pytest.raises(KeyVersionConflictError):
        p.append([(b"c", b"2")], expected_key_versions={b"a": 1})


def test_offset_conflict_carries_expected_and_actual(elog) -> None:
    p = elog.create_topic("t").partition(0)
    p.append([(b"a", b"1")])
    with pytest.raises(OffsetConflictError) as info:
        p.append([(b"a", b"2")], expected_offset=0)
    assert (info.value.expected, info.value.actual) == (0, 1)


@pytest.mark.parametrize(
    ("expected", "match"),
    [
        ([(b"a", 0)], "mapping"),
        ({"a": 0}, "keys must be bytes"),
        ({b"a": -1}, "int >= 0"),
        ({b"a": True}, "int >= 0"),
    ],
)
def test_bad_expected_key_versions_change_nothing(elog, expected, match) -> None:
    p = elog.create_topic("t").partition(0)
    with pytest.raises(InvalidConfigError, match=match):
        p.append([(b"a", b"1")], expected_key_versions=expected)
    assert p.end_offset == 0


def test_bad_read_key_arguments(elog) -> None:
    p = elog.create_topic("t").partition(0)
    with pytest.raises(InvalidConfigError, match="key must be bytes"):
        p.read_key("a")
    with pytest.raises(InvalidConfigError, match="from_version"):
        p.read_key(b"a", from_version=-1)
    with pytest.raises(InvalidConfigError, match="limit"):
        p.read_key(b"a", limit=-1)


def test_concurrent_conditional_appends_one_winner_per_version(elog) -> None:
    p = elog.create_topic("t").partition(0)
    wins: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for _ in range(20):
            while True:
                v = p.key_version(b"agg")
                try:
                    p.append([(b"agg", b"%d:%d" % (n, v))], expected_key_versions={b"agg": v})
                except KeyVersionConflictError:
                    continue
                with lock:
                    wins.append(v)
                break

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == list(range(80))
    recs = p.read_key(b"agg")
    assert [int(r.value.split(b":")[1]) for r in recs] == list(range(80))


def test_truncate_drops_offsets(elog) -> None:
    p = elog.create_topic("t").partition(0)
    for i in range(6):
        p.append([(b"a", b"%d" % i)])
    assert p.key_version(b"a") == 6
    p.truncate_to(3)
    assert p.key_version(b"a") == 3
    assert values(p.read_key(b"a")) == [b"0", b"1", b"2"]
    p.append([(b"a", b"x")], expected_key_versions={b"a": 3})
    assert values(p.read_key(b"a")) == [b"0", b"1", b"2", b"x"]


def test_delete_before_and_retention_trim(elog, clock) -> None:
    p = elog.create_topic("t", segment_bytes=200, retention_ms=DAY_MS).partition(0)
    for i in range(10):
        p.append([(b"a", b"%d" % i)])
    assert p.key_version(b"a") == 10
    p.delete_before(4)
    assert values(p.read_key(b"a")) == [b"%d" % i for i in range(4, 10)]
    assert p.key_version(b"a") == 6
    clock.advance(2 * DAY_MS)
    p.append([(b"a", b"new")])
    assert p.apply_retention() > 0
    remaining = p.read_key(b"a")
    assert all(r.offset >= p.start_offset for r in remaining)
    assert p.key_version(b"a") == len(remaining) and remaining[-1].value == b"new"


def test_compaction_removes_offsets_from_the_index(elog, clock) -> None:
    p = elog.create_topic(
        "snap", cleanup_policy="compact", segment_bytes=200, min_cleanable_dirty_ratio=0.0
    ).partition(0)
    for i in range(30):
        p.append([(b"agg%d" % (i % 3), b"s%d" % i)])
    assert p.key_version(b"agg0") == 10
    p.roll()
    stats = p.compact()
    assert stats.records_removed > 0
    for k in range(3):
        recs = p.read_key(b"agg%d" % k)
        live = {r.offset for r in p.iter()}
        assert all(r.offset in live for r in recs)
        assert p.key_version(b"agg%d" % k) == len(recs)
        assert recs[-1].value == b"s%d" % (27 + k)  # the latest survives


def test_read_key_skips_offsets_removed_after_the_index_was_read(elog) -> None:
    p = elog.create_topic("t").partition(0)
    for i in range(4):
        p.append([(b"a", b"%d" % i)])
    index = p._built_key_index()
    offsets = list(index.offsets(b"a"))
    p.truncate_to(2)
    p.append([(b"b", b"x"), (b"b", b"y")])  # offsets 2 and 3 now hold another key
    assert values(p._read_offsets(b"a", offsets)) == [b"0", b"1"]


def test_partition_iter_replays_everything(elog) -> None:
    p = elog.create_topic("t").partition(0)
    for i in range(12):
        p.append([(b"k", b"%d" % j) for j in range(i * 100, i * 100 + 100)])
    assert len(p.read(0)) == 500  # read() is bounded
    got = list(p.iter(batch_records=333))
    assert [r.offset for r in got] == list(range(1200))
    assert [r.offset for r in p.iter(1100)] == list(range(1100, 1200))
    assert [r.offset for r in p.iter(5, to_offset=9)] == [5, 6, 7, 8]
    it = p.iter()
    p.append([(b"k", b"later")])  # after the iteration started: not included
    assert sum(1 for _ in it) == 1200
    with pytest.raises(InvalidConfigError):
        p.iter(batch_records=0)
    with pytest.raises(OffsetOutOfRangeError):
        p.iter(p.end_offset + 1)


def test_topic_iter_every_partition(elog) -> None:
    topic = elog.create_topic("t", partitions=3)
    for i, part in enumerate(topic.partitions):
        part.append([(b"k", b"%d-%d" % (i, j)) for j in range(3)])
    got = list(topic.iter(batch_records=2))
    assert [(r.partition, r.offset) for r in got] == [(i, j) for i in range(3) for j in range(3)]
    assert got[4].value == b"1-1" and got[4].topic == "t"


def test_read_key_sees_records_a_lingering_producer_holds(elog) -> None:
    p = elog.create_topic("t").partition(0)
    with elog.producer(linger_ms=60_000) as producer:
        producer.send("t", key=b"a", value=b"1", partition=0)
        assert p.key_version(b"a") == 1
        producer.send("t", key=b"a", value=b"2", partition=0)
        assert values(p.read_key(b"a")) == [b"1", b"2"]


def test_key_index_locations() -> None:
    index = KeyIndex()
    index.add(b"a", 0, 0)
    index.add(b"b", 1, 0)
    index.add(b"a", 5, 120)
    index.add_all([b"a", None, b"c"], [6, 7, 8], 250)
    index.add(b"c", 9)  # position unknown
    assert index.locations(b"a") == (array("q", [0, 5, 6]), array("q", [0, 120, 250]))
    assert index.locations(b"a", 1, 2) == (array("q", [5]), array("q", [120]))
    assert index.locations(b"b") == ((1,), (0,))
    assert index.locations(b"c", 1) == (array("q", [9]), array("q", [-1]))
    assert index.locations(b"x") == ((), ())
    assert index.count(b"a") == 3 and index.count(b"c") == 2


def batch_positions(p) -> dict[int, int]:
    """offset -> byte position of its batch, from the segments' own headers."""
    out = {}
    for seg in p._log.segments:
        for header, position in seg.headers():
            for offset in range(header.base_offset, header.last_offset + 1):
                out[offset] = position
    return out


def test_key_index_records_batch_positions_on_every_path(elog) -> None:
    p = elog.create_topic("t", segment_bytes=1024).partition(0)
    for i in range(30):  # built from the log, across several segments
        p.append([(b"k%d" % (i % 3), b"v%d" % i), (b"z", b"x" * 20)])
    assert p.key_version(b"k0") == 10
    for i in range(30, 40):  # maintained by both append paths
        p.append([(b"k%d" % (i % 3), b"v%d" % i)])
    with elog.producer() as producer:
        for i in range(40, 50):
            producer.send("t", key=b"k%d" % (i % 3), value=b"v%d" % i, partition=0)
            producer.flush()
    assert len(p._log.segments) > 2
    truth = batch_positions(p)
    for key in (b"k0", b"k1", b"k2", b"z"):
        offsets, positions = p._key_index.locations(key)
        assert [truth[o] for o in offsets] == list(positions), key
        at = p._log.batch_at_position
        assert all(at(o, pos) is not None for o, pos in zip(offsets, positions))
    assert values(p.read_key(b"k1")) == [b"v%d" % i for i in range(1, 50, 3)]


def test_read_key_with_wrong_positions_falls_back_to_the_log(elog) -> None:
    p = elog.create_topic("t").partition(0)
    for i in range(20):
        p.append([(b"a", b"a%d" % i), (b"b", b"b%d" % i)])
    assert p.key_version(b"a") == 20
    index = p._key_index
    found = index._offsets[b"a"]
    for n in range(1, len(found), 2):  # every position off by a few bytes, or unknown
        found[n] = -1 if n % 4 == 1 else found[n] + 7
    assert p._log.batch_at_position(found[0], found[1]) is None
    assert values(p.read_key(b"a")) == [b"a%d" % i for i in range(20)]
    assert values(p.read_key(b"a", from_version=5, limit=2)) == [b"a5", b"a6"]


def test_key_index_reads_whole_pairs_while_a_record_is_half_added() -> None:
    """A writer adds a record's offset and its position as two array appends; a
    lock-free reader between the two sees the offset alone and must ignore it."""
    index = KeyIndex()
    for offset in (0, 4, 9):
        index.add(b"a", offset, offset * 10)
    index._offsets[b"a"].append(12)  # the offset of a fourth record, its position not yet
    assert index.locations(b"a") == (array("q", [0, 4, 9]), array("q", [0, 40, 90]))
    assert index.locations(b"a", 1) == (array("q", [4, 9]), array("q", [40, 90]))
    assert index.locations(b"a", 0, 5) == (array("q", [0, 4, 9]), array("q", [0, 40, 90]))
    assert index.count(b"a") == 3 and index.last(b"a") == (3, 9, 90)


def test_key_index_last() -> None:
    index = KeyIndex()
    assert index.last(b"a") == (0, -1, -1)
    index.add(b"a", 3, 30)
    assert index.last(b"a") == (1, 3, 30)
    index.add(b"a", 7, 70)
    index.add(b"b", 8)
    assert index.last(b"a") == (2, 7, 70) and index.last(b"b") == (1, 8, -1)


def test_key_last_value_and_key_values(elog) -> None:
    p = elog.create_topic("t").partition(0)
    assert p._key_last_value(b"a") == (0, None) and p._key_values(b"a") == ()
    for i in range(5):
        p.append([(b"a", b"a%d" % i), (b"b", b"b%d" % i)])  # two-record batches
    p.append([(b"a", None)])
    assert p._key_last_value(b"a") == (6, None)
    assert p._key_last_value(b"b") == (5, b"b4")
    assert list(p._key_values(b"a", 4)) == [b"a4", None]
    assert list(p._key_values(b"b")) == values(p.read_key(b"b"))


def test_append_expecting_checks_every_key_and_lands_as_append(elog) -> None:
    p = elog.create_topic("t").partition(0)
    assert p._append_expecting([b"a"], [b"1"], {b"a": 0}) == 0
    assert p._append_expecting([b"a", b"b"], [b"2", None], {b"a": 1, b"b": 0}) == 1
    with pytest.raises(KeyVersionConflictError) as caught:
        p._append_expecting([b"a"], [b"3"], {b"a": 2, b"b": 0})
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert p.end_offset == 3 and p.key_version(b"a") == 2
    records = p.read(0, 10)
    assert [(r.key, r.value) for r in records] == [(b"a", b"1"), (b"a", b"2"), (b"b", None)]
    assert p.read_key(b"a") == records[:2]


@pytest.mark.parametrize("timestamp_type", ["CreateTime", "LogAppendTime"])
def test_one_record_conditional_append_lands_as_the_batch_path(elog, timestamp_type) -> None:
    """``append([(key, value)], expected_key_versions=...)`` takes the keyed path
    (encoded as send() encodes); it must leave what the batch path leaves."""
    fast = elog.create_topic("fast", message_timestamp_type=timestamp_type).partition(0)
    slow = elog.create_topic("slow", message_timestamp_type=timestamp_type).partition(0)
    for i, (key, value) in enumerate([(b"a", b"1"), (b"b", None), (b"a", b"3")]):
        n = fast.key_version(key)
        assert fast.append([(key, value)], expected_key_versions={key: n}) == i
        assert slow.append_batch([(key, value)], expected_key_versions={key: n}).base_offset == i
    assert fast.read(0, 10) == slow.read(0, 10)
    assert fast.read_key(b"a") == slow.read_key(b"a")
    with pytest.raises(KeyVersionConflictError):
        fast.append([(b"a", b"x")], expected_key_versions={b"a": 1})
    with pytest.raises(InvalidConfigError):
        fast.append([(b"a", b"x")], expected_key_versions={"a": 2})
    assert fast.end_offset == 3
