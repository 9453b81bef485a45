"""storage/cleaner.py: the log cleaner (KAFKA_SEMANTICS 6), pure planning first, then
on a PartitionLog (files and memory), then through the public API (partitions,
consumers, committed offsets)."""

from __future__ import annotations

import os
import threading

import pytest

import eventlog
from eventlog.config import TopicConfig
from eventlog.group.coordinator import delete_group
from eventlog.group.offsets import offsets_topic
from eventlog.records import TopicPartition
from eventlog.storage import batch as codec
from eventlog.storage import cleaner
from eventlog.storage.batch import Columns
from eventlog.storage.compaction import (
    CleanableRange,
    SegmentInfo,
    clean_batch,
    cleanable_range,
    compaction_due,
    group_segments,
    retained_indexes,
)
from eventlog.storage.index import relative_offset_max
from eventlog.storage.partition_log import PartitionLog
from eventlog.storage.segment import Segment
from eventlog.testing import ManualClock

NOW = 1_700_000_000_000
DAY_MS = 24 * 3600 * 1000


# ---------------------------------------------------------------------- planning


def info(base: int, end: int, *, size: int = 100, first_ts: int = 0, max_ts: int = 0):
    return SegmentInfo(base, end, size, first_ts, max_ts)


def crange(segments, *, checkpoint=-1, start=0, now=NOW, lag=0) -> CleanableRange:
    return cleanable_range(segments, checkpoint=checkpoint, log_start_offset=start,
                           now_ms=now, min_compaction_lag_ms=lag)


def test_the_active_segment_is_never_cleanable() -> None:
    segments = [info(0, 10), info(10, 20), info(20, 25, size=50)]
    assert crange(segments) == CleanableRange(0, 20, 0, 200)


def test_a_log_with_only_the_active_segment_has_nothing_to_clean() -> None:
    r = crange([info(0, 25)])
    assert (r.first_dirty, r.first_uncleanable, r.dirty_bytes) == (0, 0, 0)
    assert compaction_due(r, [info(0, 25)], now_ms=NOW, min_cleanable_dirty_ratio=0.0,
                          max_compaction_lag_ms=1) is None


def test_the_checkpoint_splits_clean_from_dirty() -> None:
    segments = [info(0, 10, size=30), info(10, 20, size=70), info(20, 30), info(30, 31)]
    r = crange(segments, checkpoint=10)
    assert r == CleanableRange(10, 30, 30, 170)
    assert r.dirty_ratio == 170 / 200


@pytest.mark.parametrize("checkpoint", [-1, 3, 32])
def test_a_checkpoint_outside_the_log_restarts_at_the_log_start(checkpoint) -> None:
    segments = [info(5, 10), info(10, 20), info(20, 31)]
    assert crange(segments, checkpoint=checkpoint, start=5).first_dirty == 5


def test_min_compaction_lag_stops_at_the_first_segment_with_a_recent_record() -> None:
    lag = 1000
    segments = [
        info(0, 10, max_ts=NOW - 5000),
        info(10, 20, max_ts=NOW - lag + 1),  # newer than now - lag: uncleanable from here
        info(20, 30, max_ts=NOW - 5000),
        info(30, 40, max_ts=NOW),
    ]
    assert crange(segments, lag=lag).first_uncleanable == 10
    segments[1] = info(10, 20, max_ts=NOW - lag)  # exactly lag old: cleanable
    assert crange(segments, lag=lag).first_uncleanable == 30


def test_min_compaction_lag_never_moves_below_the_first_dirty_offset() -> None:
    segments = [info(0, 10, max_ts=NOW), info(10, 20, max_ts=NOW), info(20, 30)]
    r = crange(segments, checkpoint=10, lag=1000)
    assert (r.first_dirty, r.first_uncleanable, r.dirty_bytes) == (10, 10, 0)


def due(r, segments, *, ratio=0.5, max_lag=2**63 - 1, now=NOW):
    return compaction_due(r, segments, now_ms=now, min_cleanable_dirty_ratio=ratio,
                          max_compaction_lag_ms=max_lag)


def test_the_dirty_ratio_must_exceed_the_minimum() -> None:
    segments = [info(0, 10), info(10, 20), info(20, 21)]
    r = crange(segments, checkpoint=10)  # 100 clean, 100 dirty: ratio 0.5
    assert due(r, segments, ratio=0.5) is None
    assert due(r, segments, ratio=0.49) == "dirty ratio"
    assert due(crange(segments, checkpoint=20), segments, ratio=0.0) is None  # nothing dirty


def test_max_compaction_lag_forces_a_cleaning_whatever_the_ratio() -> None:
    segments = [info(0, 10, size=1000), info(10, 20, first_ts=NOW - 100), info(20, 21)]
    r = crange(segments, checkpoint=10)
    assert due(r, segments, ratio=0.9, max_lag=100) is None  # exactly the lag: not yet
    assert due(r, segments, ratio=0.9, max_lag=99) == "max compaction lag"


def test_segments_group_up_to_segment_bytes() -> None:
    segments = [info(0, 10, size=40), info(10, 20, size=60), info(20, 30, size=1),
                info(30, 40, size=200), info(40, 50, size=0)]
    groups = group_segments(segments, segment_bytes=100, relative_offset_max=relative_offset_max)
    assert [[s.base_offset for s in g] for g in groups] == [[0, 10], [20], [30], [40]]


def test_a_group_never_spans_more_offsets_than_the_index_can_hold() -> None:
    far = 2**31
    segments = [info(0, 10, size=1), info(10, far - 1, size=1), info(far - 1, far + 5, size=1)]
    groups = group_segments(segments, segment_bytes=100, relative_offset_max=relative_offset_max)
    assert [[s.base_offset for s in g] for g in groups] == [[0, 10], [far - 1]]


# ---------------------------------------------------------------------- keep rule


def columns(offsets, keys, values, timestamps=None) -> Columns:
    return Columns(list(offsets), timestamps or [NOW] * len(offsets), list(keys), list(values),
                   None)


def encoded(base, keys, values, *, producer_id=-1, attributes=0):
    data = codec.encode_batch(base, [NOW + i for i in range(len(keys))], list(keys),
                              list(values), attributes=attributes, producer_id=producer_id,
                              producer_epoch=0 if producer_id >= 0 else -1,
                              base_sequence=7 if producer_id >= 0 else -1)
    header = codec.decode_header(data)
    return header, data, codec.decode_columns(header, data[codec.crc_start:])


def test_keep_the_latest_record_of_each_key_in_the_map() -> None:
    cols = columns(range(10, 15), [b"a", b"b", b"a", b"c", None], [b"1", b"2", b"3", b"4", b"5"])
    latest = {b"a": 12, b"b": 30, b"c": 13}
    kept = retained_indexes(cols, latest=latest, map_end=100, now_ms=NOW, delete_horizon_ms=-1)
    assert kept == [2, 3, 4]  # b"a"@10 and b"b"@11 are obsolete; the keyless record stays


def test_records_past_the_map_are_kept() -> None:
    cols = columns(range(10, 13), [b"a"] * 3, [b"1", b"2", b"3"])
    kept = retained_indexes(cols, latest={b"a": 40}, map_end=11, now_ms=NOW,
                            delete_horizon_ms=-1)
    assert kept == [1, 2]


def test_a_key_not_in_the_map_is_kept() -> None:
    cols = columns([3], [b"z"], [b"1"])
    assert retained_indexes(cols, latest={}, map_end=10, now_ms=NOW, delete_horizon_ms=-1) == [0]


def test_tombstones_stay_until_their_delete_horizon() -> None:
    cols = columns([1, 2], [b"a", b"b"], [None, b"x"])
    latest = {b"a": 1, b"b": 2}

    def kept(horizon, now):
        return retained_indexes(cols, latest=latest, map_end=10, now_ms=now,
                                delete_horizon_ms=horizon)

    assert kept(-1, NOW) == [0, 1]  # not stamped yet
    assert kept(NOW + 1, NOW) == [0, 1]
    assert kept(NOW, NOW) == [1]  # now >= horizon: the tombstone goes


def test_an_obsolete_tombstone_goes_at_once() -> None:
    cols = columns([1], [b"a"], [None])
    assert retained_indexes(cols, latest={b"a": 5}, map_end=10, now_ms=NOW,
                            delete_horizon_ms=-1) == []


def clean(header, data, cols, *, latest, map_end=1000, now=NOW, keep_empty=False,
          delete_retention_ms=DAY_MS):
    return clean_batch(header, data, cols, latest=latest, map_end=map_end, now_ms=now,
                       delete_retention_ms=delete_retention_ms, keep_empty=keep_empty)


def decode(data):
    header = codec.decode_header(data)
    assert codec.plausible(header, len(data))
    assert codec.verify_crc(data[codec.crc_start:], header)
    return header, codec.decode_columns(header, data[codec.crc_start:])


def test_a_batch_that_loses_records_keeps_its_offsets_and_producer_fields() -> None:
    header, data, cols = encoded(100, [b"a", b"b", b"a", b"b"], [b"1", b"2", b"3", b"4"],
                                 producer_id=9)
    out, removed = clean(header, data, cols, latest={b"a": 102, b"b": 200})
    assert removed == 3
    new, new_cols = decode(out)
    assert list(new_cols.offsets) == [102]
    assert list(new_cols.values) == [b"3"]
    assert (new.base_offset, new.last_offset) == (100, 103)  # trailing gap: last offset kept
    assert (new.producer_id, new.producer_epoch, new.base_sequence) == (9, 0, 7)
    assert new.attributes & codec.attr_compacted
    assert codec.delete_horizon_ms(new) == -1


def test_a_batch_that_loses_every_record_disappears_unless_it_must_stay() -> None:
    header, data, cols = encoded(100, [b"a", b"a"], [b"1", b"2"], producer_id=9)
    assert clean(header, data, cols, latest={b"a": 500}) == (None, 2)
    out, removed = clean(header, data, cols, latest={b"a": 500}, keep_empty=True)
    assert removed == 2
    new, new_cols = decode(out)
    assert new.record_count == 0 and list(new_cols.offsets) == []
    assert (new.base_offset, new.last_offset, new.producer_id, new.base_sequence) == (
        100, 101, 9, 7)
    assert new.max_timestamp == header.max_timestamp


def test_an_untouched_batch_is_marked_compacted_once_then_copied_as_is() -> None:
    header, data, cols = encoded(100, [b"a", b"b"], [b"1", b"2"], attributes=codec.compression_lz4)
    out, removed = clean(header, data, cols, latest={b"a": 100, b"b": 101})
    assert removed == 0 and out is not data
    new, new_cols = decode(out)
    assert new.attributes & codec.attr_compacted
    assert new.attributes & codec.compression_mask == codec.compression_lz4
    assert new_cols == cols
    assert out[codec.header_bytes:] == data[codec.header_bytes:]  # the payload untouched
    again, removed = clean(new, out, new_cols, latest={b"a": 100, b"b": 101})
    assert again is out and removed == 0


def test_the_first_cleaning_that_keeps_a_tombstone_stamps_the_delete_horizon() -> None:
    header, data, cols = encoded(10, [b"a", b"b"], [None, b"x"])
    out, _ = clean(header, data, cols, latest={b"a": 10, b"b": 11}, delete_retention_ms=500)
    new, new_cols = decode(out)
    assert codec.delete_horizon_ms(new) == NOW + 500
    assert list(new_cols.values) == [None, b"x"]
    assert list(new_cols.timestamps) == list(cols.timestamps)  # records keep their times
    # A later cleaning before the horizon keeps it, with the same horizon ...
    later, _ = clean(new, out, new_cols, latest={b"a": 10, b"b": 11}, now=NOW + 499)
    assert later is out
    # ... and one at the horizon drops it, and the stamp with it.
    last, removed = clean(new, out, new_cols, latest={b"a": 10, b"b": 11}, now=NOW + 500)
    assert removed == 1
    final, final_cols = decode(last)
    assert list(final_cols.keys) == [b"b"]
    assert codec.delete_horizon_ms(final) == -1


def test_control_batches_are_kept_whole() -> None:
    header, data, cols = encoded(10, [b"\0\0\0\1"], [b"x"],
                                 attributes=codec.attr_control | codec.attr_transactional)
    out, removed = clean(header, data, cols, latest={b"\0\0\0\1": 99})
    assert removed == 0
    assert decode(out)[1] == cols


def test_an_empty_batch_is_only_plausible_when_compacted() -> None:
    header, data, cols = encoded(5, [b"a"], [b"1"])
    out, _ = clean(header, data, cols, latest={b"a": 9}, keep_empty=True)
    empty = codec.decode_header(out)
    assert codec.plausible(empty, len(out))
    forged = empty._replace(attributes=empty.attributes & ~codec.attr_compacted)
    assert not codec.plausible(forged, len(out))


# ---------------------------------------------------------------------- on a log


@pytest.fixture(params=["files", "memory"])
def directory(request, tmp_path):
    return str(tmp_path / "p") if request.param == "files" else None


def open_log(directory, *, clean_shutdown=False, now=NOW, **config):
    settings = {"segment_bytes": 400, "index_interval_bytes": 64, "cleanup_policy": "compact",
                "min_cleanable_dirty_ratio": 0.0, **config}
    return PartitionLog(directory, TopicConfig(**settings), now_ms=now,
                        clean_shutdown=clean_shutdown)


LOCK = threading.Lock()


def put(log, pairs, *, now=NOW, producer_id=-1, sequence=-1):
    keys = [k for k, _ in pairs]
    values = [v for _, v in pairs]
    return log.append([now] * len(pairs), keys, values, None, producer_id=producer_id,
                      producer_epoch=0 if producer_id >= 0 else -1, base_sequence=sequence,
                      now_ms=now)


def records(log, start=None):
    out = []
    for _header, cols in log.read(log.start_offset if start is None else start, 10**6):
        out.extend(zip(cols.offsets, cols.keys, cols.values))
    return out


def fill(log, n, keys=4, *, now=NOW):
    for i in range(n):
        put(log, [(b"k%d" % (i % keys), b"v%d" % i)], now=now)


def test_cleaning_keeps_the_latest_value_of_each_key_in_order(directory) -> None:
    log = open_log(directory)
    fill(log, 60)
    log.roll(NOW)
    before = log.end_offset
    stats = log.clean(NOW, commit_lock=LOCK)
    assert stats.cleaned and stats.records_removed == 56
    assert records(log) == [(56 + i, b"k%d" % (i % 4), b"v%d" % (56 + i)) for i in range(4)]
    assert log.end_offset == before and log.start_offset == 0
    assert log.segments[0].base_offset == 0  # compaction never moves the log start
    log.check()
    log.close()


def test_the_active_segment_is_not_cleaned(directory) -> None:
    log = open_log(directory, segment_bytes=10**6)
    fill(log, 20)
    assert not log.clean(NOW, commit_lock=LOCK).cleaned
    assert len(records(log)) == 20
    log.roll(NOW)
    fill(log, 8)  # the new active segment's duplicates stay visible
    assert log.clean(NOW, commit_lock=LOCK).cleaned
    assert [o for o, _, _ in records(log)] == [16, 17, 18, 19, *range(20, 28)]
    log.close()


def test_below_the_dirty_ratio_nothing_is_cleaned(directory) -> None:
    log = open_log(directory, min_cleanable_dirty_ratio=0.5)
    fill(log, 40)
    log.roll(NOW)
    assert log.clean(NOW, commit_lock=LOCK).cleaned  # everything dirty: ratio 1.0
    clean_bytes = log.size_bytes
    fill(log, 1, keys=1)
    log.roll(NOW)  # a tiny dirty segment: ratio far below 0.5
    stats = log.clean(NOW, commit_lock=LOCK)
    assert not stats.cleaned and stats.reason == "not due"
    assert log.size_bytes > clean_bytes
    log.close()


def test_min_compaction_lag_keeps_recent_segments_dirty(directory) -> None:
    log = open_log(directory, min_compaction_lag_ms=1000, segment_bytes=10**6)
    fill(log, 10, now=NOW - 5000)
    log.roll(NOW)
    fill(log, 10, now=NOW - 10)  # recent: uncleanable for another 990 ms
    log.roll(NOW)
    stats = log.clean(NOW, commit_lock=LOCK)
    assert stats.end_offset == 10
    assert [o for o, _, _ in records(log)] == [6, 7, 8, 9, *range(10, 20)]
    stats = log.clean(NOW + 990, commit_lock=LOCK)
    assert [o for o, _, _ in records(log)] == [16, 17, 18, 19]
    log.close()


def test_tombstones_live_for_delete_retention_ms(directory) -> None:
    log = open_log(directory, delete_retention_ms=1000)
    fill(log, 8)
    put(log, [(b"k1", None)])
    log.roll(NOW)
    log.clean(NOW, commit_lock=LOCK)
    assert (8, b"k1", None) in records(log)
    assert b"k1" not in {k for _, k, v in records(log) if v is not None}
    assert not log.clean(NOW + 999, commit_lock=LOCK).cleaned  # nothing dirty, horizon ahead
    stats = log.clean(NOW + 1000, commit_lock=LOCK)
    assert stats.reason == "delete horizon" and stats.records_removed == 1
    assert [k for _, k, _ in records(log)] == [b"k0", b"k2", b"k3"]
    assert not log.clean(NOW + 5000, commit_lock=LOCK).cleaned  # the horizon is gone
    log.close()


def test_the_delete_horizon_survives_reopening(tmp_path) -> None:
    directory = str(tmp_path / "p")
    log = open_log(directory, delete_retention_ms=1000)
    put(log, [(b"a", b"1"), (b"b", None)])
    log.roll(NOW)
    log.clean(NOW, commit_lock=LOCK)
    log.close()
    log = open_log(directory, clean_shutdown=True, delete_retention_ms=1000)
    assert not log.clean(NOW + 999, commit_lock=LOCK).cleaned
    assert log.clean(NOW + 1000, commit_lock=LOCK).reason == "delete horizon"
    assert records(log) == [(0, b"a", b"1")]
    log.close()


def test_the_last_batch_of_each_producer_is_kept_even_when_empty(directory) -> None:
    log = open_log(directory, segment_bytes=10**6)
    put(log, [(b"a", b"1"), (b"b", b"1")], producer_id=5, sequence=0)  # 0-1
    put(log, [(b"a", b"2")], producer_id=5, sequence=2)  # 2: producer 5's last batch
    put(log, [(b"a", b"3"), (b"b", b"3")], producer_id=6, sequence=0)  # 3-4
    log.roll(NOW)
    put(log, [(b"a", b"4"), (b"b", b"4")], producer_id=6, sequence=2)  # 5-6: active
    log.roll(NOW)
    log.clean(NOW, commit_lock=LOCK)
    assert records(log) == [(5, b"a", b"4"), (6, b"b", b"4")]
    kept = [(h.producer_id, h.base_offset, h.last_offset, h.base_sequence, h.record_count)
            for h, _ in log.read(0, 100)]
    # Producer 5's last batch stays, empty, with its sequence range; producer 6's
    # first batch goes (its last one is later), as does producer 5's first.
    assert kept == [(5, 2, 2, 2, 0), (6, 5, 6, 2, 2)]
    log.check()
    log.close()


def test_an_expired_producer_loses_its_last_batch(directory) -> None:
    log = open_log(directory, segment_bytes=10**6)
    expired = NOW - cleaner.producer_id_expiration_ms - 1
    put(log, [(b"a", b"1")], producer_id=5, sequence=0, now=expired)
    put(log, [(b"a", b"2")])
    put(log, [(b"b", b"2")])  # the segment's last batch (kept, even if emptied)
    log.roll(NOW)
    log.clean(NOW, commit_lock=LOCK)
    assert [h.producer_id for h, _ in log.read(0, 100)] == [-1, -1]
    log.close()


def test_each_rewritten_segment_ends_where_it_ended(directory) -> None:
    log = open_log(directory, segment_bytes=200)
    fill(log, 30, keys=1)
    log.roll(NOW)
    ends = {s.base_offset: s.next_offset for s in log.segments}
    log.clean(NOW, commit_lock=LOCK)
    for seg in log.segments:
        assert ends[seg.base_offset] >= seg.next_offset
    bases = [s.base_offset for s in log.segments]
    nexts = [s.next_offset for s in log.segments]
    assert nexts[:-1] == bases[1:], "no offset gap between segments"
    log.check()
    log.close()


def test_small_cleaned_segments_are_merged(directory) -> None:
    log = open_log(directory, segment_bytes=300)
    fill(log, 60, keys=2)
    log.roll(NOW)
    segments_before = len(log.segments)
    log.clean(NOW, commit_lock=LOCK)
    fill(log, 1, keys=2)
    log.roll(NOW)
    log.clean(NOW, commit_lock=LOCK)  # the first pass left small segments: now merged
    assert len(log.segments) < segments_before / 2
    assert log.segments[0].base_offset == 0
    assert [k for _, k, _ in records(log)] == [b"k1", b"k0"]
    log.check()
    log.close()


def test_the_checkpoint_is_persisted_and_a_clean_log_is_not_cleaned_again(tmp_path) -> None:
    directory = str(tmp_path / "p")
    log = open_log(directory)
    fill(log, 40)
    log.roll(NOW)
    end = log.active_segment.base_offset
    assert log.clean(NOW, commit_lock=LOCK).end_offset == end
    with open(os.path.join(directory, cleaner.checkpoint_file)) as f:
        assert int(f.read()) == end
    log.close()
    log = open_log(directory, clean_shutdown=True)
    assert log.cleaner_checkpoint == end
    assert not log.clean(NOW, commit_lock=LOCK).cleaned
    log.close()


def test_truncation_pulls_the_checkpoint_back(directory) -> None:
    log = open_log(directory)
    fill(log, 40)
    log.roll(NOW)
    log.clean(NOW, commit_lock=LOCK)
    log.truncate_to(39)
    assert log.cleaner_checkpoint == 39
    log.check()
    log.close()


def test_cleaning_is_dropped_if_retention_changed_the_segments(directory, monkeypatch) -> None:
    log = open_log(directory)
    fill(log, 40)
    log.roll(NOW)
    segments = log.segments
    original = cleaner._Writer.finish

    def finish_then_delete_the_head(self):
        result = original(self)
        log.delete_before(segments[1].base_offset)  # as retention would, meanwhile
        return result

    monkeypatch.setattr(cleaner._Writer, "finish", finish_then_delete_the_head)
    stats = log.clean(NOW, commit_lock=LOCK)
    assert not stats.cleaned and stats.reason.startswith("aborted")
    if directory is not None:
        assert not [n for n in os.listdir(directory) if n.endswith((".cleaned", ".swap"))]
    log.check()
    log.close()


def test_a_reader_racing_a_swap_reads_on_from_the_new_segments(directory, monkeypatch) -> None:
    log = open_log(directory)
    fill(log, 40)
    log.roll(NOW)
    expected = [(36 + i, b"k%d" % i, b"v%d" % (36 + i)) for i in range(4)]
    original = Segment.read
    swapped = []

    def read_after_a_swap(self, offset, max_records, max_bytes):
        if not swapped:  # the reader has its snapshot; the cleaner swaps meanwhile
            swapped.append(log.clean(NOW, commit_lock=LOCK))
        return original(self, offset, max_records, max_bytes)

    monkeypatch.setattr(Segment, "read", read_after_a_swap)
    assert records(log) == expected
    assert swapped[0].cleaned
    log.close()


def test_a_concurrent_second_run_returns_at_once(directory) -> None:
    log = open_log(directory)
    fill(log, 10)
    log.roll(NOW)
    with log._cleaner._lock:
        assert not log.clean(NOW, commit_lock=LOCK).cleaned
    assert log.clean(NOW, commit_lock=LOCK).cleaned
    log.close()


def test_a_corrupt_batch_stops_the_cleaning_and_changes_nothing(tmp_path) -> None:
    directory = str(tmp_path / "p")
    log = open_log(directory, segment_bytes=10**6)
    fill(log, 10)
    log.roll(NOW)
    log.close()
    path = os.path.join(directory, "00000000000000000000.log")
    with open(path, "r+b") as f:
        f.seek(codec.header_bytes + 2)  # a payload byte of the first batch
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    log = open_log(directory, clean_shutdown=True, segment_bytes=10**6)
    with pytest.raises(eventlog.errors.CorruptLogError):
        log.clean(NOW, commit_lock=LOCK)
    assert log.cleaner_checkpoint == -1
    assert not [n for n in os.listdir(directory) if n.endswith((".cleaned", ".swap"))]
    log.close()


# ---------------------------------------------------------------------- public API


@pytest.fixture
def clock():
    return ManualClock(NOW)


def compacted_topic(log, **config):
    settings = {"cleanup_policy": "compact", "segment_bytes": 300,
                "min_cleanable_dirty_ratio": 0.0, **config}
    return log.create_topic("t", **settings).partition(0)


def test_partition_reads_skip_the_gaps(clock) -> None:
    with eventlog.open(None, clock=clock) as log:
        p = compacted_topic(log)
        p.append([(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (b"b", b"2")])  # 0-4
        p.append([(b"c", b"2")])  # 5
        p.roll()
        p.append([(b"d", b"1")])  # 6: active
        assert log.run_compaction() == 3
        assert [(r.offset, r.key) for r in p.read(0)] == [(2, b"a"), (4, b"b"), (5, b"c"),
                                                           (6, b"d")]
        assert [r.offset for r in p.read(0, max_records=1)] == [2]  # from a removed offset
        assert [r.offset for r in p.read(3, max_records=2)] == [4, 5]
        assert [r.offset for r in p.read(5)] == [5, 6]
        cols = p.read_columns(1, 10)
        assert [list(c.offsets) for _, c in cols] == [[2, 4], [5], [6]]
        p.check()


def test_a_consumer_reads_a_compacted_log_and_its_position_passes_the_gaps(clock) -> None:
    with eventlog.open(None, clock=clock) as log:
        p = compacted_topic(log)
        p.append([(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", b"2"), (b"c", b"1")])  # 0-4
        p.append([(b"c", b"2"), (b"a", b"3")])  # 5-6: the end of the batch goes
        p.append([(b"a", b"4")])  # 7
        p.roll()
        p.append([(b"e", b"1")])  # 8: active
        log.run_compaction()
        tp = TopicPartition("t", 0)
        consumer = log.consumer(enable_auto_commit=False)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got = consumer.poll(timeout_ms=0)
        assert [(r.offset, r.key, r.value) for r in got] == [
            (3, b"b", b"2"), (5, b"c", b"2"), (7, b"a", b"4"), (8, b"e", b"1"),
        ]
        assert consumer.position(tp) == 9
        consumer.seek(tp, 6)  # removed: the next record that exists
        assert [r.offset for r in consumer.poll(timeout_ms=0)] == [7, 8]
        consumer.seek(tp, 4)
        assert [r.offset for r in consumer.poll(timeout_ms=0, max_records=1)] == [5]
        assert [r.offset for r in consumer.poll(timeout_ms=0)] == [7, 8]
        consumer.close()


def test_a_consumer_position_passes_a_batch_whose_end_was_removed(clock) -> None:
    with eventlog.open(None, clock=clock) as log:
        p = compacted_topic(log)
        p.append([(b"a", b"1"), (b"b", b"1"), (b"b", b"2")])  # 0-2
        p.append([(b"b", b"3")])  # 3: b@1 and b@2 go, batch 0-2 keeps only offset 0
        p.roll()
        p.append([(b"c", b"1")])  # 4
        log.run_compaction()
        tp = TopicPartition("t", 0)
        consumer = log.consumer(enable_auto_commit=False)
        consumer.assign([tp])
        consumer.seek(tp, 1)
        assert [r.offset for r in consumer.poll(timeout_ms=0)] == [3, 4]
        assert consumer.position(tp) == 5
        consumer.close()


def test_committed_offsets_survive_compaction_and_reopening(tmp_path, clock) -> None:
    path = tmp_path / "data"
    with eventlog.open(path, clock=clock) as log:
        log.create_topic("orders", 2)
        for round_ in range(30):
            for group in ("g1", "g2", "gone"):
                consumer = log.consumer(group_id=group, enable_auto_commit=False)
                consumer.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
                consumer.commit({TopicPartition("orders", 0): round_ * 2,
                                 TopicPartition("orders", 1): round_ * 3})
                consumer.close()
        delete_group(log, "gone")
        offsets = log.partition(offsets_topic, 0)
        offsets.roll()
        size_before = offsets.size_bytes
        removed = log.run_compaction()
        assert removed == 30 * 3 * 2 + 2 - 6  # 180 commits, 2 tombstones; 4 + 2 stay
        assert offsets.size_bytes < size_before / 10
        clock.advance(DAY_MS)  # delete_retention_ms: the tombstones' horizon
        assert log.run_compaction() == 2
        offsets.check()
    with eventlog.open(path, clock=clock) as log:
        for group, factor in (("g1", 1), ("g2", 1)):
            consumer = log.consumer(group_id=group, enable_auto_commit=False)
            assert consumer.committed(TopicPartition("orders", 0)) == 29 * 2 * factor
            assert consumer.committed(TopicPartition("orders", 1)) == 29 * 3 * factor
            consumer.close()
        gone = log.consumer(group_id="gone", enable_auto_commit=False)
        assert gone.committed(TopicPartition("orders", 0)) is None
        gone.close()
        assert sorted(g.group_id for g in log.list_groups()) == ["g1", "g2"]


def test_compact_delete_applies_retention_and_compaction(clock) -> None:
    with eventlog.open(None, clock=clock) as log:
        p = compacted_topic(log, cleanup_policy="compact,delete", retention_ms=DAY_MS)
        for i in range(20):
            p.append([(b"k%d" % (i % 2), b"v%d" % i)], timestamp_ms=NOW - 2 * DAY_MS)
        p.roll()
        for i in range(20):
            p.append([(b"k%d" % (i % 2), b"v%d" % i)])
        p.roll()
        p.append([(b"x", b"y")])
        assert log.run_retention() > 0
        assert p.start_offset == 20
        log.run_compaction()
        assert [r.offset for r in p.read(p.start_offset)] == [38, 39, 40]
        p.check()


def test_delete_policy_topics_are_not_compacted(clock) -> None:
    with eventlog.open(None, clock=clock) as log:
        p = log.create_topic("t", segment_bytes=200, min_cleanable_dirty_ratio=0.0).partition(0)
        for i in range(20):
            p.append([(b"k", b"v%d" % i)])
        p.roll()
        assert log.run_compaction() == 0
        assert len(p.read(0, 100)) == 20


def test_the_background_thread_compacts(tmp_path) -> None:
    with eventlog.open(tmp_path / "d", retention_check_interval_ms=1,
                       flush_interval_ms=5) as log:
        p = compacted_topic(log)
        for i in range(40):
            p.append([(b"k%d" % (i % 2), b"v%d" % i)])
        p.roll()
        for _ in range(1000):
            if len(p.read(0, 100)) == 2:
                break
            threading.Event().wait(0.005)
        assert [r.offset for r in p.read(0, 100)] == [38, 39]


def test_compaction_configs_are_validated() -> None:
    with pytest.raises(eventlog.errors.InvalidConfigError, match="max_compaction_lag_ms"):
        TopicConfig(max_compaction_lag_ms=0)
    with pytest.raises(eventlog.errors.InvalidConfigError, match="must not exceed"):
        TopicConfig(min_compaction_lag_ms=10, max_compaction_lag_ms=5)
    assert TopicConfig(cleanup_policy="delete,compact").compacted


def test_max_compaction_lag_also_rolls_the_active_segment(directory) -> None:
    # Kafka's LogConfig.maxSegmentMs: the cleaner never cleans the active segment, so
    # a compacted log rolls by max_compaction_lag_ms too.
    log = open_log(directory, segment_bytes=10**6, max_compaction_lag_ms=1000)
    put(log, [(b"a", b"1")], now=NOW)
    put(log, [(b"a", b"2")], now=NOW + 1000)
    assert len(log.segments) == 1
    put(log, [(b"a", b"3")], now=NOW + 1001)
    assert len(log.segments) == 2
    stats = log.clean(NOW + 1001, commit_lock=LOCK)
    # The duplicate in the active segment is not in the key map: a@1 stays for now.
    assert stats.cleaned and records(log) == [(1, b"a", b"2"), (2, b"a", b"3")]
    log.close()


def test_run_compaction_cleans_the_other_partitions_then_reports_a_corrupt_one(
    tmp_path, clock
) -> None:
    with eventlog.open(tmp_path / "d", clock=clock) as log:
        for name in ("bad", "good"):
            p = log.create_topic(name, cleanup_policy="compact", segment_bytes=10**6,
                                 min_cleanable_dirty_ratio=0.0).partition(0)
            p.append([(b"k", b"1"), (b"k", b"2")])
            p.roll()
            p.append([(b"k", b"3")])
    path = tmp_path / "d" / "bad-0" / "00000000000000000000.log"
    data = bytearray(path.read_bytes())
    data[codec.header_bytes + 2] ^= 0xFF  # a payload byte: the batch fails its CRC
    path.write_bytes(bytes(data))
    with eventlog.open(tmp_path / "d", clock=clock) as log:
        with pytest.raises(eventlog.errors.CorruptLogError):
            log.run_compaction()
        assert [r.offset for r in log.partition("good", 0).read(0)] == [1, 2]


def test_a_full_key_map_cleans_up_to_a_segment_boundary_and_the_rest_later(
    directory, monkeypatch
) -> None:
    monkeypatch.setattr(cleaner, "key_map_keys_max", 6)
    log = open_log(directory, segment_bytes=10**6)
    for segment in range(3):  # 4 keys per segment, each key twice; 12 keys in all
        for i in range(8):
            put(log, [(b"s%dk%d" % (segment, i % 4), b"%d" % i)])
        log.roll(NOW)
    first = log.clean(NOW, commit_lock=LOCK)
    assert first.end_offset == 8  # a second segment's keys would overflow the map
    assert log.cleaner_checkpoint == 8
    assert len(records(log)) == 4 + 8 + 8
    second = log.clean(NOW, commit_lock=LOCK)  # dirty ratio 16/20: due again
    assert (second.first_dirty, second.end_offset) == (8, 16)
    third = log.clean(NOW, commit_lock=LOCK)
    assert third.end_offset == 24
    assert [o for o, _, _ in records(log)] == [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23]
    log.check()
    log.close()


def test_a_time_lookup_racing_a_swap_starts_again_on_the_new_segments(
    directory, monkeypatch
) -> None:
    log = open_log(directory)
    for i in range(40):
        put(log, [(b"k%d" % (i % 4), b"v%d" % i)], now=NOW + i)
    log.roll(NOW)
    original = Segment.offset_for_time
    swapped = []

    def lookup_after_a_swap(self, timestamp_ms):
        if not swapped:
            swapped.append(log.clean(NOW, commit_lock=LOCK))
        return original(self, timestamp_ms)

    monkeypatch.setattr(Segment, "offset_for_time", lookup_after_a_swap)
    assert log.offset_for_time(NOW + 10) == (36, NOW + 36)  # 10..35 were compacted away
    assert swapped[0].cleaned
    log.close()
