"""Damage that is not a torn tail: sealed segments zeroed, cut short or deleted, bad
bookkeeping files, and a clean-shutdown marker over a cut file.

A torn tail of the active segment is a crash and is repaired silently (test_torn_tail.py).
Damage anywhere else is reported by opening (``EventLog.recovery.damaged``) and raised
by every read that reaches it (CorruptLogError naming the file and the offsets); nothing
is skipped and no consumer moves past it unless the user seeks.
"""

from __future__ import annotations

import os
import shutil

import pytest

import eventlog
from eventlog import TopicPartition
from eventlog.broker.log_dir import clean_shutdown_file
from eventlog.errors import CorruptLogError, EventLogError, StorageError
from eventlog.storage import batch as codec
from eventlog.storage.files import segment_file_name
from eventlog.storage.partition_log import PartitionLog, log_start_file, recovery_point_file

RECORDS = 30
PER_SEGMENT = 5  # single-record batches of 100 bytes in 600-byte segments
DAMAGED_BASE = 10  # the middle segment, [10, 15)
TP = TopicPartition("t", 0)


def value(offset: int) -> bytes:
    return b"%04d" % offset + b"v" * 26


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> str:
    """A closed log of 6 segments of 5 records each: [0, 5), [5, 10), ..., [25, 30)."""
    path = str(tmp_path_factory.mktemp("pristine") / "data")
    with eventlog.open(path) as log:
        p = log.create_topic("t", segment_bytes=600, index_interval_bytes=0).partition(0)
        for i in range(RECORDS):
            p.append([(b"k", value(i))])
        assert [s.base_offset for s in p._log.segments] == [0, 5, 10, 15, 20, 25]
    return path


def copy(pristine: str, tmp_path, *, marker: bool) -> str:
    work = str(tmp_path / "work")
    if os.path.exists(work):
        shutil.rmtree(work)
    shutil.copytree(pristine, work)
    if not marker:  # as after kill -9: sealed segments are still loaded, not recovered
        os.unlink(os.path.join(work, clean_shutdown_file))
    return work


def segment_path(work: str, base: int, suffix: str = ".log") -> str:
    return os.path.join(work, "t-0", segment_file_name(base, suffix))


def batch_position(work: str, base: int, offset: int) -> int:
    """Byte position of the batch holding ``offset`` in the segment at ``base``."""
    with open(segment_path(work, base), "rb") as f:
        data = f.read()
    position = 0
    while True:
        header = codec.decode_header(data, position)
        if header.last_offset >= offset:
            return position
        position += header.total_bytes


def zero_from(work: str, position: int) -> None:
    path = segment_path(work, DAMAGED_BASE)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(position)
        f.write(bytes(size - position))


# Each damage returns the first offset it makes unreadable (the segment keeps the rest).
def damage_zero_middle(work: str) -> int:
    zero_from(work, batch_position(work, DAMAGED_BASE, 12) + 20)
    return 12


def damage_zero_all(work: str) -> int:
    zero_from(work, 0)
    return DAMAGED_BASE


def damage_cut_middle(work: str) -> int:
    os.truncate(segment_path(work, DAMAGED_BASE), batch_position(work, DAMAGED_BASE, 13) + 7)
    return 13


def damage_cut_to_zero(work: str) -> int:
    os.truncate(segment_path(work, DAMAGED_BASE), 0)
    return DAMAGED_BASE


def damage_cut_last_batch(work: str) -> int:
    """Only the bytes after the last index entry: the index still checks out."""
    os.truncate(segment_path(work, DAMAGED_BASE), batch_position(work, DAMAGED_BASE, 14) + 1)
    return 14


def damage_delete(work: str) -> int:
    for suffix in (".log", ".index", ".timeindex"):
        if os.path.exists(segment_path(work, DAMAGED_BASE, suffix)):
            os.unlink(segment_path(work, DAMAGED_BASE, suffix))
    return DAMAGED_BASE


def damage_delete_log_only(work: str) -> int:
    os.unlink(segment_path(work, DAMAGED_BASE))
    return DAMAGED_BASE


DAMAGES = {f.__name__[len("damage_"):]: f for f in (
    damage_zero_middle, damage_zero_all, damage_cut_middle, damage_cut_to_zero,
    damage_cut_last_batch, damage_delete, damage_delete_log_only,
)}
GAP_END = DAMAGED_BASE + PER_SEGMENT


def assert_damage_raised(log: eventlog.EventLog, first_missing: int, end: int = RECORDS) -> None:
    p = log.partition("t", 0)
    got = p.read(0, 100)
    assert [r.offset for r in got] == list(range(first_missing))  # what lies before it
    assert [r.value for r in got] == [value(o) for o in range(first_missing)]
    for offset in range(first_missing, GAP_END):
        with pytest.raises(CorruptLogError) as err:
            p.read(offset, 10)
        message = str(err.value)
        assert f"offsets {first_missing} to {GAP_END - 1}" in message
        assert "t-0" in message and ".log" in message
    assert [r.offset for r in p.read(GAP_END, 100)] == list(range(GAP_END, end))
    p.check()


@pytest.mark.parametrize("marker", [True, False], ids=["after-close", "after-kill"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damage_in_a_sealed_segment_is_reported_and_raised(pristine, tmp_path, damage,
                                                           marker) -> None:
    work = copy(pristine, tmp_path, marker=marker)
    first_missing = DAMAGES[damage](work)
    with eventlog.open(work) as log:
        ranges = log.recovery.damaged[TP]
        assert [(d.start_offset, d.end_offset) for d in ranges] == [(first_missing, GAP_END)]
        assert ranges[0].file.endswith(".log") and "t-0" in ranges[0].file
        assert log.recovery.partitions_detail[TP].damaged == ranges
        assert_damage_raised(log, first_missing)
        p = log.partition("t", 0)
        assert (p.start_offset, p.end_offset) == (0, RECORDS)
        p.append([(b"k", value(RECORDS))])  # the log stays usable
    # Reported again on the next open: the damaged file was kept as it was.
    with eventlog.open(work) as log:
        ranges = log.recovery.damaged[TP]
        assert [(d.start_offset, d.end_offset) for d in ranges] == [(first_missing, GAP_END)]
        assert_damage_raised(log, first_missing, RECORDS + 1)


def test_a_consumer_stops_at_the_damage_until_the_user_seeks(pristine, tmp_path) -> None:
    work = copy(pristine, tmp_path, marker=True)
    first_missing = damage_cut_middle(work)
    with eventlog.open(work) as log:
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([TP])
        seen = []
        with pytest.raises(CorruptLogError, match=f"offsets {first_missing} to"):
            for _ in range(10):
                seen.extend(r.offset for r in consumer.poll(timeout_ms=0, max_records=4))
        assert seen == list(range(first_missing))
        for _ in range(3):  # it keeps raising: the position never moves past the damage
            with pytest.raises(CorruptLogError):
                consumer.poll(timeout_ms=0)
            assert consumer.position(TP) == first_missing
        consumer.seek(TP, GAP_END)  # the user's choice
        rest = []
        for _ in range(10):
            rest.extend(r.offset for r in consumer.poll(timeout_ms=0))
        assert rest == list(range(GAP_END, RECORDS))
        consumer.close()


def test_damage_does_not_hide_the_other_partitions(tmp_path) -> None:
    """A poll that meets damage in one partition still returns the others' records."""
    path = str(tmp_path / "data")
    with eventlog.open(path) as log:
        t = log.create_topic("t", 2, segment_bytes=600, index_interval_bytes=0)
        for i in range(RECORDS):
            t.partition(0).append([(b"k", value(i))])
            t.partition(1).append([(b"k", value(i))])
    os.truncate(segment_path(path, 0), 0)
    with eventlog.open(path) as log:
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([TP, TopicPartition("t", 1)])
        got: list[int] = []
        errors = 0
        for _ in range(20):
            try:
                got.extend(r.offset for r in consumer.poll(timeout_ms=0)
                           if r.partition == 1)
            except CorruptLogError:
                errors += 1
        assert got == list(range(RECORDS))
        assert errors > 0
        assert consumer.position(TP) == 0
        consumer.close()


# --------------------------------------------------------------------------- the marker


@pytest.fixture(scope="module")
def pristine_one_segment(tmp_path_factory) -> str:
    """A closed log of one segment holding all the records, indexed."""
    path = str(tmp_path_factory.mktemp("one-segment") / "data")
    with eventlog.open(path) as log:
        p = log.create_topic("t", index_interval_bytes=0).partition(0)
        for i in range(RECORDS):
            p.append([(b"k", value(i))])
        assert len(p._log.segments) == 1
    return path


@pytest.mark.parametrize("layout", ["six-segments", "one-segment"])
def test_the_last_log_cut_inside_its_first_header_with_the_marker_present(
    pristine, pristine_one_segment, tmp_path, layout
) -> None:
    """Every cut inside the first header of the last .log, the clean-shutdown marker
    present: the open succeeds (the cut file is recovered as a torn tail) or raises an
    eventlog error, never an AssertionError, and the marker survives a failed open."""
    if layout == "one-segment":
        pristine = pristine_one_segment
    last_base = RECORDS - PER_SEGMENT if layout == "six-segments" else 0
    for cut in range(codec.header_bytes + 1):
        work = copy(pristine, tmp_path, marker=True)
        os.truncate(segment_path(work, last_base), cut)
        try:
            log = eventlog.open(work)
        except EventLogError:
            assert os.path.exists(os.path.join(work, clean_shutdown_file)), cut
            continue
        with log:
            assert not os.path.exists(os.path.join(work, clean_shutdown_file))
            p = log.partition("t", 0)
            assert not log.recovery.partitions_detail[TP].clean  # the marker lied
            assert p.end_offset == last_base
            assert [r.offset for r in p.read(0, 100)] == list(range(last_base))
            p.append([(b"k", value(last_base))])
            p.check()
        with eventlog.open(work) as log:
            assert log.recovery.clean
            assert log.partition("t", 0).end_offset == last_base + 1


def test_a_failed_open_keeps_the_marker_and_releases_the_directory(pristine, tmp_path,
                                                                 monkeypatch) -> None:
    work = copy(pristine, tmp_path, marker=True)
    real_init = PartitionLog.__init__

    def failing_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        raise StorageError("injected: the disk failed while opening")

    monkeypatch.setattr(PartitionLog, "__init__", failing_init)
    with pytest.raises(StorageError, match="injected"):
        eventlog.open(work)
    assert os.path.exists(os.path.join(work, clean_shutdown_file))
    monkeypatch.setattr(PartitionLog, "__init__", real_init)
    with eventlog.open(work) as log:  # not locked by the failed attempt
        assert log.recovery.clean
        assert log.partition("t", 0).end_offset == RECORDS


# --------------------------------------------------------------------------- bookkeeping


@pytest.mark.parametrize("content", [
    b"", b"abc", b"-1", b" 5", b"5\n", b"+5", b"1_0", b"\xff\xfe", b"9" * 25,
    str(RECORDS + 1).encode(), str(2**63).encode(),
], ids=repr)
@pytest.mark.parametrize("marker", [True, False], ids=["after-close", "after-kill"])
def test_a_bad_log_start_offset_file_is_reported_and_hides_nothing(pristine, tmp_path,
                                                                 content, marker) -> None:
    work = copy(pristine, tmp_path, marker=marker)
    path = os.path.join(work, "t-0", log_start_file)
    with open(path, "wb") as f:
        f.write(content)
    with eventlog.open(work) as log:
        p = log.partition("t", 0)
        assert p.start_offset == 0  # the first segment's base offset
        assert [r.offset for r in p.read(0, 100)] == list(range(RECORDS))
        (warning,) = log.recovery.warnings
        assert warning.startswith("t-0: ") and log_start_file in warning
        assert log.recovery.partitions_detail[TP].warnings == (warning[len("t-0: "):],)
        assert not log.recovery.damaged


@pytest.mark.parametrize("stored, expected", [(7, 7), (0, 0), (RECORDS, RECORDS)])
def test_a_valid_log_start_offset_file_is_used(pristine, tmp_path, stored, expected) -> None:
    work = copy(pristine, tmp_path, marker=True)
    with open(os.path.join(work, "t-0", log_start_file), "wb") as f:
        f.write(str(stored).encode())
    with eventlog.open(work) as log:
        assert log.partition("t", 0).start_offset == expected
        assert log.recovery.warnings == ()


def test_a_log_start_below_the_first_segment_is_raised_to_it_silently(pristine,
                                                                    tmp_path) -> None:
    """A crash between retention deleting segments and recording the new start."""
    work = copy(pristine, tmp_path, marker=True)
    for suffix in (".log", ".index", ".timeindex"):
        if os.path.exists(segment_path(work, 0, suffix)):
            os.unlink(segment_path(work, 0, suffix))
    with open(os.path.join(work, "t-0", log_start_file), "wb") as f:
        f.write(b"0")
    with eventlog.open(work) as log:
        assert log.partition("t", 0).start_offset == PER_SEGMENT
        assert log.recovery.warnings == () and not log.recovery.damaged


@pytest.mark.parametrize("content", [
    b"", b"\x00" * 8, b"\x00" * 17,
    (RECORDS - PER_SEGMENT).to_bytes(8, "big") + (10**9).to_bytes(8, "big"),
    (RECORDS - PER_SEGMENT).to_bytes(8, "big") + (2**64 - 5).to_bytes(8, "big"),
    (12345).to_bytes(8, "big") + (0).to_bytes(8, "big"),
], ids=["empty", "short", "long", "past-the-file", "negative", "no-such-segment"])
def test_a_bad_recovery_point_is_reported_and_the_index_used(pristine, tmp_path,
                                                           content) -> None:
    work = copy(pristine, tmp_path, marker=False)
    with open(os.path.join(work, "t-0", recovery_point_file), "wb") as f:
        f.write(content)
    with eventlog.open(work) as log:
        p = log.partition("t", 0)
        assert [r.offset for r in p.read(0, 100)] == list(range(RECORDS))
        (warning,) = log.recovery.warnings
        assert recovery_point_file in warning


def test_compaction_refuses_to_merge_damage_away(tmp_path) -> None:
    """The cleaner merges small segments: over a damaged one it would turn a reported
    range into a silent gap, so it refuses, and the damage still raises."""
    path = str(tmp_path / "data")
    with eventlog.open(path) as log:
        p = log.create_topic("t", segment_bytes=600, index_interval_bytes=0,
                             cleanup_policy="compact", min_cleanable_dirty_ratio=0.01
                             ).partition(0)
        for i in range(RECORDS):
            p.append([(b"k%d" % (i % 3), value(i))])
    damage_cut_middle(path)
    with eventlog.open(path) as log:
        assert log.recovery.damaged[TP][0].start_offset == 13
        with pytest.raises(CorruptLogError, match="not cleaning"):
            log.run_compaction()
        p = log.partition("t", 0)
        with pytest.raises(CorruptLogError, match="offsets 13 to 14"):
            p.read(13, 10)
        assert [r.offset for r in p.read(0, 100)] == list(range(13))


@pytest.mark.parametrize("marker", [True, False], ids=["after-close", "after-kill"])
def test_damage_inside_a_sealed_segment_with_its_end_intact_raises_on_read(
    pristine, tmp_path, marker
) -> None:
    """Opening reads only the end of each sealed segment, so a hole in the middle is
    not reported; but no read steps over it."""
    work = copy(pristine, tmp_path, marker=marker)
    start = batch_position(work, DAMAGED_BASE, 11)
    with open(segment_path(work, DAMAGED_BASE), "r+b") as f:
        f.seek(start)
        f.write(bytes(batch_position(work, DAMAGED_BASE, 12) - start))
    with eventlog.open(work) as log:
        assert not log.recovery.damaged
        p = log.partition("t", 0)
        assert [r.offset for r in p.read(0, 100)] == list(range(11))
        with pytest.raises(CorruptLogError, match=r"00000000000000000010\.log"):
            p.read(11, 10)
        assert [r.offset for r in p.read(12, 100)] == list(range(12, RECORDS))
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([TP])
        seen: list[int] = []
        with pytest.raises(CorruptLogError):
            for _ in range(10):
                seen.extend(r.offset for r in consumer.poll(timeout_ms=0))
        assert seen == list(range(11)) and consumer.position(TP) == 11
        consumer.close()


@pytest.mark.parametrize("marker", [True, False], ids=["after-close", "after-kill"])
@pytest.mark.parametrize("base", [DAMAGED_BASE, RECORDS - PER_SEGMENT], ids=["sealed", "last"])
def test_a_garbage_index_is_rebuilt_and_hides_nothing(pristine, tmp_path, marker,
                                                      base) -> None:
    """An index that does not match its .log (trusted after a clean close) is rebuilt
    from the log; the records are all there and nothing is reported as damaged."""
    work = copy(pristine, tmp_path, marker=marker)
    path = segment_path(work, base, ".index")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(bytes(range(251, 251 - size, -1)) if size <= 251 else os.urandom(size))
    with eventlog.open(work) as log:
        assert not log.recovery.damaged
        p = log.partition("t", 0)
        for offset in range(RECORDS):
            assert [r.offset for r in p.read(offset, 1)] == [offset]
        p.check()
    with eventlog.open(work) as log:
        assert not log.recovery.damaged
        assert [r.offset for r in log.partition("t", 0).read(0, 100)] == list(range(RECORDS))


def test_a_lookup_by_time_does_not_step_over_missing_offsets(pristine, tmp_path) -> None:
    """The first record at or after a time might be among the missing offsets: the
    lookup raises rather than answer with an offset after them."""
    work = copy(pristine, tmp_path, marker=True)
    first_missing = damage_cut_middle(work)
    with eventlog.open(work) as log:
        p = log.partition("t", 0)
        stamps = [r.timestamp_ms for r in p.read(0, first_missing)]
        assert p.offset_for_time(stamps[0]) == 0  # before the damage: answered
        with pytest.raises(CorruptLogError, match=f"offsets {first_missing} to"):
            p.offset_for_time(stamps[-1] + 10**9)


def test_a_damaged_first_batch_of_the_active_segment_is_reported(pristine, tmp_path) -> None:
    """After a crash, recovery starts at the last index entry that checks out; a first
    batch damaged below it is not a torn tail: it is reported, and reads of it raise."""
    work = copy(pristine, tmp_path, marker=False)
    last_base = RECORDS - PER_SEGMENT
    with open(segment_path(work, last_base), "r+b") as f:
        f.write(bytes(codec.header_bytes))
    with eventlog.open(work) as log:
        (damage,) = log.recovery.damaged[TP]
        assert (damage.start_offset, damage.end_offset) == (last_base, last_base + 1)
        p = log.partition("t", 0)
        with pytest.raises(CorruptLogError):
            p.read(last_base, 10)
        assert [r.offset for r in p.read(last_base + 1, 10)] == list(range(last_base + 1,
                                                                           RECORDS))
