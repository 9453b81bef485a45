"""Point reads by byte position: the records of many one-record batches of one segment,
at the positions the key index gave, read and checked in a few C-level calls.

``Partition.read_key`` of an aggregate of 10 events appended one per command reads
10 one-record batches scattered over the log. Read one by one (``Segment.
batch_at_position``), each costs a dozen Python-level steps (a header, its checks, a
copy, a CRC, a decode, a Columns, a record) that together outweigh the work done in
C. ``read_single_records`` does each step once for all of them, as one ``map``
(one C loop): unpack every header, check every header field the read relies on,
copy every batch, CRC every copy, decode every payload, build every record.

Up to ``small_read_records`` records (a recorder's read of a key's last record, a
short aggregate) are read one by one with the same checks, where setting up the
passes would cost more than it saves. Bytes below ``Segment.verified`` (appended or
CRC-checked by this process, as for the run reader) are not CRC-checked again.

It takes the fast path only when every batch is what an application's appends make:
a whole, CRC-valid, uncompressed, non-control batch of exactly one record, at the
offset asked for, holding the key asked for, all of one magic (2, with its frame
trailer checked, or 1, files written before format 2) and one payload form.
Anything else (a stale position, a batch of several records, a compressed or
compacted one, a record with headers, damage) returns None, and the caller reads
through the generic point read, which re-checks and decides: a stale position is
re-read through the segment's index, damage raises CorruptLogError naming the byte.
So no record is returned from a batch whose CRC was not checked here, and this
module never raises for bad bytes itself.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Sequence
from functools import partial
from itertools import chain, repeat
from operator import add, itemgetter
from typing import TYPE_CHECKING

import msgpack

from ..records import Record
from . import batch as codec

if TYPE_CHECKING:
    from .log_view import LogView

__all__ = ["read_single_records", "read_single_values", "single_rows"]

# The header fields the read checks: base_offset, batch_length, magic, crc, attributes,
# last_offset_delta and (bytes 53..57) record_count; the fields between are skipped.
_HEADER_CHECKED = struct.Struct(">qiBIhi30xi")
assert _HEADER_CHECKED.size == codec.header_bytes
_unpack_header = _HEADER_CHECKED.unpack_from
# The attributes of a batch the fast path reads: uncompressed, not a control batch (any
# other bit: timestamp type, transactional, compacted, delete horizon, changes nothing).
_READ_ATTRIBUTES = frozenset(
    a for a in range(256)
    if not a & (codec.compression_mask | codec.opaque_payload_mask | codec.attr_control)
)
_length_min = codec.header_bytes - codec.length_prefix_bytes
_crc_start = codec.crc_start
_prefix = codec.length_prefix_bytes  # a batch ends at position + 12 + batch_length
# The payload within bytes [17, end) of an uncompressed batch: to the end (magic 1), or
# up to the frame trailer, which is checked (magic 2; see batch.py's "Framing").
_PAYLOAD_END = {codec.magic_v1: None, codec.magic_v2: -len(codec.frame_trailer)}
_PAYLOAD_OF_TAIL = {
    magic: itemgetter(slice(codec.header_bytes - codec.crc_start, end))
    for magic, end in _PAYLOAD_END.items()
}
_last_two = itemgetter(slice(-len(codec.frame_trailer), None))
_trailer_only = {codec.frame_trailer}
_unpack_payload = partial(msgpack.unpackb, use_list=False)
_crc32 = zlib.crc32
_make_record = partial(tuple.__new__, Record)
_tuple_only = {tuple}
_int_only = {int}
_value_types = frozenset((bytes, type(None)))
_no_headers = ()
_three, _five = {3}, {5}
_none = (None,)
small_read_records = 4  # up to this many records are read one by one (measured: faster)


def read_single_records(
    log: LogView, key: bytes, offsets: Sequence[int], positions: Sequence[int]
) -> list[Record] | None:
    """The records at ``offsets`` (increasing), each the only record of the batch at
    the parallel byte position in ``positions``, all in one segment of ``log``; None
    if any is not (see the module docstring): the caller then reads them one by one.

    Lock-free: it reads the segment the log's published view holds, once. A segment
    closed under the read (the cleaner replaced it, retention deleted it) is None too.
    Cost: O(len(offsets)), one C-level loop per step, no Python step per record.
    """
    rows = single_rows(log, key, offsets, positions)
    if rows is None:
        return None
    timestamps, values = rows
    n = len(offsets)
    return list(map(_make_record, zip(
        offsets, timestamps, repeat(key, n), values, repeat(_no_headers, n)
    )))


def read_single_values(
    log: LogView, key: bytes, offsets: Sequence[int], positions: Sequence[int]
) -> tuple[bytes | None, ...] | None:
    """``read_single_records``' values alone (no Record built): what a reader that
    decodes the values itself needs (the pyeventsourcing recorders). Same checks,
    same None."""
    rows = single_rows(log, key, offsets, positions)
    return None if rows is None else rows[1]


def single_rows(
    log: LogView, key: bytes, offsets: Sequence[int], positions: Sequence[int]
) -> tuple[Sequence[int], Sequence[bytes | None]] | None:
    """(timestamps, values) of the records ``read_single_records`` reads, parallel to
    ``offsets``; None as it."""
    n = len(offsets)
    if not n or n != len(positions) or offsets[0] < log.start_offset:
        return None
    i, segs = log._segment_for(offsets[0])  # the published view: read it once
    seg = segs[i]
    if offsets[0] < seg.base_offset or offsets[-1] >= seg.next_offset:
        return None  # before the log's first segment, or over more than one segment
    size = seg.size  # before the map: the map then holds every byte below it
    verified = seg.verified  # bytes below it were CRC-checked or appended here
    buffer = seg.buffer  # sliced in C below; never kept (it may close or be replaced)
    if n == 1:
        return _read_one(buffer, size, verified, key, offsets[0], positions[0])
    if n <= small_read_records:  # a few: one by one costs less than the passes' set-up
        timestamps: list[int] = []
        values: list[bytes | None] = []
        for offset, position in zip(offsets, positions):
            found = _read_one(buffer, size, verified, key, offset, position)
            if found is None:
                return None
            timestamps += found[0]
            values += found[1]
        return timestamps, values
    if min(positions) < 0 or max(positions) + codec.header_bytes > size:
        return None
    try:
        bases, lengths, magics, crcs, attributes, deltas, counts = zip(
            *map(_unpack_header, repeat(buffer, n), positions)
        )
        ends = list(map(add, positions, lengths))
        magic = magics[0]
        if (bases != tuple(offsets) or magic not in _PAYLOAD_END or magics.count(magic) != n
                or deltas.count(0) != n or counts.count(1) != n
                or not _READ_ATTRIBUTES.issuperset(attributes)
                or min(lengths) < _length_min or max(ends) + _prefix > size):
            return None  # stale, damaged, or not a plain one-record batch
        tails = list(map(buffer.__getitem__, map(
            slice, map(add, positions, repeat(_crc_start, n)), map(add, ends, repeat(_prefix, n))
        )))
        if max(ends) + _prefix > verified:  # bytes not checked in this process yet
            if tuple(map(_crc32, tails)) != crcs:
                return None  # stale or damaged: the generic read tells which
            if magic == codec.magic_v2 and set(map(_last_two, tails)) != _trailer_only:
                return None  # a frame without its trailer: damage the generic read names
        payloads = map(_PAYLOAD_OF_TAIL[magic], tails)
        return _rows(list(map(_unpack_payload, payloads)), key)
    except Exception:
        # A map closed under us (ValueError), a CRC-valid payload that is not msgpack
        # (msgpack's errors): the generic read re-reads on the newer view, or raises
        # CorruptLogError naming the batch.
        return None


def _read_one(
    buffer: mmap.mmap, size: int, verified: int, key: bytes, offset: int, position: int
) -> tuple[tuple[int], tuple[bytes | None]] | None:
    """``single_rows`` of one record (a recorder's read of a key's last record, an
    aggregate of one event): the same checks, step by step."""
    if position < 0 or position + codec.header_bytes > size:
        return None
    try:
        base, length, magic, crc, attributes, delta, count = _unpack_header(buffer, position)
        end = position + _prefix + length
        if (base != offset or magic not in _PAYLOAD_END or delta or count != 1
                or attributes not in _READ_ATTRIBUTES or length < _length_min or end > size):
            return None
        tail = buffer[position + _crc_start : end]
        if end > verified and (_crc32(tail) != crc or (
                magic == codec.magic_v2 and tail[-2:] != codec.frame_trailer)):
            return None
        decoded = _unpack_payload(_PAYLOAD_OF_TAIL[magic](tail))
    except Exception:  # as single_rows: the generic read decides
        return None
    if type(decoded) is not tuple:
        return None
    if len(decoded) == 3:
        timestamp, found, value = decoded
        if found != key or type(timestamp) is not int or type(value) not in _value_types:
            return None
        return (timestamp,), (value,)
    if len(decoded) == 5:
        timestamps, keys, values, headers, deltas = decoded
        if (keys != (key,) or headers is not None or deltas is not None
                or type(timestamps) is not tuple or len(timestamps) != 1
                or type(timestamps[0]) is not int
                or type(values) is not tuple or len(values) != 1
                or type(values[0]) not in _value_types):
            return None
        return timestamps, values
    return None


def _rows(decoded: list, key: bytes) -> tuple[tuple, tuple] | None:
    """(timestamps, values) of decoded one-record payloads of ``key``, all in one of
    the two forms a one-record batch is written in: the single-record ``(timestamp,
    key, value)`` or the five columns ``((timestamp,), (key,), (value,), None, None)``.
    None for anything else (another key, headers, offset deltas, another shape, a mix
    of both forms), checked as ``batch.decode_columns`` checks them."""
    n = len(decoded)
    if set(map(type, decoded)) != _tuple_only:
        return None
    lengths = set(map(len, decoded))
    columns = tuple(zip(*decoded))
    if lengths == _three:
        timestamps, keys, values = columns
        if (keys != (key,) * n or set(map(type, timestamps)) != _int_only
                or not _value_types.issuperset(map(type, values))):
            return None
        return timestamps, values
    if lengths != _five:
        return None
    timestamps, keys, values, headers, deltas = columns
    if keys != ((key,),) * n or headers != _none * n or deltas != _none * n:
        return None
    # Each column a 1-tuple per batch: flattened, then rebuilt and compared (equal only
    # if every element was a tuple of exactly one item).
    timestamps = tuple(chain.from_iterable(timestamps))
    values = tuple(chain.from_iterable(values))
    if tuple(zip(timestamps)) != columns[0] or tuple(zip(values)) != columns[2]:
        return None
    return timestamps, values
