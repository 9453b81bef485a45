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

__all__ = [
    "WireBatch",
    "WireFormatError",
    "codec_names",
    "decode_batches",
    "encode_batch",
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


class WireFormatError(ValueError):
    """Bytes that are not a valid Kafka record batch (the message says what is wrong)."""


class WireBatch(NamedTuple):
    """One decoded wire batch: the header fields eventlog needs and the record columns."""

    base_offset: int
    attributes: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    timestamps: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[tuple] | None  # None: no record has headers

    @property
    def compression(self) -> str:
        return codec_names.get(self.attributes & attr_compression_mask, "unknown")

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & attr_control)


# ---------------------------------------------------------------------------- varints


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint (up to 64 bits) at ``pos``; returns (value, next position)."""
    if pos + 1 < len(buf):
        b = buf[pos]
        if b < 0x80:  # one byte
            return (b >> 1) ^ -(b & 1), pos + 1
        b2 = buf[pos + 1]
        if b2 < 0x80:  # two bytes: record lengths, most timestamp deltas
            z = (b & 0x7F) | (b2 << 7)
            return (z >> 1) ^ -(z & 1), pos + 2
    shift = 0
    result = 0
    while True:
        if pos >= len(buf):
            raise WireFormatError("record data ends inside a varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise WireFormatError("varint longer than 10 bytes")
    return (result >> 1) ^ -(result & 1), pos


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


def _read_bytes(buf: bytes, pos: int, what: str) -> tuple[bytes | None, int]:
    length, pos = _read_varint(buf, pos)
    if length < 0:
        if length != -1:
            raise WireFormatError(f"{what} has negative length {length}")
        return None, pos
    end = pos + length
    if end > len(buf):
        raise WireFormatError(f"{what} of {length} bytes runs past the end of the batch")
    return buf[pos:end], end


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
    """Every record batch in ``data`` (a Produce request's ``records`` field).

    Raises WireFormatError for anything that is not a complete, valid v2 batch:
    a wrong magic (message sets v0/v1 are not accepted), a CRC-32C mismatch,
    lengths or counts that do not add up, a truncated tail, undecodable headers.
    """
    data = bytes(data)
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
        if crc32c(data[pos + _crc_start:end]) != crc:
            raise WireFormatError("record batch CRC-32C mismatch: the batch is corrupt")
        if count < 0 or last_delta < 0:
            raise WireFormatError(f"record batch has record count {count}")
        body = data[pos + batch_header_bytes:end]
        code = attributes & attr_compression_mask
        if code:
            body = _decompress(code, body)
        out.append(_decode_records(
            body, count, base_offset, attributes, base_ts, producer_id, producer_epoch,
            base_sequence,
        ))
        pos = end
    return out


def _decode_records(
    body: bytes, count: int, base_offset: int, attributes: int, base_ts: int,
    producer_id: int, producer_epoch: int, base_sequence: int,
) -> WireBatch:
    timestamps: list[int] = []
    keys: list[bytes | None] = []
    values: list[bytes | None] = []
    headers: list[tuple] = []
    try:
        pos = _read_records(body, count, base_ts, timestamps, keys, values, headers)
    except IndexError:
        raise WireFormatError(f"record {len(timestamps)} ends before its last field") from None
    if pos != len(body):
        raise WireFormatError(
            f"record batch has {len(body) - pos} bytes after its {count} records"
        )
    return WireBatch(
        base_offset, attributes, producer_id, producer_epoch, base_sequence,
        timestamps, keys, values, headers if any(headers) else None,
    )


def _read_records(body: bytes, count: int, base_ts: int, timestamps: list[int],
                  keys: list[bytes | None], values: list[bytes | None],
                  headers: list[tuple]) -> int:
    """Append ``count`` records' fields to the columns; return the end position.
    IndexError: the body ends inside a record. One-byte varints (most lengths and
    deltas) are decoded inline: this loop runs once per produced record."""
    read = _read_varint
    size = len(body)
    pos = 0
    for i in range(count):
        b = body[pos]
        if b < 0x80:
            length = (b >> 1) ^ -(b & 1)
            pos += 1
        elif body[pos + 1] < 0x80:
            z = (b & 0x7F) | (body[pos + 1] << 7)
            length = (z >> 1) ^ -(z & 1)
            pos += 2
        else:
            length, pos = read(body, pos)
        end = pos + length
        if length < 1 or end > size:
            raise WireFormatError(f"record {i} length {length} runs past the end of the batch")
        b = body[pos + 1]  # after the record attributes (unused)
        if b < 0x80:
            ts_delta = (b >> 1) ^ -(b & 1)
            pos += 2
        else:
            ts_delta, pos = read(body, pos + 1)
        # the offset delta, skipped: offsets are assigned by the log
        if body[pos] < 0x80:
            pos += 1
        elif body[pos + 1] < 0x80:  # from the 65th record of a batch on
            pos += 2
        else:
            _delta, pos = read(body, pos)
        b = body[pos]
        if b < 0x80:
            n = (b >> 1) ^ -(b & 1)
            pos += 1
        else:
            n, pos = read(body, pos)
        keys.append(body[pos:pos + n] if n >= 0 else _null(n, i, "key"))
        if n > 0:
            pos += n
        b = body[pos]
        if b < 0x80:
            n = (b >> 1) ^ -(b & 1)
            pos += 1
        elif body[pos + 1] < 0x80:  # values of 64 bytes to 8 KiB
            z = (b & 0x7F) | (body[pos + 1] << 7)
            n = (z >> 1) ^ -(z & 1)
            pos += 2
        else:
            n, pos = read(body, pos)
        values.append(body[pos:pos + n] if n >= 0 else _null(n, i, "value"))
        if n > 0:
            pos += n
        if pos >= end:
            raise WireFormatError(f"record {i} fields run past its length {length}")
        if body[pos]:
            hs, pos = _decode_headers(body, pos, end, i)
        else:  # no headers
            hs = ()
            pos += 1
        headers.append(hs)
        if pos != end:
            raise WireFormatError(f"record {i} fields do not add up to its length {length}")
        timestamps.append(base_ts + ts_delta)
    return pos


def _null(n: int, i: int, what: str) -> None:
    """A negative length: -1 is a null field, anything else is malformed."""
    if n != -1:
        raise WireFormatError(f"record {i} {what} has negative length {n}")
    return None


def _decode_headers(body: bytes, pos: int, end: int, i: int) -> tuple[tuple, int]:
    n_headers, pos = _read_varint(body, pos)
    if n_headers < 0 or n_headers > end - pos:
        raise WireFormatError(f"record {i} has {n_headers} headers")
    hs = []
    for _ in range(n_headers):
        hkey, pos = _read_bytes(body, pos, f"record {i} header key")
        hvalue, pos = _read_bytes(body, pos, f"record {i} header value")
        if hkey is None:
            raise WireFormatError(f"record {i} has a header with a null key")
        try:
            hs.append((hkey.decode("utf-8"), hvalue))
        except UnicodeDecodeError:
            raise WireFormatError(f"record {i} has a header key that is not UTF-8") from None
    return tuple(hs), pos


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
