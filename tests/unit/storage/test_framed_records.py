"""Framed records (storage/batch.py, attribute bit 9): in a topic with
``frame_records`` F, a batch of more than F records is written in frames, decoded whole
as before, and a point read (``Partition.read(offset, 1)``) unpacks only the frame
holding its record, with the batch's CRC checked once per process."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
from budget import examples
from eventlog.errors import CorruptLogError
from eventlog.storage import batch as codec
from eventlog.storage import frame_reads as segment_module

F = codec.frame_records_default


def columns(n: int, with_headers: bool):
    timestamps = [1_700_000_000_000 + (i * 7919) % 1000 for i in range(n)]
    keys = [None if i % 9 == 0 else b"k%d" % i for i in range(n)]
    values = [None if i % 7 == 0 else b"v" * (i % 300) for i in range(n)]  # bin8 and bin16
    headers = [(("h", b"%d" % i),) if i % 3 == 0 else () for i in range(n)] if with_headers \
        else None
    return timestamps, keys, values, headers


def test_topics_write_columns_unless_they_choose_frames(tmp_path) -> None:
    timestamps, keys, values, _ = columns(1000, False)
    _data, header = codec.encode_batch_with_header(0, timestamps, keys, values)
    assert not header.attributes & codec.attr_record_frames
    with eventlog.open(str(tmp_path / "data")) as log:
        plain = log.create_topic("plain").partition(0)
        framed = log.create_topic("framed", frame_records=F).partition(0)
        for p in (plain, framed):
            p.append([(b"k", b"v%d" % i) for i in range(100)])
        assert not plain._log.active_segment._header_at(0, 10**6).attributes & (
            codec.attr_record_frames)
        assert framed._log.active_segment._header_at(0, 10**6).attributes & (
            codec.attr_record_frames)
    with eventlog.open(str(tmp_path / "data")) as log:  # the choice is kept
        assert log.topic("framed").config.frame_records == F
        assert log.topic("plain").config.frame_records == 0
    with pytest.raises(eventlog.InvalidConfigError, match="frame_records"):
        eventlog.open(None).create_topic("bad", frame_records=-1)


@pytest.mark.parametrize("n", [1, 2, F, F + 1, 2 * F, 2 * F + 1, 1000])
@pytest.mark.parametrize("with_headers", [False, True])
def test_round_trip_whole_and_frame_by_frame(n: int, with_headers: bool) -> None:
    timestamps, keys, values, headers = columns(n, with_headers)
    data, header = codec.encode_batch_with_header(100, timestamps, keys, values, headers,
                                                  frame_records=F)
    assert bool(header.attributes & codec.attr_record_frames) == (n > F)
    assert codec.decode_header(data) == header
    cols = codec.decode_columns(header, data[codec.crc_start:])
    assert list(cols.offsets) == list(range(100, 100 + n))
    assert (list(cols.timestamps), list(cols.keys), list(cols.values)) == (
        timestamps, keys, values)
    assert cols.headers == (None if headers is None else tuple(headers))
    assert type(cols.timestamps) is type(cols.keys) is type(cols.values) is tuple
    if n <= F:
        return
    for i in range(n):
        frame = codec.frame_at(header, data, codec.header_bytes, i)
        j = 100 + i - frame.offsets.start
        assert frame.offsets.start == 100 + (i // F) * F
        assert len(frame.offsets) == min(F, n - (i // F) * F)
        assert (frame.timestamps[j], frame.keys[j], frame.values[j]) == (
            timestamps[i], keys[i], values[i])
        assert (frame.headers is None) == (headers is None)
        if headers is not None:
            assert frame.headers[j] == headers[i]


def test_compressed_and_compacted_batches_keep_the_column_form() -> None:
    timestamps, keys, values, _ = columns(100, False)
    for code in (codec.compression_gzip, codec.compression_lz4):
        data, header = codec.encode_batch_with_header(0, timestamps, keys, values,
                                                      attributes=code, frame_records=F)
        assert not header.attributes & codec.attr_record_frames
        assert list(codec.decode_columns(header, data[codec.crc_start:]).values) == values
    framed, header = codec.encode_batch_with_header(0, timestamps, keys, values,
                                                    frame_records=F)
    cols = codec.decode_columns(header, framed[codec.crc_start:])
    kept = codec.Columns(cols.offsets[::2], cols.timestamps[::2], cols.keys[::2],
                         cols.values[::2], None)
    retained = codec.encode_retained(header, kept)  # the cleaner's: columns, deltas
    rh = codec.decode_header(retained)
    assert not rh.attributes & codec.attr_record_frames
    assert list(codec.decode_columns(rh, retained[codec.crc_start:]).values) == values[::2]
    prefix = codec.encode_prefix(header, cols, 50)  # a truncation's: framed again
    ph = codec.decode_header(prefix)
    assert ph.attributes & codec.attr_record_frames and ph.record_count == 50
    assert list(codec.decode_columns(ph, prefix[codec.crc_start:]).values) == values[:50]
    stamped = codec.restamp(framed, attributes=header.attributes | codec.attr_compacted,
                            base_timestamp=5)  # kept whole by the cleaner: bytes as they are
    sh = codec.decode_header(stamped)
    assert list(codec.decode_columns(sh, stamped[codec.crc_start:]).values) == values
    assert codec.frame_at(sh, stamped, codec.header_bytes, 99).values[-1] == values[99]


@settings(max_examples=examples(30), deadline=None)
@given(sizes=st.lists(st.integers(1, 150), min_size=1, max_size=8),
       compressed=st.lists(st.booleans(), max_size=8))
def test_point_reads_equal_the_sequential_read_over_any_batch_sizes(sizes, compressed) -> None:
    with eventlog.open(None) as log:
        p = log.create_topic("t", segment_bytes=8000, frame_records=F).partition(0)
        for i, n in enumerate(sizes):
            base = p.end_offset
            codec_name = "lz4" if i < len(compressed) and compressed[i] else "none"
            p.append([(b"k%d" % (base + j), b"v%d" % (base + j)) for j in range(n)],
                     compression=codec_name)
        whole = list(p.iter())
        assert len(whole) == sum(sizes)
        for offset in range(len(whole)):
            assert p.read(offset, max_records=1) == [whole[offset]]


def test_a_reopened_log_checks_each_framed_batch_once_for_point_reads(
    tmp_path, monkeypatch
) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as log:
        p = log.create_topic("t", frame_records=F).partition(0)
        for b in range(4):
            p.append([(b"k", b"v%d" % (b * 100 + i)) for i in range(100)])
    checks: list[int] = []
    real = codec.verify_crc

    def counting(tail, header):
        checks.append(header.base_offset)
        return real(tail, header)

    monkeypatch.setattr(codec, "verify_crc", counting)
    with eventlog.open(path) as log:
        p = log.topic("t").partition(0)
        for offset in (350, 351, 250, 399, 251, 300):  # never the verified prefix
            assert p.read(offset, max_records=1)[0].value == b"v%d" % offset
        assert sorted(checks) == [200, 300]
        for offset in (5, 6, 105):  # from the first batch on: the prefix grows
            assert p.read(offset, max_records=1)[0].value == b"v%d" % offset
        assert sorted(checks) == [0, 100, 200, 300]
        assert [r.value for r in p.iter()] == [b"v%d" % i for i in range(400)]
        assert sorted(checks) == [0, 100, 200, 300]  # all in the verified prefix now


def test_the_remembered_checks_are_bounded_and_forgotten_when_bytes_change(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(segment_module, "checked_batches_max", 2)
    path = str(tmp_path / "data")
    with eventlog.open(path) as log:
        p = log.create_topic("t", frame_records=F).partition(0)
        for b in range(6):
            p.append([(b"k", b"v%d" % (b * 100 + i)) for i in range(100)])
    with eventlog.open(path) as log:
        p = log.topic("t").partition(0)
        seg = p._log.active_segment
        for offset in (150, 250, 350, 450):
            p.read(offset, max_records=1)
        assert len(seg._checked) == 2
        p.truncate_to(420)  # bytes cut and re-encoded: nothing checked before counts
        old = [key for key in seg._checked if key[0] != seg._cache_token]
        assert old  # remembered under the old token: never matched again
        assert all(key[1] < seg.size for key in seg._checked if key[0] == seg._cache_token)
        p.append([(b"k", b"new%d" % i) for i in range(100)])
        assert p.read(450, max_records=1)[0].value == b"new30"


def test_a_framed_batch_failing_its_crc_is_corrupt_log_error_for_a_point_read(
    tmp_path,
) -> None:
    path = str(tmp_path / "data")
    with eventlog.open(path) as log:
        p = log.create_topic("t", frame_records=F).partition(0)
        p.append([(b"k", b"v%d" % i) for i in range(100)])
        p.append([(b"k", b"w%d" % i) for i in range(100)])
        seg = p._log.active_segment
        position = seg.find_position(150)
        at = position + seg._header_at(position, seg.size).total_bytes - 10
        log_path = seg.path
    with open(log_path, "r+b") as f:  # one byte of the second batch's last frame
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))
    with eventlog.open(path) as log:  # a clean shutdown: the batches are trusted
        p = log.topic("t").partition(0)
        assert p.end_offset == 200
        assert p.read(50, max_records=1)[0].value == b"v50"
        with pytest.raises(CorruptLogError, match="fails its CRC"):
            p.read(150, max_records=1)


def test_bulk_reads_of_a_reopened_log_remember_no_checks(tmp_path) -> None:
    """Only framed point reads fill the memory of checked batches: a long bulk read
    from the middle of a reopened segment would otherwise hold an entry per batch."""
    path = str(tmp_path / "data")
    with eventlog.open(path) as log:
        p = log.create_topic("t", frame_records=F).partition(0)
        for b in range(6):
            p.append([(b"k", b"v%d" % (b * 100 + i)) for i in range(100)])
    with eventlog.open(path) as log:
        p = log.topic("t").partition(0)
        seg = p._log.active_segment
        assert [r.value for r in p.read(250, max_records=300)] == [
            b"v%d" % i for i in range(250, 550)]
        assert seg._checked == {}
        assert seg.verified == 0
        p.read(450, max_records=1)
        assert len(seg._checked) == 1
