"""Index entries are buffered in memory and reach the .index/.timeindex files in bulk
(storage/index.py, Segment.flush/seal/close): when they must be on file, and that a
crash that loses the pending ones still recovers a correct index."""

from __future__ import annotations

import os
import shutil
import struct

import pytest

from eventlog.config import TopicConfig
from eventlog.storage import batch as codec
from eventlog.storage import index as index_module
from eventlog.storage.loader import index_pending_entries_max, index_pending_log_bytes_max
from eventlog.storage.partition_log import PartitionLog
from eventlog.storage.segment import Segment


def open_segment(directory: str, *, interval: int = 0, trusted: bool = True) -> Segment:
    return Segment(directory, 0, segment_bytes=2**30, index_interval_bytes=interval,
                   created_ms=0, trusted=trusted)


def open_log(directory: str, *, clean: bool = False, fsync: str = "never") -> PartitionLog:
    config = TopicConfig(segment_bytes=40_000, index_interval_bytes=64)
    return PartitionLog(directory, config, now_ms=0, clean_shutdown=clean, fsync=fsync)


def timestamp(offset: int) -> int:
    """Not monotonic: a late high timestamp now and then, as producers may set them."""
    return 1000 + offset * 3 + (5000 if offset % 17 == 5 else 0)


def value(offset: int) -> bytes:
    return b"v%d-" % offset * (offset % 5 + 1)


def append_batches(seg: Segment, n: int) -> None:
    for _ in range(n):
        base = seg.next_offset
        data = codec.encode_batch(base, [timestamp(base)], [b"k%d" % base], [value(base)])
        seg.append(data, codec.decode_header(data))


def append_records(log: PartitionLog, n: int) -> None:
    for _ in range(n):
        o = log.end_offset
        log.append([timestamp(o)], [b"k%d" % o], [value(o)], None, now_ms=0)


def file_entries(path: str, fmt: str) -> list[tuple[int, int]]:
    with open(path, "rb") as f:
        return list(struct.iter_unpack(fmt, f.read()))


def offset_entries_on_file(seg: Segment) -> list[tuple[int, int]]:
    assert seg.index_path is not None
    return file_entries(seg.index_path, ">ii")


def time_entries_on_file(seg: Segment) -> list[tuple[int, int]]:
    assert seg.index_path is not None
    return file_entries(seg.index_path[: -len(".index")] + ".timeindex", ">qi")


def offset_entries(seg: Segment) -> list[tuple[int, int]]:
    return list(zip(seg.index.offsets, seg.index.positions))


def time_entries(seg: Segment) -> list[tuple[int, int]]:
    return list(zip(seg.time_index.timestamps, seg.time_index.offsets))


def snapshot(log: PartitionLog) -> list[tuple]:
    return [(s.base_offset, offset_entries(s), time_entries(s)) for s in log.segments]


def check_reads(log: PartitionLog, end: int) -> None:
    """Every record by offset, and offset_for_time against a scan of the model."""
    assert log.end_offset == end
    for start in range(0, end, 37):
        got = [(o, k, v) for _h, cols in log.read(start, 10**9)
               for o, k, v in zip(cols.offsets, cols.keys, cols.values) if o >= start]
        assert got == [(o, b"k%d" % o, value(o)) for o in range(start, end)], start
    for target in range(900, timestamp(end) + 5200, 211):
        want = next(((o, timestamp(o)) for o in range(end) if timestamp(o) >= target), None)
        assert log.offset_for_time(target) == want, target


@pytest.mark.parametrize("step", ["flush", "seal", "close"])
def test_entries_stay_in_memory_until_flush_seal_or_close(tmp_path, step) -> None:
    seg = open_segment(str(tmp_path))
    append_batches(seg, 60)  # interval 0: an entry for every batch but the first
    assert len(seg.index) == 59
    assert seg.index.pending == 59
    assert offset_entries_on_file(seg) == []  # nothing written yet
    assert time_entries_on_file(seg) == []
    entries, times = offset_entries(seg), time_entries(seg)
    getattr(seg, step)()
    assert offset_entries_on_file(seg) == entries
    assert time_entries_on_file(seg) == times
    if step != "close":
        assert seg.index.pending == 0
        seg.close()
    again = open_segment(str(tmp_path))  # trusted, as after a clean close
    again.load()
    assert offset_entries(again) == entries
    assert time_entries(again) == times
    again.check()
    again.close()


def test_a_full_buffer_is_written_with_one_pwrite_per_index(tmp_path, monkeypatch) -> None:
    writes: list[str] = []
    original = index_module._IndexFile.append

    def counting_append(self, data: bytes) -> None:
        writes.append(os.path.splitext(self.path)[1])
        original(self, data)

    monkeypatch.setattr(index_module._IndexFile, "append", counting_append)
    seg = open_segment(str(tmp_path))
    append_batches(seg, 2 * index_pending_entries_max + 10)
    entries = len(seg.index)
    # Written when the buffer is full, before the next entry is added; the time index
    # first, so every offset entry on file has its time entry on file too.
    assert writes == [".timeindex", ".index"] * 2
    assert seg.index.pending == entries - 2 * index_pending_entries_max
    assert offset_entries_on_file(seg) == offset_entries(seg)[: 2 * index_pending_entries_max]
    seg.flush()
    assert writes[4:] == [".timeindex", ".index"]
    assert offset_entries_on_file(seg) == offset_entries(seg)
    seg.flush()  # nothing pending: no write
    assert len(writes) == 6
    seg.close()
    assert len(writes) == 6


def test_truncation_with_pending_entries(tmp_path) -> None:
    seg = open_segment(str(tmp_path))
    append_batches(seg, 40)
    seg.flush()  # entries for batches 1..39 on file
    append_batches(seg, 40)  # entries for batches 40..79 pending
    assert seg.index.pending == 40
    seg.truncate_to(60)  # cut inside the pending entries: the file keeps its 39
    assert len(seg.index) == 59
    assert seg.index.pending == 20
    assert offset_entries_on_file(seg) == offset_entries(seg)[:39]
    seg.truncate_to(30)  # cut inside the written ones: the file is cut, none pending
    assert len(seg.index) == 29
    assert seg.index.pending == 0
    assert offset_entries_on_file(seg) == offset_entries(seg)
    assert time_entries_on_file(seg) == time_entries(seg)
    append_batches(seg, 10)  # appends continue after the cut: no stale entry on file
    seg.check()
    entries, times = offset_entries(seg), time_entries(seg)
    assert entries == [(o, p) for o, p in entries if o < 40]
    seg.close()
    assert offset_entries_on_file(seg) == entries
    assert time_entries_on_file(seg) == times
    for trusted in (True, False):
        again = open_segment(str(tmp_path), trusted=trusted)
        if trusted:
            again.load()
        else:
            again.recover()
        assert offset_entries(again) == entries
        assert time_entries(again) == times
        assert again.next_offset == 40
        again.check()
        again.close()


def test_drop_last_and_truncate_of_an_index_with_pending_entries(tmp_path) -> None:
    path = str(tmp_path / "x.index")
    index = index_module.OffsetIndex(path)
    for i in range(1, 6):
        index.append(i, i * 100)
    index.write_pending()
    for i in range(6, 9):
        index.append(i, i * 100)
    index.drop_last()  # a pending entry: the file is not touched
    assert index.pending == 2
    assert os.path.getsize(path) == 5 * 8
    index.truncate_after_position(401)  # keeps 1..4: one written entry goes, with the pending
    assert index.pending == 0
    assert os.path.getsize(path) == 4 * 8
    index.append(9, 900)
    index.close()
    assert file_entries(path, ">ii") == [(1, 100), (2, 200), (3, 300), (4, 400), (9, 900)]


def test_clean_reopen_gives_identical_indexes(tmp_path) -> None:
    directory = str(tmp_path / "t-0")
    log = open_log(directory)
    append_records(log, 3000)
    assert len(log.segments) > 3
    assert log.active_segment.index.pending > 0
    before = snapshot(log)
    log.close()
    again = open_log(directory, clean=True)
    assert again.recovery.clean
    assert snapshot(again) == before
    again.check()
    check_reads(again, 3000)
    again.close()


def copy_while_open(log: PartitionLog, target: str) -> None:
    """What a killed process leaves: the files as the page cache holds them, the .log
    files at their mapped length, no clean close."""
    assert log.directory is not None
    shutil.copytree(log.directory, target)


def reopen_after_kill(log: PartitionLog, tmp_path) -> tuple[PartitionLog, str]:
    """Copy ``log``'s files as a kill -9 would leave them, close ``log``, and open the
    copy: it must hold exactly what ``log`` held, its index rebuilt from the log."""
    before = snapshot(log)
    crashed = str(tmp_path / "crashed")
    copy_while_open(log, crashed)
    log.close()
    again = open_log(crashed)
    assert snapshot(again) == before
    again.check()
    return again, crashed


@pytest.mark.parametrize("fsync", ["never", "always"])
def test_crash_with_pending_entries_recovers_a_correct_index(tmp_path, fsync) -> None:
    directory = str(tmp_path / "t-0")
    log = open_log(directory, fsync=fsync)
    append_records(log, 2500)
    active = log.active_segment
    assert len(log.segments) > 3
    for seg in log.segments[:-1]:  # sealed segments: every entry on file
        assert offset_entries_on_file(seg) == offset_entries(seg)
        assert time_entries_on_file(seg) == time_entries(seg)
    # Neither policy writes index entries per append: "always" syncs only the .log
    # (recovery rebuilds what the index lacks, below).
    assert active.index.pending > 0
    assert len(offset_entries_on_file(active)) < len(active.index)
    again, crashed = reopen_after_kill(log, tmp_path)
    assert not again.recovery.clean
    assert again.recovery.bytes_truncated == 0
    check_reads(again, 2500)
    append_records(again, 300)  # and appends continue with a consistent index
    again.check()
    check_reads(again, 2800)
    again.close()
    third = open_log(crashed, clean=True)
    third.check()
    check_reads(third, 2800)
    third.close()


def test_crash_after_the_time_index_write_before_the_offset_index_write(tmp_path) -> None:
    """The order _write_indexes keeps: a time entry may be on file without its offset
    entry, never the other way round; recovery copes with the first."""
    directory = str(tmp_path / "t-0")
    log = open_log(directory)
    append_records(log, 400)
    active = log.active_segment
    assert active.index.pending > 0
    active.time_index.write_pending()  # the process dies here
    assert len(time_entries_on_file(active)) > len(offset_entries_on_file(active))
    again, _ = reopen_after_kill(log, tmp_path)
    assert again.active_segment.max_timestamp == max(timestamp(o) for o in range(400))
    check_reads(again, 400)
    again.close()


def test_crash_right_after_a_roll_keeps_the_sealed_segments_index(tmp_path) -> None:
    """A sealed segment is loaded, not rescanned, after a crash: its entries were
    written when it was sealed, before the next segment's files existed."""
    directory = str(tmp_path / "t-0")
    log = open_log(directory)
    append_records(log, 300)
    sealed = log.active_segment
    assert sealed.index.pending > 0
    log.roll(now_ms=0)
    assert sealed.index.pending == 0
    assert offset_entries_on_file(sealed) == offset_entries(sealed)
    again, _ = reopen_after_kill(log, tmp_path)
    check_reads(again, 300)
    again.close()


def test_in_memory_indexes_have_nothing_pending() -> None:
    seg = Segment(None, 0, segment_bytes=2**30, index_interval_bytes=0, created_ms=0)
    append_batches(seg, 2 * index_pending_entries_max + 3)
    assert seg.index.pending <= index_pending_entries_max
    seg.flush()
    assert seg.index.pending == 0
    assert seg.time_index.pending == 0
    seg.check()
    seg.close()



def test_pending_entries_cover_at_most_a_bounded_stretch_of_log(tmp_path) -> None:
    """Large batches get one entry each: the entries reach the file once they cover
    more than index_pending_log_bytes_max of log, long before 512 are pending, so a
    recovery after kill -9 rescans at most about that much."""
    seg = open_segment(str(tmp_path), interval=4096)
    big = b"x" * 100_000
    for _ in range(40):
        base = seg.next_offset
        data = codec.encode_batch(base, [timestamp(base)], [b"k"], [big])
        seg.append(data, codec.decode_header(data))
    assert len(seg.index) == 39  # one entry per batch after the first
    assert 0 < seg.index.pending < index_pending_entries_max
    on_file = offset_entries_on_file(seg)
    assert on_file == offset_entries(seg)[: len(on_file)]
    last_on_file = on_file[-1][1]
    assert seg.size - last_on_file <= index_pending_log_bytes_max + 2 * len(big)
