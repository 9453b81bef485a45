"""Partition (through eventlog.open, on files and in memory): append, read, roll,
truncate, delete, retention, time lookup, waiting, optimistic concurrency, bad input."""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
from budget import examples
from clocks import SignallingManualClock, SignallingSystemClock
from eventlog.broker.partition import DataSignal, Partition
from eventlog.config import TopicConfig
from eventlog.errors import (
    ClosedError,
    InvalidConfigError,
    InvalidRecordError,
    OffsetConflictError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
)
from eventlog.records import Record
from eventlog.storage import batch as codec
from eventlog.storage.partition_log import PartitionLog
from eventlog.testing.clock import ManualClock
from locks import ContentionLock
from snapshots import snapshot

DAY_MS = 24 * 3600 * 1000


def records_for(start: int, n: int) -> list[tuple[bytes, bytes]]:
    return [(b"k%d" % o, b"value %d" % o) for o in range(start, start + n)]


def test_append_returns_the_first_offset_and_read_returns_records(elog, clock) -> None:
    p = elog.create_topic("orders").partition(0)
    assert (p.topic, p.index, p.start_offset, p.end_offset) == ("orders", 0, 0, 0)
    assert p.append([(b"a", b"1"), (None, b"2")]) == 0
    assert p.append([(b"c", None, [("h", b"x"), ("n", None)])], timestamp_ms=5) == 2
    assert p.append([(b"d", b"4", (), 77), (b"e", b"5", (), 78)]) == 3
    assert p.end_offset == 5
    now = clock.time_ms()
    assert p.read(0) == [
        Record(0, now, b"a", b"1", ()),
        Record(1, now, None, b"2", ()),
        Record(2, 5, b"c", None, (("h", b"x"), ("n", None))),
        Record(3, 77, b"d", b"4", ()),
        Record(4, 78, b"e", b"5", ()),
    ]
    assert p.read(3, max_records=1) == [Record(3, 77, b"d", b"4", ())]
    assert p.read(5) == []
    p.check()


def test_read_at_random_offsets_across_segments(elog) -> None:
    p = elog.create_topic("t", segment_bytes=1500, index_interval_bytes=200).partition(0)
    rng = random.Random(11)
    while p.end_offset < 400:
        n = rng.randint(1, 9)
        assert p.append(records_for(p.end_offset, n)) == p.end_offset - n
    p.check()
    assert len(p._log.segments) > 5
    for _ in range(150):
        offset = rng.randint(0, p.end_offset)
        limit = rng.randint(1, 60)
        got = p.read(offset, max_records=limit)
        want = min(limit, p.end_offset - offset)
        assert [(r.offset, r.key, r.value) for r in got] == [
            (o, k, v) for o, (k, v) in enumerate(records_for(offset, want), start=offset)
        ]


def test_rolls_on_segment_bytes(elog) -> None:
    p = elog.create_topic("t", segment_bytes=500).partition(0)
    for _ in range(20):
        p.append(records_for(p.end_offset, 3))
        assert all(seg.size <= 500 for seg in p._log.segments)
    bases = [seg.base_offset for seg in p._log.segments]
    assert len(bases) > 3
    # Every segment but the last would have overflowed with the next batch.
    for seg, nxt in zip(p._log.segments, p._log.segments[1:]):
        first_of_next = p._log.read(nxt.base_offset, 1)[0][0]
        assert seg.size + first_of_next.total_bytes > 500
    p.check()


def test_rolls_on_segment_ms_with_a_manual_clock(elog, clock) -> None:
    p = elog.create_topic("t", segment_ms=1000).partition(0)
    recorded = []
    for _ in range(5):
        recorded.append(clock.time_ms())
        p.append([(b"k", b"v")])  # timestamp = the clock's time
        clock.advance(400)
    # t0, +400, +800 share a segment; +1200 - t0 > 1000 rolls; +1600 - 1200 = 400 stays.
    assert [seg.base_offset for seg in p._log.segments] == [0, 3]
    assert [r.timestamp_ms for r in p.read(0)] == recorded
    p.check()


def test_truncate_to_and_delete_before(elog) -> None:
    p = elog.create_topic("t", segment_bytes=400).partition(0)
    for _ in range(15):
        p.append(records_for(p.end_offset, 2))
    p.truncate_to(21)
    assert p.end_offset == 21
    assert [r.offset for r in p.read(0, 100)] == list(range(21))
    assert p.append(records_for(21, 1)) == 21  # offsets continue at the cut
    p.delete_before(9)
    assert p.start_offset == 9
    assert p.read(9, 1)[0].offset == 9
    with pytest.raises(OffsetOutOfRangeError, match="below the log start offset 9"):
        p.read(8)
    p.check()


def test_retention_ms_via_run_retention_with_a_moved_clock(elog, clock) -> None:
    p = elog.create_topic("t", retention_ms=DAY_MS, segment_ms=3600 * 1000).partition(0)
    for _hour in range(30):
        p.append(records_for(p.end_offset, 2))
        clock.advance(3600 * 1000)  # one hour
    # Thirty hours of data, a segment per hour and a bit (segment_ms is strict).
    segments_before = len(p._log.segments)
    assert segments_before >= 15
    assert elog.run_retention() > 0
    # Kept: every segment whose newest record is at most a day old.
    now = clock.time_ms()
    assert all(now - seg.max_timestamp <= DAY_MS for seg in p._log.segments)
    first = p.read(p.start_offset, 1)[0]
    assert now - first.timestamp_ms <= DAY_MS + 3600 * 1000  # at most the rest of a segment
    assert p.start_offset == p._log.segments[0].base_offset > 0
    with pytest.raises(OffsetOutOfRangeError):
        p.read(0)
    # A week later everything is gone, the offsets stay.
    end = p.end_offset
    clock.advance(7 * DAY_MS)
    elog.run_retention()
    assert (p.start_offset, p.end_offset) == (end, end)
    assert p.read(end) == []
    assert p.append(records_for(end, 1)) == end
    p.check()


def test_retention_bytes_via_run_retention(elog, clock) -> None:
    p = elog.create_topic("t", retention_bytes=2000, segment_bytes=500).partition(0)
    for _ in range(40):
        p.append(records_for(p.end_offset, 3))
    assert p.size_bytes > 4000
    deleted = elog.run_retention(now_ms=clock.time_ms())
    assert deleted > 0
    segments = p._log.segments
    assert p.size_bytes >= 2000 - segments[0].size  # no more than needed was deleted
    assert p.size_bytes - segments[0].size < 2000  # deleting one more would be too many
    assert p.read(p.start_offset, 1)[0].offset == p.start_offset
    p.check()


def test_retention_skips_topics_without_delete_policy(elog, clock) -> None:
    p = elog.create_topic("c", retention_ms=1, cleanup_policy="compact").partition(0)
    p.append([(b"k", b"v")])
    clock.advance(DAY_MS)
    p.roll()
    assert elog.run_retention() == 0
    assert p.read(0)[0].value == b"v"


def test_offset_for_time_with_non_monotonic_timestamps(elog) -> None:
    p = elog.create_topic("t", segment_bytes=300, index_interval_bytes=0).partition(0)
    rng = random.Random(5)
    stamps: list[int] = []
    for _ in range(30):
        batch = [rng.randint(0, 1000) for _ in range(rng.randint(1, 4))]
        p.append([(None, b"x", (), ts) for ts in batch])
        stamps.extend(batch)
    for target in range(0, 1010, 13):
        want = next((o for o, t in enumerate(stamps) if t >= target), None)
        assert p.offset_for_time(target) == want, target
        if want is not None:
            assert p.offset_and_timestamp_for_time(target) == (want, stamps[want])
    with pytest.raises(InvalidConfigError, match="timestamp_ms must be an int >= 0"):
        p.offset_for_time(-1)


def test_wait_for_returns_when_another_thread_appends(path) -> None:
    clock = SignallingSystemClock()
    with eventlog.open(path, clock=clock) as elog:  # the system clock: a real wait
        p = elog.create_topic("t").partition(0)
        p.append([(b"k", b"0")])

        def later() -> None:
            assert clock.waiting.wait(10), "wait_for never waited"
            p.append([(b"k", b"1")])

        thread = threading.Thread(target=later)
        started = time.monotonic()
        thread.start()
        assert p.wait_for(0, timeout=0.01)  # already there: at once
        assert p.wait_for(1, timeout=10)
        assert time.monotonic() - started < 5
        assert p.read(1)[0].value == b"1"
        thread.join()


def test_wait_for_wakes_on_append_with_a_manual_clock(path) -> None:
    clock = SignallingManualClock()
    with eventlog.open(path, clock=clock) as elog:
        p = elog.create_topic("t").partition(0)
        result = []
        waiter = threading.Thread(target=lambda: result.append(p.wait_for(0, timeout=None)))
        waiter.start()
        assert clock.waiting.wait(30)  # the waiter found nothing and is waiting
        assert result == []
        p.append([(b"k", b"v")])  # takes the lock the wait released: wakes it
        waiter.join(30)
        assert result == [True]


def test_wait_for_times_out_without_sleeping_under_autojump(elog, clock) -> None:
    p = elog.create_topic("t").partition(0)
    before_ms = clock.monotonic_ms()
    started = time.monotonic()
    assert p.wait_for(0, timeout=30.0) is False
    assert time.monotonic() - started < 1.0  # 30 s of clock time, no real sleep
    assert clock.monotonic_ms() - before_ms >= 30_000


def test_expected_offset_conflicts(elog, path) -> None:
    p = elog.create_topic("t").partition(0)
    assert p.append([(b"k", b"0")], expected_offset=0) == 0
    files = snapshot(path)
    for wrong in (0, 2, 100):
        with pytest.raises(OffsetConflictError, match=f"expected the log of t-0 to end at offset "
                                                      f"{wrong}, but it ends at 1"):
            p.append([(b"k", b"x")], expected_offset=wrong)
    assert p.end_offset == 1
    assert snapshot(path) == files
    assert p.append([(b"k", b"1")], expected_offset=1) == 1
    assert [r.value for r in p.read(0)] == [b"0", b"1"]


def test_expected_offset_lets_exactly_one_racer_win(elog) -> None:
    p = elog.create_topic("t").partition(0)
    outcomes = []
    barrier = threading.Barrier(4)

    def racer(i: int) -> None:
        barrier.wait()
        try:
            p.append([(b"k", b"%d" % i)], expected_offset=0)
            outcomes.append("won")
        except OffsetConflictError:
            outcomes.append("lost")

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    assert p.end_offset == 1


def test_log_append_time_overwrites_timestamps(elog, clock) -> None:
    lat = elog.create_topic("lat", message_timestamp_type="LogAppendTime").partition(0)
    ct = elog.create_topic("ct").partition(0)
    clock.advance(1234)
    lat.append([(b"k", b"v", (), 5)], timestamp_ms=7)
    ct.append([(b"k", b"v", (), 5)])
    assert lat.read(0)[0].timestamp_ms == clock.time_ms()
    assert ct.read(0)[0].timestamp_ms == 5
    header = lat._log.read(0, 1)[0][0]
    assert header.attributes & codec.attr_log_append_time
    assert not ct._log.read(0, 1)[0][0].attributes & codec.attr_log_append_time
    result = lat.append_batch([(b"k", b"v")])
    assert result.log_append_time_ms == clock.time_ms()
    assert ct.append_batch([(b"k", b"v")]).log_append_time_ms == -1


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_through_the_partition(elog, compression) -> None:
    p = elog.create_topic("t").partition(0)
    p.append([(b"k", b"x" * 500)] * 20, compression=compression)
    assert p.size_bytes < 1000  # 10,000 bytes of values
    assert [r.value for r in p.read(0)] == [b"x" * 500] * 20
    with pytest.raises(InvalidConfigError, match="unknown compression 'brotli'"):
        p.append([(b"k", b"v")], compression="brotli")
    assert p.end_offset == 20


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_a_compressed_batch_may_not_inflate_past_the_read_limit(elog, compression) -> None:
    # Readers refuse a compressed batch that declares more than the larger of
    # max_message_bytes and 32 MiB (a decompression bomb), so the writer refuses to
    # write one, however small it compresses.
    # 40 MB of zeros: under 2 MiB compressed by every codec (snappy compresses least)
    p = elog.create_topic("t", max_message_bytes=4 << 20).partition(0)
    records = [(b"k", b"\0" * 1_000_000)] * 40
    with pytest.raises(RecordTooLargeError, match="before compression"):
        p.append(records, compression=compression)
    assert p.end_offset == 0
    p.append(records[:30], compression=compression)  # 30 MB: within the 32 MiB floor
    assert p.end_offset == 30


def test_many_threads_append_dense_offsets(elog) -> None:
    p = elog.create_topic("t").partition(0)

    def worker(i: int) -> None:
        for j in range(50):
            p.append([(b"%d" % i, b"%d" % j), (b"%d" % i, b"%d" % j)])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = p.read(0, 1000)
    assert [r.offset for r in got] == list(range(400))
    for i in range(4):  # each thread's records keep their order, pairs stay together
        mine = [r.value for r in got if r.key == b"%d" % i]
        assert mine == [b"%d" % j for j in range(50) for _ in range(2)]
    p.check()


# --------------------------------------------------------------------------- bad input


BAD_RECORDS = [
    ([("k", b"v")], InvalidRecordError, "record 0: key must be bytes or None, got str"),
    (
        [(b"k", b"v"), (b"k", 5)],
        InvalidRecordError,
        "record 1: value must be bytes or None, got int",
    ),
    ([(b"k", bytearray(b"v"))], InvalidRecordError, "value must be bytes or None, got bytearray"),
    ([(b"k", b"v", [("h", "text")])], InvalidRecordError, "headers must be (str, bytes | None)"),
    ([(b"k", b"v", [(b"h", b"x")])], InvalidRecordError, "headers must be (str, bytes | None)"),
    ([(b"k", b"v", ["h"])], InvalidRecordError, "headers must be (str, bytes | None)"),
    ([(b"k", b"v", (), -1)], InvalidRecordError, "record 0: timestamp_ms must be an int >= 0"),
    ([(b"k", b"v", (), 1.5)], InvalidRecordError, "timestamp_ms must be an int >= 0"),
    ([(b"k", b"v"), (b"k", b"v", ())], InvalidRecordError, "got lengths [2, 3]"),
    ([(b"k",)], InvalidRecordError, "got lengths [1]"),
    ([], InvalidRecordError, "at least one record"),
]


@pytest.mark.parametrize(("records", "error", "fragment"), BAD_RECORDS)
def test_bad_records_are_rejected_and_change_nothing(elog, path, records, error, fragment):
    p = elog.create_topic("t").partition(0)
    p.append([(b"k", b"ok")])
    files = snapshot(path)
    with pytest.raises(error) as info:
        p.append(records)
    assert fragment in str(info.value)
    assert p.end_offset == 1
    assert snapshot(path) == files
    assert [r.value for r in p.read(0)] == [b"ok"]
    p.check()


def test_one_bad_record_rejects_the_whole_batch(elog, path) -> None:
    p = elog.create_topic("t").partition(0)
    files = snapshot(path)
    good = [(b"k", b"v%d" % i) for i in range(10)]
    with pytest.raises(InvalidRecordError, match="record 7: key must be bytes or None, got int"):
        p.append([*good[:7], (7, b"v"), *good[7:]])
    assert p.end_offset == 0
    assert snapshot(path) == files


def test_a_bad_default_timestamp_is_rejected(elog) -> None:
    p = elog.create_topic("t").partition(0)
    with pytest.raises(InvalidRecordError, match="timestamp_ms must be an int >= 0"):
        p.append([(b"k", b"v")], timestamp_ms=-5)
    assert p.end_offset == 0


def test_a_batch_over_max_message_bytes_is_rejected(elog, path) -> None:
    p = elog.create_topic("t", max_message_bytes=1000).partition(0)
    p.append([(b"k", b"x" * 500)])  # fits
    files = snapshot(path)
    with pytest.raises(RecordTooLargeError, match=r"over max_message_bytes=1000 of topic 't'"):
        p.append([(b"k", b"x" * 1000)])  # one record too large
    with pytest.raises(RecordTooLargeError, match=r"batch of 3 record\(s\) is \d+ bytes"):
        p.append([(b"k", b"x" * 400)] * 3)  # records fit, the batch does not
    assert p.end_offset == 1
    assert snapshot(path) == files
    # lz4 makes the same records fit: the limit is on the stored batch
    assert p.append([(b"k", b"x" * 400)] * 3, compression="lz4") == 1


@pytest.mark.parametrize(
    ("offset", "fragment"),
    [
        (0, "offset 0 of t-0 is below the log start offset 1"),
        (-1, "offset -1 of t-0 is below the log start offset 1"),
        (6, "offset 6 is out of range: the log holds [1, 5]"),
        (100, "offset 100 is out of range: the log holds [1, 5]"),
    ],
)
def test_read_outside_the_log_raises(elog, offset, fragment) -> None:
    p = elog.create_topic("t").partition(0)
    p.append(records_for(0, 5))
    p.delete_before(1)
    with pytest.raises(OffsetOutOfRangeError) as info:
        p.read(offset)
    assert fragment in str(info.value)
    assert (p.start_offset, p.end_offset) == (1, 5)
    assert p.read(5) == []  # the log end itself is in range: empty


def test_read_argument_types(elog) -> None:
    p = elog.create_topic("t").partition(0)
    with pytest.raises(TypeError, match="offset must be an int, got str"):
        p.read("0")
    with pytest.raises(InvalidConfigError, match="max_records must be an int >= 1, got 0"):
        p.read(0, max_records=0)


def test_use_after_close(path) -> None:
    elog = eventlog.open(path)
    p = elog.create_topic("t").partition(0)
    p.append([(b"k", b"v")])
    elog.close()
    elog.close()  # idempotent
    for call in (
        lambda: p.append([(b"k", b"v")]),
        lambda: p.read(0),
        lambda: p.offset_for_time(0),
        lambda: p.truncate_to(0),
        lambda: p.delete_before(1),
        lambda: p.roll(),
        lambda: p.apply_retention(),
    ):
        with pytest.raises(ClosedError, match="partition t-0 is closed"):
            call()
    assert p.end_offset == 1
    assert p.wait_for(5, timeout=1) is False  # a closed partition never gets data


def test_in_memory_mode_leaves_no_files(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with eventlog.open() as elog:
        assert elog.path is None
        p = elog.create_topic("t", segment_bytes=300).partition(0)
        for _ in range(30):
            p.append(records_for(p.end_offset, 2))
        assert len(p._log.segments) > 3
        p.truncate_to(50)
        p.delete_before(10)
        assert [r.offset for r in p.read(10, 100)] == list(range(10, 50))
        p.check()
    assert os.listdir(tmp_path) == []


def test_append_record_the_one_record_path(elog, clock, path) -> None:
    """``append_record`` (the producer's send path) stores what ``append`` would."""
    p = elog.create_topic("t", max_message_bytes=200).partition(0)
    lat = elog.create_topic("lat", message_timestamp_type="LogAppendTime").partition(0)
    result = p.append_record(b"k", b"v", (("h", b"x"),), 5, codec.compression_none)
    assert result == (0, 5)  # (offset, timestamp), a plain tuple
    p.append([(b"k2", b"v2")])
    p.append_record(None, b"z" * 50, None, 7, codec.compression_lz4)
    assert p.read(0) == [
        Record(0, 5, b"k", b"v", (("h", b"x"),)),
        Record(1, clock.time_ms(), b"k2", b"v2", ()),
        Record(2, 7, None, b"z" * 50, ()),
    ]
    files = snapshot(path)
    with pytest.raises(RecordTooLargeError, match="over max_message_bytes=200"):
        p.append_record(b"k", b"x" * 300, None, 5, codec.compression_none)
    assert p.end_offset == 3
    assert snapshot(path) == files
    clock.advance(10)
    assert lat.append_record(b"k", b"v", None, 5, 0) == (0, clock.time_ms())
    assert lat.read(0)[0].timestamp_ms == clock.time_ms()
    p.check()


# --------------------------------------------------------------- the shared data signal


class _RacingSignal(DataSignal):
    """A DataSignal that keeps every value stored in ``version``. Its first store waits
    for a second append, in another thread, to finish or to wait for the signal's
    lock: the interleaving under which an unlocked ``version += 1`` stores one value
    twice (both appends read 0 and store 1)."""

    __slots__ = ("_racer", "_value", "stored")

    def __init__(self) -> None:
        self._racer: Any = None
        self.stored: list[int] = []
        super().__init__()

    @property  # type: ignore[override]
    def version(self) -> int:
        return self._value

    @version.setter
    def version(self, value: int) -> None:
        racer, self._racer = self._racer, None
        if racer is not None:
            racer()
        self._value = value
        self.stored.append(value)


def test_appends_to_two_partitions_at_once_store_different_versions() -> None:
    # Regression: the increment ran without a lock, so two partitions appending at
    # once could both read n and store n + 1 (or a stale store could bring back a
    # value a consumer had read); a consumer waiting for the version to differ from
    # what it read then slept through an append, until its poll timed out.
    clock = ManualClock()
    signal = _RacingSignal()
    progress = threading.Event()
    signal.cond = threading.Condition(ContentionLock(progress))  # type: ignore[misc]
    p0, p1 = (Partition("t", i, PartitionLog(None, TopicConfig(), now_ms=clock.time_ms()),
                        clock=clock, signal=signal) for i in range(2))

    def second_append() -> None:
        try:
            p1.append([(b"k", b"second")])
        finally:
            progress.set()

    other = threading.Thread(target=second_append)

    def race() -> None:
        other.start()
        assert progress.wait(30)  # the other append finished, or waits for our lock

    signal._racer = race
    p0.append([(b"k", b"first")])
    other.join(30)
    assert not other.is_alive()
    assert (p0.end_offset, p1.end_offset) == (1, 1)
    first, *bumps = signal.stored
    assert len(bumps) == len(set(bumps) - {first}) == 2  # each append a new value


# --------------------------------------------------------------- one append path


def test_a_segment_rolled_by_a_single_record_append_is_dated_by_the_clock() -> None:
    # Regression: append_record (every send() with linger_ms=0) passed the record's
    # timestamp where the log expects the clock's now, so a segment it rolled was
    # created "at" whatever time the producer stamped on the record.
    clock = ManualClock()
    with eventlog.open(None, clock=clock) as elog:
        p = elog.create_topic("t", segment_bytes=200).partition(0)
        old = clock.time_ms() - 30 * DAY_MS
        while len(p._log.segments) < 3:
            p.append_record(b"k", b"v" * 40, None, old, 0)
        assert [s.created_ms for s in p._log.segments[1:]] == [clock.time_ms()] * 2


_key_or_none = st.one_of(st.none(), st.binary(max_size=20))
_headers = st.one_of(st.none(), st.lists(
    st.tuples(st.text(max_size=5), _key_or_none), min_size=1, max_size=3).map(tuple))


@settings(max_examples=examples(60), deadline=None)
@given(
    records=st.lists(st.tuples(_key_or_none, _key_or_none, _headers,
                               st.integers(0, 2**62)), min_size=1, max_size=6),
    compression=st.sampled_from(sorted(codec.COMPRESSION_CODES)),
    log_append_time=st.booleans(),
    idempotent=st.booleans(),
)
def test_append_record_and_append_columns_land_the_same_records(
    records: list[tuple], compression: str, log_append_time: bool, idempotent: bool
) -> None:
    """The send() path (append_record) and the batch path (append_columns), fed the same
    records one at a time, leave the same batches (header fields and records; only the
    payload's encoding differs: the single-record form) and return the same metadata."""
    clocks = ManualClock(), ManualClock()
    config = TopicConfig(message_timestamp_type="LogAppendTime" if log_append_time
                         else "CreateTime", segment_ms=1500)
    one, batch = (Partition("t", 0, PartitionLog(None, config, now_ms=c.time_ms()), clock=c)
                  for c in clocks)
    attributes = codec.COMPRESSION_CODES[compression]
    for n, (key, value, headers, ts) in enumerate(records):
        producer = (7, 0, n) if idempotent else (-1, -1, -1)
        offset, timestamp = one.append_record(key, value, headers, ts, attributes, *producer)
        result = batch.append_columns([key], [value], None if headers is None else [headers],
                                      [ts], attributes=attributes, producer_id=producer[0],
                                      producer_epoch=producer[1], base_sequence=producer[2])
        assert (offset, offset) == (result.base_offset, result.last_offset) == (n, n)
        assert timestamp == (result.log_append_time_ms if log_append_time else ts)
        for c in clocks:
            c.advance(1000)
    if idempotent:  # a retried send is a duplicate on both paths, at the same offset
        key, value, headers, ts = records[-1]
        offset, _ = one.append_record(key, value, headers, ts, attributes, 7, 0,
                                      len(records) - 1)
        assert offset == len(records) - 1 == batch.append_columns(
            [key], [value], None if headers is None else [headers], [ts],
            attributes=attributes, producer_id=7, producer_epoch=0,
            base_sequence=len(records) - 1).base_offset
    assert [(s.base_offset, s.created_ms) for s in one._log.segments] == [
        (s.base_offset, s.created_ms) for s in batch._log.segments]
    ours, theirs = one.read_batches(0, 100), batch.read_batches(0, 100)
    assert len(ours) == len(theirs) == len(records)
    for (h1, c1), (h2, c2) in zip(ours, theirs):
        assert h1._replace(crc=0, batch_length=0) == h2._replace(crc=0, batch_length=0)
        assert (list(c1.offsets), c1.timestamps, c1.keys, c1.values) == (
            list(c2.offsets), c2.timestamps, c2.keys, c2.values)
        assert [tuple(h) for h in (c1.headers or [()])] == [
            tuple(h) for h in (c2.headers or [()])]
