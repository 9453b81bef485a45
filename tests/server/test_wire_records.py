"""Kafka record batches v2: round trips through every codec, and corrupt input refused."""

from __future__ import annotations

import struct

import cramjam
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog.server.records import WireFormatError, decode_batches, encode_batch

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_round_trip_every_codec(codec: str) -> None:
    keys = [b"a", None, b"", b"k" * 300]
    values = [b"1", b"2", None, b"v" * 1000]
    headers = [(("h", b"x"),), (), (("empty", None), ("u\u00e9", b"")), ()]
    ts = [1_700_000_000_500, 1_700_000_000_000, 1_700_000_009_999, 5]  # deltas may be negative
    data = encode_batch([10, 11, 13, 20], ts, keys, values, headers,
                        attributes=CODECS[codec], producer_id=7, producer_epoch=1,
                        base_sequence=3)
    (batch,) = decode_batches(data)
    assert batch.compression == codec
    assert (batch.keys, batch.values, batch.timestamps) == (keys, values, ts)
    assert batch.headers == headers
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (7, 1, 3)
    assert batch.base_offset == 10


def test_xerial_framed_snappy_from_java_clients() -> None:
    plain = encode_batch([0, 1], [1, 2], [b"a", b"b"], [b"x", b"y"], None)
    body = plain[61:]
    block = bytes(cramjam.snappy.compress_raw(body))
    xerial = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">i", len(block)) + block
    header = bytearray(plain[:61])
    struct.pack_into(">i", header, 8, 49 + len(xerial))
    struct.pack_into(">h", header, 21, 2)
    from crc32c import crc32c
    struct.pack_into(">I", header, 17, crc32c(bytes(header[21:]) + xerial))
    (batch,) = decode_batches(bytes(header) + xerial)
    assert batch.keys == [b"a", b"b"] and batch.values == [b"x", b"y"]


def test_several_batches_in_one_records_field() -> None:
    a = encode_batch([0], [1], [b"a"], [b"1"], None)
    b = encode_batch([0, 1], [1, 1], [b"b", b"c"], [b"2", b"3"], None)
    assert [x.keys for x in decode_batches(a + b)] == [[b"a"], [b"b", b"c"]]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d[:-1], "does not fit"),
    (lambda d: d[:30], "too few"),
    (lambda d: d[:16] + b"\x01" + d[17:], "magic 1"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "CRC-32C"),
    (lambda d: b"", "empty"),
])
def test_corrupt_batches_are_refused(mutate, message: str) -> None:
    data = encode_batch([0, 1], [1, 2], [b"a", b"b"], [b"x", b"y"], [(("h", b"1"),), ()])
    with pytest.raises(WireFormatError, match=message):
        decode_batches(mutate(data))


@given(st.lists(st.tuples(st.binary(max_size=20) | st.none(), st.binary(max_size=50) | st.none(),
                          st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=5)),
                                   max_size=3)),
                min_size=1, max_size=20),
       st.sampled_from(sorted(CODECS.values())))
def test_round_trip_property(recs, codec: int) -> None:
    keys = [k for k, _v, _h in recs]
    values = [v for _k, v, _h in recs]
    headers = [tuple(h) for _k, _v, h in recs]
    ts = [1000 + i for i in range(len(recs))]
    (batch,) = decode_batches(encode_batch(list(range(len(recs))), ts, keys, values, headers,
                                           attributes=codec))
    assert batch.keys == keys and batch.values == values
    assert (batch.headers or [()] * len(recs)) == headers


@pytest.mark.parametrize("value_size", [63, 64, 100, 8191, 8192, 20000])
def test_two_and_three_byte_varints(value_size: int) -> None:
    # record lengths, value lengths and offset deltas past one byte (the inlined cases)
    n = 300
    values = [bytes([i % 256]) * value_size for i in range(n)]
    keys = [None if i % 2 else b"k%d" % i for i in range(n)]
    data = encode_batch(list(range(n)), [5000 + i * 100 for i in range(n)], keys, values, None)
    (batch,) = decode_batches(data)
    assert batch.values == values and batch.keys == keys
    assert batch.timestamps == [5000 + i * 100 for i in range(n)]
    with pytest.raises(WireFormatError):
        decode_batches(data[:-1])
