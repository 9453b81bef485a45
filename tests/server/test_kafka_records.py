"""Batches whose payload is a Kafka v2 records section stored as a client sent it
(attr_kafka_records): checked on append, read back exactly, corruption detected,
compacted and indexed like any batch, truncated and cleaned without losing records."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
from eventlog.errors import CorruptLogError, InvalidRecordError
from eventlog.server.records import encode_batch, split_batches
from eventlog.storage import batch as codec
from eventlog.storage import kafka_records

BASE_TS = 1_700_000_000_000


def records_of(rows: list[tuple[Any, ...]], *, offsets: list[int] | None = None
               ) -> tuple[bytes, int, int]:
    """(records section, count, base timestamp) of a wire batch of ``rows``:
    (key, value, headers, timestamp)."""
    n = len(rows)
    data = encode_batch(list(range(n)) if offsets is None else offsets,
                        [r[3] for r in rows], [r[0] for r in rows], [r[1] for r in rows],
                        [r[2] for r in rows])
    (b,) = split_batches(data)
    return b.records, b.record_count, b.base_timestamp


ROWS = [
    (b"a", b"1", (("h", b"x"),), BASE_TS + 5),
    (None, b"2", (), BASE_TS),
    (b"", None, (("empty", None), ("u\u00e9", b"")), BASE_TS + 300),
    (b"k" * 300, b"v" * 1000, (), BASE_TS + 20_000),
]


@pytest.fixture
def log(tmp_path: Any) -> Any:
    with eventlog.open(tmp_path / "data") as log:
        yield log


def test_a_verbatim_batch_reads_back_exactly(log: Any) -> None:
    p = log.create_topic("t").partition(0)
    p.append([(b"before", b"msgpack")])
    records, count, base_ts = records_of(ROWS)
    result = p.append_kafka_records(records, count, base_ts)
    assert (result.base_offset, result.last_offset) == (1, 4)
    got = p.read(1, 10)
    assert [(r.offset, r.key, r.value, r.headers, r.timestamp_ms) for r in got] == [
        (1 + i, k, v, h, ts) for i, (k, v, h, ts) in enumerate(ROWS)]
    header, cols = p.read_batches(1, 10)[-1]
    assert header.attributes & codec.attr_kafka_records
    assert header.max_timestamp == BASE_TS + 20_000
    assert kafka_records.stored_records(cols.values) == records  # the bytes, as sent
    log.check()


def test_a_verbatim_batch_survives_reopening(tmp_path: Any) -> None:
    records, count, base_ts = records_of(ROWS)
    with eventlog.open(tmp_path / "d") as log:
        log.create_topic("t").partition(0).append_kafka_records(records, count, base_ts)
    with eventlog.open(tmp_path / "d") as log:
        assert [r.value for r in log.topic("t").partition(0).read(0, 10)] == [
            r[1] for r in ROWS]
        log.check()


@pytest.mark.parametrize("mutate, problem", [
    (lambda r: r[:-1], "ends before|runs past|add up"),
    (lambda r: r + b"\x00", "bytes after"),
])
def test_malformed_records_are_refused_and_change_nothing(log: Any, mutate: Any,
                                                          problem: str) -> None:
    p = log.create_topic("t").partition(0)
    records, count, base_ts = records_of(ROWS)
    with pytest.raises(InvalidRecordError, match=problem):
        p.append_kafka_records(mutate(records), count, base_ts)
    assert p.end_offset == 0


def test_gaps_in_offset_deltas_are_refused(log: Any) -> None:
    p = log.create_topic("t").partition(0)
    records, count, base_ts = records_of(ROWS, offsets=[0, 1, 3, 4])
    with pytest.raises(InvalidRecordError, match="offset delta 3"):
        p.append_kafka_records(records, count, base_ts)
    assert p.end_offset == 0


def test_a_negative_timestamp_is_refused(log: Any) -> None:
    p = log.create_topic("t").partition(0)
    records, count, _ = records_of([(b"a", b"1", (), 10), (b"b", b"2", (), 0)])
    with pytest.raises(InvalidRecordError, match="timestamp is -20"):
        p.append_kafka_records(records, count, -10)  # deltas 0 and -10
    assert p.end_offset == 0


def test_a_stored_verbatim_batch_with_a_flipped_byte_is_corrupt(tmp_path: Any) -> None:
    records, count, base_ts = records_of(ROWS)
    with eventlog.open(tmp_path / "d") as log:
        p = log.create_topic("t").partition(0)
        p.append_kafka_records(records, count, base_ts)
        p.append([(b"later", b"x")])
    path = tmp_path / "d" / "t-0" / ("0" * 20 + ".log")
    data = bytearray(path.read_bytes())
    data[codec.header_bytes + 20] ^= 0xFF  # inside the first record
    path.write_bytes(bytes(data))
    with eventlog.open(tmp_path / "d") as log, pytest.raises(CorruptLogError):
        log.topic("t").partition(0).read(0, 10)


def test_a_crc_valid_verbatim_batch_that_does_not_decode_is_corrupt() -> None:
    records, count, base_ts = records_of(ROWS)
    # a foreign writer: the CRC is right, the records are not
    data, header = codec.pack_batch(records[:-3], 0, codec.attr_kafka_records, count - 1,
                                    base_ts, base_ts, -1, -1, -1, count)
    cols = codec.decode_columns(header, data[codec.crc_start:])
    with pytest.raises(CorruptLogError, match="cannot be decoded"):
        list(cols.values)
    with pytest.raises(ValueError, match="compressed, empty or not dense"):
        bad, bad_header = codec.pack_batch(records, 0, codec.attr_kafka_records | 1, count - 1,
                                           base_ts, base_ts, -1, -1, -1, count)
        codec.decode_columns(bad_header, bad[codec.crc_start:])


def test_compaction_and_the_key_index_over_verbatim_batches(log: Any) -> None:
    p = log.create_topic("c", cleanup_policy="compact", segment_bytes=400,
                         min_cleanable_dirty_ratio=0.0).partition(0)
    assert p.key_version(b"k0") == 0  # the key index is built: appends keep it
    for i in range(12):
        records, count, base_ts = records_of(
            [(b"k%d" % (i % 3), b"v%d" % i, (), BASE_TS + i)])
        p.append_kafka_records(records, count, base_ts)
    assert p.key_version(b"k0") == 4
    assert [r.value for r in p.read_key(b"k1")] == [b"v1", b"v4", b"v7", b"v10"]
    records, count, base_ts = records_of([(b"k0", None, (), BASE_TS + 99)])  # a tombstone
    p.append_kafka_records(records, count, base_ts)
    p.append([(b"filler", b"x")])
    p.roll()
    stats = p.compact()
    assert stats.cleaned and stats.records_removed > 0
    latest = {r.key: (r.value, r.timestamp_ms) for r in p.iter()}
    assert latest[b"k1"] == (b"v10", BASE_TS + 10)
    assert latest[b"k2"] == (b"v11", BASE_TS + 11)
    assert latest[b"k0"] == (None, BASE_TS + 99)  # kept until its delete horizon
    assert [r.value for r in p.read_key(b"k2")][-1] == b"v11"
    log.check()


def test_a_compacted_topic_refuses_verbatim_records_without_a_key(log: Any) -> None:
    p = log.create_topic("c", cleanup_policy="compact").partition(0)
    records, count, base_ts = records_of(ROWS)
    with pytest.raises(InvalidRecordError, match="record 1: compacted topic"):
        p.append_kafka_records(records, count, base_ts)
    assert p.end_offset == 0


def test_truncation_inside_a_verbatim_batch_keeps_the_records_below(log: Any) -> None:
    p = log.create_topic("t").partition(0)
    records, count, base_ts = records_of(ROWS)
    p.append_kafka_records(records, count, base_ts)
    p.truncate_to(2)
    assert [(r.offset, r.value, r.timestamp_ms) for r in p.read(0, 10)] == [
        (0, b"1", BASE_TS + 5), (1, b"2", BASE_TS)]
    header, _ = p.read_batches(0, 10)[0]
    assert not header.attributes & codec.attr_kafka_records  # re-encoded as msgpack
    log.check()


def test_the_delete_horizon_never_replaces_the_timestamps_base() -> None:
    from eventlog.storage.compaction import clean_batch

    records, count, base_ts = records_of([(b"a", None, (), BASE_TS + 7)])
    data, header = codec.pack_batch(records, 0, codec.attr_kafka_records, 0, base_ts,
                                    base_ts + 7, -1, -1, -1, count)
    cols = codec.decode_columns(header, data[codec.crc_start:])
    out, removed = clean_batch(header, data, cols, latest={b"a": 0}, map_end=1,
                               now_ms=BASE_TS + 1000, delete_retention_ms=10, keep_empty=True)
    assert removed == 0 and out is not None
    new_header = codec.decode_header(out)
    assert codec.delete_horizon_ms(new_header) == BASE_TS + 1010
    new_cols = codec.decode_columns(new_header, out[codec.crc_start:])
    assert list(new_cols.timestamps) == [BASE_TS + 7]


_record_rows = st.lists(st.tuples(
    st.none() | st.binary(max_size=200), st.none() | st.binary(max_size=300),
    st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)),
             max_size=2).map(tuple),
    st.integers(0, 2**40)), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(rows=_record_rows, cut=st.integers(0, 2**16), flip=st.integers(0, 255))
def test_the_check_accepts_exactly_what_decodes(rows: list[Any], cut: int, flip: int) -> None:
    """check_records passes a (possibly damaged) records section iff it decodes to the
    same count with non-negative timestamps: a verbatim batch that was let in always
    reads back."""
    records, count, base_ts = records_of(rows)
    assert kafka_records.check_records(records, count, base_ts) == max(r[3] for r in rows)
    damaged = bytearray(records)
    damaged[cut % len(damaged)] ^= flip
    try:
        decoded = kafka_records.decode_records(bytes(damaged), count, base_ts)
    except kafka_records.KafkaRecordsError:
        decoded = None
    try:
        kafka_records.check_records(bytes(damaged), count, base_ts)
    except kafka_records.KafkaRecordsError:
        return  # refused: fine whatever decode says (offset deltas are checked too)
    assert decoded is not None and min(decoded[0]) >= 0


def test_the_header_of_a_stored_batch_is_rebuilt_byte_for_byte() -> None:
    """What fetch sends for a verbatim batch is the wire batch the client produced
    (leader epoch aside)."""
    from eventlog.server.records import wire_batch_from_stored

    n = len(ROWS)
    wire = encode_batch(list(range(n)), [r[3] for r in ROWS], [r[0] for r in ROWS],
                        [r[1] for r in ROWS], [r[2] for r in ROWS], producer_id=9,
                        producer_epoch=2, base_sequence=40)
    (b,) = split_batches(wire)
    rebuilt = wire_batch_from_stored(
        b.records, base_offset=0, attributes=0, last_offset_delta=n - 1,
        base_timestamp=b.base_timestamp, max_timestamp=max(r[3] for r in ROWS),
        producer_id=9, producer_epoch=2, base_sequence=40, record_count=n)
    assert rebuilt == wire
    assert struct.unpack_from(">q", rebuilt)[0] == 0


def _reference_walk(body: bytes, count: int) -> tuple[int, int]:
    """check_records' walk done record by record only: what the run path must equal."""
    pos, low, high = kafka_records._walk_records(body, 0, 0, count, 0, 0)
    if pos != len(body):
        raise kafka_records.KafkaRecordsError(
            f"the batch has {len(body) - pos} bytes after its {count} records")
    return low, high


def _outcome(walk: Any, body: bytes, count: int) -> Any:
    try:
        return walk(body, count)
    except kafka_records.KafkaRecordsError as exc:
        return str(exc)


def _rows_in_runs(runs: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    rows = []
    for key_len, value_len, n, spread in runs:
        for _ in range(n):
            ts = BASE_TS + (len(rows) * spread) % 40_000 - 100  # 1-3 byte deltas, some < 0
            rows.append((None if key_len is None else b"k" * key_len,
                         None if value_len is None else b"v" * value_len, (), ts))
    return rows


_runs = st.lists(st.tuples(st.none() | st.integers(0, 20), st.none() | st.integers(0, 200),
                           st.integers(1, 120), st.sampled_from([0, 1, 3, 50, 700])),
                 min_size=1, max_size=4)


@settings(max_examples=80, deadline=None)
@given(runs=_runs, cut=st.integers(0, 2**20), flip=st.integers(0, 255))
def test_the_walk_by_runs_equals_the_walk_record_by_record(runs: list[Any], cut: int,
                                                           flip: int) -> None:
    """Records of one shape are checked together by byte slices: the result, or the
    error and its message, is the record-by-record walk's, damaged or not."""
    records, count, _base = records_of(_rows_in_runs(runs))
    assert _outcome(kafka_records._walk, records, count) == _reference_walk(records, count)
    damaged = bytearray(records)
    damaged[cut % len(damaged)] ^= flip or 1
    assert (_outcome(kafka_records._walk, bytes(damaged), count)
            == _outcome(_reference_walk, bytes(damaged), count))
    for count_off in (-1, 1):  # a record count that does not match the records
        assert (_outcome(kafka_records._walk, records, count + count_off)
                == _outcome(_reference_walk, records, count + count_off))


def test_a_run_across_the_offset_delta_widths_is_checked_like_any_records() -> None:
    """9000 records of one shape: offset deltas of 1, 2 and 3 bytes (from 64 and 8192);
    a wrong offset delta, timestamp or size byte in any of them is found."""
    rows = [(None, b"v" * 100, (), BASE_TS + j % 50) for j in range(9000)]
    records, count, base_ts = records_of(rows)
    assert kafka_records.check_records(records, count, base_ts) == BASE_TS + 49
    size = len(records) // count  # not exact: records grow by a byte at 64 and 8192
    for at in (5, 63 * size, 64 * size + 3, 8191 * size, 8500 * size + 2, len(records) - 1):
        damaged = bytearray(records)
        damaged[at] ^= 0x40
        assert (_outcome(kafka_records._walk, bytes(damaged), count)
                == _outcome(_reference_walk, bytes(damaged), count))
    for gap_at in (10, 100, 8500):  # a gap in the offset deltas, in each width
        offsets = [j + (j >= gap_at) for j in range(9000)]
        records, count, base_ts = records_of(rows, offsets=offsets)
        with pytest.raises(kafka_records.KafkaRecordsError,
                           match=f"record {gap_at} has offset delta {gap_at + 1}"):
            kafka_records.check_records(records, count, base_ts)


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65535, 65536, 200_000])
def test_a_records_payload_is_framed_as_one_msgpack_bin_at_every_size(size: int) -> None:
    """pack_batch writes the bin prefix of an opaque payload itself (one copy of the
    batch): the frame is the header, one msgpack bin of the payload, the trailer, and
    its CRC and length are the header's, at each of msgpack's bin sizes."""
    import msgpack

    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    data, header = codec.pack_batch(payload, 7, codec.attr_kafka_records, 2, BASE_TS,
                                    BASE_TS + 1, -1, -1, -1, 3)
    assert codec.decode_header(data) == header
    assert len(data) == header.batch_length + codec.length_prefix_bytes
    assert codec.verify_crc(data[codec.crc_start:], header)
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data[codec.header_bytes:-len(codec.frame_trailer)])
    assert list(unpacker) == [payload]
    assert data.endswith(codec.frame_trailer)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=2000))
def test_the_byte_extremes_are_min_and_max(data: bytes) -> None:
    assert kafka_records._byte_max(data) == max(data)
    assert kafka_records._byte_min(data) == min(data)


@settings(max_examples=80, deadline=None)
@given(deltas=st.lists(st.integers(-10_000, 10_000), min_size=40, max_size=300),
       wide=st.booleans())
def test_a_run_finds_the_timestamp_range_in_any_order(deltas: list[int], wide: bool) -> None:
    """The timestamp deltas' range of records of one shape, in any order, one- or
    two-byte deltas (``wide``: all two-byte, from 64 up), against the walk."""
    if wide:
        deltas = [64 + abs(d) % 8000 for d in deltas]
    rows = [(None, b"v" * 30, (), BASE_TS + d) for d in [0, *deltas]]
    records, count, base_ts = records_of(rows)
    assert _outcome(kafka_records._walk, records, count) == _reference_walk(records, count)
    if min(deltas) >= 0:
        assert kafka_records.check_records(records, count, base_ts) == BASE_TS + max(
            [0, *deltas])
