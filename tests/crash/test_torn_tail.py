"""Torn and corrupt tails, exhaustively on a small log (DESIGN invariant 3).

A small log is written once per layout and copied for every case. Each case damages
the copy (cuts the last batch at one byte, flips one byte of it, zero-fills it, adds
garbage, damages an index) and reopens it as after a crash. Reopening must never raise
and must keep exactly the batches before the damaged one, and the recovery report must
say what was cut.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest

import eventlog
from crashsim import abandon  # tests/ is on sys.path (its conftest.py)
from eventlog.broker.log_dir import clean_shutdown_file
from eventlog.config import TopicConfig
from eventlog.storage import batch as codec
from eventlog.storage.files import segment_file_name
from eventlog.storage.partition_log import PartitionLog, recovery_point_file

pytestmark = pytest.mark.slow

SEGMENT_BYTES = 600


def key(offset: int) -> bytes:
    return b"key-%d" % offset


def value(offset: int) -> bytes:
    return b"value-%d-" % offset * (1 + offset % 3)


def config(interval: int) -> TopicConfig:
    return TopicConfig(segment_bytes=SEGMENT_BYTES, index_interval_bytes=interval)




@dataclass
class Layout:
    """A pristine log directory and where its last batch lies."""

    directory: str
    interval: int
    fsync: str
    last_segment_base: int
    last_position: int  # byte position of the last batch in the last segment's .log
    last_batch: bytes
    before_end: int  # offsets below this are in the batches before the last one

    @property
    def log_name(self) -> str:
        return segment_file_name(self.last_segment_base, ".log")


def build(root: str, *, interval: int, fsync: str, alone: bool, trimmed: bool) -> Layout:
    """Two segments; the last batch alone in the second one (``alone``) or after two
    others. ``trimmed``: closed (the .log trimmed to its batches; no recovery point);
    otherwise abandoned like a killed process (preallocated zeros after the batches)."""
    directory = os.path.join(root, "t-0")
    log = PartitionLog(directory, config(interval), now_ms=0, fsync=fsync)

    def add(n: int, ts: int) -> codec.BatchHeader:
        base = log.end_offset
        return log.append(
            [ts + i for i in range(n)],
            [key(base + i) for i in range(n)],
            [value(base + i) for i in range(n)],
            None,
            now_ms=0,
        )

    for i in range(3):
        add(2 + i, 1000 * i)
    log.roll(0)
    if not alone:
        add(2, 5000)
        add(1, 6000)
    last_segment = log.active_segment
    position = last_segment.size
    header = add(3, 7000)
    if fsync == "always":
        log.flush()  # as the interval flush does: the recovery point names the log end
    assert len(log.segments) == 2
    last_batch = last_segment._log.read(position, header.total_bytes)
    before_end = header.base_offset
    base = last_segment.base_offset
    log.check()
    if trimmed:
        log.close()
    else:
        abandon(log)
    return Layout(directory, interval, fsync, base, position, last_batch, before_end)


LAYOUTS = {
    # id: (index_interval_bytes, fsync, last batch alone in its segment, trimmed on close)
    "closed-indexed": (0, "never", False, True),
    "closed-unindexed": (10**6, "never", False, True),
    "killed-indexed": (0, "never", False, False),
    "killed-recovery-point": (0, "always", False, False),
    "killed-alone": (0, "never", True, False),
    "closed-alone-fsync-always": (0, "always", True, True),
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def layout(request, tmp_path_factory) -> Layout:
    interval, fsync, alone, trimmed = LAYOUTS[request.param]
    root = str(tmp_path_factory.mktemp(request.param))
    built = build(root, interval=interval, fsync=fsync, alone=alone, trimmed=trimmed)
    has_point = os.path.exists(os.path.join(built.directory, recovery_point_file))
    assert has_point == (fsync == "always" and not trimmed)
    return built


class Case:
    """A fresh copy of a layout's directory to damage and reopen."""

    def __init__(self, layout: Layout, scratch: str) -> None:
        self.layout = layout
        self.directory = os.path.join(scratch, "t-0")
        if os.path.exists(self.directory):
            shutil.rmtree(self.directory)
        shutil.copytree(layout.directory, self.directory)
        self.log_path = os.path.join(self.directory, layout.log_name)

    def cut(self, size: int) -> None:
        os.truncate(self.log_path, size)

    def write(self, position: int, data: bytes) -> None:
        with open(self.log_path, "r+b") as f:
            f.seek(position)
            f.write(data)

    def reopen(self) -> PartitionLog:
        log = PartitionLog(self.directory, config(self.layout.interval), now_ms=0,
                           clean_shutdown=False, fsync=self.layout.fsync)
        log.check()
        return log


def assert_holds_exactly(log: PartitionLog, end: int) -> None:
    assert log.start_offset == 0
    assert log.end_offset == end
    got = [
        (o, k, v)
        for _header, cols in log.read(0, 10**6)
        for o, k, v in zip(cols.offsets, cols.keys, cols.values)
    ]
    assert got == [(o, key(o), value(o)) for o in range(end)]


def assert_appendable(log: PartitionLog, end: int) -> None:
    """After recovery the log takes new batches at the cut, and keeps them on reopen."""
    header = log.append([1], [key(end)], [value(end)], None, now_ms=0)
    assert header.base_offset == end
    log.check()


def test_cut_the_last_batch_at_every_byte(layout, tmp_path) -> None:
    for k in range(len(layout.last_batch)):
        case = Case(layout, str(tmp_path))
        case.cut(layout.last_position + k)
        log = case.reopen()
        assert_holds_exactly(log, layout.before_end)
        report = log.recovery
        assert not report.clean
        # Every non-zero byte of the torn batch is reported as cut (leading zeros of the
        # base offset cannot be told from the preallocated tail).
        assert report.bytes_truncated == len(layout.last_batch[:k].rstrip(b"\0")), k
        if k > 7:  # past the base offset's last byte, which is not zero here
            assert report.bytes_truncated > 0
        assert report.segments == 2
        assert_appendable(log, layout.before_end)
        log.close()


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_flip_each_byte_of_the_last_batch(layout, tmp_path, mask) -> None:
    for i in range(len(layout.last_batch)):
        case = Case(layout, str(tmp_path))
        damaged = bytearray(layout.last_batch)
        damaged[i] ^= mask
        case.write(layout.last_position, bytes(damaged))
        log = case.reopen()
        assert_holds_exactly(log, layout.before_end)
        assert log.recovery.bytes_truncated == len(bytes(damaged).rstrip(b"\0")), i
        assert_appendable(log, layout.before_end)
        log.close()


def test_an_intact_log_loses_nothing(layout, tmp_path) -> None:
    log = Case(layout, str(tmp_path)).reopen()
    end = layout.before_end + 3
    assert_holds_exactly(log, end)
    assert log.recovery.bytes_truncated == 0
    assert log.recovery.batches_checked >= 1
    log.close()


def test_zero_filled_tail(layout, tmp_path) -> None:
    """The last batch's bytes never reached the disk (zeros), and the file was extended."""
    case = Case(layout, str(tmp_path))
    case.write(layout.last_position, bytes(len(layout.last_batch) + 10_000))
    log = case.reopen()
    assert_holds_exactly(log, layout.before_end)
    assert log.recovery.bytes_truncated == 0
    assert_appendable(log, layout.before_end)
    log.close()


@pytest.mark.parametrize(
    "garbage",
    [b"\xff" * 100, b"garbage", bytes(20) + b"\x01", os.urandom(300)],
    ids=["ff", "text", "zeros-then-one", "random"],
)
def test_garbage_after_the_last_batch(layout, tmp_path, garbage) -> None:
    case = Case(layout, str(tmp_path))
    end_position = layout.last_position + len(layout.last_batch)
    case.write(end_position, garbage)
    log = case.reopen()
    assert_holds_exactly(log, layout.before_end + 3)
    assert log.recovery.bytes_truncated == len(garbage.rstrip(b"\0"))
    assert_appendable(log, layout.before_end + 3)
    log.close()
    with open(case.log_path, "rb") as f:
        content = f.read()
    assert garbage.rstrip(b"\0") not in content[end_position:] or not garbage.rstrip(b"\0")


def test_a_whole_batch_with_the_wrong_offset_after_the_last_is_cut(layout, tmp_path) -> None:
    """A stale but CRC-valid batch (say, from before a truncation) must not be adopted."""
    end = layout.before_end + 3
    stale = codec.encode_batch(end + 5, [1], [key(end)], [value(end)])
    case = Case(layout, str(tmp_path))
    case.write(layout.last_position + len(layout.last_batch), stale)
    log = case.reopen()
    assert_holds_exactly(log, end)
    assert log.recovery.bytes_truncated == len(stale)
    log.close()


def test_every_byte_of_the_last_index_entry_damaged(layout, tmp_path) -> None:
    """The .index is not checksummed and a crash can leave its last entry half written:
    recovery checks that entry against the log and drops it if it does not match."""
    index_name = segment_file_name(layout.last_segment_base, ".index")
    size = os.path.getsize(os.path.join(layout.directory, index_name))
    if size == 0:
        pytest.skip("this layout has no index entries")
    end = layout.before_end + 3
    for i in range(size - 8, size):
        for mask in (0x01, 0x80, 0xFF):
            case = Case(layout, str(tmp_path))
            path = os.path.join(case.directory, index_name)
            with open(path, "r+b") as f:
                f.seek(i)
                byte = f.read(1)[0]
                f.seek(i)
                f.write(bytes([byte ^ mask]))
            log = case.reopen()
            assert_holds_exactly(log, end)
            for offset in range(end):
                batches = log.read(offset, 1)
                assert batches[0][0].base_offset <= offset <= batches[0][0].last_offset
            assert_appendable(log, end)
            log.close()


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
def test_index_files_cut_zeroed_or_with_garbage(layout, tmp_path, suffix) -> None:
    end = layout.before_end + 3
    name = segment_file_name(layout.last_segment_base, suffix)
    pristine = os.path.join(layout.directory, name)
    size = os.path.getsize(pristine) if os.path.exists(pristine) else 0  # lazily created
    damages = [
        lambda f: f.truncate(max(0, size - 3)),  # a partial last entry
        lambda f: f.truncate(0),  # lost entirely
        lambda f: (f.seek(0), f.write(bytes(size))),  # zero-filled
        lambda f: (f.seek(size), f.write(b"\xde\xad\xbe\xef" * 6)),  # garbage entries
        lambda f: (f.seek(size), f.write(bytes(48))),  # zero entries
    ]
    for damage in damages:
        case = Case(layout, str(tmp_path))
        path = os.path.join(case.directory, name)
        open(path, "ab").close()  # create it if absent
        with open(path, "r+b") as f:
            damage(f)
        log = case.reopen()
        assert_holds_exactly(log, end)
        assert log.offset_for_time(7000) == (layout.before_end, 7000)
        assert log.offset_for_time(0) == (0, 0)
        assert_appendable(log, end)
        log.close()


def test_a_missing_index_file_is_rebuilt(layout, tmp_path) -> None:
    case = Case(layout, str(tmp_path))
    for suffix in (".index", ".timeindex"):
        path = os.path.join(case.directory, segment_file_name(layout.last_segment_base, suffix))
        if os.path.exists(path):
            os.unlink(path)
    log = case.reopen()
    assert_holds_exactly(log, layout.before_end + 3)
    log.close()


def test_an_empty_segment_beyond_the_end_is_dropped(layout, tmp_path) -> None:
    """An empty last segment whose base offset the data does not reach (left by a crash
    mid-roll after its predecessor lost data) is deleted on recovery, so offsets stay
    dense; one that starts exactly at the end (a crash right after a roll) stays."""
    end = layout.before_end + 3
    case = Case(layout, str(tmp_path))
    stray = segment_file_name(end + 5, ".log")
    open(os.path.join(case.directory, stray), "wb").close()
    log = case.reopen()
    assert_holds_exactly(log, end)
    assert log.recovery.segments_deleted == 1
    assert stray not in os.listdir(case.directory)
    assert [seg.base_offset for seg in log.segments] == [0, layout.last_segment_base]
    log.close()

    case = Case(layout, str(tmp_path))
    open(os.path.join(case.directory, segment_file_name(end, ".log")), "wb").close()
    log = case.reopen()
    assert_holds_exactly(log, end)
    assert log.recovery.segments_deleted == 0
    assert [seg.base_offset for seg in log.segments] == [0, layout.last_segment_base, end]
    assert_appendable(log, end)
    assert log.active_segment.base_offset == end
    log.close()


def test_torn_tail_through_eventlog_open(tmp_path) -> None:
    """The same through the broker: delete the clean-shutdown marker, tear the last
    batch at a sample of bytes, reopen with eventlog.open."""
    pristine = str(tmp_path / "pristine")
    with eventlog.open(pristine) as elog:
        p = elog.create_topic("t", segment_bytes=SEGMENT_BYTES).partition(0)
        for n in (2, 3, 4):
            p.append([(key(p.end_offset + i), value(p.end_offset + i)) for i in range(n)])
        before_end = p.end_offset
        p.append([(key(before_end + i), value(before_end + i)) for i in range(3)])
        segment = p._log.active_segment
        last_position = segment.find_position(before_end)
        last_size = segment.size - last_position
        log_name = segment_file_name(segment.base_offset, ".log")
    with open(os.path.join(pristine, "t-0", log_name), "rb") as f:
        f.seek(last_position)
        last_batch = f.read(last_size)
    assert len(last_batch) == last_size > codec.header_bytes
    cuts = range(0, last_size, 5)
    assert len(cuts) > 10
    for k in cuts:
        work = str(tmp_path / "work")
        if os.path.exists(work):
            shutil.rmtree(work)
        shutil.copytree(pristine, work)
        os.unlink(os.path.join(work, clean_shutdown_file))
        os.truncate(os.path.join(work, "t-0", log_name), last_position + k)
        with eventlog.open(work) as elog:
            assert elog.recovery.clean is False
            assert elog.recovery.bytes_truncated == len(last_batch[:k].rstrip(b"\0"))
            p = elog.partition("t", 0)
            assert p.end_offset == before_end
            assert [(r.key, r.value) for r in p.read(0, 100)] == [
                (key(o), value(o)) for o in range(before_end)
            ]
            p.check()
        with eventlog.open(work) as elog:  # and the repaired log then opens clean
            assert elog.recovery.clean
            assert elog.recovery.batches_checked == 0
            assert elog.partition("t", 0).end_offset == before_end
