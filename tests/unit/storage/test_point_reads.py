"""Point reads by position (storage/point_reads.py): one-record batches read in a few
C-level passes give exactly what the one-by-one read gives; anything else (a stale
position, another shape, damage, CRC-valid nonsense) is declined, and the generic read
behind it re-reads or raises CorruptLogError as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import eventlog
from eventlog.config import TopicConfig
from eventlog.errors import CorruptLogError
from eventlog.storage import batch as codec
from eventlog.storage.partition_log import PartitionLog
from eventlog.storage.point_reads import read_single_records
from forged import forge, packb  # tests/ is on sys.path

CONFIG = TopicConfig(segment_bytes=1 << 20)


@pytest.fixture
def plog(path: str | None) -> Iterator[PartitionLog]:
    log = PartitionLog(path, CONFIG, now_ms=0)
    yield log
    log.close()


def locations(log: PartitionLog, key: bytes) -> tuple[list[int], list[int]]:
    """(offsets, batch positions) of ``key``'s records, from the log itself."""
    batches = log.read(log.start_offset, 10_000)
    offsets, positions = [], []
    for (_header, cols), position in zip(batches, log.batch_positions(batches)):
        for offset, k in zip(cols.offsets, cols.keys):
            if k == key:
                offsets.append(offset)
                positions.append(position)
    return offsets, positions


def generic(log: PartitionLog, key: bytes, offsets: list[int]) -> list[tuple]:
    """What the one-by-one point read finds at ``offsets`` (the records of ``key``)."""
    out = []
    for offset in offsets:
        found = log.batch_at(offset)
        assert found is not None
        _header, cols = found
        i = list(cols.offsets).index(offset)
        assert cols.keys[i] == key
        headers = () if cols.headers is None else cols.headers[i]
        out.append((offset, cols.timestamps[i], key, cols.values[i], headers))
    return out


def append_one(log: PartitionLog, key: bytes, value: bytes | None, ts: int) -> None:
    """One one-record batch in the column form (``append``: Partition.append's)."""
    log.append([ts], [key], [value], None, now_ms=ts)


def send_one(log: PartitionLog, key: bytes, value: bytes | None, ts: int) -> None:
    """One one-record batch in the single-record form (``encode_one``: send()'s)."""
    data, header = codec.encode_one(log.end_offset, ts, key, value, None, 0, -1, -1, -1)
    log.append_encoded(data, header, now_ms=ts)


@pytest.mark.parametrize("write", [append_one, send_one], ids=["columns", "single-record"])
def test_one_record_batches_read_as_the_generic_read_reads_them(plog, write) -> None:
    for i in range(30):
        write(plog, b"k%d" % (i % 3), b"v%d" % i if i != 7 else None, 1000 + i)
    for key in (b"k0", b"k1", b"k2"):
        offsets, positions = locations(plog, key)
        got = read_single_records(plog, key, offsets, positions)
        assert got is not None, "one-record batches take the fast path"
        assert [tuple(r) for r in got] == generic(plog, key, offsets)
        assert [r.offset for r in got] == offsets and {r.key for r in got} == {key}
    assert read_single_records(plog, b"k1", [7], [locations(plog, b"k1")[1][2]])[0].value is None


def test_declines_what_is_not_a_plain_one_record_batch(path) -> None:
    log = PartitionLog(path, CONFIG, now_ms=0)
    try:
        append_one(log, b"k", b"a", 1)                                   # 0
        log.append([2, 2], [b"k", b"k"], [b"b", b"c"], None, now_ms=2)   # 1-2: two records
        log.append([3], [b"k"], [b"d"], [((("h", b"1"),))], now_ms=3)      # 3: headers
        data, header = codec.encode_one(4, 4, b"k", b"e" * 100, None,
                                        codec.compression_zstd, -1, -1, -1)
        log.append_encoded(data, header, now_ms=4)                       # 4: compressed
        send_one(log, b"k", b"f", 5)                                     # 5: the other form
        append_one(log, b"other", b"g", 6)                               # 6: another key
        offsets, positions = locations(log, b"k")
        assert offsets == [0, 1, 2, 3, 4, 5]
        assert read_single_records(log, b"k", [0], [positions[0]]) is not None
        for n in (1, 3, 4):  # two records, headers, compressed
            assert read_single_records(log, b"k", [0, offsets[n]], [positions[0], positions[n]]
                                       ) is None, n
        assert read_single_records(log, b"k", [0, 5], [positions[0], positions[5]]) is not None
        other = locations(log, b"other")
        assert read_single_records(log, b"k", other[0], other[1]) is None  # not its key
        for wrong in (positions[0] + 7, -1, 10**9):  # stale or unknown positions
            assert read_single_records(log, b"k", [0], [wrong]) is None
        assert read_single_records(log, b"k", [0], [positions[5]]) is None  # another offset
        assert read_single_records(log, b"k", [], []) is None
        log.delete_before(1)  # below the log start: declined
        assert read_single_records(log, b"k", [0], [positions[0]]) is None
    finally:
        log.close()


def test_declines_records_in_several_segments(path) -> None:
    log = PartitionLog(path, TopicConfig(segment_bytes=600), now_ms=0)
    try:
        for i in range(20):
            append_one(log, b"k", b"v%d" % i, i)
        assert len(log.segments) > 2
        offsets, positions = locations(log, b"k")
        assert read_single_records(log, b"k", offsets, positions) is None
        last = log.segments[-1]
        inside = [n for n, o in enumerate(offsets) if o >= last.base_offset]
        got = read_single_records(log, b"k", [offsets[n] for n in inside],
                                  [positions[n] for n in inside])
        assert got is not None and [r.value for r in got] == [b"v%d" % n for n in inside]
    finally:
        log.close()


def test_a_damaged_batch_is_declined_and_the_read_key_raises(elog) -> None:
    p = elog.create_topic("t").partition(0)
    for i in range(6):
        p.append([(b"k", b"value-%d" % i)])
    assert p.key_version(b"k") == 6
    offsets, positions = p._key_index.locations(b"k")
    assert read_single_records(p._log, b"k", offsets, positions) is not None
    seg = p._log.active_segment
    seg._log.write(positions[3] + codec.header_bytes + 3, b"\xff")  # a payload byte
    seg.verified = 0  # as if another process wrote them: bytes appended here are trusted
    assert read_single_records(p._log, b"k", offsets, positions) is None
    assert read_single_records(p._log, b"k", offsets[3:4], positions[3:4]) is None
    assert read_single_records(p._log, b"k", offsets[4:5], positions[4:5]) is not None
    for version, limit in ((0, None), (3, 1), (2, 2)):
        with pytest.raises(CorruptLogError, match="fails its CRC"):
            p.read_key(b"k", version, limit)
    assert [r.value for r in p.read_key(b"k", 0, 3)] == [b"value-%d" % i for i in range(3)]


def test_magic_1_batches_in_both_forms_are_read_and_a_mix_is_declined(plog) -> None:
    """Files written before format 2: one-record batches of magic 1, in the column
    form (``append``'s then) and the single-record form (``send``'s)."""
    send_one(plog, b"k", b"new", 0)  # magic 2
    for offset, payload in ((1, packb([[5], [b"k"], [b"cols"], None, None])),
                            (2, packb([6, b"k", b"flat"])),
                            (3, packb([[7], [b"k"], [b"cols2"], None, None]))):
        forged = forge(offset, payload)  # magic 1, a correct CRC
        plog.append_encoded(forged, codec.decode_header(forged), now_ms=0)
    positions = [plog.active_segment.find_position(offset) for offset in range(4)]
    for offsets in ([1], [2], [3], [1, 3]):
        got = read_single_records(plog, b"k", offsets, [positions[o] for o in offsets])
        assert got is not None and [tuple(r) for r in got] == generic(plog, b"k", offsets)
    for offsets in ([0, 1], [1, 2], [0, 2]):  # two magics, or two forms: one by one
        assert read_single_records(plog, b"k", offsets, [positions[o] for o in offsets]) is None


NONSENSE = {  # CRC-valid one-record batches of key b"k" that are not records
    "not-msgpack": b"\xc1",
    "extra-data": packb([0, b"k", b"v"]) + b"\x00",
    "an-integer": packb(5),
    "bytes-of-three": packb(b"abc"),
    "a-map-of-three": packb({0: 0, 1: b"k", 2: b"v"}),
    "a-map-whose-keys-read-as-a-record": packb({0: 0, b"k": 1, b"v": 2}),
    "timestamp-a-string": packb(["now", b"k", b"v"]),
    "value-an-int": packb([0, b"k", 7]),
    "key-a-string": packb([0, "k", b"v"]),
    "columns-of-two-timestamps": packb([[0, 1], [b"k"], [b"v"], None, None]),
    "columns-not-arrays": packb([0, b"k", b"v", None, None]),
    "columns-with-deltas": packb([[0], [b"k"], [b"v"], None, [0]]),
    "columns-value-of-two": packb([[0], [b"k"], [b"v", b"w"], None, None]),
}


@pytest.mark.parametrize("payload", NONSENSE.values(), ids=NONSENSE.keys())
def test_crc_valid_nonsense_is_declined_and_the_generic_read_raises(plog, payload) -> None:
    send_one(plog, b"k", b"a", 0)
    forged = forge(1, payload)
    plog.append_encoded(forged, codec.decode_header(forged), now_ms=0)
    send_one(plog, b"k", b"c", 0)
    positions = [plog.active_segment.find_position(offset) for offset in range(3)]
    assert read_single_records(plog, b"k", [0, 2], [positions[0], positions[2]]) is not None
    assert read_single_records(plog, b"k", [1], positions[1:2]) is None
    assert read_single_records(plog, b"k", [0, 1, 2], positions) is None
    if payload == NONSENSE["key-a-string"]:
        return  # a valid record of another key: the generic read returns it, keyed "k"
    with pytest.raises(CorruptLogError):
        plog.batch_at(1)


def test_read_key_takes_the_fast_path_for_appends_and_sends(elog) -> None:
    p = elog.create_topic("t").partition(0)
    for i in range(5):
        p.append([(b"a", b"%d" % i)])
    with elog.producer() as producer:
        for i in range(5):
            producer.send("t", key=b"b", value=b"%d" % i, partition=0)
            producer.flush()
    assert [r.value for r in p.read_key(b"a")] == [b"%d" % i for i in range(5)]
    assert [r.value for r in p.read_key(b"b", 1, 2)] == [b"1", b"2"]
    for key in (b"a", b"b"):
        offsets, positions = p._key_index.locations(key)
        got = read_single_records(p._log, key, offsets, positions)
        assert got is not None and got == p.read_key(key)


def test_records_read_by_partition_and_by_position_are_equal(tmp_path) -> None:
    with eventlog.open(str(tmp_path / "d")) as log:
        p = log.create_topic("t").partition(0)
        for i in range(40):
            p.append([(b"k%d" % (i % 4), b"v%d" % i)])
        for k in range(4):
            key = b"k%d" % k
            assert p.read_key(key) == [r for r in p.read(0, 100) if r.key == key]
