"""storage/run_reads.py: runs of small batches decoded in one pass read exactly what the
batch-by-batch read returns, check each CRC once, and never return a damaged batch."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
from eventlog.config import TopicConfig
from eventlog.errors import CorruptLogError
from eventlog.storage import batch as codec
from eventlog.storage.partition_log import PartitionLog
from eventlog.storage.run_reads import decode_run


def open_log(directory: str | None, **config: object) -> PartitionLog:
    return PartitionLog(directory, TopicConfig(**config), now_ms=0)  # type: ignore[arg-type]


def flat(batches: list[tuple[codec.BatchHeader, codec.Columns]], offset: int) -> list[tuple]:
    """The records at or above ``offset`` in ``batches``, control records left out."""
    out = []
    for header, cols in batches:
        if header.attributes & codec.attr_control:
            continue
        headers = cols.headers or [()] * len(cols.offsets)
        out.extend(row for row in zip(cols.offsets, cols.timestamps, cols.keys, cols.values,
                                      map(tuple, headers)) if row[0] >= offset)
    return out


# What a writer may put in a log, batch by batch: a record alone (linger 0), several,
# with headers, compressed, a transaction's records and its marker.
_ops = st.lists(st.sampled_from(["one", "one", "one", "many", "headers", "lz4", "txn"]),
                min_size=1, max_size=60)


def write(log: PartitionLog, ops: list[str]) -> None:
    for i, op in enumerate(ops):
        base = log.end_offset
        if op == "one":
            log.append([1000 + i], [b"k%d" % i], [b"v%d" % i * (i % 5)], None, now_ms=0)
        elif op == "many":
            n = i % 4 + 2
            log.append([1000 + i] * n, [None] * n, [b"m%d" % j for j in range(n)], None,
                       now_ms=0)
        elif op == "headers":
            log.append([1000 + i], [b"h"], [b"x"], [(("n", b"%d" % i),)], now_ms=0)
        elif op == "lz4":
            data = codec.encode_batch(base, [1000 + i], [b"z"], [b"compress me " * 9],
                                      attributes=codec.compression_lz4)
            log.append_encoded(data, codec.decode_header(data), now_ms=0)
        else:  # a transaction of one record, then its commit marker
            data = codec.encode_batch(base, [1000 + i], [b"t"], [b"in txn"],
                                      attributes=codec.attr_transactional, producer_id=7,
                                      producer_epoch=0, base_sequence=0)
            log.append_encoded(data, codec.decode_header(data), now_ms=0)
            marker = codec.encode_marker(base + 1, 1000 + i, 7, 0, commit=True)
            log.append_encoded(marker, codec.decode_header(marker), now_ms=0)


def assert_reads_agree(log: PartitionLog, rng: random.Random, reads: int = 12) -> None:
    end = log.end_offset
    for _ in range(reads):
        offset = rng.randrange(0, end)
        max_records = rng.choice([1, 2, 3, 7, 50, 10**6])
        max_bytes = rng.choice([1, 100, 500, 2**31])
        plain = log.read(offset, max_records, max_bytes)
        runs = log.read(offset, max_records, max_bytes, runs=True)
        assert flat(runs, offset) == flat(plain, offset), (offset, max_records, max_bytes)
        assert runs[-1][0].last_offset == plain[-1][0].last_offset


@pytest.mark.parametrize("timestamp_type", ["CreateTime", "LogAppendTime"])
@settings(max_examples=examples(40), deadline=None)
@given(ops=_ops, seed=st.integers(0, 2**32))
def test_a_run_read_returns_what_the_batch_by_batch_read_returns(
    tmp_path_factory: pytest.TempPathFactory, timestamp_type: str, ops: list[str], seed: int
) -> None:
    """Every mix of batches, every limit, in the writing process (bytes it appended are
    trusted) and after a reopen (every CRC checked on the first read)."""
    directory = str(tmp_path_factory.mktemp("runs") / "t-0")
    rng = random.Random(seed)
    log = open_log(directory, segment_bytes=2048, message_timestamp_type=timestamp_type)
    write(log, ops)
    assert_reads_agree(log, rng)
    log.close()
    reopened = open_log(directory, segment_bytes=2048, message_timestamp_type=timestamp_type)
    assert all(seg.verified == 0 for seg in reopened.segments)
    assert_reads_agree(reopened, rng)
    everything = reopened.read(0, 10**6, runs=True)
    assert flat(everything, 0) == flat(reopened.read(0, 10**6), 0)
    reopened.close()


def test_a_run_of_one_record_batches_is_merged_under_a_synthetic_header(path) -> None:
    log = open_log(path)
    for i in range(100):
        log.append([5000 + i], [b"k"], [b"v%d" % i], None, now_ms=0)
    (header, cols), = log.read(10, 50, runs=True)
    assert (header.base_offset, header.last_offset, header.record_count) == (10, 59, 50)
    assert (header.crc, header.producer_id, header.attributes) == (0, -1, 0)
    assert (header.base_timestamp, header.max_timestamp) == (5010, 5059)
    stored = log.read(10, 50)
    assert len(stored) == 50
    assert header.total_bytes == sum(h.total_bytes for h, _ in stored)
    assert list(cols.offsets) == list(range(10, 60))
    assert list(cols.values) == [b"v%d" % i for i in range(10, 60)]
    assert cols.headers is None
    log.close()


def test_the_first_read_after_a_reopen_checks_and_remembers(tmp_path: Path) -> None:
    directory = str(tmp_path / "t-0")
    log = open_log(directory)
    for i in range(300):
        log.append([i], [None], [b"%d" % i], None, now_ms=0)
    (seg,) = log.segments
    assert seg.verified == seg.size  # appended here: trusted
    log.close()
    log = open_log(directory)
    (seg,) = log.segments
    assert seg.verified == 0
    log.read(0, 100, runs=True)
    assert 0 < seg.verified < seg.size  # the chunk it checked, and no further
    log.read(0, 10**6, runs=True)
    assert seg.verified == seg.size
    log.close()


def test_a_flipped_byte_in_a_run_is_corrupt_after_the_records_before_it(
    tmp_path: Path,
) -> None:
    """Damage in the middle of a run of one-record batches: a read returns the records
    before the damaged batch, and the read that starts at it raises CorruptLogError."""
    directory = str(tmp_path / "t-0")
    log = open_log(directory)
    for i in range(200):
        log.append([i], [b"k"], [b"value %d" % i], None, now_ms=0)
    position = log.segments[0].find_position(120)
    path = log.segments[0].path
    log.close()
    with open(path, "r+b") as f:  # a byte of record 120's value
        f.seek(position + codec.header_bytes + 8)
        byte = f.read(1)
        f.seek(position + codec.header_bytes + 8)
        f.write(bytes([byte[0] ^ 0x20]))
    log = open_log(directory)
    before = flat(log.read(0, 10**6, runs=True), 0)
    assert [r[0] for r in before] == list(range(120))
    with pytest.raises(CorruptLogError, match="fails its CRC"):
        log.read(120, 10, runs=True)
    log.close()


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=20), st.data())
def test_decode_run_returns_only_whole_batches_wherever_the_bytes_end(values, data) -> None:
    batches = [codec.encode_one(i, i, None, v, None, 0, -1, -1, -1)[0]
               for i, v in enumerate(values)]
    stream = b"".join(batches)
    cut = data.draw(st.integers(0, len(stream)))
    whole = 0
    while whole < len(batches) and sum(map(len, batches[: whole + 1])) <= cut:
        whole += 1
    for check in (True, False):
        run = decode_run(stream[:cut], 10**6, 2**31, check_crc=check)
        if whole == 0:
            assert run is None
            continue
        assert run is not None
        got, size = run
        assert size == sum(map(len, batches[:whole]))
        assert [r[3] for r in flat(got, 0)] == values[:whole]


def test_a_run_is_not_confused_by_a_log_written_in_format_1(tmp_path: Path) -> None:
    """A segment of magic-1 batches followed by magic-2 ones (appended after an
    upgrade): every read, with runs or without, returns the same records."""
    directory = str(tmp_path / "t-0")
    log = open_log(directory)
    for i in range(50):
        data = _as_v1(codec.encode_one(i, i, b"old", b"%d" % i, None, 0, -1, -1, -1)[0])
        log.append_encoded(data, codec.decode_header(data), now_ms=0)
    for i in range(50, 100):
        log.append([i], [b"new"], [b"%d" % i], None, now_ms=0)
    rng = random.Random(3)
    assert_reads_agree(log, rng, reads=40)
    assert [r[3] for r in flat(log.read(0, 10**6, runs=True), 0)] == [
        b"%d" % i for i in range(100)]
    log.close()
    assert_reads_agree(open_log(directory), rng, reads=40)


def _as_v1(data: bytes) -> bytes:
    """A format-2 batch of an uncompressed payload, rewritten in format 1."""
    import struct
    import zlib

    body = data[codec.header_bytes:-2]
    tail = data[17:57]
    crc = zlib.crc32(tail + body)
    return data[:8] + struct.pack(">iBI", 45 + len(body), 1, crc) + tail + body


@pytest.mark.parametrize("size", [1, 100, 4096])
def test_random_values_round_trip_through_runs(size: int) -> None:
    log = open_log(None)
    values = [os.urandom(size) for _ in range(30)]
    for i, v in enumerate(values):
        log.append([i], [None], [v], None, now_ms=0)
    assert [r[3] for r in flat(log.read(0, 10**6, runs=True), 0)] == values
