"""Runs of small batches read in one pass: the reader of logs written a record at a time.

A loop of ``send()`` with ``linger_ms=0`` (or ``Partition.append`` of one record)
writes one batch per record, and reading such a log batch by batch costs a Python
step per field per batch. Format 2's framing (storage/batch.py, "Framing") makes a run
of batches one msgpack stream, so ``decode_run`` decodes a whole chunk of them with
one msgpack call, tests their headers a byte column at a time, checks their CRCs in
one pass and transposes their records with one ``zip``: C-level calls over the run.
``read_run`` walks a segment in chunks, remembering in
``Segment.verified`` which bytes were checked already (a batch is CRC-checked once per
process; bytes this process appended count as checked).
"""

from __future__ import annotations

import struct
import zlib
from bisect import bisect_left, bisect_right
from itertools import accumulate, chain
from operator import itemgetter, sub
from typing import TYPE_CHECKING, Any

import msgpack

from ..errors import CorruptLogError, OffsetOutOfRangeError
from .batch import (
    HEADER,
    BatchHeader,
    Columns,
    attr_log_append_time,
    attr_record_frames,
    columns_of,
    columns_of_content,
    crc_start,
    frame_trailer,
    header_bytes,
    inflated_bytes_floor,
    length_prefix_bytes,
    magic_v2,
    make_header,
    opaque_payload_mask,
    records_from,
)

if TYPE_CHECKING:
    from .segment import Segment

__all__ = ["decode_run", "read_run", "run_batch_records_max", "run_chunk_bytes"]

# read_run decodes runs of batches of at most this many records (larger ones decode
# fast one by one), in chunks of at most this many bytes.
run_batch_records_max = 16
run_chunk_bytes = 256 * 1024

_crc32 = zlib.crc32
_unpackb = msgpack.unpackb


_unpacker = msgpack.Unpacker
_iter_headers = HEADER.iter_unpack
_base_of = itemgetter(0)
_length_of = itemgetter(1)
_magic_of = itemgetter(2)
_crc_of = itemgetter(3)
_attributes_of = itemgetter(4)
_max_timestamp_of = itemgetter(7)
_count_of = itemgetter(11)
_last_delta_of = itemgetter(5)
_length_only = itemgetter(0)
_column = [itemgetter(i) for i in range(5)]
_flatten = chain.from_iterable
_plus_prefix = length_prefix_bytes.__add__
_plus_crc_start = crc_start.__add__
_int_only = {int}
_none_only = {None}
_zero_only = {0}
_flat_only = {3}
_columns_only = {5}
_magic_v2_only = {2}
_minus_one = {-1}
_bytes_or_none = {bytes, type(None)}
# The attributes a run may merge: plain records, CreateTime or LogAppendTime. A
# transactional, control, compacted or compressed batch keeps its own header.
_mergeable_attributes = (0, attr_log_append_time)


def decode_run(
    data: bytes, max_records: int, max_bytes: int, *, check_crc: bool,
    inflated_bytes_max: int = inflated_bytes_floor,
) -> tuple[list[tuple[BatchHeader, Columns]], int] | None:
    """Decode the whole magic-2 batches at the start of ``data`` (a copy of a segment
    from a batch's first byte on; it may end inside a batch, which is left out) with
    one msgpack call for all of them.

    Returns ``(batches, size)``: the decoded batches (enough to hold
    ``max_records`` records, or ``max_bytes`` bytes, at least one) and the bytes
    they take; None if ``data`` does not start with a run of
    whole magic-2 batches whose CRCs (when ``check_crc``) match: the caller reads
    batch by batch then, which says exactly what is wrong. A run of plain one-record
    batches (not transactional, control, compacted or compressed, one timestamp type)
    comes back MERGED as one pair whose header is synthetic (crc 0, producer fields
    -1, the run's first and last offsets, its total length); any other run comes
    back batch by batch, each with its own header.

    ``check_crc`` False: the caller knows every batch in ``data`` was checked before
    (or written by this process). Raises ValueError naming the problem for a batch
    whose CRC matches but whose payload is not what its header promises. Cost: one
    msgpack call, one header unpack, one CRC pass over the run (if ``check_crc``),
    one transpose of the merged records: C-level calls over the whole run.
    """
    parsed = _parse(data, max_records)
    if parsed is None:
        return None
    objects, raw_headers, n = parsed
    fast = _one_record_run(objects, raw_headers, n, data, max_bytes, check_crc)
    if fast is not None:
        return fast
    return _any_run(objects, raw_headers, n, data, max_records, max_bytes, check_crc,
                    inflated_bytes_max)


def _parse(data: bytes, max_records: int) -> tuple[list[Any], bytes, int] | None:
    """The objects of ``data`` read as one msgpack stream (behind the trailer that
    makes the first header a bin), the headers joined, and how many whole batches
    (header and payload) the limit can use; None if it is not such a stream."""
    stream = _unpacker(use_list=False, max_buffer_size=len(data) + 64)
    stream.feed(frame_trailer)
    stream.feed(data)
    try:
        objects = list(stream)
        raw_headers = b"".join(objects[0::2])
    except Exception:  # not msgpack, or a header that is not a bin: not a run
        return None
    # Each batch holds a record at least (but a compacted one), so the first
    # max_records batches are all the limit can need.
    n = min(len(objects) // 2, len(raw_headers) // header_bytes, max(max_records, 1))
    return (objects, raw_headers, n) if n else None


def _any_run(
    objects: list[Any], raw_headers: bytes, n: int, data: bytes, max_records: int,
    max_bytes: int, check_crc: bool, inflated_bytes_max: int,
) -> tuple[list[tuple[BatchHeader, Columns]], int] | None:
    """``decode_run`` for a run of any magic-2 batches: every header unpacked, merged
    if the batches are plain (``_merged``), else one pair per batch."""
    headers = list(_iter_headers(memoryview(raw_headers)[: n * header_bytes]))
    size = sum(map(_length_of, headers)) + n * length_prefix_bytes
    ends: list[int] | None = None
    if size > len(data) or size > max_bytes or check_crc:
        ends = list(accumulate(map(_plus_prefix, map(_length_of, headers))))
        # The last batch may be cut (leave it out); max_bytes: at least one batch,
        # up to and including the one that reaches it.
        n = min(bisect_right(ends, len(data)), bisect_left(ends, max_bytes) + 1)
        if not n:
            return None
        del headers[n:], ends[n:]
        size = ends[-1]
    if set(map(_magic_of, headers)) != _magic_v2_only:
        return None
    if check_crc:
        assert ends is not None
        crcs = map(_crc32, map(data.__getitem__,
                               map(slice, map(_plus_crc_start, chain((0,), ends)), ends)))
        if list(crcs) != list(map(_crc_of, headers)):
            return None
    counts = list(accumulate(map(_count_of, headers)))
    if any(map(attr_record_frames.__and__, map(_attributes_of, headers))):
        # A framed batch is decoded from its bytes (batch.py, "Framed records"), not
        # from the stream: the run ends before it.
        k = next(i for i, fields in enumerate(headers) if fields[4] & attr_record_frames)
        if not k:
            return None
        del headers[k:], counts[k:]
        if ends is not None:
            del ends[k:]
        size = ends[-1] if ends is not None else (
            sum(map(_length_of, headers)) + k * length_prefix_bytes)
        n = k
    if counts[-1] > n:  # batches of several records: fewer batches reach the limit
        k = bisect_left(counts, max_records) + 1
        if k < n:
            del headers[k:]
            size = ends[k - 1] if ends is not None else (
                sum(map(_length_of, headers)) + k * length_prefix_bytes)
            n = k
    payloads = objects[1 : 2 * n : 2]
    merged = _merged(headers, payloads, size, check_crc)
    if merged is not None:
        return [merged], size
    out = []
    for fields, payload in zip(headers, payloads):
        header = make_header(fields)
        if header.attributes & opaque_payload_mask:  # a bin: the codec's stream, say
            if type(payload) is not bytes:
                raise ValueError("its payload is not framed as a msgpack bin")
            out.append((header, columns_of_content(header, memoryview(payload),
                                                   inflated_bytes_max)))
        else:
            out.append((header, columns_of(header, payload)))
    return out, size


# In a batch of one plain record (uncompressed, CreateTime, no transaction, control or
# compaction), these header bytes are the same: (position, value) of magic, attributes,
# last_offset_delta and record_count.
_ONE_RECORD_BYTES = ((12, magic_v2), *((p, 0) for p in range(17, 23)),
                     (53, 0), (54, 0), (55, 0), (56, 1))
_LENGTH_ONLY = struct.Struct(">8xi45x")  # a header's batch_length and nothing else
_CRC_ONLY = struct.Struct(">13xI40x")  # a header's crc and nothing else
_BASE_OFFSET = struct.Struct(">q")
assert _LENGTH_ONLY.size == header_bytes


def _one_record_run(
    objects: list[Any], raw_headers: bytes, n: int, data: bytes, max_bytes: int,
    check: bool,
) -> tuple[list[tuple[BatchHeader, Columns]], int] | None:
    """``decode_run``'s path for runs of plain one-record batches (the log a loop of
    ``send()`` with ``linger_ms=0`` writes): the headers are tested a byte column at a
    time (one C-level slice per field byte) instead of unpacked one by one, and
    (``check``) the CRCs and record types checked in one pass each. None if the run is
    anything else, or fails a check: the general path then decides.
    """
    raw = raw_headers if len(raw_headers) == n * header_bytes else raw_headers[
        : n * header_bytes]
    for position, value in _ONE_RECORD_BYTES:
        if raw[position::header_bytes] != bytes((value,)) * n:
            return None
    lengths = list(map(_length_only, _LENGTH_ONLY.iter_unpack(raw)))
    size = sum(lengths) + n * length_prefix_bytes
    while n and size > len(data):  # the last batch is cut: leave it out
        n -= 1
        size -= lengths[n] + length_prefix_bytes
    if not n:
        return None
    ends = None
    if check or (size > max_bytes and n > 1):
        ends = list(accumulate(map(_plus_prefix, lengths[:n])))
    if size > max_bytes and n > 1:  # up to and including the batch that reaches it
        assert ends is not None
        n = bisect_left(ends, max_bytes) + 1
        size = ends[n - 1]
        del ends[n:]
    if check:
        assert ends is not None
        crcs = map(_crc32, map(data.__getitem__,
                               map(slice, map(_plus_crc_start, chain((0,), ends)), ends)))
        if list(crcs) != list(map(_length_only, _CRC_ONLY.iter_unpack(
                raw[: n * header_bytes]))):
            return None
    payloads = objects[1 : 2 * n : 2]
    if set(map(len, payloads)) != _flat_only:
        return None
    base = _BASE_OFFSET.unpack_from(raw)[0]
    if _BASE_OFFSET.unpack_from(raw, (n - 1) * header_bytes)[0] - base != n - 1:
        return None
    timestamps, keys, values = zip(*payloads)
    if check and not (set(map(type, timestamps)) == _int_only
                      and set(map(type, keys)) <= _bytes_or_none
                      and set(map(type, values)) <= _bytes_or_none):
        return None
    header = make_header((base, size - length_prefix_bytes, magic_v2, 0, 0, n - 1,
                          timestamps[0], max(timestamps), -1, -1, -1, n))
    return [(header, Columns(range(base, base + n), timestamps, keys, values, None))], size


def _merged(headers: list[tuple], payloads: list[Any], size: int,
            check_types: bool) -> tuple[BatchHeader, Columns] | None:
    """The batches of a run as ONE pair under a synthetic header, if every one is plain
    (one mergeable attributes value, uncompressed, no record headers, dense offsets
    following each other) and (``check_types``) holds well-typed records; else None.
    Without ``check_types`` the records were checked before or written here."""
    attributes = set(map(_attributes_of, headers))
    if len(attributes) != 1 or attributes.pop() not in _mergeable_attributes:
        return None
    k = len(headers)
    records = sum(map(_count_of, headers))
    base = headers[0][0]
    if records == k:  # one record each: dense if the offsets span exactly k
        if (set(map(_last_delta_of, headers)) != _zero_only
                or headers[-1][0] - base != k - 1):
            return None
    else:
        counts = list(map(_count_of, headers))
        bases = list(map(_base_of, headers))
        if (set(map(sub, map(_last_delta_of, headers), counts)) != _minus_one
                or list(map(sub, bases[1:], bases)) != counts[:-1]):
            return None
    try:
        shapes = set(map(len, payloads))
        if shapes == _flat_only:  # the one-record form: [timestamp, key, value]
            timestamps, keys, values = zip(*payloads)
        elif shapes == _columns_only:  # [timestamps, keys, values, headers, deltas]
            if (set(map(_column[3], payloads)) != _none_only
                    or set(map(_column[4], payloads)) != _none_only):
                return None
            timestamps = tuple(_flatten(map(_column[0], payloads)))
            keys = tuple(_flatten(map(_column[1], payloads)))
            values = tuple(_flatten(map(_column[2], payloads)))
        else:
            return None
    except TypeError:  # a payload or column that is not an array
        return None
    if not len(timestamps) == len(keys) == len(values) == records:
        return None
    if check_types and not (set(map(type, timestamps)) == _int_only
                            and set(map(type, keys)) <= _bytes_or_none
                            and set(map(type, values)) <= _bytes_or_none):
        return None
    first = headers[0]
    header = make_header((base, size - length_prefix_bytes, magic_v2, 0, first[4],
                          records - 1, first[6], max(map(_max_timestamp_of, headers)),
                          -1, -1, -1, records))
    return header, Columns(range(base, base + records), timestamps, keys, values, None)


# ------------------------------------------------------------------ the segment's side


def read_run(
    seg: Segment, offset: int, max_records: int, max_bytes: int
) -> list[tuple[BatchHeader, Columns]]:
    """``Segment.read`` for a reader that wants records, not batches as stored: from the
    batch holding ``offset``, chunks of small magic-2 batches through ``decode_run``
    (a run of plain one-record batches comes back merged under one synthetic header);
    a big or magic-1 batch, or bytes that are not a clean run (damage: the
    batch-by-batch read names it), through ``Segment.read``. Lock-free; raises like
    ``Segment.read``."""
    try:
        size = seg.size
        position, header = seg._find(offset)
        if header is None or not _runs_from(header):
            return seg.read(offset, max_records, max_bytes)
        out: list[tuple[BatchHeader, Columns]] = []
        records = read_bytes = 0
        while position < size and records < max_records and read_bytes < max_bytes:
            chunk = _chunk(seg, position, header, size, max_records - records,
                           max_bytes - read_bytes)
            if chunk is None:
                break  # damage, or a batch of another kind: read it as stored
            batches, run_bytes = chunk
            for _, cols in batches:
                records += records_from(cols.offsets, offset)
            out.extend(batches)
            position += run_bytes
            read_bytes += run_bytes
            following = seg._header_at(position, size) if position < size else None
            if following is None or not _runs_from(following):
                break
            header = following
        if not out:
            return seg.read(offset, max_records, max_bytes)
        if records < max_records and read_bytes < max_bytes and position < size:
            try:  # the rest of the limit from a batch that is not part of a run
                out.extend(seg.read(out[-1][0].last_offset + 1, max_records - records,
                                    max_bytes - read_bytes))
            except CorruptLogError:
                pass  # return what lies before the damage; the next read raises
        return out
    except ValueError as exc:
        if not seg._log.closed:
            raise
        raise OffsetOutOfRangeError(
            f"offset {offset} was removed (segment {seg.base_offset} deleted) while reading"
        ) from exc


def _runs_from(header: BatchHeader) -> bool:
    return header.magic == magic_v2 and header.record_count <= run_batch_records_max


def _chunk(
    seg: Segment, position: int, header: BatchHeader, size: int, max_records: int,
    max_bytes: int,
) -> tuple[list[tuple[BatchHeader, Columns]], int] | None:
    """One ``decode_run`` over the bytes from ``position`` (the batch ``header``), sized
    for ``max_records`` more records like it; moves ``seg.verified`` past what it
    checked when that starts inside the verified prefix."""
    length = min(size - position, run_chunk_bytes,
                 max(header.total_bytes * max_records + 64, header.total_bytes))
    end = position + length
    verified = seg.verified
    data = seg._log.read(position, length)  # ValueError if the map was closed
    try:
        run = decode_run(data, max_records, max_bytes, check_crc=end > verified,
                         inflated_bytes_max=seg.inflated_bytes_max)
    except CorruptLogError:
        raise
    except Exception as exc:  # a CRC-valid batch that does not decode
        raise CorruptLogError(
            f"a batch in bytes {position}..{end} of {seg._log.path or 'memory segment'} "
            f"passes its CRC but cannot be decoded: {exc}") from exc
    if run is not None and position <= verified < position + run[1]:
        seg.verified = position + run[1]
    return run
