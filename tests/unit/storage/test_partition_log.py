"""storage/partition_log.py: the ordered segments of one partition."""

from __future__ import annotations

import os
import random

import pytest

from eventlog.config import TopicConfig
from eventlog.errors import CorruptLogError, OffsetOutOfRangeError
from eventlog.storage import batch as codec
from eventlog.storage.files import segment_file_name
from eventlog.storage.partition_log import PartitionLog, log_start_file, recovery_point_file
from eventlog.testing.clock import ManualClock


@pytest.fixture(params=["memory", "file"])
def directory(request, tmp_path) -> str | None:
    return None if request.param == "memory" else str(tmp_path / "t-0")


def open_log(directory, clean=False, fsync="never", now_ms=0, **config) -> PartitionLog:
    return PartitionLog(
        directory, TopicConfig(**config), now_ms=now_ms, clean_shutdown=clean, fsync=fsync
    )


def key(offset: int) -> bytes:
    return b"key-%d" % offset


def value(offset: int) -> bytes:
    return b"v%d-" % offset * (offset % 7 + 1)


def append(log: PartitionLog, n: int, ts: int | list[int] = 1000, now_ms: int = 0):
    base = log.end_offset
    timestamps = ts if isinstance(ts, list) else [ts] * n
    return log.append(
        timestamps,
        [key(base + i) for i in range(n)],
        [value(base + i) for i in range(n)],
        None,
        now_ms=now_ms,
    )


def read_all(log: PartitionLog, offset: int) -> list[tuple[int, bytes, bytes]]:
    """Records from ``offset`` to the end, trimmed (the first batch may start below)."""
    out = []
    for _header, cols in log.read(offset, 10**9):
        out.extend(
            (o, k, v) for o, k, v in zip(cols.offsets, cols.keys, cols.values) if o >= offset
        )
    return out


def expected(start: int, end: int) -> list[tuple[int, bytes, bytes]]:
    return [(o, key(o), value(o)) for o in range(start, end)]


def bases(log: PartitionLog) -> list[int]:
    return [seg.base_offset for seg in log.segments]


def test_append_and_read_at_random_offsets_across_segments(directory) -> None:
    log = open_log(directory, segment_bytes=2000, index_interval_bytes=100)
    rng = random.Random(7)
    for _ in range(120):
        header = append(log, rng.randint(1, 8))
        assert header.last_offset == log.end_offset - 1
    log.check()
    assert len(log.segments) > 3
    end = log.end_offset
    for _ in range(200):
        offset = rng.randint(0, end)
        limit = rng.randint(1, 50)
        got = []
        for _header, cols in log.read(offset, limit):
            got.extend(o for o in cols.offsets if o >= offset)
        # At least max_records records from offset (whole batches), dense, in order.
        assert got[: min(limit, end - offset)] == list(range(offset, min(offset + limit, end)))
        assert got == list(range(offset, offset + len(got)))
    assert read_all(log, 0) == expected(0, end)
    assert log.read(end, 10) == []
    log.close()


def test_rolls_when_the_next_batch_would_overflow_segment_bytes(directory) -> None:
    segment_bytes = 1000
    log = open_log(directory, segment_bytes=segment_bytes)
    predicted = [0]
    size = 0
    for i in range(60):
        header = append(log, 1 + i % 4)
        if size and size + header.total_bytes > segment_bytes:  # Kafka's shouldRoll (a)
            predicted.append(header.base_offset)
            size = 0
        size += header.total_bytes
        assert bases(log) == predicted
    assert all(seg.size <= segment_bytes for seg in log.segments)
    log.check()
    # One batch larger than a segment still goes in (alone, in its own segment).
    big = log.append([1], [None], [b"x" * 3000], None, now_ms=0)
    assert log.active_segment.base_offset == big.base_offset
    assert log.active_segment.size == big.total_bytes
    log.check()
    log.close()


def test_a_batch_that_exactly_fills_the_segment_does_not_roll(directory) -> None:
    size = len(codec.encode_batch(0, [1], [b"k"], [b"v" * 50]))  # the same at any offset
    log = open_log(directory, segment_bytes=2 * size)
    for _ in range(5):
        log.append([1], [b"k"], [b"v" * 50], None, now_ms=0)
    assert bases(log) == [0, 2, 4]
    assert [seg.size for seg in log.segments] == [2 * size, 2 * size, size]
    log.close()


def test_rolls_on_segment_ms_by_record_timestamps(directory) -> None:
    clock = ManualClock()
    log = open_log(directory, segment_ms=100, now_ms=clock.time_ms())
    recorded = []
    for step in (0, 30, 60, 100, 101, 150, 50, 205, 305, 306):  # ms after the start
        ts = clock.time_ms() if step == 0 else recorded[0] + step
        recorded.append(ts)
        append(log, 2, ts=ts, now_ms=clock.time_ms())
        clock.advance(1)
    # Segment 0's first batch has timestamp t0. t0+101 > t0+100: roll at the 5th batch
    # (offset 8); that segment starts at t0+101, so t0+205 (> t0+201) rolls again; t0+305
    # is exactly segment_ms later (no roll) and t0+306 rolls a third time. The clock
    # (now_ms) plays no part while segments hold timestamps.
    assert bases(log) == [0, 8, 14, 18]
    assert [seg.first_max_timestamp for seg in log.segments] == [
        recorded[0], recorded[4], recorded[7], recorded[9]
    ]
    log.check()
    log.close()


def test_roll_is_a_no_op_on_an_empty_segment(directory) -> None:
    log = open_log(directory)
    log.roll(0)
    assert bases(log) == [0]
    append(log, 3)
    log.roll(0)
    log.roll(0)
    assert bases(log) == [0, 3]
    log.check()
    if directory is not None:
        assert segment_file_name(3, ".log") in os.listdir(directory)
    log.close()


def test_truncate_to_cuts_the_tail_across_segments(directory) -> None:
    log = open_log(directory, segment_bytes=600)
    for _ in range(30):
        append(log, 3)
    segment_bases = bases(log)
    assert len(segment_bases) >= 4
    cut = segment_bases[2] + 1  # inside the third segment, mid-batch
    removed = log.truncate_to(cut)
    assert removed > 0
    assert log.end_offset == cut
    assert bases(log) == segment_bases[:3]
    assert read_all(log, 0) == expected(0, cut)
    log.check()
    log.truncate_to(segment_bases[1])  # exactly a segment's base: that segment goes
    assert bases(log) == segment_bases[:1]
    assert log.end_offset == segment_bases[1]
    append(log, 2)
    assert read_all(log, 0) == expected(0, segment_bases[1] + 2)
    log.truncate_to(log.end_offset)  # a no-op
    assert log.end_offset == segment_bases[1] + 2
    log.truncate_to(0)
    assert (log.start_offset, log.end_offset, bases(log)) == (0, 0, [0])
    log.check()
    if directory is not None:
        assert sorted(n for n in os.listdir(directory) if n.endswith(".log")) == [
            segment_file_name(0, ".log")
        ]
    log.close()


def test_truncate_to_outside_the_log_changes_nothing(directory) -> None:
    log = open_log(directory)
    append(log, 5)
    log.delete_before(2)
    for bad in (1, 6, -1):
        with pytest.raises(OffsetOutOfRangeError, match=rf"offset {bad}: the log holds \[2, 5\]"):
            log.truncate_to(bad)
        assert (log.start_offset, log.end_offset) == (2, 5)
    log.check()
    log.close()


def test_delete_before_moves_the_start_and_drops_whole_segments(directory) -> None:
    log = open_log(directory, segment_bytes=600)
    for _ in range(20):
        append(log, 3)
    segment_bases = bases(log)
    end = log.end_offset
    assert log.delete_before(segment_bases[1] + 1) == 1  # segment 0 wholly below
    assert log.start_offset == segment_bases[1] + 1
    assert bases(log) == segment_bases[1:]
    with pytest.raises(OffsetOutOfRangeError, match="out of range"):
        log.read(segment_bases[1], 1)  # still on disk, but below the start
    assert read_all(log, log.start_offset) == expected(segment_bases[1] + 1, end)
    assert log.delete_before(3) == 0  # below the start: nothing
    assert log.start_offset == segment_bases[1] + 1
    with pytest.raises(OffsetOutOfRangeError, match=f"log ends at {end}"):
        log.delete_before(end + 1)
    assert log.start_offset == segment_bases[1] + 1
    assert log.delete_before(end) == len(segment_bases) - 2  # the active segment stays
    assert (log.start_offset, log.end_offset) == (end, end)
    assert log.read(end, 5) == []
    log.check()
    append(log, 1)
    assert read_all(log, end) == expected(end, end + 1)
    log.close()


def test_log_start_offset_persists_across_reopen(tmp_path) -> None:
    directory = str(tmp_path / "t-0")
    log = open_log(directory)
    append(log, 10)
    log.delete_before(4)
    log.close()
    with open(os.path.join(directory, log_start_file), "rb") as f:
        assert f.read() == b"4"
    again = open_log(directory, clean=True)
    assert (again.start_offset, again.end_offset) == (4, 10)
    assert again.recovery.clean
    assert read_all(again, 4) == expected(4, 10)
    again.close()


def test_apply_retention_by_time_and_size(directory) -> None:
    day = 24 * 3600 * 1000
    log = open_log(directory, segment_bytes=600, retention_ms=day)
    for i in range(12):
        append(log, 3, ts=i * 1000)
    segment_bases = bases(log)
    maxima = [seg.max_timestamp for seg in log.segments]
    assert log.apply_retention(now_ms=maxima[0] + day) == 0  # exactly retention_ms: kept
    assert log.apply_retention(now_ms=maxima[1] + day + 1) == 2
    assert bases(log) == segment_bases[2:]
    assert log.start_offset == segment_bases[2]
    assert read_all(log, log.start_offset) == expected(segment_bases[2], log.end_offset)
    log.check()
    # Everything expired: roll an empty segment at the end, then delete all the rest.
    end = log.end_offset
    assert log.apply_retention(now_ms=10**9 + day) == len(segment_bases) - 2
    assert bases(log) == [end]
    assert (log.start_offset, log.end_offset) == (end, end)
    assert log.apply_retention(now_ms=10**12) == 0  # the empty last segment stays
    log.check()
    log.close()


def test_apply_retention_by_bytes(directory) -> None:
    log = open_log(directory, segment_bytes=600, retention_bytes=1000, retention_ms=-1)
    for _ in range(15):
        append(log, 3)
    sizes = [seg.size for seg in log.segments]
    segment_bases = bases(log)
    total = sum(sizes)
    doomed = 0
    while total - sizes[doomed] >= 1000:
        total -= sizes[doomed]
        doomed += 1
    assert doomed >= 1
    assert log.apply_retention(now_ms=0) == doomed
    assert bases(log) == segment_bases[doomed:]
    assert log.size_bytes < 1000 + sizes[doomed]
    log.check()
    log.close()


def test_offset_for_time_with_non_monotonic_timestamps(directory) -> None:
    log = open_log(directory, segment_bytes=400, index_interval_bytes=0)
    rng = random.Random(3)
    timestamps = []
    for _ in range(40):
        batch = [rng.randint(0, 500) for _ in range(rng.randint(1, 4))]
        timestamps.extend(batch)
        append(log, len(batch), ts=batch)
    assert len(log.segments) > 3

    def first_at_or_after(target: int, start: int = 0):
        return next(
            ((o, t) for o, t in enumerate(timestamps) if o >= start and t >= target), None
        )

    for target in range(0, 505, 7):
        assert log.offset_for_time(target) == first_at_or_after(target), target
    # Below the start offset nothing is found, even inside the first remaining segment.
    log.delete_before(log.segments[1].base_offset + 1)
    for target in range(0, 505, 7):
        assert log.offset_for_time(target) == first_at_or_after(target, log.start_offset), target
    log.close()


def test_reopen_after_clean_close_scans_nothing(tmp_path) -> None:
    directory = str(tmp_path / "t-0")
    log = open_log(directory, segment_bytes=700, index_interval_bytes=64)
    for _ in range(25):
        append(log, 4)
    end = log.end_offset
    segment_bases = bases(log)
    log.close()
    again = open_log(directory, clean=True, segment_bytes=700, index_interval_bytes=64)
    report = again.recovery
    assert report.clean
    assert (report.segments_checked, report.batches_checked, report.bytes_truncated) == (0, 0, 0)
    assert report.segments == len(segment_bases)
    assert report.duration_ms >= 0
    assert bases(again) == segment_bases
    assert again.end_offset == end
    again.check()
    assert read_all(again, 0) == expected(0, end)
    again.close()


def test_reopen_without_clean_close_checks_the_last_segment(tmp_path) -> None:
    directory = str(tmp_path / "t-0")
    log = open_log(directory, segment_bytes=700)
    for _ in range(25):
        append(log, 4)
    end = log.end_offset
    log.close()
    again = open_log(directory, clean=False, segment_bytes=700)
    report = again.recovery
    assert not report.clean
    assert report.segments_checked == 1
    assert report.batches_checked >= 1
    assert report.bytes_truncated == 0
    assert again.end_offset == end
    again.check()
    again.close()


def test_fsync_always_syncs_appends_without_rewriting_the_recovery_point(tmp_path) -> None:
    """Issue: one send() under fsync="always" cost an msync plus an open/pwrite/close of
    recovery-point. Now an append is one fdatasync (``sync``); the recovery point is
    written by ``flush`` only, and removed by a clean close."""
    directory = str(tmp_path / "t-0")
    log = open_log(directory, fsync="always")
    assert log.sync_each_append
    append(log, 3)
    log.sync(log.end_offset)
    assert log.synced_offset == log.end_offset
    point = os.path.join(directory, recovery_point_file)
    assert not os.path.exists(point)
    log.flush()
    with open(point, "rb") as f:
        base, position = int.from_bytes(f.read(8), "big"), int.from_bytes(f.read(8), "big")
    assert (base, position) == (0, log.active_segment.size)
    log.close()
    assert not os.path.exists(point)
    assert log.recovery.clean is False  # a new directory was "recovered" from nothing


def test_a_sync_covers_every_batch_appended_before_it_started(tmp_path) -> None:
    """Group commit: one fdatasync for the batches of several threads."""
    from eventlog.testing import FaultyFiles

    files = FaultyFiles()
    log = PartitionLog(str(tmp_path / "t-0"), TopicConfig(), now_ms=0, fsync="always",
                       files=files)
    append(log, 3)  # three batches, as three threads' appends before one sync
    before = files.calls["fsync"]
    log.sync(log.end_offset)
    assert files.calls["fsync"] == before + 1
    log.sync(log.end_offset)  # already covered: no second fsync
    log.sync(1)
    assert files.calls["fsync"] == before + 1
    log.truncate_to(1)  # offsets at and past 1 will be new records, not yet synced
    assert log.synced_offset == 1
    log.close()


def test_in_memory_log_holds_more_than_one_map_chunk() -> None:
    """Anonymous maps grow past their first 64 KiB chunk (once a SIGBUS, see files.py)."""
    log = open_log(None)
    for _ in range(50):
        log.append([1], [None], [b"x" * 4000], None, now_ms=0)
    assert log.active_segment.size > 2 * 64 * 1024
    got = [v for _h, cols in log.read(0, 100) for v in cols.values]
    assert got == [b"x" * 4000] * 50
    log.check()


def test_lz4_batches_are_stored_compressed_and_read_back(directory) -> None:
    log = open_log(directory)
    values = [b"a" * 1000] * 10
    header = log.append([1] * 10, [None] * 10, values, None,
                        attributes=codec.compression_lz4, now_ms=0)
    assert header.total_bytes < 1000
    assert [v for _h, cols in log.read(0, 100) for v in cols.values] == values
    log.close()


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_a_crafted_decompression_bomb_in_a_segment_reads_as_corrupt(directory, compression):
    """A CRC-valid batch of 64 MiB of zeros (a few KiB compressed) that declares it,
    in a topic whose read limit is the 32 MiB floor: reading it is CorruptLogError,
    before and after a reopen, never a 64 MiB allocation; the batch before it reads."""
    import struct
    import zlib

    import cramjam
    import msgpack

    log = open_log(directory)
    append(log, 2)
    code = codec.COMPRESSION_CODES[compression]
    streams = {"gzip": cramjam.gzip.compress, "snappy": cramjam.snappy.compress_raw,
               "lz4": lambda b: cramjam.lz4.compress_block(b, store_size=False),
               "zstd": cramjam.zstd.compress}
    zeros = bytes(64 << 20)
    data = bytearray(codec.encode_batch(2, [1], [None], [b"x"], attributes=code))
    del data[codec.header_bytes:]
    # Format 2: the compressed payload framed as one msgpack bin, then the trailer.
    data += msgpack.packb(struct.pack("<I", 64 << 20) + bytes(streams[compression](zeros)))
    data += codec.frame_trailer
    data[8:12] = struct.pack(">i", len(data) - 12)
    data[13:17] = struct.pack(">I", zlib.crc32(bytes(data[17:])))
    log.append_encoded(bytes(data), codec.decode_header(bytes(data)), now_ms=0)
    assert [h.base_offset for h, _ in log.read(0, 2)] == [0]
    with pytest.raises(CorruptLogError, match="over the limit of 33554432"):
        log.read(2, 10)
    log.close()
    if directory is not None:
        reopened = open_log(directory)
        with pytest.raises(CorruptLogError, match=r"offsets 2\.\.2"):
            reopened.read(2, 10)
        assert [h.base_offset for h, _ in reopened.read(0, 2)] == [0]
        reopened.close()


def test_repr(directory) -> None:
    log = open_log(directory)
    append(log, 2)
    assert "start_offset=0, end_offset=2, segments=1" in repr(log)
    log.close()


def test_a_clean_shutdown_claim_is_checked_against_the_file(tmp_path) -> None:
    """Files changed after a clean close (here: bytes appended to the last .log) are
    recovered, not trusted."""
    directory = str(tmp_path / "t-0")
    log = open_log(directory)
    append(log, 4)
    log.close()
    with open(os.path.join(directory, segment_file_name(0, ".log")), "ab") as f:
        f.write(b"\x01stray bytes")
    again = open_log(directory, clean=True)
    assert not again.recovery.clean
    assert again.recovery.bytes_truncated == len(b"\x01stray bytes")
    assert read_all(again, 0) == expected(0, 4)
    again.check()
    again.close()
