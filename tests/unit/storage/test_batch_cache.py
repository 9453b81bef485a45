"""storage/batch_cache.py: decoded batches kept for point reads, and every way the
bytes under them can change (truncation, deletion, compaction, reopening)."""

from __future__ import annotations

from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
from budget import examples
from eventlog.storage import batch as codec
from eventlog.storage.batch_cache import BatchCache
from eventlog.storage.segment import Segment


def fill(p, batches: int, size: int, tag: bytes = b"v") -> None:
    for _batch_number in range(batches):
        base = p.end_offset
        p.append([(b"k%d" % (base + i), tag + b"%d" % (base + i)) for i in range(size)])


def point(p, offset: int):
    records = p.read(offset, max_records=1)
    assert len(records) == 1 and records[0].offset == offset
    return records[0]


def cache_of(p) -> BatchCache:
    return p._log.batch_cache


def sequential(p) -> dict[int, tuple]:
    return {r.offset: (r.key, r.value, r.timestamp_ms) for r in p.iter()}


# ---------------------------------------------------------------------- the cache


def _batch(base: int, n: int, tag: bytes = b"x"):
    data = codec.encode_batch(base, [1] * n, [None] * n, [tag] * n)
    header = codec.decode_header(data)
    cols = codec.decode_columns(header, data[codec.crc_start:])
    return header, cols


def test_a_hit_needs_the_same_header_as_the_file_holds_now() -> None:
    cache = BatchCache()
    header, cols = _batch(0, 3)
    cache.put(7, 0, header, cols)
    assert cache.get(7, 0, header) is cols
    other, _ = _batch(0, 3, b"y")  # another batch at the same position: other CRC
    assert other.crc != header.crc
    assert cache.get(7, 0, other) is None
    assert cache.get(8, 0, header) is None  # another segment token
    assert cache.get(7, 1, header) is None


def test_bounded_by_entries_and_stored_bytes_oldest_out() -> None:
    cache = BatchCache(entries_max=3, stored_bytes_max=10**6)
    batches = [_batch(i * 10, 10) for i in range(5)]
    for i, (header, cols) in enumerate(batches):
        cache.put(1, i * 1000, header, cols)
    assert len(cache) == 3
    assert cache.get(1, 0, batches[0][0]) is None
    assert cache.get(1, 4000, batches[4][0]) is batches[4][1]
    assert cache.stored_bytes == sum(h.total_bytes for h, _ in batches[2:])

    small = BatchCache(entries_max=10, stored_bytes_max=batches[0][0].total_bytes * 2)
    for i, (header, cols) in enumerate(batches):
        small.put(1, i * 1000, header, cols)
    assert len(small) == 2 and small.stored_bytes <= small.stored_bytes_max
    small.put(1, 0, batches[0][0], batches[0][1])  # the same key again: counted once
    assert len(small) == 2 and small.stored_bytes <= small.stored_bytes_max
    small.clear()
    assert len(small) == 0 and small.stored_bytes == 0


def test_a_batch_larger_than_the_byte_bound_is_not_kept() -> None:
    header, cols = _batch(0, 50)
    cache = BatchCache(stored_bytes_max=header.total_bytes - 1)
    cache.put(1, 0, header, cols)
    assert len(cache) == 0 and cache.stored_bytes == 0


# ---------------------------------------------------------------------- on a partition


def test_point_reads_into_one_batch_decode_it_twice_then_slice(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t").partition(0)
        fill(p, 3, 100)
        cache = cache_of(p)
        assert point(p, 150).value == b"v150"
        assert len(cache) == 0  # a first point read only notes the batch
        assert point(p, 151).value == b"v151"
        assert len(cache) == 1  # the second keeps it
        misses = cache.misses
        for offset in range(100, 200):
            assert point(p, offset).value == b"v%d" % offset
        assert cache.misses == misses
        assert cache.hits >= 100


def test_point_reads_into_a_framed_batch_decode_one_frame_and_keep_nothing(
    path, monkeypatch
) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t", frame_records=codec.frame_records_default).partition(0)
        fill(p, 3, 100)
        assert all(h.attributes & codec.attr_record_frames
                   for seg in p._log.segments for h, _ in seg.headers())

        def whole_batch_decoded(*args: object) -> None:
            raise AssertionError("a point read decoded its whole batch")

        monkeypatch.setattr(codec, "_framed_columns", whole_batch_decoded)
        for offset in range(300):
            assert point(p, offset).value == b"v%d" % offset
        assert len(cache_of(p)) == 0
        monkeypatch.undo()
        # A bulk read that stops inside a batch keeps it; a point read then hits it.
        assert len(p.read(0, max_records=150)) == 150
        hits = cache_of(p).hits
        assert point(p, 170).value == b"v170"
        assert cache_of(p).hits == hits + 1


def test_point_reads_at_scattered_offsets_keep_nothing(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t").partition(0)
        fill(p, 20, 50)
        for offset in range(7, 1000, 50):  # one read in each batch
            point(p, offset)
        assert len(cache_of(p)) == 0


def test_sequential_reads_of_whole_batches_cache_nothing(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t").partition(0)
        fill(p, 5, 100)
        assert len(p.read(0, max_records=500)) == 500
        assert len(cache_of(p)) == 0
        p.read(0, max_records=250)  # ends inside the third batch: kept for the next read
        assert len(cache_of(p)) == 1
        misses = cache_of(p).misses
        assert [r.offset for r in p.read(250, max_records=50)] == list(range(250, 300))
        assert cache_of(p).misses == misses


def test_one_record_batches_are_never_cached(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t").partition(0)
        fill(p, 20, 1)
        for offset in range(20):
            point(p, offset)
        assert len(cache_of(p)) == 0


def test_truncate_to_inside_a_cached_batch_then_new_records(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t").partition(0)
        fill(p, 2, 100)
        seg = p._log.active_segment
        token = seg._cache_token
        assert point(p, 150).value == b"v150"
        assert point(p, 151).value == b"v151"
        assert len(cache_of(p)) == 1
        p.truncate_to(120)
        assert seg._cache_token != token
        fill(p, 1, 100, tag=b"new")  # a re-encoded [100, 120) then new bytes after it
        assert point(p, 110).value == b"v110"
        assert point(p, 150).value == b"new150"
        assert sequential(p) == {o: point_tuple(p, o) for o in range(p.end_offset)}


def point_tuple(p, offset: int) -> tuple:
    r = point(p, offset)
    return (r.key, r.value, r.timestamp_ms)


def test_truncate_to_a_batch_boundary_and_rewrite_the_same_position(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t").partition(0)
        fill(p, 2, 100)
        assert point(p, 150).value == b"v150"
        assert point(p, 151).value == b"v151"
        assert len(cache_of(p)) == 1
        p.truncate_to(100)
        fill(p, 1, 100, tag=b"w")  # the new batch starts at the cached batch's byte
        assert point(p, 150).value == b"w150"


def test_delete_before_then_point_reads(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t", segment_bytes=4096).partition(0)
        fill(p, 10, 50)
        for offset in (25, 125, 275, 475):
            point(p, offset)
            point(p, offset + 1)
        p.delete_before(300)
        with pytest.raises(eventlog.OffsetOutOfRangeError):
            p.read(125, max_records=1)
        assert point(p, 475).value == b"v475"
        assert sequential(p) == {o: point_tuple(p, o) for o in range(p.start_offset, 500)}


def test_compaction_swap_then_point_reads(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic(
            "c", cleanup_policy="compact", segment_bytes=2000, min_cleanable_dirty_ratio=0.0
        ).partition(0)
        for round_ in range(4):
            p.append([(b"k%d" % (i % 10), b"r%d-%d" % (round_, i)) for i in range(40)])
        for offset in range(0, 160, 7):
            point(p, offset)
            point(p, offset + 1)
        assert len(cache_of(p)) > 0
        p.roll()
        assert p.compact().records_removed > 0
        live = sequential(p)
        assert len(live) < 160
        for offset in range(p.start_offset, p.end_offset):
            got = p.read(offset, max_records=1)
            if offset in live:
                assert got[0].offset == offset
                assert (got[0].key, got[0].value, got[0].timestamp_ms) == live[offset]
            else:  # compacted away: the next live record, never a stale one
                assert not got or (got[0].offset > offset and got[0].offset in live)


def test_reopen_starts_with_an_empty_cache(tmp_path) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as log:
        p = log.create_topic("t").partition(0)
        fill(p, 3, 100)
        point(p, 150)
        point(p, 151)
        assert len(cache_of(p)) == 1
    with eventlog.open(path) as log:
        p = log.topic("t").partition(0)
        assert len(cache_of(p)) == 0
        p.truncate_to(150)
        fill(p, 1, 10, tag=b"z")
        assert point(p, 149).value == b"v149"
        assert point(p, 155).value == b"z155"


@settings(max_examples=examples(40), deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=12),
    reads=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 60)), max_size=40),
    cut=st.none() | st.integers(0, 10**6),
    frame_records=st.sampled_from([0, 8]),  # 8: batches of 9 records or more framed
)
def test_point_reads_equal_the_sequential_read(sizes, reads, cut, frame_records) -> None:
    with eventlog.open(None) as log:
        p = log.create_topic("t", segment_bytes=3000,
                             frame_records=frame_records).partition(0)
        for n in sizes:
            fill(p, 1, n)
        if cut is not None:
            for offset, _ in reads[:3]:  # fill the cache before the cut
                p.read(offset % p.end_offset, max_records=1)
                p.read(offset % p.end_offset, max_records=1)
            p.truncate_to(cut % (p.end_offset + 1))
            fill(p, 1, 5, tag=b"after")
        whole = list(p.iter())
        for offset, limit in reads:
            if not whole:
                break
            offset %= len(whole)
            got = p.read(offset, max_records=limit)
            assert got == whole[offset:offset + limit]
        for offset in range(len(whole)):
            assert p.read(offset, max_records=1) == [whole[offset]]


def test_read_key_point_reads_share_the_cached_batch(path) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t").partition(0)
        p.append([(b"a" if i % 10 == 0 else b"b%d" % i, b"v%d" % i) for i in range(500)])
        assert [r.offset for r in p.read_key(b"a", 0, 1)] == [0]
        assert [r.offset for r in p.read_key(b"a", 1, 1)] == [10]  # now kept
        misses = cache_of(p).misses
        for version in range(2, 50):
            assert [r.value for r in p.read_key(b"a", version, 1)] == [b"v%d" % (version * 10)]
        assert cache_of(p).misses == misses
        assert [r.offset for r in p.read_key(b"a")] == list(range(0, 500, 10))


def test_batch_at_the_ends_of_the_log(path, monkeypatch) -> None:
    with eventlog.open(path) as log:
        p = log.create_topic("t", segment_bytes=2000).partition(0)
        fill(p, 8, 10)
        plog = p._log
        assert plog.batch_at(plog.end_offset) is None
        for offset in range(plog.end_offset):
            header, cols = plog.batch_at(offset)
            assert header.base_offset <= offset <= header.last_offset
            assert offset in cols.offsets
        p.delete_before(40)
        with pytest.raises(eventlog.OffsetOutOfRangeError):
            plog.batch_at(5)
        bases, segs = plog._view
        seg = segs[bisect_right(bases, 45) - 1]

        real = Segment.batch_at

        def closed_under_us(self, offset):
            if self is seg:
                raise eventlog.OffsetOutOfRangeError("closed")
            return real(self, offset)

        # As if the segment were closed under the read: read() takes over.
        monkeypatch.setattr(Segment, "batch_at", closed_under_us)
        header, cols = plog.batch_at(45)
        assert header.base_offset == 40 and cols.values[5] == b"v45"


def test_admit_keeps_a_batch_on_its_second_miss_only() -> None:
    cache = BatchCache(entries_max=4)
    cache.seen_max = 2
    batches = [_batch(i * 10, 10) for i in range(4)]
    header, cols = batches[0]
    cache.admit(1, 0, header, cols)
    assert len(cache) == 0
    cache.admit(1, 0, header, cols)
    assert cache.get(1, 0, header) is cols
    for i in (1, 2, 3):  # notes 1, then 2, then 3 pushes 1 out of the notes
        cache.admit(1, i * 1000, *batches[i])
    cache.admit(1, 1000, *batches[1])
    assert cache.get(1, 1000, batches[1][0]) is None  # forgotten: noted again only
    cache.admit(1, 3000, *batches[3])
    assert cache.get(1, 3000, batches[3][0]) is batches[3][1]
