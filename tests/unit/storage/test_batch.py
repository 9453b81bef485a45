"""The record batch codec: golden bytes both ways, the layout field by field, the CRC,
every codec and headers round trips, corrupt and crafted payloads."""

from __future__ import annotations

import struct
import zlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog.errors import CorruptLogError
from eventlog.storage import batch as codec

# (encode_batch arguments, expected bytes as hex) in format 1 (magic 1, no frame
# trailer), what every version before format 2 wrote: still read, never written. The
# hex was written out once from the layout in batch.py's docstring (57-byte big-endian
# header, then one msgpack array of columns), building each field with struct and the
# CRC with zlib, not with the encoder.
V1_CASES = [
    (
        dict(base_offset=0, timestamps=[1700000000000], keys=[b"k1"], values=[b"v1"]),
        "0000000000000000" "00000044" "01" "2fa54847" "0000" "00000000"
        "0000018bcfe56800" "0000018bcfe56800" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
        "95" "91cf0000018bcfe56800" "91c4026b31" "91c4027631" "c0" "c0",
    ),
    (
        # Null key and null value; timestamps out of order: base is the first, max the largest.
        dict(
            base_offset=368769,
            timestamps=[1700000000005, 1700000000001],
            keys=[None, b"key"],
            values=[b"a", None],
        ),
        "000000000005a081" "0000004f" "01" "d6b0b78d" "0000" "00000001"
        "0000018bcfe56805" "0000018bcfe56805" "ffffffffffffffff" "ffff" "ffffffff" "00000002"
        "95" "92cf0000018bcfe56805cf0000018bcfe56801" "92c0c4036b6579" "92c40161c0" "c0" "c0",
    ),
    (
        # Headers: (str, bytes | None) pairs; a record without headers has ().
        dict(
            base_offset=7,
            timestamps=[0, 1],
            keys=[b"k", b"k"],
            values=[b"", b"\x00\xff"],
            headers=[(("h", b"x"), ("n", None)), ()],
        ),
        "0000000000000007" "0000004d" "01" "f14c2b74" "0000" "00000001"
        "0000000000000000" "0000000000000001" "ffffffffffffffff" "ffff" "ffffffff" "00000002"
        "95" "920001" "92c4016bc4016b" "92c400c40200ff" "92" "9292a168c4017892a16ec0" "90" "c0",
    ),
    (
        # LogAppendTime attribute and idempotent-producer fields.
        dict(
            base_offset=2**40,
            timestamps=[5],
            keys=[b"k"],
            values=[b"v"],
            attributes=codec.attr_log_append_time,
            producer_id=7,
            producer_epoch=2,
            base_sequence=10,
        ),
        "0000010000000000" "0000003a" "01" "fdba998b" "0008" "00000000"
        "0000000000000005" "0000000000000005" "0000000000000007" "0002" "0000000a" "00000001"
        "95" "9105" "91c4016b" "91c40176" "c0" "c0",
    ),
    (
        # Explicit offsets (a compacted batch): attribute bit 6, last delta from the deltas.
        dict(
            base_offset=100,
            timestamps=[10, 20, 30],
            keys=[b"a", b"b", b"c"],
            values=[b"1", b"2", b"3"],
            offset_deltas=[0, 2, 5],
        ),
        "0000000000000064" "0000004b" "01" "827cc680" "0040" "00000005"
        "000000000000000a" "000000000000001e" "ffffffffffffffff" "ffff" "ffffffff" "00000003"
        "95" "930a141e" "93c40161c40162c40163" "93c40131c40132c40133" "c0" "93000205",
    ),
]
IDS = ["one-record", "nulls-unordered-ts", "headers", "producer-logappendtime", "deltas"]


def framed(v1_hex: str, payload_hex: str | None = None) -> str:
    """The format-2 bytes of a format-1 golden, built from the layout with struct and
    zlib (not the encoder): magic 2, the payload (``payload_hex``, or the same), the
    frame trailer c4 39, the length and CRC recomputed."""
    old = bytes.fromhex(v1_hex)
    body = (old[57:] if payload_hex is None else bytes.fromhex(payload_hex)) + b"\xc4\x39"
    tail = old[17:57]
    crc = zlib.crc32(tail + body)
    return (old[0:8] + struct.pack(">iBI", 45 + len(body), 2, crc) + tail + body).hex()


# Format 2, what the encoder writes: a batch of one record takes the flat form
# [timestamp, key, value] (as encode_one has always written it).
CASES = [
    (V1_CASES[0][0], framed(V1_CASES[0][1], "93" "cf0000018bcfe56800" "c4026b31" "c4027631")),
    (V1_CASES[1][0], framed(V1_CASES[1][1])),
    (V1_CASES[2][0], framed(V1_CASES[2][1])),
    (V1_CASES[3][0], framed(V1_CASES[3][1], "93" "05" "c4016b" "c40176")),
    (V1_CASES[4][0], framed(V1_CASES[4][1])),
]


def as_v1(data: bytes) -> bytes:
    """A format-2 batch rewritten in format 1 (no trailer, a compressed payload bare),
    CRC recomputed: what the tests craft damage into, since both formats share the
    decoder's defences."""
    header = codec.decode_header(data)
    body = bytes(codec.stored_content(header, data[17:]))
    tail = bytearray(data[17:57])
    crc = zlib.crc32(bytes(tail) + body)
    return data[0:8] + struct.pack(">iBI", 45 + len(body), 1, crc) + bytes(tail) + body


def _encode(args: dict) -> bytes:
    args = dict(args)
    return codec.encode_batch(
        args.pop("base_offset"),
        args.pop("timestamps"),
        args.pop("keys"),
        args.pop("values"),
        args.pop("headers", None),
        **args,
    )


@pytest.mark.parametrize(("args", "expected_hex"), CASES, ids=IDS)
def test_encode(args: dict, expected_hex: str) -> None:
    assert _encode(args).hex() == expected_hex


@pytest.mark.parametrize(("args", "expected_hex"), CASES + V1_CASES,
                         ids=IDS + [f"v1-{i}" for i in IDS])
def test_decode(args: dict, expected_hex: str) -> None:
    data = bytes.fromhex(expected_hex)
    header = codec.decode_header(data)
    count = len(args["values"])
    deltas = args.get("offset_deltas")
    assert header.base_offset == args["base_offset"]
    assert header.batch_length == len(data) - 12
    assert header.total_bytes == len(data)
    assert header.magic == (2 if data.endswith(b"\xc4\x39") else 1)
    assert header.crc == zlib.crc32(data[17:])
    assert header.record_count == count
    assert header.last_offset_delta == (count - 1 if deltas is None else deltas[-1])
    assert header.last_offset == args["base_offset"] + header.last_offset_delta
    assert header.base_timestamp == args["timestamps"][0]
    assert header.max_timestamp == max(args["timestamps"])
    assert header.producer_id == args.get("producer_id", -1)
    assert header.producer_epoch == args.get("producer_epoch", -1)
    assert header.base_sequence == args.get("base_sequence", -1)
    expected_attributes = args.get("attributes", 0) | (0x40 if deltas else 0)
    assert header.attributes == expected_attributes
    assert codec.verify_crc(data[17:], header)
    assert codec.plausible(header, len(data))

    cols = codec.decode_columns(header, data[17:])
    base = args["base_offset"]
    expected_offsets = [base + d for d in deltas] if deltas else list(range(base, base + count))
    assert list(cols.offsets) == expected_offsets
    assert list(cols.timestamps) == args["timestamps"]
    assert list(cols.keys) == args["keys"]
    assert list(cols.values) == args["values"]
    if args.get("headers") is None:
        assert cols.headers is None
    else:
        assert [tuple(map(tuple, h)) for h in cols.headers] == [
            tuple(map(tuple, h)) for h in args["headers"]
        ]


def test_layout_field_by_field() -> None:
    """Case 1 read at the docstring's byte offsets, without the codec's struct."""
    data = bytes.fromhex(CASES[0][1])
    assert len(data) == 77
    assert data[0:8] == bytes(8)  # base_offset 0
    assert int.from_bytes(data[8:12], "big") == 77 - 12 == 65  # batch_length
    assert data[12] == 2  # magic
    assert int.from_bytes(data[13:17], "big") == zlib.crc32(data[17:])  # crc of [17, end)
    assert data[17:19] == b"\x00\x00"  # attributes: no compression, CreateTime
    assert data[19:23] == b"\x00\x00\x00\x00"  # last_offset_delta 0
    assert int.from_bytes(data[23:31], "big") == 1700000000000  # base_timestamp
    assert int.from_bytes(data[31:39], "big") == 1700000000000  # max_timestamp
    assert data[39:47] == b"\xff" * 8  # producer_id -1
    assert data[47:49] == b"\xff\xff"  # producer_epoch -1
    assert data[49:53] == b"\xff\xff\xff\xff"  # base_sequence -1
    assert int.from_bytes(data[53:57], "big") == 1  # record_count
    payload = msgpack.unpackb(data[57:-2])
    assert payload == [1700000000000, b"k1", b"v1"]  # one record: the flat form
    assert data[-2:] == b"\xc4\x39"  # the frame trailer: msgpack's header of a 57-byte bin
    v1 = bytes.fromhex(V1_CASES[0][1])
    assert v1[12] == 1 and msgpack.unpackb(v1[57:]) == [[1700000000000], [b"k1"], [b"v1"],
                                                         None, None]
    assert codec.header_bytes == 57
    assert codec.HEADER.size == 57


# The single-record form (``encode_one``, the path of a one-record send): the same
# header, and a flat msgpack array [timestamp, key, value(, headers)] as payload.
# (encode_one arguments, expected hex), written out from the docstring like CASES.
V1_ONE_CASES = [
    (
        (0, 1700000000000, b"k1", b"v1", None, 0, -1, -1, -1),
        "0000000000000000" "0000003f" "01" "d39858f3" "0000" "00000000"
        "0000018bcfe56800" "0000018bcfe56800" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
        "93" "cf0000018bcfe56800" "c4026b31" "c4027631",
    ),
    (
        (42, 5, None, b"", (("h", b"x"), ("n", None)), 0, -1, -1, -1),
        "000000000000002a" "0000003d" "01" "cf525b8b" "0000" "00000000"
        "0000000000000005" "0000000000000005" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
        "94" "05" "c0" "c400" "9292a168c4017892a16ec0",
    ),
    (
        (7, 9, b"k", None, None, codec.attr_log_append_time, 3, 1, 17),
        "0000000000000007" "00000033" "01" "9c02be2a" "0008" "00000000"
        "0000000000000009" "0000000000000009" "0000000000000003" "0001" "00000011" "00000001"
        "93" "09" "c4016b" "c0",
    ),
]


ONE_CASES = [(args, framed(hex_)) for args, hex_ in V1_ONE_CASES]


@pytest.mark.parametrize(("args", "expected_hex"), ONE_CASES, ids=["plain", "headers", "producer"])
def test_encode_one_golden(args: tuple, expected_hex: str) -> None:
    data, header = codec.encode_one(*args)
    assert data.hex() == expected_hex
    assert header == codec.decode_header(data)


@pytest.mark.parametrize(("args", "expected_hex"), ONE_CASES + V1_ONE_CASES,
                         ids=["plain", "headers", "producer", "v1-plain", "v1-headers",
                              "v1-producer"])
def test_decode_one_golden(args: tuple, expected_hex: str) -> None:
    base, ts, key, value, headers, attributes, producer_id, epoch, sequence = args
    data = bytes.fromhex(expected_hex)
    header = codec.decode_header(data)
    assert codec.plausible(header, len(data))
    assert codec.verify_crc(data[17:], header)
    assert (header.base_offset, header.record_count, header.last_offset_delta) == (base, 1, 0)
    assert (header.base_timestamp, header.max_timestamp) == (ts, ts)
    assert (header.attributes, header.producer_id) == (attributes, producer_id)
    assert (header.producer_epoch, header.base_sequence) == (epoch, sequence)
    cols = codec.decode_columns(header, data[17:])
    assert list(cols.offsets) == [base]
    assert (list(cols.timestamps), list(cols.keys), list(cols.values)) == ([ts], [key], [value])
    assert cols.headers == (None if headers is None else (headers,))


@given(
    key=st.none() | st.binary(max_size=24),
    value=st.none() | st.binary(max_size=24),
    ts=st.integers(0, 2**62),
    headers=st.none() | st.lists(st.tuples(st.text(max_size=4), st.binary(max_size=4)),
                                 min_size=1, max_size=3).map(tuple),
    lz4=st.booleans(),
)
def test_encode_one_reads_back_like_a_batch_of_one(key, value, ts, headers, lz4) -> None:
    attributes = codec.compression_lz4 if lz4 else 0
    data, header = codec.encode_one(9, ts, key, value, headers, attributes, -1, -1, -1)
    column_form = codec.encode_batch(9, [ts], [key], [value],
                                     None if headers is None else [headers],
                                     attributes=attributes)
    assert tuple(header) == tuple(codec.decode_header(data))  # the fields, in header order
    decoded = codec.decode_columns(codec.make_header(header), data[17:])
    expected = codec.decode_columns(codec.decode_header(column_form), column_form[17:])
    assert list(decoded.offsets) == list(expected.offsets) == [9]
    assert decoded.timestamps == expected.timestamps
    assert decoded.keys == expected.keys
    assert decoded.values == expected.values
    assert decoded.headers == expected.headers
    assert header[:3] == codec.decode_header(data)[:3]
    if not lz4:  # the flat form is never larger (lz4 may find more to share in columns)
        assert len(data) <= len(column_form)


def test_crc_excludes_base_offset_and_length_like_kafka() -> None:
    """Re-basing a batch (what the log does when it assigns offsets) keeps its CRC."""
    a = _encode(dict(base_offset=0, timestamps=[1], keys=[b"k"], values=[b"v"]))
    b = _encode(dict(base_offset=12345, timestamps=[1], keys=[b"k"], values=[b"v"]))
    assert a[8:] == b[8:]
    assert a[0:8] != b[0:8]


@pytest.mark.parametrize(("args", "expected_hex"), CASES, ids=IDS)
def test_crc_mismatch_detected_for_every_covered_byte(args: dict, expected_hex: str) -> None:
    data = bytes.fromhex(expected_hex)
    header = codec.decode_header(data)
    for position in range(codec.crc_start, len(data)):
        for flip in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[position] ^= flip
            assert not codec.verify_crc(bytes(damaged[17:]), header), (position, flip)
    # A damaged CRC field fails too.
    for position in range(13, 17):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        assert not codec.verify_crc(data[17:], codec.decode_header(bytes(damaged)))


def test_plausible_rejects_torn_zero_and_foreign_headers() -> None:
    data = _encode(dict(base_offset=3, timestamps=[1, 2], keys=[b"a", b"b"], values=[b"1", b"2"]))
    header = codec.decode_header(data)
    assert codec.plausible(header, len(data))
    assert not codec.plausible(header, len(data) - 1)  # torn: the batch runs past the end
    zero = codec.decode_header(bytes(codec.header_bytes))
    assert not codec.plausible(zero, 10_000)
    for position, value in ((12, 3), (12, 0)):  # wrong magic (1 and 2 are known)
        bad = bytearray(data)
        bad[position] = value
        assert not codec.plausible(codec.decode_header(bytes(bad)), len(data))
    bad = bytearray(data)
    bad[53:57] = (0).to_bytes(4, "big")  # no records
    assert not codec.plausible(codec.decode_header(bytes(bad)), len(data))
    bad = bytearray(data)
    bad[8:12] = (10).to_bytes(4, "big")  # shorter than a header
    assert not codec.plausible(codec.decode_header(bytes(bad)), len(data))
    bad = bytearray(data)
    bad[19:23] = (0).to_bytes(4, "big")  # last delta below count - 1
    assert not codec.plausible(codec.decode_header(bytes(bad)), len(data))


def test_decode_header_at_a_position_of_a_larger_buffer() -> None:
    first = _encode(dict(base_offset=0, timestamps=[1], keys=[None], values=[b"x"]))
    second = _encode(dict(base_offset=1, timestamps=[2, 3], keys=[None, None], values=[b"y", b"z"]))
    buffer = bytearray(first + second + bytes(100))
    header = codec.decode_header(buffer, len(first))
    assert (header.base_offset, header.last_offset, header.record_count) == (1, 2, 2)
    assert header.total_bytes == len(second)


# --------------------------------------------------------------------------- properties

_keys = st.none() | st.binary(max_size=24)
_headers = st.lists(
    st.tuples(st.text(max_size=6), st.none() | st.binary(max_size=6)), max_size=3
).map(tuple)
_timestamps = st.integers(min_value=0, max_value=2**62)


@st.composite
def batches(draw: st.DrawFn, *, with_headers: bool | None = None) -> dict:
    n = draw(st.integers(min_value=1, max_value=30))
    headers = None
    if with_headers is None:
        with_headers = draw(st.booleans())
    if with_headers:
        headers = draw(st.lists(_headers, min_size=n, max_size=n))
    return dict(
        base_offset=draw(st.integers(min_value=0, max_value=2**62)),
        timestamps=draw(st.lists(_timestamps, min_size=n, max_size=n)),
        keys=draw(st.lists(_keys, min_size=n, max_size=n)),
        values=draw(st.lists(_keys, min_size=n, max_size=n)),
        headers=headers,
    )


def _decode(data: bytes) -> tuple[codec.BatchHeader, codec.Columns]:
    header = codec.decode_header(data)
    assert codec.plausible(header, len(data))
    assert codec.verify_crc(data[17:], header)
    return header, codec.decode_columns(header, data[17:])


def _assert_round_trip(args: dict, header: codec.BatchHeader, cols: codec.Columns) -> None:
    n = len(args["values"])
    assert header.base_offset == args["base_offset"]
    assert header.record_count == n
    assert list(cols.offsets) == list(range(args["base_offset"], args["base_offset"] + n))
    assert list(cols.timestamps) == args["timestamps"]
    assert header.max_timestamp == max(args["timestamps"])
    assert list(cols.keys) == args["keys"]
    assert list(cols.values) == args["values"]
    if args["headers"] is None:
        assert cols.headers is None
    else:
        decoded = [tuple(tuple(pair) for pair in h) for h in cols.headers]
        assert decoded == [tuple(tuple(pair) for pair in h) for h in args["headers"]]


@given(batches())
def test_round_trip(args: dict) -> None:
    header, cols = _decode(_encode(args))
    assert header.attributes == 0
    _assert_round_trip(args, header, cols)


@given(batches(with_headers=True))
def test_headers_round_trip(args: dict) -> None:
    header, cols = _decode(_encode(args))
    _assert_round_trip(args, header, cols)


CODECS = ["gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("name", CODECS)
@given(args=batches())
def test_compressed_round_trip(name: str, args: dict) -> None:
    code = codec.COMPRESSION_CODES[name]
    plain = _encode(args)
    data = _encode({**args, "attributes": code})
    header, cols = _decode(data)
    assert header.attributes & codec.compression_mask == code
    _assert_round_trip(args, header, cols)
    # The payload is the uncompressed msgpack payload's size (4 bytes LE), then the
    # codec's stream of exactly that payload.
    # Framed as one msgpack bin, then the trailer.
    payload = codec.stored_content(header, data[17:])
    plain_payload = codec.stored_content(codec.decode_header(plain), plain[17:])
    assert msgpack.unpackb(data[codec.header_bytes : -2]) == bytes(payload)
    assert struct.unpack("<I", payload[:4])[0] == len(plain_payload)
    assert codec.inflated_size(data) == len(plain_payload)
    inflated = codec.inflate(header, payload, 2**31)
    assert bytes(inflated) == bytes(plain_payload)


# A batch written by the lz4 encoder before cramjam (lz4.block.compress: an lz4 block
# prefixed by its size, 4 bytes LE), as it sits in logs on disk: two records with a
# header, an idempotent producer, offsets 5..6. And one record of encode_one, offset 7.
OLD_LZ4_BATCH = (
    "00000000000000050000006001f8cb626a0003000000010000018bcfe568000000018bcfe56801"
    "0000000000000009000000000004000000026f000000b49592cf0000018bcfe568000900bf0192"
    "c4026b31c092c428760100143fc41e7701000aa0929192a168c4017890c0"
)
OLD_LZ4_ONE = (
    "00000000000000070000004e012ceced990003000000000000018bcfe568020000018bcfe56802"
    "ffffffffffffffffffffffffffff0000000143000000ff0393cf0000018bcfe56802c4036b6579"
    "c4327a010019507a7a7a7a7a"
)


def test_lz4_batches_written_before_cramjam_still_read() -> None:
    header, cols = _decode(bytes.fromhex(OLD_LZ4_BATCH))
    assert header.attributes & codec.compression_mask == codec.compression_lz4
    assert (header.producer_id, header.base_sequence) == (9, 4)
    assert list(cols.offsets) == [5, 6]
    assert list(cols.timestamps) == [1700000000000, 1700000000001]
    assert list(cols.keys) == [b"k1", None]
    assert list(cols.values) == [b"v" * 40, b"w" * 30]
    assert [tuple(map(tuple, h)) for h in cols.headers] == [(("h", b"x"),), ()]
    header, cols = _decode(bytes.fromhex(OLD_LZ4_ONE))
    assert (list(cols.offsets), list(cols.keys), list(cols.values)) == (
        [7], [b"key"], [b"z" * 50])


def test_lz4_encoding_is_unchanged() -> None:
    """Today's lz4 encoder writes exactly the payload the old one wrote, framed (format
    2): rewritten in format 1 it is the old batch byte for byte."""
    data = codec.encode_batch(
        5, [1700000000000, 1700000000001], [b"k1", None], [b"v" * 40, b"w" * 30],
        [(("h", b"x"),), ()], attributes=codec.compression_lz4, producer_id=9,
        producer_epoch=0, base_sequence=4,
    )
    assert as_v1(data).hex() == OLD_LZ4_BATCH
    one, _ = codec.encode_one(7, 1700000000002, b"key", b"z" * 50, None,
                              codec.compression_lz4, -1, -1, -1)
    assert as_v1(one).hex() == OLD_LZ4_ONE


def _recrc(data: bytearray) -> bytes:
    """``data`` with its CRC recomputed: what a crafted (not torn) batch looks like."""
    data[13:17] = struct.pack(">I", zlib.crc32(bytes(data[17:])))
    return bytes(data)


@pytest.mark.parametrize("name", CODECS)
@given(args=batches(), position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_flipped_payload_bytes_with_a_valid_crc_are_corrupt_log_errors(
    name: str, args: dict, position: int, flip: int
) -> None:
    """Read through a segment, a compressed batch with a flipped payload byte and a
    recomputed CRC reads as records or as CorruptLogError naming it: never a
    decompression, msgpack or ValueError (which Segment.read would report as the
    segment deleted under it), never an OffsetOutOfRangeError."""
    from eventlog.config import TopicConfig
    from eventlog.storage.partition_log import PartitionLog

    data = bytearray(_encode({**args, "attributes": codec.COMPRESSION_CODES[name]}))
    data[0:8] = bytes(8)  # base offset 0: the log's end
    position = codec.header_bytes + position % (len(data) - codec.header_bytes)
    data[position] ^= flip
    crafted = _recrc(data)
    header = codec.decode_header(crafted)
    log = PartitionLog(None, TopicConfig(), now_ms=0)
    log.append_encoded(crafted, header, now_ms=0)
    try:
        batches = log.read(0, 10**6)
    except CorruptLogError as exc:
        assert "memory segment" in str(exc) and f"offsets 0..{header.last_offset}" in str(exc)
        return
    assert [h for h, _ in batches] == [header]  # a flip the codec cannot see: records


@pytest.mark.parametrize("name", CODECS)
def test_unknown_codes_and_short_payloads_are_refused(name: str) -> None:
    data = bytearray(as_v1(_encode(dict(base_offset=0, timestamps=[1], keys=[b"k"],
                                        values=[b"v"], attributes=codec.COMPRESSION_CODES[name]))))
    for code in (5, 6, 7):
        bad = bytearray(data)
        bad[18] = (bad[18] & ~codec.compression_mask) | code
        crafted = _recrc(bad)
        with pytest.raises(ValueError, match=f"compression code {code}"):
            codec.decode_columns(codec.decode_header(crafted), crafted[17:])
    short = _recrc(data[: codec.header_bytes + 2])
    with pytest.raises(ValueError, match="too short"):
        codec.decode_columns(codec.decode_header(short), short[17:])


def _bomb(name: str, inflated_bytes: int, declared_bytes: int) -> bytes:
    """A batch whose payload is ``inflated_bytes`` of zeros compressed with ``name``,
    declaring ``declared_bytes``: a few KiB on disk."""
    import cramjam

    zeros = bytes(inflated_bytes)
    stream = {
        "gzip": cramjam.gzip.compress,
        "snappy": cramjam.snappy.compress_raw,
        "lz4": lambda b: cramjam.lz4.compress_block(b, store_size=False),
        "zstd": cramjam.zstd.compress,
    }[name](zeros)
    data = bytearray(as_v1(_encode(dict(base_offset=0, timestamps=[1], keys=[b"k"],
                                        values=[b"v"], attributes=codec.COMPRESSION_CODES[name]))))
    del data[codec.header_bytes :]
    data += struct.pack("<I", declared_bytes) + bytes(stream)
    data[8:12] = struct.pack(">i", len(data) - 12)
    return _recrc(data)


@pytest.mark.parametrize("name", CODECS)
def test_a_decompression_bomb_is_refused_before_it_is_allocated(name: str, monkeypatch) -> None:
    limit = 1 << 20
    allocated: list[int] = []
    real_inflate_buffer = bytearray

    class CountingBytearray(real_inflate_buffer):
        def __new__(cls, size: int = 0):  # type: ignore[no-untyped-def]
            allocated.append(size)
            return real_inflate_buffer(size)

    monkeypatch.setattr(codec, "bytearray", CountingBytearray, raising=False)
    # 1. It declares what it inflates to (64 MiB), over the limit: refused from the
    # declaration, nothing allocated.
    bomb = _bomb(name, 64 << 20, 64 << 20)
    assert len(bomb) < 4 << 20
    header = codec.decode_header(bomb)
    assert codec.plausible(header, len(bomb)) and codec.verify_crc(bomb[17:], header)
    with pytest.raises(ValueError, match="over the limit"):
        codec.decode_columns(header, bomb[17:], limit)
    assert allocated == []
    # 2. It lies, declaring 1000 bytes: decompression stops at 1000 and fails.
    liar = _bomb(name, 64 << 20, 1000)
    with pytest.raises(ValueError, match="does not decompress to the 1000 bytes"):
        codec.decode_columns(codec.decode_header(liar), liar[17:], limit)
    assert allocated == [1000]
    # 3. The default limit (32 MiB, the floor) refuses it too.
    with pytest.raises(ValueError, match="over the limit of 33554432"):
        codec.decode_columns(header, bomb[17:])


@pytest.mark.parametrize("name", CODECS)
def test_a_size_the_codec_cannot_reach_is_refused_before_allocating(name, monkeypatch) -> None:
    """Under the limit, but more than the codec can make of the stream's bytes (a few
    bytes declaring 30 MiB): refused from the declaration alone."""
    allocated: list[int] = []
    real = bytearray

    class CountingBytearray(real):
        def __new__(cls, size: int = 0):  # type: ignore[no-untyped-def]
            allocated.append(size)
            return real(size)

    monkeypatch.setattr(codec, "bytearray", CountingBytearray, raising=False)
    liar = _bomb(name, 1000, 30 << 20)
    with pytest.raises(ValueError, match=rf"more than {name} can inflate that many to"):
        codec.decode_columns(codec.decode_header(liar), liar[17:])
    assert allocated == []
    honest = _bomb(name, 1 << 20, 1 << 20)  # the best case of each codec still passes
    with pytest.raises(msgpack.ExtraData):  # it inflates; then a megabyte of zeros is
        codec.decode_columns(codec.decode_header(honest), honest[17:])  # not one batch
    assert allocated == [1 << 20]


def test_a_stream_shorter_than_declared_is_corrupt() -> None:
    data = bytearray(as_v1(_encode(dict(base_offset=0, timestamps=[1], keys=[b"k"],
                                        values=[b"v" * 9], attributes=codec.compression_zstd))))
    declared = codec.inflated_size(data)
    data[codec.header_bytes : codec.header_bytes + 4] = struct.pack("<I", declared + 5)
    crafted = _recrc(data)
    with pytest.raises(ValueError, match=f"to {declared} bytes but declares {declared + 5}"):
        codec.decode_columns(codec.decode_header(crafted), crafted[17:])


def test_inflated_bytes_max_is_max_message_bytes_with_a_floor() -> None:
    assert codec.inflated_bytes_max(1_048_588) == codec.inflated_bytes_floor == 32 << 20
    assert codec.inflated_bytes_max(100 << 20) == 100 << 20


def test_lz4_shrinks_a_repetitive_batch() -> None:
    args = dict(base_offset=0, timestamps=[1] * 200, keys=[b"key"] * 200, values=[b"v" * 100] * 200)
    plain = _encode(args)
    packed = _encode({**args, "attributes": codec.compression_lz4})
    assert len(packed) < len(plain) // 10
    assert codec.decode_header(packed).batch_length == len(packed) - 12


@given(
    st.lists(st.tuples(st.integers(0, 2**40), st.none() | st.binary(max_size=8),
                       st.none() | st.binary(max_size=8)), min_size=1, max_size=5),
    st.sampled_from(sorted(codec.COMPRESSION_CODES.values())),
    st.integers(0, 2**40),
)
def test_every_encoder_returns_the_header_it_packed(
    records: list[tuple[int, bytes | None, bytes | None]], compression: int, base: int
) -> None:
    """One header packer: what an encoder says it wrote is what a reader decodes, field by
    field, and the batch passes its CRC (encode_one, the column form, retained, restamped)."""
    timestamps = [r[0] for r in records]
    keys = [r[1] for r in records]
    values = [r[2] for r in records]
    outputs = [codec.encode_batch_with_header(base, timestamps, keys, values,
                                              attributes=compression, producer_id=5,
                                              producer_epoch=1, base_sequence=3)]
    outputs.append(codec.encode_one(base, timestamps[0], keys[0], values[0], None, compression,
                                    5, 1, 3))
    for data, header in outputs:
        assert type(header) is codec.BatchHeader
        assert codec.decode_header(data) == header
        assert header.total_bytes == len(data)
        assert codec.verify_crc(data[codec.crc_start:], header)
        stamped = codec.restamp(data, attributes=header.attributes | codec.attr_compacted,
                                base_timestamp=header.base_timestamp + 1)
        again = codec.decode_header(stamped)
        assert again._replace(crc=0, attributes=0, base_timestamp=0) == header._replace(
            crc=0, attributes=0, base_timestamp=0)
        assert again.base_timestamp == header.base_timestamp + 1
        assert codec.verify_crc(stamped[codec.crc_start:], again)
        cols = codec.decode_columns(header, data[codec.crc_start:])
        retained = codec.encode_retained(header, cols)
        kept = codec.decode_header(retained)
        assert (kept.base_offset, kept.last_offset, kept.record_count) == (
            header.base_offset, header.last_offset, header.record_count)
        assert codec.verify_crc(retained[codec.crc_start:], kept)


def test_encode_prefix_keeps_the_records_below_the_cut() -> None:
    data, header = codec.encode_batch_with_header(10, [1, 2, 3], [b"a", b"b", b"c"],
                                                  [b"1", b"2", b"3"], producer_id=4)
    cols = codec.decode_columns(header, data[codec.crc_start:])
    prefix = codec.encode_prefix(header, cols, 12)
    head = codec.decode_header(prefix)
    assert (head.base_offset, head.last_offset, head.producer_id) == (10, 11, 4)
    assert codec.decode_columns(head, prefix[codec.crc_start:]).keys == (b"a", b"b")
    assert codec.encode_prefix(header, cols, 10) == b""
