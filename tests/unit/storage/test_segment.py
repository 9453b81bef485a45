"""storage/segment.py: append, read, find_position, offset_for_time, truncate_to, reopen,
recover and check, in memory and on files."""

from __future__ import annotations

import os
import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog.storage import batch as codec
from eventlog.storage.files import segment_file_name
from eventlog.storage.segment import RecoveredSegment, Segment


@pytest.fixture(params=["memory", "file"])
def directory(request, tmp_path) -> str | None:
    return None if request.param == "memory" else str(tmp_path)


def open_segment(directory, base=0, *, interval=4096, trusted=True) -> Segment:
    return Segment(
        directory,
        base,
        segment_bytes=2**30,
        index_interval_bytes=interval,
        created_ms=0,
        trusted=trusted,
    )


class Model:
    """What was appended: one (offset, timestamp, key, value) row per record, and the
    (base offset, last offset, position, size) of each batch."""

    def __init__(self, base: int = 0) -> None:
        self.rows: list[tuple[int, int, bytes | None, bytes | None]] = []
        self.batches: list[tuple[int, int, int, int]] = []
        self.end = base

    def append(self, seg: Segment, timestamps: list[int], *, attributes: int = 0) -> bytes:
        n = len(timestamps)
        keys = [b"k%d" % (self.end + i) if (self.end + i) % 3 else None for i in range(n)]
        values = [b"value-%d" % (self.end + i) * ((self.end + i) % 5) for i in range(n)]
        data = codec.encode_batch(self.end, timestamps, keys, values, attributes=attributes)
        position = seg.size
        seg.append(data, codec.decode_header(data))
        self.batches.append((self.end, self.end + n - 1, position, len(data)))
        for i in range(n):
            self.rows.append((self.end + i, timestamps[i], keys[i], values[i]))
        self.end += n
        return data

    def batch_of(self, offset: int) -> tuple[int, int, int, int]:
        return next(b for b in self.batches if b[0] <= offset <= b[1])


def rows(batches) -> list[tuple]:
    return [
        row
        for _header, cols in batches
        for row in zip(cols.offsets, cols.timestamps, cols.keys, cols.values)
    ]


def fill(seg: Segment, model: Model, n_batches: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for _ in range(n_batches):
        n = rng.randint(1, 6)
        model.append(seg, [rng.randint(0, 1000) for _ in range(n)])


def test_append_then_read_from_every_offset(directory) -> None:
    seg = open_segment(directory, interval=150)
    model = Model()
    fill(seg, model, 40)
    seg.check()
    assert seg.next_offset == model.end
    assert seg.size == sum(b[3] for b in model.batches)
    for offset in range(model.end):
        base, last, position, _size = model.batch_of(offset)
        assert seg.find_position(offset) == position
        one = seg.read(offset, 1, 2**31)
        assert len(one) == 1
        assert (one[0][0].base_offset, one[0][0].last_offset) == (base, last)
        everything = seg.read(offset, 10**6, 2**31)
        assert rows(everything) == [r for r in model.rows if r[0] >= base]
    assert seg.find_position(model.end) == seg.size
    assert seg.read(model.end, 10, 2**31) == []
    seg.close()


def test_read_stops_at_max_records_and_max_bytes() -> None:
    seg = open_segment(None)
    model = Model()
    for _ in range(10):
        model.append(seg, [1, 2, 3])  # 10 batches of 3 records
    assert len(seg.read(0, 3, 2**31)) == 1
    assert len(seg.read(0, 4, 2**31)) == 2
    assert len(seg.read(2, 1, 2**31)) == 1  # offset 2 ends batch 0: one record counts
    assert len(seg.read(2, 2, 2**31)) == 2
    batch_bytes = model.batches[0][3]
    assert len(seg.read(0, 100, 1)) == 1  # at least one batch
    assert len(seg.read(0, 100, batch_bytes)) == 1
    assert len(seg.read(0, 100, batch_bytes + 1)) == 2


@pytest.mark.parametrize("interval", [0, 1, 100, 300, 10**6])
def test_index_entries_follow_kafkas_rule(interval: int) -> None:
    """An entry (batch last offset, batch position) once more than ``interval`` bytes were
    appended since the previous entry; the segment's first batch never gets one."""
    seg = open_segment(None, interval=interval)
    model = Model()
    fill(seg, model, 30, seed=interval)
    expected = []
    since = 0
    for _base, last, position, size in model.batches:
        if since > interval and position > 0:
            expected.append((last, position))
            since = 0
        since += size
    assert list(zip(seg.index.offsets, seg.index.positions)) == expected
    seg.check()


@given(
    timestamps=st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=5), min_size=1,
                        max_size=25),
    targets=st.lists(st.integers(0, 55), max_size=10),
)
def test_offset_for_time_with_non_monotonic_timestamps(timestamps, targets) -> None:
    seg = open_segment(None, interval=0)  # an index entry per batch: exercise the lookup
    model = Model()
    for batch in timestamps:
        model.append(seg, batch)
    assert seg.max_timestamp == max(t for b in timestamps for t in b)
    for target in [*targets, 0, seg.max_timestamp, seg.max_timestamp + 1]:
        expected = next(((o, t) for o, t, _k, _v in model.rows if t >= target), None)
        assert seg.offset_for_time(target) == expected, target


def test_truncate_to_a_batch_boundary(directory) -> None:
    seg = open_segment(directory, interval=0)
    model = Model()
    fill(seg, model, 10)
    base, _last, position, _ = model.batches[6]
    removed = seg.truncate_to(base)
    assert removed == sum(b[3] for b in model.batches[6:])
    assert seg.size == position
    assert seg.next_offset == base
    assert all(pos < position for pos in seg.index.positions)
    assert seg.max_timestamp == max(r[1] for r in model.rows if r[0] < base)
    seg.check()
    assert rows(seg.read(0, 10**6, 2**31)) == [r for r in model.rows if r[0] < base]
    # Appends continue at the cut; the segment is whole again.
    model.rows = [r for r in model.rows if r[0] < base]
    model.batches = model.batches[:6]
    model.end = base
    model.append(seg, [7, 8])
    seg.check()
    assert rows(seg.read(0, 10**6, 2**31)) == model.rows
    seg.close()


@pytest.mark.parametrize("compression", [codec.compression_none, codec.compression_lz4])
def test_truncate_to_mid_batch_reencodes_the_records_below(directory, compression) -> None:
    seg = open_segment(directory, interval=0)
    model = Model()
    model.append(seg, [5, 1, 9], attributes=compression)  # offsets 0..2
    model.append(seg, [4, 30, 2, 6, 3], attributes=compression)  # offsets 3..7
    before = seg.size
    removed = seg.truncate_to(5)  # keep 3, 4 of the second batch
    seg.check()
    assert seg.next_offset == 5
    assert removed == before - seg.size
    assert removed > 0
    assert rows(seg.read(0, 100, 2**31)) == model.rows[:5]
    assert seg.max_timestamp == 30  # recomputed over what remains
    header = seg.read(3, 100, 2**31)[0][0]
    assert (header.base_offset, header.last_offset, header.record_count) == (3, 4, 2)
    assert header.attributes & codec.compression_mask == compression
    assert header.max_timestamp == 30
    assert seg.offset_for_time(31) is None
    assert seg.offset_for_time(10) == (4, 30)
    # to the segment's base: empty
    seg.truncate_to(1)
    assert rows(seg.read(0, 100, 2**31)) == model.rows[:1]
    seg.truncate_to(0)
    assert (seg.size, seg.next_offset, seg.max_timestamp) == (0, 0, -1)
    seg.check()
    seg.close()


def test_close_trims_and_reopen_loads_without_scanning(tmp_path) -> None:
    directory = str(tmp_path)
    seg = open_segment(directory, base=100, interval=200)
    model = Model(base=100)
    fill(seg, model, 30)
    state = (seg.size, seg.next_offset, seg.max_timestamp, seg.first_max_timestamp)
    entries = list(zip(seg.index.offsets, seg.index.positions))
    seg.close()
    seg.close()  # idempotent
    log_path = os.path.join(directory, segment_file_name(100, ".log"))
    assert os.path.getsize(log_path) == state[0]
    assert sorted(os.listdir(directory)) == [
        segment_file_name(100, s) for s in (".index", ".log", ".timeindex")
    ]
    again = open_segment(directory, base=100, interval=200)
    again.load()
    assert (again.size, again.next_offset, again.max_timestamp, again.first_max_timestamp) == state
    assert list(zip(again.index.offsets, again.index.positions)) == entries
    again.check()
    assert rows(again.read(100, 10**6, 2**31)) == model.rows
    # and it takes more appends
    model.append(again, [1])
    again.check()
    again.close()


def test_recover_cuts_garbage_after_the_last_batch(directory) -> None:
    seg = open_segment(directory, interval=100)
    model = Model()
    fill(seg, model, 12)
    size = seg.size
    seg._log.write(size, b"\x07garbage\x00\x00tail")  # what a crash might leave
    # Recover from scratch (no known-good point given): scan, verify, cut.
    result = seg.recover()
    assert isinstance(result, RecoveredSegment)
    assert result.base_offset == 0
    assert result.bytes_truncated == len(b"\x07garbage\x00\x00tail")
    assert result.batches_checked >= 1
    assert seg.size == size
    assert seg._log.read(size, 32) == bytes(32)  # the garbage is gone
    assert seg.next_offset == model.end
    seg.check()
    assert rows(seg.read(0, 10**6, 2**31)) == model.rows


def test_check_catches_a_wrong_end() -> None:
    seg = open_segment(None)
    model = Model()
    fill(seg, model, 3)
    seg.check()
    seg.next_offset += 1
    with pytest.raises(AssertionError):
        seg.check()


def test_repr_shows_identity_and_position() -> None:
    seg = open_segment(None, base=42)
    Model(base=42).append(seg, [1, 2])
    assert repr(seg) == f"Segment(base_offset=42, next_offset=44, size={seg.size})"


def test_a_reader_and_the_writer_loading_the_time_index_get_one_instance(
    tmp_path, monkeypatch
) -> None:
    """The time index loads on first use; a lock-free reader and the writer asking at
    the same moment must share the instance the writer appends to."""
    from eventlog.storage import segment as segment_module

    seg = open_segment(str(tmp_path))
    real = segment_module.TimeIndex
    inside = threading.Barrier(2, timeout=0.5)

    def slow_load(path, *args):  # both threads inside the load at once, if nothing stops them
        try:
            inside.wait()
        except threading.BrokenBarrierError:
            pass  # the other thread is held outside: the load is serialised
        return real(path, *args)

    monkeypatch.setattr(segment_module, "TimeIndex", slow_load)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(seg.time_index)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen[0] is seen[1] is seg.time_index
    seg.close()
