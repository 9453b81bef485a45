"""The records section of a Kafka v2 record batch, stored as a client sent it. Pure.

A batch whose attributes carry ``attr_kafka_records`` (storage/batch.py) holds,
as its payload, the records of an uncompressed Kafka v2 record batch (KIP-98)
byte for byte: per record a zigzag varint length, then ``attributes`` (int8),
``timestampDelta``, ``offsetDelta``, key length + key, value length + value,
header count and headers, each length a zigzag varint and -1 for null. Timestamps
are deltas from the batch's ``base_timestamp`` and offset deltas are dense
``0..record_count-1`` (``check_records`` made sure before the batch was written).

The Kafka protocol server writes them so that produce stores what came in and
fetch sends it back without decoding or re-encoding a record (docs/storage.md,
"Kafka records payloads"). An in-process reader pays instead: the records are
decoded here, with Python's varint loop, when a column is first used
(``lazy_columns``), several times the cost of a msgpack payload.

Malformed records raise :class:`KafkaRecordsError` (a ValueError) naming the
problem; nothing is partially returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import CorruptLogError

__all__ = [
    "KafkaRecordsColumn",
    "KafkaRecordsError",
    "check_records",
    "decode_records",
    "lazy_columns",
    "read_varint",
    "stored_records",
]


class KafkaRecordsError(ValueError):
    """Bytes that are not valid Kafka v2 records (the message says what is wrong)."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
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
            raise KafkaRecordsError("record data ends inside a varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise KafkaRecordsError("varint longer than 10 bytes")
    return (result >> 1) ^ -(result & 1), pos


def _read_bytes(buf: bytes, pos: int, what: str) -> tuple[bytes | None, int]:
    length, pos = read_varint(buf, pos)
    if length < 0:
        if length != -1:
            raise KafkaRecordsError(f"{what} has negative length {length}")
        return None, pos
    end = pos + length
    if end > len(buf):
        raise KafkaRecordsError(f"{what} of {length} bytes runs past the end of the batch")
    return buf[pos:end], end


# ---------------------------------------------------------------------------- checking


def check_records(body: bytes, count: int, base_timestamp: int) -> int:
    """Raise KafkaRecordsError unless ``body`` is exactly ``count`` well-formed records
    with offset deltas ``0..count-1`` and timestamps ``base_timestamp + delta >= 0``;
    return the largest timestamp.

    What makes storing ``body`` verbatim safe: every later decode of it succeeds and
    yields dense offsets. Cost: no object per record (keys, values and headers are
    skipped, not copied); runs of records of one shape (the same key and value sizes,
    no headers: what a producer batches) are checked by byte slices across the run,
    tens of ns per record; other records by a walk in Python, about 1.5 us each.
    """
    if count < 1:
        raise KafkaRecordsError(f"record count {count}: a batch holds at least one record")
    low, high = _walk(body, count)
    if base_timestamp + low < 0:
        raise KafkaRecordsError(
            f"a record's timestamp is {base_timestamp + low}: timestamps are >= 0 (ms)")
    return base_timestamp + high


def _walk(body: bytes, count: int) -> tuple[int, int]:
    """``check_records``'s walk: the timestamp deltas' range.

    Producers batch records of one shape (the same key and value sizes, no headers):
    such a run is checked at once, by byte slices across its records (``_run``), at a
    cost per record of a few C-level byte comparisons. Records that differ from their
    neighbours are walked one by one; after a run that does not pay, the next is tried
    ever further on, so a batch without runs pays little more than the plain walk.
    """
    size = len(body)
    pos = i = low = high = 0
    chunk = _first_chunk
    while i < count:
        run = _run(body, pos, i, count, size)
        if run is not None:
            k, pos, run_low, run_high = run
            i += k
            if run_low < low:
                low = run_low
            if run_high > high:
                high = run_high
            if k >= _paying_run:
                chunk = _first_chunk
                continue
        stop = min(count, i + chunk)
        pos, low, high = _walk_records(body, pos, i, stop, low, high)
        i = stop
        chunk = min(chunk * 2, _last_chunk)
    if pos != size:
        raise KafkaRecordsError(f"the batch has {size - pos} bytes after its {count} records")
    return low, high


# A run shorter than this is not worth its set-up; after one, the next record-by-record
# stretch doubles, from the first to the last chunk size.
_paying_run = 8
_first_chunk = 16
_last_chunk = 1024

# The zigzag varint bytes of the offset deltas 0, 1, 2... by varint width: for each
# width, one table per byte of the varint, indexed by delta - the width's first delta.
_width_start = (0, 0, 64, 8192)  # deltas of 1, 2, 3 bytes start there
_width_end = (0, 64, 8192, 1 << 20)
_offset_tables: list[list[bytes]] = [[], [], [], []]


def _offset_table(width: int, upto: int) -> list[bytes]:
    """The tables of ``width``-byte offset deltas, covering deltas below ``upto``."""
    tables = _offset_tables[width]
    start = _width_start[width]
    if not tables or len(tables[0]) < upto - start:
        end = min(_width_end[width], max(upto, start + 2 * len(tables[0]) if tables else 0,
                                         start + 1024))
        zs = [i << 1 for i in range(start, end)]
        tables = [bytes(((z >> (7 * j)) & 0x7F) | (0x80 if j < width - 1 else 0)
                        for z in zs) for j in range(width)]
        _offset_tables[width] = tables
    return tables


# byte -> zigzag-decoded value + 64, for one-byte varints (0x00-0x7f): order-preserving
_zigzag_order = bytes(((b >> 1) ^ -(b & 1)) + 64 if b < 0x80 else 0 for b in range(256))
# Byte classes as translate tables (a byte in the class -> 1, else 0): a translate and a
# find() are C loops of about 1 ns a byte, where a regex character class took 14 and
# min()/max() of a bytes object 30-50 (a Python int per byte).
def _class_table(member: Callable[[int], bool]) -> bytes:
    return bytes(1 if member(b) else 0 for b in range(256))


_high_byte = _class_table(lambda b: b >= 0x80)
_low_byte = _class_table(lambda b: b < 0x80)
_odd_byte = _class_table(lambda b: b & 1 == 1)
_above = [_class_table(lambda b, c=c: b > c) for c in range(256)]  # _above[c]: b > c
_below = [_class_table(lambda b, c=c: b < c) for c in range(256)]  # _below[c]: b < c


def _varint_at(body: bytes, pos: int) -> tuple[int, int] | None:
    """A one- or two-byte zigzag varint at ``pos``: (value, width); None if longer."""
    b = body[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), 1
    b2 = body[pos + 1]
    if b2 < 0x80:
        z = (b & 0x7F) | (b2 << 7)
        return (z >> 1) ^ -(z & 1), 2
    return None


def _first_not(data: bytes, byte: bytes) -> int:
    """The index of the first byte of ``data`` that is not ``byte`` (len if none)."""
    if data == byte * len(data):  # the usual answer, by one memset and one memcmp
        return len(data)
    return len(data) - len(data.lstrip(byte))


def _first_search(data: bytes, byte_class: bytes) -> int:
    """The index of the first byte of ``data`` in ``byte_class`` (a table of this
    module), len if none."""
    found = data.translate(byte_class).find(1)
    return len(data) if found < 0 else found


def _byte_max(data: bytes) -> int:
    """The largest byte of non-empty ``data``: the last byte when none is above it
    (timestamps mostly grow), else by bisection, a translate per step."""
    low = data[-1]
    if data.translate(_above[low]).find(1) < 0:
        return low
    low, high = low + 1, 255  # some byte is >= low
    while low < high:
        mid = (low + high + 1) // 2
        if data.translate(_above[mid - 1]).find(1) >= 0:
            low = mid
        else:
            high = mid - 1
    return low


def _byte_min(data: bytes) -> int:
    """The smallest byte of non-empty ``data`` (as ``_byte_max``, from the first byte)."""
    high = data[0]
    if data.translate(_below[high]).find(1) < 0:
        return high
    low, high = 0, high - 1  # some byte is <= high
    while low < high:
        mid = (low + high) // 2
        if data.translate(_below[mid + 1]).find(1) >= 0:
            high = mid
        else:
            low = mid + 1
    return low


def _common_prefix(a: bytes, b: bytes) -> int:
    """The length of the common prefix of two equally long byte strings."""
    if a == b:
        return len(a)
    lo, hi = 0, len(a)  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _shape(body: bytes, p0: int, i0: int) -> tuple[int, ...] | None:
    """Where record ``i0``'s fields are, relative to its start ``p0``: (length varint
    width, record size, timestamp delta at, its width, offset delta width, key length
    at, its width, value length at, its width, header count at); None for a record of
    a shape ``_run`` does not take (headers, long varints, anything malformed)."""
    try:
        head = _varint_at(body, p0)
        if head is None or head[0] < 6:
            return None
        n, w = head
        ts_at = w + 1  # after the attributes, which Kafka leaves unchecked
        ts_width = 1 if body[p0 + ts_at] < 0x80 else 2 if body[p0 + ts_at + 1] < 0x80 else 0
        off_width = next((width for width in (1, 2, 3) if i0 < _width_end[width]), 0)
        if not ts_width or not off_width:
            return None
        key_at = ts_at + ts_width + off_width
        key = _varint_at(body, p0 + key_at)
        if key is None or key[0] < -1:
            return None
        value_at = key_at + key[1] + max(key[0], 0)
        value = _varint_at(body, p0 + value_at)
        if value is None or value[0] < -1:
            return None
        headers_at = value_at + value[1] + max(value[0], 0)
        if headers_at != w + n - 1 or body[p0 + headers_at]:
            return None  # headers, or fields that do not fill the record
    except IndexError:
        return None
    return (w, w + n, ts_at, ts_width, off_width, key_at, key[1], value_at, value[1],
            headers_at)


def _run(body: bytes, p0: int, i0: int, count: int, size: int
         ) -> tuple[int, int, int, int] | None:
    """The records from ``i0`` (at ``p0``) that share record ``i0``'s shape, checked
    together: (how many, the position after them, their timestamp deltas' range), or
    None when record ``i0`` has a shape this does not take (the record-by-record walk
    then says what is wrong).

    A shape: the record length, the widths of the timestamp and offset deltas, the key
    and value lengths, no headers. Records of one shape have their fields at the same
    places, ``step`` bytes apart, so each field of the whole run is one slice with that
    step: the length and size bytes equal the first record's, the header counts 0, the
    offset deltas equal i0, i0+1... byte for byte, the timestamp deltas one- or
    two-byte varints; the run ends at the first record where any of these fails.
    """
    shape = _shape(body, p0, i0)
    if shape is None:
        return None
    (w, step, ts_at, ts_width, off_width, key_at, key_width, value_at, value_width,
     headers_at) = shape
    k = min(min(count, _width_end[off_width]) - i0, (size - p0) // step)
    end = p0 + step * k
    # the bytes every record of the run has as the first has them
    for at, width in ((0, w), (key_at, key_width), (value_at, value_width), (headers_at, 1)):
        for j in range(at, at + width):
            k = min(k, _first_not(body[p0 + j:end:step], body[p0 + j:p0 + j + 1]))
    # the offset deltas, byte by byte
    tables = _offset_table(off_width, i0 + k)
    first = i0 - _width_start[off_width]
    for j in range(off_width):
        at = p0 + ts_at + ts_width + j
        k = min(k, _common_prefix(body[at:at + step * k:step], tables[j][first:first + k]))
    if k < 1:
        return None
    found = _ts_range(body, p0 + ts_at, p0 + step * k, step, ts_width)
    if found is None:
        return None
    k, low, high = found
    return k, p0 + step * k, min(low, 0), max(high, 0)


def _ts_range(body: bytes, at: int, stop: int, step: int, width: int
              ) -> tuple[int, int, int] | None:
    """The timestamp deltas of a run, ``width``-byte varints at ``at`` every ``step``
    bytes up to ``stop``: (how many from the first are such varints, their range);
    None if the first is not. Two-byte deltas must be >= 0 here (a negative one is
    left to the record-by-record walk)."""
    if width == 1:
        deltas = body[at:stop:step]
        k = _first_search(deltas, _high_byte)
        if k < 1:
            return None
        order = deltas[:k].translate(_zigzag_order)
        return k, _byte_min(order) - 64, _byte_max(order) - 64
    lows = body[at:stop:step]
    highs = body[at + 1:stop + 1:step]
    k = min(_first_search(lows, _low_byte), _first_search(highs, _high_byte),
            _first_search(lows, _odd_byte))
    if k < 1:
        return None
    # z = low7 | high << 7 (even: the delta is >= 0): the extremes by the high byte,
    # then the low bytes of the records that have it (the others masked out)
    lows = lows[:k].translate(_drop_high_bit)
    highs = highs[:k]
    top = _byte_max(highs)
    zhigh = top << 7 | _byte_max(_masked(lows, highs.translate(_only[top]), keep=True))
    bottom = _byte_min(highs)
    zlow = bottom << 7 | _byte_min(_masked(lows, highs.translate(_only[bottom]), keep=False))
    return k, zlow >> 1, zhigh >> 1


def _masked(data: bytes, mask: bytes, *, keep: bool) -> bytes:
    """``data`` where ``mask`` is 0xff, and 0 (``keep``) or 0xff (not ``keep``) elsewhere:
    one big-int AND or OR over the whole run."""
    n = len(data)
    a = int.from_bytes(data, "little")
    m = int.from_bytes(mask, "little")
    if keep:
        return (a & m).to_bytes(n, "little")
    return (a | (m ^ ((1 << 8 * n) - 1))).to_bytes(n, "little")


# _only[c]: byte c -> 0xff, every other byte -> 0
_only = [bytes(0xFF if b == c else 0 for b in range(256)) for c in range(256)]
_drop_high_bit = bytes(b & 0x7F for b in range(256))


def _walk_records(body: bytes, pos: int, first: int, stop: int, low: int, high: int
                  ) -> tuple[int, int, int]:
    """Records ``first..stop-1`` from ``pos``, one by one: (the position after them,
    the timestamp deltas' range widened by theirs). Short varints inline."""
    read = read_varint
    size = len(body)
    i = first
    try:
        for i in range(first, stop):
            b = body[pos]  # the record's length
            if b < 0x80:
                n = (b >> 1) ^ -(b & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                z = (b & 0x7F) | (body[pos + 1] << 7)
                n = (z >> 1) ^ -(z & 1)
                pos += 2
            else:
                n, pos = read(body, pos)
            end = pos + n
            if n < 6 or end > size:  # attributes, 4 varints and a header count
                raise KafkaRecordsError(f"record {i} length {n} runs past the end of the batch")
            b = body[pos + 1]  # the timestamp delta, after the attributes
            if b < 0x80:
                n = (b >> 1) ^ -(b & 1)
                pos += 2
            elif body[pos + 2] < 0x80:
                z = (b & 0x7F) | (body[pos + 2] << 7)
                n = (z >> 1) ^ -(z & 1)
                pos += 3
            else:
                n, pos = read(body, pos + 1)
            if n > high:
                high = n
            elif n < low:
                low = n
            z = i << 1  # the offset delta, zigzag: one byte below 64, two below 8192
            if z < 0x80 and body[pos] == z:
                pos += 1
            elif z < 0x4000 and body[pos] == (z & 0x7F) | 0x80 and body[pos + 1] == z >> 7:
                pos += 2
            else:
                n, pos = read(body, pos)
                if n != i:
                    raise KafkaRecordsError(
                        f"record {i} has offset delta {n}: a producer's deltas are 0, 1, 2...")
            b = body[pos]  # the key's length (-1: null), then the value's
            if b < 0x80 and (b == 1 or not b & 1):
                pos += 1 + (b >> 1)
            else:
                pos = _skip_field(body, pos, i, "key")
            b = body[pos]
            if b < 0x80 and (b == 1 or not b & 1):
                pos += 1 + (b >> 1)
            elif not b & 1 and body[pos + 1] < 0x80:  # two bytes, >= 0
                pos += 2 + (((b & 0x7F) | (body[pos + 1] << 7)) >> 1)
            else:
                pos = _skip_field(body, pos, i, "value")
            if pos != end - 1 or body[pos]:  # not the usual: no headers
                _check_headers(body, pos, end, i)
            pos = end
    except IndexError:
        raise KafkaRecordsError(f"record {i} ends before its last field") from None
    return pos, low, high


def _skip_field(body: bytes, pos: int, i: int, what: str) -> int:
    """Past a length-prefixed field at ``pos`` (the walk's rare case: a long or
    negative length); KafkaRecordsError for a length below -1."""
    n, pos = read_varint(body, pos)
    if n < -1:
        raise KafkaRecordsError(f"record {i} {what} has negative length {n}")
    return pos + max(n, 0)


def _check_headers(body: bytes, pos: int, end: int, i: int) -> None:
    """Raise KafkaRecordsError unless a record's headers at ``pos`` end at ``end``."""
    if pos >= end:
        raise KafkaRecordsError(f"record {i} fields run past its length")
    if _decode_headers(body, pos, end, i)[1] != end:
        raise KafkaRecordsError(f"record {i} fields do not add up to its length")


# ---------------------------------------------------------------------------- decoding


def decode_records(
    body: bytes, count: int, base_timestamp: int
) -> tuple[list[int], list[bytes | None], list[bytes | None], list[tuple] | None]:
    """``count`` records of ``body`` as columns: timestamps, keys, values and headers
    (None when no record has headers). Offset deltas are skipped (the caller knows
    the offsets). Raises KafkaRecordsError naming the problem. Cost: one Python loop
    over the records, one slice per key and value."""
    timestamps: list[int] = []
    keys: list[bytes | None] = []
    values: list[bytes | None] = []
    headers: list[tuple] = []
    if count < 0:
        raise KafkaRecordsError(f"record count {count}")
    try:
        pos = _read_records(body, count, base_timestamp, timestamps, keys, values, headers)
    except IndexError:
        raise KafkaRecordsError(f"record {len(timestamps)} ends before its last field") from None
    if pos != len(body):
        raise KafkaRecordsError(f"the batch has {len(body) - pos} bytes after its {count} records")
    return timestamps, keys, values, headers if any(headers) else None


def _read_records(body: bytes, count: int, base_ts: int, timestamps: list[int],
                  keys: list[bytes | None], values: list[bytes | None],
                  headers: list[tuple]) -> int:
    """Append ``count`` records' fields to the columns; return the end position.
    IndexError: the body ends inside a record. One-byte varints (most lengths and
    deltas) are decoded inline: this loop runs once per record."""
    read = read_varint
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
            raise KafkaRecordsError(f"record {i} length {length} runs past the end of the batch")
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
            raise KafkaRecordsError(f"record {i} fields run past its length {length}")
        if body[pos]:
            hs, pos = _decode_headers(body, pos, end, i)
        else:  # no headers
            hs = ()
            pos += 1
        headers.append(hs)
        if pos != end:
            raise KafkaRecordsError(f"record {i} fields do not add up to its length {length}")
        timestamps.append(base_ts + ts_delta)
    return pos


def _null(n: int, i: int, what: str) -> None:
    """A negative length: -1 is a null field, anything else is malformed."""
    if n != -1:
        raise KafkaRecordsError(f"record {i} {what} has negative length {n}")
    return None


def _decode_headers(body: bytes, pos: int, end: int, i: int) -> tuple[tuple, int]:
    n_headers, pos = read_varint(body, pos)
    if n_headers < 0 or n_headers > end - pos:
        raise KafkaRecordsError(f"record {i} has {n_headers} headers")
    hs = []
    for _ in range(n_headers):
        hkey, pos = _read_bytes(body, pos, f"record {i} header key")
        hvalue, pos = _read_bytes(body, pos, f"record {i} header value")
        if hkey is None:
            raise KafkaRecordsError(f"record {i} has a header with a null key")
        try:
            hs.append((hkey.decode("utf-8"), hvalue))
        except UnicodeDecodeError:
            raise KafkaRecordsError(f"record {i} has a header key that is not UTF-8") from None
    return tuple(hs), pos


# ---------------------------------------------------------------------------- stored batches


class _Records:
    """One stored batch's records section, decoded on first use (then kept)."""

    __slots__ = ("base_offset", "base_timestamp", "count", "decoded", "records")

    def __init__(self, records: bytes, count: int, base_offset: int, base_timestamp: int):
        self.records = records
        self.count = count
        self.base_offset = base_offset
        self.base_timestamp = base_timestamp
        self.decoded: tuple[Sequence[Any], ...] | None = None

    def columns(self) -> tuple[Sequence[Any], ...]:
        decoded = self.decoded
        if decoded is None:
            try:
                ts, keys, values, headers = decode_records(
                    self.records, self.count, self.base_timestamp)
            except KafkaRecordsError as exc:
                raise CorruptLogError(
                    f"the Kafka records batch at offsets {self.base_offset}.."
                    f"{self.base_offset + self.count - 1} passes its CRC but cannot be "
                    f"decoded: {exc}"
                ) from exc
            empty = ((),) * self.count if headers is None else headers
            self.decoded = decoded = (tuple(ts), tuple(keys), tuple(values), tuple(empty))
        return decoded


class KafkaRecordsColumn(Sequence[Any]):
    """One column (timestamps, keys, values or headers) of a stored Kafka records
    batch. Its length is known at once; the records are decoded when an element is
    first read, for all four columns together. A CRC-valid batch whose records do
    not decode raises CorruptLogError then."""

    __slots__ = ("_field", "_records")

    def __init__(self, records: _Records, field: int) -> None:
        self._records = records
        self._field = field

    def __len__(self) -> int:
        return self._records.count

    def __getitem__(self, index: Any) -> Any:
        return self._records.columns()[self._field][index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._records.columns()[self._field])

    def __contains__(self, item: object) -> bool:
        return item in self._records.columns()[self._field]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"KafkaRecordsColumn({tuple(self)!r})"


def lazy_columns(records: bytes, count: int, base_offset: int, base_timestamp: int
                 ) -> tuple[KafkaRecordsColumn, ...]:
    """Timestamps, keys, values and headers columns over the stored records section
    ``records`` (``count`` records from ``base_offset``; timestamps deltas from
    ``base_timestamp``), decoded on first use. Cost: O(1) until then."""
    shared = _Records(records, count, base_offset, base_timestamp)
    return tuple(KafkaRecordsColumn(shared, field) for field in range(4))


def stored_records(column: object) -> bytes | None:
    """The records section as stored, if ``column`` is a column of a Kafka records
    batch (``lazy_columns``); None for any other column. Lets a reader send the
    records on without decoding them."""
    if type(column) is KafkaRecordsColumn:
        return column._records.records
    return None
