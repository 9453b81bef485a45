"""Kafka record batches (magic v2) to and from eventlog's record columns. Pure.

Wire clients send and receive Kafka's record batch format (KIP-98): a 61-byte
header (base offset, length, leader epoch, magic 2, CRC-32C, attributes, last
offset delta, first and max timestamps, producer id, epoch, base sequence,
record count) followed by records whose fields are zigzag varints. The CRC
covers everything after the CRC field. Compressed batches (attributes & 7:
gzip 1, snappy 2, lz4 3, zstd 4) compress only the records.

Produce requests are decoded here into columns for ``Partition.append_columns``
(eventlog stores them in its own format); fetch responses are encoded here from
``Partition.read_columns``, one uncompressed wire batch per stored batch. What
this costs and why it was chosen is in docs/server.md.

Malformed input raises :class:`WireFormatError` naming the problem; nothing is
partially returned.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

import cramjam
from crc32c import crc32c

from ..storage.kafka_records import KafkaRecordsError, decode_records

__all__ = [
    "WireBatch",
    "WireFormatError",
    "codec_names",
    "decode",
    "decode_batches",
    "encode_batch",
    "split_batches",
    "wire_batch_from_stored",
]

magic_v2 = 2
batch_header = struct.Struct(">qiibIhiqqqhii")
batch_header_bytes = batch_header.size  # 61
_crc_start = 21  # offset of the attributes field: the CRC covers [21, end)
_crc_field = struct.Struct(">I")
attr_compression_mask = 0x07
attr_log_append_time = 0x08
attr_transactional = 0x10
attr_control = 0x20
codec_names = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_xerial_magic = b"\x82SNAPPY\x00"
_int32 = struct.Struct(">i")


# Malformed wire bytes: the storage layer's error for Kafka records, so one except
# clause catches both the batch framing's problems (here) and the records' (there).
WireFormatError = KafkaRecordsError


class WireBatch(NamedTuple):
    """One wire batch: the header fields eventlog needs and its records section
    (``records``, decompressed). ``split_batches`` leaves the records undecoded
    (``timestamps`` etc. are None); ``decode_batches`` fills the columns."""

    base_offset: int
    attributes: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    timestamps: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[tuple] | None  # None: no record has headers
    record_count: int = 0
    base_timestamp: int = -1
    records: bytes = b""  # the records section, decompressed

    @property
    def compression(self) -> str:
        return codec_names.get(self.attributes & attr_compression_mask, "unknown")

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & attr_control)


# ---------------------------------------------------------------------------- varints


def _varint_long(value: int) -> bytes:
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_small_bound = 1 << 13  # zigzag varints of [-8192, 8192) take at most 2 bytes: precomputed
_SMALL = tuple(_varint_long(v) for v in range(-_small_bound, _small_bound))


def _varint(value: int) -> bytes:
    """Zigzag-encode ``value`` (a signed 64-bit int) as a varint."""
    if -_small_bound <= value < _small_bound:
        return _SMALL[value + _small_bound]
    return _varint_long(value)


# ---------------------------------------------------------------------------- codecs


def _decompress(code: int, data: bytes) -> bytes:
    try:
        if code == 1:
            return bytes(cramjam.gzip.decompress(data))
        if code == 2:
            return _snappy_decompress(data)
        if code == 3:
            return bytes(cramjam.lz4.decompress(data))
        if code == 4:
            return bytes(cramjam.zstd.decompress(data))
    except WireFormatError:
        raise
    except Exception as exc:  # the codecs raise their own error types
        raise WireFormatError(f"{codec_names[code]} data does not decompress: {exc}") from exc
    raise WireFormatError(f"unknown compression codec {code} (Kafka's are 0-4)")


def _snappy_decompress(data: bytes) -> bytes:
    """Raw snappy (librdkafka) or the xerial framing the Java client writes."""
    if not data.startswith(_xerial_magic):
        return bytes(cramjam.snappy.decompress_raw(data))
    pos = 16  # magic (8), version (4), compatible version (4)
    out = bytearray()
    while pos < len(data):
        if pos + 4 > len(data):
            raise WireFormatError("xerial snappy data ends inside a block length")
        (size,) = _int32.unpack_from(data, pos)
        pos += 4
        if size < 0 or pos + size > len(data):
            raise WireFormatError("xerial snappy block runs past the end of the data")
        out += cramjam.snappy.decompress_raw(data[pos:pos + size])
        pos += size
    return bytes(out)


def _compress(code: int, data: bytes) -> bytes:
    if code == 1:
        return bytes(cramjam.gzip.compress(data))
    if code == 2:
        return bytes(cramjam.snappy.compress_raw(data))
    if code == 3:
        return bytes(cramjam.lz4.compress(data))
    if code == 4:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(f"unknown compression codec {code}")


# ---------------------------------------------------------------------------- decoding


def decode_batches(data: bytes) -> list[WireBatch]:
    """Every record batch in ``data`` (a Produce request's ``records`` field), its
    records decoded into columns (``split_batches``, then ``decode_records``).

    Raises WireFormatError for anything that is not a complete, valid v2 batch:
    a wrong magic (message sets v0/v1 are not accepted), a CRC-32C mismatch,
    lengths or counts that do not add up, a truncated tail, undecodable headers.
    """
    return [decode(b) for b in split_batches(data)]


def decode(batch: WireBatch) -> WireBatch:
    """``batch`` (from ``split_batches``) with its records decoded into columns."""
    timestamps, keys, values, headers = decode_records(
        batch.records, batch.record_count, batch.base_timestamp)
    return batch._replace(timestamps=timestamps, keys=keys, values=values, headers=headers)


def split_batches(data: bytes) -> list[WireBatch]:
    """Every record batch in ``data``, checked as a batch (magic, lengths, CRC-32C,
    counts) and decompressed, its records left undecoded. Raises WireFormatError."""
    data = bytes(data)
    view = memoryview(data)  # the CRC is taken over a view: a slice would copy the batch
    out: list[WireBatch] = []
    pos = 0
    if not data:
        raise WireFormatError("the records field is empty")
    while pos < len(data):
        if len(data) - pos < batch_header_bytes:
            raise WireFormatError(
                f"{len(data) - pos} trailing bytes are too few for a record batch header"
            )
        (base_offset, length, _epoch, magic, crc, attributes, last_delta, base_ts, _max_ts,
         producer_id, producer_epoch, base_sequence, count) = batch_header.unpack_from(data, pos)
        if magic != magic_v2:
            raise WireFormatError(
                f"record batch magic {magic}: only magic 2 (Kafka 0.11+ clients) is accepted"
            )
        end = pos + 12 + length
        if length < batch_header_bytes - 12 or end > len(data):
            raise WireFormatError(f"record batch length {length} does not fit the request")
        if crc32c(view[pos + _crc_start:end]) != crc:
            raise WireFormatError("record batch CRC-32C mismatch: the batch is corrupt")
        if count < 0 or last_delta < 0:
            raise WireFormatError(f"record batch has record count {count}")
        body = data[pos + batch_header_bytes:end]
        code = attributes & attr_compression_mask
        if code:
            body = _decompress(code, body)
        out.append(WireBatch(base_offset, attributes, producer_id, producer_epoch,
                             base_sequence, None, None, None, None,  # type: ignore[arg-type]
                             count, base_ts, body))
        pos = end
    return out


# ---------------------------------------------------------------------------- encoding


def _encode_headers(hs: tuple) -> bytes:
    fields = [_varint(len(hs))]
    for hkey, hvalue in hs:
        raw = hkey.encode("utf-8")
        fields.append(_varint(len(raw)) + raw)
        fields.append(b"\x01" if hvalue is None else _varint(len(hvalue)) + hvalue)
    return b"".join(fields)


def encode_batch(
    offsets: Sequence[int],
    timestamps: Sequence[int],
    keys: Sequence[bytes | None],
    values: Sequence[bytes | None],
    headers: Sequence[tuple] | None,
    *,
    attributes: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = 0,
) -> bytes:
    """One v2 record batch of the given records (absolute ``offsets``, ascending).

    ``attributes`` & 7 picks the codec the records are compressed with;
    ``attributes & 0x08`` marks the timestamps as LogAppendTime.
    """
    if not offsets:
        raise ValueError("a record batch needs at least one record")
    base_offset = offsets[0]
    base_ts = timestamps[0]
    parts: list[bytes] = []
    append = parts.append
    join = b"".join
    varint = _varint
    no_headers = headers is None
    for i in range(len(offsets)):
        key = keys[i]
        value = values[i]
        record = join((
            b"\x00",
            varint(timestamps[i] - base_ts),
            varint(offsets[i] - base_offset),
            b"\x01" if key is None else varint(len(key)),
            b"" if key is None else key,
            b"\x01" if value is None else varint(len(value)),
            b"" if value is None else value,
            b"\x00" if no_headers or not headers[i] else _encode_headers(headers[i]),
        ))
        append(varint(len(record)))
        append(record)
    body = join(parts)
    code = attributes & attr_compression_mask
    if code:
        body = _compress(code, body)
    header_tail = struct.pack(
        ">hiqqqhii", attributes, offsets[-1] - base_offset, base_ts, max(timestamps),
        producer_id, producer_epoch, base_sequence, len(offsets),
    )
    crc = crc32c(header_tail + body)
    length = batch_header_bytes - 12 + len(body)
    return struct.pack(">qiibI", base_offset, length, partition_leader_epoch, magic_v2,
                       crc) + header_tail + body


_tail = struct.Struct(">hiqqqhii")
_head = struct.Struct(">qiibI")


def wire_batch_from_stored(
    records: bytes, *, base_offset: int, attributes: int, last_offset_delta: int,
    base_timestamp: int, max_timestamp: int, producer_id: int, producer_epoch: int,
    base_sequence: int, record_count: int, partition_leader_epoch: int = 0,
) -> bytes:
    """The v2 batch around a records section stored as a client sent it (uncompressed):
    the header rebuilt from the stored one, the CRC-32C over its tail and the
    records, which are not decoded or copied into a new encoding. Cost: one CRC-32C
    over the batch, one join."""
    tail = _tail.pack(attributes, last_offset_delta, base_timestamp, max_timestamp,
                      producer_id, producer_epoch, base_sequence, record_count)
    crc = crc32c(records, crc32c(tail))
    length = batch_header_bytes - 12 + len(records)
    return b"".join((_head.pack(base_offset, length, partition_leader_epoch, magic_v2, crc),
                     tail, records))
