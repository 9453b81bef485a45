"""CRC-valid batches with a nonsense payload: every error from stored bytes is
CorruptLogError naming the file and the offsets, never a msgpack, lz4 or type error, and
never OffsetOutOfRangeError (a consumer may treat that as a reset and skip data)."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventlog
from eventlog import TopicPartition
from eventlog.config import TopicConfig
from eventlog.errors import CorruptLogError
from eventlog.storage import batch as codec
from eventlog.storage.partition_log import PartitionLog
from forged import forge, packb, payload_of, reforge  # tests/ is on sys.path

CONFIG = TopicConfig(segment_bytes=1 << 20)
GOOD = [(b"k%d" % i, b"value-%d" % i) for i in range(3)]

CASES = {
    "not-msgpack": (b"\xc1", {}),
    "extra-data": (packb([0, b"k", b"v"]) + b"\x00", {}),
    "an-integer": (packb(5), {}),
    "a-string-of-five": (packb("abcde"), {}),
    "bytes-of-five": (packb(b"abcde"), {}),
    "a-map": (packb({"a": 1}), {}),
    "two-fields": (packb([0, b"k"]), {}),
    "six-fields": (packb([0, b"k", b"v", None, None, None]), {}),
    "flat-form-for-two-records": (packb([0, b"k", b"v"]), {"record_count": 2}),
    "flat-form-key-an-int": (packb([0, 7, b"v"]), {}),
    "flat-form-timestamp-a-string": (packb(["now", b"k", b"v"]), {}),
    "columns-short": (packb([[0, 1], [b"a", b"b"], [b"x", b"y"], None, None]),
                      {"record_count": 3}),
    "columns-uneven": (packb([[0, 1, 2], [b"a"], [b"x", b"y", b"z"], None, None]),
                       {"record_count": 3}),
    "columns-not-arrays": (packb([1, 2, 3, None, None]), {"record_count": 1}),
    "headers-short": (packb([[0, 1], [b"a", b"b"], [b"x", b"y"], [[]], None]),
                      {"record_count": 2}),
    "dense-but-last-delta-past-the-records": (
        packb([[0], [b"a"], [b"x"], None, None]), {"record_count": 1, "last_offset_delta": 4}),
    "deltas-on-a-plain-batch": (packb([[0, 1], [b"a", b"b"], [b"x", b"y"], None, [0, 1]]),
                                {"record_count": 2}),
    "deltas-decreasing": (packb([[0, 1], [b"a", b"b"], [b"x", b"y"], None, [1, 0]]),
                          {"record_count": 2, "attributes": codec.attr_compacted}),
    "deltas-past-the-batch": (packb([[0, 1], [b"a", b"b"], [b"x", b"y"], None, [0, 9]]),
                              {"record_count": 2, "attributes": codec.attr_compacted}),
    "deltas-strings": (packb([[0, 1], [b"a", b"b"], [b"x", b"y"], None, ["a", "b"]]),
                       {"record_count": 2, "attributes": codec.attr_compacted}),
    "lz4-flag-over-plain-msgpack": (packb([0, b"k", b"v"]),
                                    {"attributes": codec.compression_lz4}),
    "lz4-of-garbage": (codec.compress(codec.compression_lz4, b"\xc1\xc1\xc1"),
                       {"attributes": codec.compression_lz4}),
}


def log_with(directory: str | None, forged_at_2: bytes) -> PartitionLog:
    """Offsets 0-1 good, 2 forged (one batch), 3-5 good."""
    log = PartitionLog(directory, CONFIG, now_ms=0)
    for key, value in GOOD[:2]:
        log.append([0], [key], [value], None, now_ms=0)
    header = codec.decode_header(forged_at_2)
    log.append_encoded(forged_at_2, header, now_ms=0)
    log.append([0, 0, 0], [k for k, _ in GOOD], [v for _, v in GOOD], None, now_ms=0)
    return log


def assert_refused(log: PartitionLog, forged_end: int, where: str) -> None:
    assert [o for _h, c in log.read(0, 2) for o in c.offsets] == [0, 1]
    for offset in range(2, forged_end):
        with pytest.raises(CorruptLogError) as err:
            log.read(offset, 10)
        assert where in str(err.value) and "offsets 2.." in str(err.value)
    after = [o for _h, c in log.read(forged_end, 10) for o in c.offsets]
    assert after == list(range(forged_end, forged_end + 3))


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crc_valid_nonsense_batch_is_corrupt_log_error(case, tmp_path) -> None:
    payload, fields = CASES[case]
    data = forge(2, payload, **fields)
    end = 2 + codec.decode_header(data).last_offset_delta + 1
    log = log_with(None, data)
    assert_refused(log, end, "memory segment")
    directory = str(tmp_path / "t-0")
    log = log_with(directory, data)
    assert_refused(log, end, "00000000000000000000.log")
    log.close()
    for clean in (True, False):  # reopening trusts or re-checks the CRC: both keep it
        again = PartitionLog(directory, CONFIG, now_ms=0, clean_shutdown=clean)
        assert again.end_offset == end + 3
        assert_refused(again, end, "00000000000000000000.log")
        again.close()


def test_offset_for_time_over_a_timestamp_that_is_not_an_integer() -> None:
    data = forge(2, packb([["soon", "later"], [b"a", b"b"], [b"x", b"y"], None, None]),
                 record_count=2, timestamp_ms=5)
    log = log_with(None, data)
    with pytest.raises(CorruptLogError, match="not an integer"):
        log.offset_for_time(1)


def test_a_consumer_sees_corrupt_log_error_not_a_reset(tmp_path) -> None:
    """Before, a payload with extra bytes (msgpack's ExtraData is a ValueError) was
    reported as OffsetOutOfRangeError, which auto_offset_reset would have skipped."""
    with eventlog.open(str(tmp_path / "data")) as log:
        p = log.create_topic("t").partition(0)
        p.append([(b"a", b"1"), (b"b", b"2")])
        p._log.append_encoded(forge(2, packb([0, b"k", b"v"]) + b"\x00"),
                             codec.decode_header(forge(2, packb([0, b"k", b"v"]) + b"\x00")),
                             now_ms=0)
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([TopicPartition("t", 0)])
        seen = [r.offset for r in consumer.poll(timeout_ms=0)]
        assert seen == [0, 1]
        for _ in range(3):
            with pytest.raises(CorruptLogError, match="cannot be decoded"):
                consumer.poll(timeout_ms=0)
            assert consumer.position(TopicPartition("t", 0)) == 2
        consumer.close()


# --------------------------------------------------------------------------- property

ORIGINAL = codec.encode_batch(
    0, [10, 11, 12], [b"k0", None, b"k2"], [b"v0", b"v1", None],
    [(("h", b"x"),), (), (("a", None), ("b", b"y"))],
)
ORIGINAL_LZ4 = codec.encode_batch(
    0, [10, 11, 12], [b"k0", None, b"k2"], [b"v0" * 20, b"v1", None],
    attributes=codec.compression_lz4,
)
ORIGINAL_ONE = codec.encode_one(0, 7, b"key", b"value", None, 0, -1, -1, -1)[0]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    original = draw(st.sampled_from([ORIGINAL, ORIGINAL_LZ4, ORIGINAL_ONE]))
    header = codec.decode_header(original)
    payload = bytearray(payload_of(original))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        i = draw(st.integers(0, max(len(payload) - 1, 0)))
        if kind == "flip" and payload:
            payload[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and payload:
            payload[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            payload[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and payload:
            del payload[i]
        elif kind == "truncate":
            del payload[i:]
    changes = {}
    if draw(st.booleans()):
        changes["record_count"] = draw(st.integers(0, 4))
        changes["last_offset_delta"] = draw(st.integers(max(changes["record_count"] - 1, 0), 5))
    if draw(st.booleans()):
        changes["attributes"] = draw(st.sampled_from([
            0, codec.compression_lz4, codec.attr_compacted,
            codec.attr_compacted | codec.compression_lz4,
        ]))
    return reforge(header, bytes(payload), **changes)


def check_read(log: PartitionLog, header: codec.BatchHeader) -> None:
    """The forged batch reads as CorruptLogError or as records of the shape it claims."""
    try:
        batches = log.read(0, 100)
    except CorruptLogError:
        return
    (got_header, cols), = batches
    assert got_header == header
    n = header.record_count
    assert len(cols.offsets) == len(cols.timestamps) == len(cols.keys) == len(cols.values) == n
    assert all(header.base_offset <= o <= header.last_offset for o in cols.offsets)
    assert list(cols.offsets) == sorted(set(cols.offsets))
    assert cols.headers is None or len(cols.headers) == n
    try:
        log.offset_for_time(0)
    except CorruptLogError:
        pass


@given(mutated())
def test_a_mutated_payload_with_a_valid_crc_reads_as_records_or_corrupt_log_error(data) -> None:
    header = codec.decode_header(data)
    if not codec.plausible(header, len(data)):
        return  # recovery cuts it as a torn tail; test_torn_tail covers that
    log = PartitionLog(None, CONFIG, now_ms=0)
    log.append_encoded(data, header, now_ms=0)
    check_read(log, header)
    with tempfile.TemporaryDirectory() as root:
        directory = os.path.join(root, "t-0")
        log = PartitionLog(directory, CONFIG, now_ms=0)
        log.append_encoded(data, header, now_ms=0)
        log.close()
        for clean in (True, False):
            again = PartitionLog(directory, CONFIG, now_ms=0, clean_shutdown=clean)
            if again.end_offset:  # kept: a whole batch with a good CRC
                check_read(again, header)
            again.close()


# --------------------------------------------------------------------------- framed records

FRAMED = codec.encode_batch(
    0, list(range(10, 80)), [None if i % 9 == 0 else b"k%d" % i for i in range(70)],
    [None if i % 7 == 0 else b"v%d" % i for i in range(70)],
    [(("h", b"%d" % i),) if i % 5 == 0 else () for i in range(70)],
    frame_records=32,
)


def reforge_v2(header: codec.BatchHeader, payload: bytes) -> bytes:
    """A magic-2 batch of ``header``'s fields carrying ``payload`` (its frame trailer
    added), with a correct CRC: what a foreign writer of the framed form could write."""
    return codec.pack_batch(payload, header.base_offset, header.attributes,
                            header.last_offset_delta, header.base_timestamp,
                            header.max_timestamp, -1, -1, -1, header.record_count)[0]


def framed_payload() -> bytes:
    return FRAMED[codec.header_bytes : -len(codec.frame_trailer)]


def test_framed_batch_reads_whole_and_point_by_point() -> None:
    header = codec.decode_header(FRAMED)
    assert header.attributes & codec.attr_record_frames
    assert reforge_v2(header, framed_payload()) == FRAMED
    log = PartitionLog(None, CONFIG, now_ms=0)
    log.append_encoded(FRAMED, header, now_ms=0)
    (_, cols), = log.read(0, 100)
    for offset in range(70):
        _, frame = log.point_at(offset)
        i = offset - frame.offsets.start
        assert frame.offsets[i] == offset
        assert (frame.timestamps[i], frame.keys[i], frame.values[i], frame.headers[i]) == (
            cols.timestamps[offset], cols.keys[offset], cols.values[offset],
            cols.headers[offset])


def _table_changed(position: int, value: int) -> bytes:
    payload = bytearray(framed_payload())
    payload[position : position + 4] = value.to_bytes(4, "big")
    return bytes(payload)


FRAMED_CASES = {
    # the frame table: 5-byte array32 header, 5-byte bin32 header, records per frame,
    # then the frames' positions (byte 14 on)
    "records-per-frame-zero": _table_changed(10, 0),
    "records-per-frame-other": _table_changed(10, 16),
    "first-frame-moved": _table_changed(14, 31),
    "second-frame-moved-back": _table_changed(18, 20),
    "second-frame-moved-on": _table_changed(18, 1000),
    "last-position-short": _table_changed(26, 100),
    "not-an-array32": b"\x94" + framed_payload()[1:],
    "truncated": framed_payload()[:40],
    "frame-not-columns": _table_changed(14, 0)[:14],
}


@pytest.mark.parametrize("case", sorted(FRAMED_CASES))
def test_a_framed_batch_with_a_nonsense_table_is_corrupt_log_error(case) -> None:
    header = codec.decode_header(FRAMED)
    data = reforge_v2(header, FRAMED_CASES[case])
    log = PartitionLog(None, CONFIG, now_ms=0)
    log.append_encoded(data, codec.decode_header(data), now_ms=0)
    with pytest.raises(CorruptLogError, match="cannot be decoded"):
        log.read(0, 100)
    refused = 0
    for offset in range(70):  # a point read may find its own frame intact: then equal
        try:
            log.point_at(offset)
        except CorruptLogError as exc:
            assert "offsets 0..69" in str(exc)
            refused += 1
    assert refused


@st.composite
def mutated_framed(draw: st.DrawFn) -> bytes:
    header = codec.decode_header(FRAMED)
    payload = bytearray(framed_payload())
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(payload) - 1))
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if kind == "flip":
            payload[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            payload[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            payload[i:i] = draw(st.binary(min_size=1, max_size=4))
        else:
            del payload[i]
    return reforge_v2(header, bytes(payload))


@given(mutated_framed())
def test_a_mutated_framed_batch_reads_as_records_or_corrupt_log_error(data) -> None:
    """Whole or point by point, a CRC-valid framed batch reads as records of the shape
    its header claims or as CorruptLogError; where both reads return a record, the
    same one (a point read takes its frame from the bytes the full read decodes)."""
    header = codec.decode_header(data)
    log = PartitionLog(None, CONFIG, now_ms=0)
    log.append_encoded(data, header, now_ms=0)
    try:
        (_, whole), = log.read(0, 100)
    except CorruptLogError:
        whole = None
    if whole is not None:
        check_read(log, header)
    for offset in range(70):
        try:
            found = log.point_at(offset)
        except CorruptLogError:
            with pytest.raises(CorruptLogError):
                log.record_at(offset)
            continue
        assert found is not None
        _, frame = found
        i = offset - frame.offsets.start
        assert 0 <= i < len(frame.offsets) and frame.offsets[i] == offset
        record = log.record_at(offset)  # the Record path reads the same frame
        assert record is not None and record.offset == offset
        assert (record.timestamp_ms, record.key, record.value) == (
            frame.timestamps[i], frame.keys[i], frame.values[i])
        if whole is not None:
            assert (frame.timestamps[i], frame.keys[i], frame.values[i]) == (
                whole.timestamps[offset], whole.keys[offset], whole.values[offset])
