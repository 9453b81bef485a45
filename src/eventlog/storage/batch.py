"""The record batch: the unit of append, storage, checksum and compression.

Byte layout (big-endian; 57-byte header, modelled on Kafka's v2 batch)::

    offset  size  field
    0       8     base_offset        int64   offset of the first record
    8       4     batch_length       int32   bytes after this field (header tail + payload)
    12      1     magic              int8    format version: 2 (framed, written
                                             since format 2), 1 (read only)
    13      4     crc                uint32  CRC-32 (zlib) of bytes [17, end of batch)
    17      2     attributes         int16   bits 0-2 compression (Kafka's codes: 0 none,
                                             1 gzip, 2 snappy, 3 lz4, 4 zstd),
                                             bit 3 timestamp type (1 = LogAppendTime),
                                             bit 4 transactional, bit 5 control,
                                             bit 6 compacted (written by the cleaner:
                                             may follow a gap, may hold 0 records,
                                             payload may carry offset_deltas),
                                             bit 7 delete horizon (see below),
                                             bit 8 Kafka records (payload: the
                                             records of an uncompressed Kafka v2
                                             batch, storage/kafka_records.py),
                                             bit 9 framed records (see below)
    19      4     last_offset_delta  int32   last offset - base offset
    23      8     base_timestamp     int64   first record's timestamp, ms; with bit 7:
                                             the delete horizon, ms
    31      8     max_timestamp      int64   largest record timestamp, ms
    39      8     producer_id        int64   -1: no idempotent producer
    47      2     producer_epoch     int16   -1 if none
    49      4     base_sequence      int32   -1 if none
    53      4     record_count       int32
    57      ...   payload            msgpack, compressed if attributes say so
    end-2   2     trailer            magic 2 only: 0xc4 0x39

**Framing (magic 2).** The payload of a magic-2 batch is exactly one msgpack
object, and the batch ends with the two bytes ``c4 39``: msgpack's header of a
57-byte bin. So the batch that follows, whose 57-byte header starts right after
them, reads as that bin, and a run of batches from any batch's header on, with the
two bytes put in front, is ONE msgpack stream: ``bin(header), payload, bin(header),
payload, ...``. ``decode_run`` decodes a run of small batches with one C-level
unpack for all of them (plus one header unpack, one CRC pass and one column
transpose, each a C-level call over the run) instead of a Python step per field per
batch. A payload that is not msgpack itself (a compressed one) is wrapped in a
msgpack bin. Magic 1, the format before, has no trailer and stores a compressed
payload bare; it is read as before, and a segment may hold magic-1 batches followed
by magic-2 ones (a log written before the change and appended to after it). Once
written, a segment never goes back to magic 1, so a run that starts at a magic-2
batch holds only magic-2 batches.

The payload is ONE msgpack array of columns, encoded and decoded in one C-level
call::

    [timestamps, keys, values, headers | nil, offset_deltas | nil]

or, for a batch of exactly one record with a dense offset, the flat form
``[timestamp, key, value]`` / ``[timestamp, key, value, headers]`` (3 or 4
elements, so never confused with the 5 columns): a ``send()`` of one record
costs one small array instead of five nested ones.

``headers`` is nil when no record has headers; ``offset_deltas`` is nil when the
offsets are dense (always, until compaction leaves gaps). Columns instead of
rows make both directions about twice as fast (one array header per column
rather than per record) and let readers build record tuples with one ``zip``.
A compressed payload is the msgpack payload's size (uint32, little-endian)
followed by the codec's output: a raw lz4 block (so an lz4 payload is exactly
what ``lz4.block.compress`` wrote before this module used cramjam), a gzip
member, a raw snappy block, or a zstd frame. The declared size bounds the
decompression: a reader allocates at most that many bytes, and refuses a
batch that declares more than ``inflated_bytes_max`` (the larger of the
topic's ``max_message_bytes`` and ``inflated_bytes_floor``), or more than its
codec could inflate its compressed bytes to, or whose stream inflates to
anything but exactly what it declares (CorruptLogError, from the segment that
reads it), so a small crafted batch cannot make a reader allocate gigabytes.

**Framed records (attribute bit 9).** Given ``frame_records`` F >= 1 (the topic
config of that name; 0, the default, writes columns), ``encode_batch`` writes an
uncompressed batch of more than F records in frames of F each (the last holds the
rest), so that a point read decodes one frame instead of the whole batch. Framing
costs one more pass over the records on append (slicing the columns) and one on a
bulk read (joining the frames' columns), which is why it is a topic's choice. The
payload is still one msgpack object, an array of K + 1 elements (K frames)::

    array32 (0xdd, uint32 K + 1)
    bin32   (0xc6, uint32 4 + 4 (K + 1)), the frame table:
            uint32 records per frame F, then K + 1 uint32 byte positions, from the
            payload's first byte: frame j starts at position j and ends where
            frame j + 1 starts; the last is the payload's length
    frame 0 ... frame K - 1: each [timestamps, keys, values, headers | nil]

(both headers fixed-width, so a reader finds the table at byte 10 of the payload
without parsing). The table is checked against the frames: a full decode unpacks
each frame from exactly the bytes the table gives it (one object each, nothing
left over, the frames tiling the payload), so a point read and a full read of the
same CRC-valid batch always agree. Files written before framing hold only the
five-column form, which is read as before; the frames are never written compressed,
compacted or with offset deltas (the cleaner re-encodes what it keeps in the
column form).

The CRC, like Kafka's, leaves out the base offset and length, so the offsets
could be assigned without re-encoding. It covers everything a reader trusts.

Compacted batches (bit 6; written only by the log cleaner, storage/cleaner.py)
keep the base offset, last_offset_delta and producer fields of the batch they
were cleaned from, so a reader's position after one is still ``last offset + 1``
and an idempotent producer's sequence range survives (Kafka's
MemoryRecords.filterTo). Their records may have gaps (``offset_deltas``), and a
producer's last batch may keep no record at all (record_count 0, empty
columns). Bit 7 is Kafka's delete-horizon flag (KIP-534; Kafka uses bit 6,
taken here by the compacted flag): ``base_timestamp`` then holds the time
after which the cleaner drops the batch's tombstones. Files written before
these bits existed never set them, so they read as before.
"""

from __future__ import annotations

import struct
import zlib
from bisect import bisect_left
from collections.abc import Callable, Sequence
from functools import partial, reduce
from itertools import accumulate
from operator import iadd, lt
from typing import Any, NamedTuple

import cramjam
import msgpack

from . import kafka_records

__all__ = [
    "HEADER",
    "BatchHeader",
    "Columns",
    "check_columns",
    "columns_of_content",
    "decode_columns",
    "decode_header",
    "delete_horizon_ms",
    "encode_batch",
    "encode_batch_with_header",
    "encode_marker",
    "encode_one",
    "encode_prefix",
    "encode_retained",
    "frame_at",
    "frame_columns",
    "inflated_bytes_max",
    "inflated_size",
    "marker_type",
    "pack_batch",
    "records_from",
    "restamp",
    "verify_crc",
]

HEADER = struct.Struct(">qiBIhiqqqhii")
header_bytes = HEADER.size
assert header_bytes == 57
length_prefix_bytes = 12  # base_offset + batch_length: not counted in batch_length
crc_start = 17  # the CRC covers [crc_start, end of batch)
magic_v1 = 1  # read only: no frame trailer, compressed payloads bare
magic_v2 = 2  # written: the payload one msgpack object, then frame_trailer
frame_trailer = b"\xc4\x39"  # msgpack: a bin of 57 bytes (the next batch's header)
assert len(frame_trailer) == 2 and frame_trailer[1] == 57

compression_none = 0
compression_gzip = 1
compression_snappy = 2
compression_lz4 = 3
compression_zstd = 4
compression_mask = 0x07
attr_log_append_time = 0x08
attr_transactional = 0x10
attr_control = 0x20
attr_explicit_offsets = 0x40  # a compacted batch (the name says what its payload may hold)
attr_compacted = attr_explicit_offsets
attr_delete_horizon = 0x80
attr_kafka_records = 0x100  # payload: a Kafka v2 records section (storage/kafka_records.py)
attr_record_frames = 0x200  # payload: records in frames with a frame table (see "Framed")
# Records per frame suggested for a topic read at random offsets (TopicConfig.frame_records):
# a frame decodes in a few µs; truncation re-encodes a framed batch's kept records so.
frame_records_default = 16
# payloads that are not msgpack, framed as one msgpack bin (format 2)
opaque_payload_mask = compression_mask | attr_kafka_records

COMPRESSION_CODES = {
    "none": compression_none,
    "gzip": compression_gzip,
    "snappy": compression_snappy,
    "lz4": compression_lz4,
    "zstd": compression_zstd,
}
# A compressed batch may declare at most max(max_message_bytes, this) bytes of
# msgpack payload. The floor keeps readable what earlier versions could write:
# a send_batch of highly compressible records whose lz4 payload fitted
# max_message_bytes while the records did not.
inflated_bytes_floor = 32 * 1024 * 1024

_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb
_unpack_frame = partial(msgpack.unpackb, use_list=False)
_tuple_only = {tuple}
_none_only = {type(None)}
_four_only = {4}
_crc32 = zlib.crc32
_bin8 = struct.Struct(">BB").pack  # msgpack bin headers (use_bin_type)
_bin16 = struct.Struct(">BH").pack
_bin32 = struct.Struct(">BI").pack


class BatchHeader(NamedTuple):
    base_offset: int
    batch_length: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def total_bytes(self) -> int:
        """Bytes the whole batch occupies in the log."""
        return self.batch_length + length_prefix_bytes


class Columns(NamedTuple):
    """Decoded records of one batch, column by column (offsets absolute)."""

    offsets: Sequence[int]
    timestamps: Sequence[int]
    keys: Sequence[bytes | None]
    values: Sequence[bytes | None]
    headers: Sequence[tuple] | None  # None: no record has headers


_new_tuple = tuple.__new__


def make_header(fields: tuple) -> BatchHeader:
    """A BatchHeader from the 12 unpacked fields, in their order."""
    return _new_tuple(BatchHeader, fields)

_HEAD = struct.Struct(">qiBI")  # base_offset, batch_length, magic, crc
_TAIL = struct.Struct(">hiqqqhii")  # attributes ... record_count: what the CRC covers


def pack_batch(
    payload: bytes,
    base_offset: int,
    attributes: int,
    last_offset_delta: int,
    base_timestamp: int,
    max_timestamp: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    record_count: int,
) -> tuple[bytes, BatchHeader]:
    """The one header packer: the whole batch (header + ``payload``, already compressed
    if ``attributes`` say so) and its header, CRC and length computed here.

    Every encoder of this module ends here, so the header layout is written in one
    place. The fields come in BatchHeader's order; callers name them, except
    ``encode_one`` (every ``send()``), which saves the keyword matching. Pure.
    Cost: one CRC over the batch, one copy of the payload.
    """
    tail = _TAIL.pack(attributes, last_offset_delta, base_timestamp, max_timestamp,
                      producer_id, producer_epoch, base_sequence, record_count)
    if attributes & opaque_payload_mask:
        # A msgpack bin (the frame holds one msgpack object), its prefix written here and
        # the batch joined in one copy: large payloads paid three copies and the faults
        # of three fresh buffers, 8x the CRC's cost.
        n = len(payload)
        prefix = (_bin8(0xC4, n) if n < 0x100 else _bin16(0xC5, n) if n < 0x10000
                  else _bin32(0xC6, n))
        crc = _crc32(frame_trailer, _crc32(payload, _crc32(prefix, _crc32(tail))))
        length = header_bytes - length_prefix_bytes + len(prefix) + n + len(frame_trailer)
        header = _new_tuple(BatchHeader, (base_offset, length, magic_v2, crc, attributes,
                                          last_offset_delta, base_timestamp, max_timestamp,
                                          producer_id, producer_epoch, base_sequence,
                                          record_count))
        return b"".join((_HEAD.pack(base_offset, length, magic_v2, crc), tail, prefix,
                         payload, frame_trailer)), header
    payload += frame_trailer
    crc = _crc32(payload, _crc32(tail))
    length = header_bytes - length_prefix_bytes + len(payload)
    # tuple.__new__ straight: a NamedTuple's own __new__ is a Python call, 3x the cost.
    header = _new_tuple(BatchHeader, (base_offset, length, magic_v2, crc, attributes,
                                      last_offset_delta, base_timestamp, max_timestamp,
                                      producer_id, producer_epoch, base_sequence,
                                      record_count))
    return _HEAD.pack(base_offset, length, magic_v2, crc) + tail + payload, header


def _payload(attributes: int, columns: object) -> bytes:
    """``columns`` as msgpack, compressed with the codec ``attributes`` name."""
    payload = _packb(columns)
    if attributes & compression_mask:
        payload = compress(attributes & compression_mask, payload)
    return payload


def encode_batch(
    base_offset: int,
    timestamps: list[int],
    keys: list[bytes | None],
    values: list[bytes | None],
    headers: list[tuple] | None = None,
    *,
    attributes: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    offset_deltas: list[int] | None = None,
    frame_records: int = 0,
) -> bytes:
    """Encode one batch. Columns must have equal, non-zero length; values are already valid.

    ``attributes`` carries the compression code in its low bits. ``frame_records``
    F >= 1: an uncompressed batch of more than F records in frames of F (see
    "Framed records"); 0: columns. Cost: one msgpack call (one per frame), one
    compression call if compressed, one CRC over the batch.
    """
    return encode_batch_with_header(
        base_offset, timestamps, keys, values, headers, attributes=attributes,
        producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=base_sequence,
        offset_deltas=offset_deltas, frame_records=frame_records,
    )[0]


def encode_batch_with_header(
    base_offset: int,
    timestamps: list[int],
    keys: list[bytes | None],
    values: list[bytes | None],
    headers: list[tuple] | None = None,
    *,
    attributes: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    offset_deltas: list[int] | None = None,
    frame_records: int = 0,
) -> tuple[bytes, BatchHeader]:
    """``encode_batch``, with the header it wrote (no decode of the bytes just made)."""
    count = len(values)
    assert count > 0, "a batch holds at least one record"
    assert len(keys) == count and len(timestamps) == count
    if offset_deltas is not None:
        attributes |= attr_explicit_offsets
        last_delta = offset_deltas[-1]
    else:
        last_delta = count - 1
    attributes &= ~attr_record_frames  # set below when this batch is written in frames
    if (frame_records and count > frame_records and offset_deltas is None
            and not attributes & opaque_payload_mask):
        attributes |= attr_record_frames
        payload = _framed_payload(timestamps, keys, values, headers, frame_records)
    elif count == 1 and offset_deltas is None:  # the single-record form, as encode_one
        if headers is not None:
            payload = _payload(attributes, (timestamps[0], keys[0], values[0], headers[0]))
        else:
            payload = _payload(attributes, (timestamps[0], keys[0], values[0]))
    else:
        payload = _payload(attributes, [timestamps, keys, values, headers, offset_deltas])
    return pack_batch(
        payload, base_offset=base_offset, attributes=attributes, last_offset_delta=last_delta,
        base_timestamp=timestamps[0], max_timestamp=max(timestamps), producer_id=producer_id,
        producer_epoch=producer_epoch, base_sequence=base_sequence, record_count=count,
    )


_FRAMED_PREFIX = struct.Struct(">BIBII")  # array32 K + 1, bin32 table length, F
_framed_prefix_bytes = _FRAMED_PREFIX.size  # the frame positions follow it
_FRAME_SPAN = struct.Struct(">II")  # frame j's first byte and the next frame's
# A batch's payload bytes, framing trailer left out: batch_length less these.
_framed_content_less = header_bytes - length_prefix_bytes + len(frame_trailer)


def _framed_payload(
    timestamps: list[int], keys: list[bytes | None], values: list[bytes | None],
    headers: list[tuple] | None, step: int,
) -> bytes:
    """The framed payload (see "Framed records"), ``step`` records a frame: one msgpack
    call per frame, the table packed after the frames' sizes are known. Cost:
    O(records) in C, one Python step per frame."""
    n = len(values)
    frames = [
        _packb((timestamps[i : i + step], keys[i : i + step], values[i : i + step],
                None if headers is None else headers[i : i + step]))
        for i in range(0, n, step)
    ]
    k = len(frames)
    table_bytes = 4 + 4 * (k + 1)
    first = _framed_prefix_bytes - 4 + table_bytes
    positions = list(accumulate(map(len, frames), initial=first))
    return b"".join((
        _FRAMED_PREFIX.pack(0xDD, k + 1, 0xC6, table_bytes, step),
        struct.pack(f">{k + 1}I", *positions),
        *frames,
    ))


def _frame_table(header: BatchHeader, content: memoryview) -> tuple[int, list[int]]:
    """(records per frame, frame positions) of a framed payload ``content`` (framing
    trailer removed), checked against the header and the payload's size. Raises
    ValueError naming the problem."""
    count = header.record_count
    if (len(content) < _framed_prefix_bytes or count < 1 or header.magic != magic_v2
            or header.last_offset_delta != count - 1 or header.attributes & opaque_payload_mask):
        raise ValueError("it is framed but empty, compressed, not dense or of magic 1")
    array, elements, bin32, table_bytes, step = _FRAMED_PREFIX.unpack_from(content)
    k = elements - 1
    if (array != 0xDD or bin32 != 0xC6 or step < 1 or k != -(-count // step)
            or table_bytes != 4 + 4 * elements
            or len(content) < _framed_prefix_bytes + 4 * elements):
        raise ValueError(f"its frame table does not describe {count} records")
    positions = list(struct.unpack_from(f">{elements}I", content, _framed_prefix_bytes))
    if (positions[0] != _framed_prefix_bytes + 4 * elements
            or positions[-1] != len(content)
            or not all(map(lt, positions, positions[1:]))):
        raise ValueError("its frame table's positions do not tile its payload")
    return step, positions


def _framed_columns(header: BatchHeader, content: memoryview) -> Columns:
    """The Columns of a framed payload: each frame unpacked from exactly the bytes its
    table entry gives (so a point read, ``frame_at``, finds the same records), then the
    frames' columns joined. Raises ValueError (or msgpack's) naming the problem."""
    step, positions = _frame_table(header, content)
    frames = list(map(_unpack_frame, map(content.__getitem__,
                                         map(slice, positions, positions[1:]))))
    count = header.record_count
    k = len(frames)
    sizes = [step] * (k - 1) + [count - step * (k - 1)]
    if set(map(type, frames)) != _tuple_only or set(map(len, frames)) != _four_only:
        raise ValueError("its frames are not each [timestamps, keys, values, headers]")
    timestamps, keys, values, headers = map(list, zip(*frames))
    for column in (timestamps, keys, values):
        if set(map(type, column)) != _tuple_only or list(map(len, column)) != sizes:
            raise ValueError(f"its frames do not hold {count} records in frames of {step}")
    if set(map(type, headers)) == _none_only:
        joined_headers = None
    elif set(map(type, headers)) == _tuple_only and list(map(len, headers)) == sizes:
        joined_headers = tuple(reduce(iadd, headers, []))
    else:
        raise ValueError("its frames' headers are neither all nil nor one per record")
    base = header.base_offset
    return Columns(range(base, base + count), tuple(reduce(iadd, timestamps, [])),
                   tuple(reduce(iadd, keys, [])), tuple(reduce(iadd, values, [])),
                   joined_headers)


def frame_at(header: BatchHeader, buffer: Any, start: int, index: int) -> Columns:
    """The frame holding record ``index`` (0-based within the batch) of a framed batch,
    as Columns of that frame's records only: a point read that unpacks one frame.
    ``buffer`` (an mmap, bytes) holds the batch, whose payload starts at ``start``
    (the byte after its header); the caller checked the batch's CRC. Raises
    ValueError naming the problem if the table or the frame is not what the header
    promises: the checks of the full decode, for this frame. Frame j's bytes are the
    table's entries j and j + 1 in both reads, so when both succeed they agree.
    Cost: two small unpacks, one msgpack call over ``frame_records`` records.
    """
    first, timestamps, keys, values, headers = frame_columns(header, buffer, start, index)
    return _new_tuple(Columns, (range(first, first + len(values)), timestamps, keys, values,
                                headers))


def frame_columns(
    header: BatchHeader, buffer: Any, start: int, index: int
) -> tuple[int, tuple, tuple, tuple, tuple | None]:
    """``frame_at``'s frame as ``(first offset, timestamps, keys, values, headers or
    None)``, without building Columns (the point read of one record). Raises as
    ``frame_at``."""
    count = header[11]  # record_count (fields by index: this is every point read)
    content_bytes = header[1] - _framed_content_less
    array, elements, bin32, table_bytes, step = _FRAMED_PREFIX.unpack_from(buffer, start)
    first_frame = _framed_prefix_bytes + 4 * elements
    if (array != 0xDD or bin32 != 0xC6 or step < 1 or header[5] != count - 1
            or elements - 1 != -(-count // step) or table_bytes != 4 + 4 * elements
            or content_bytes < first_frame or not 0 <= index < count
            or header[2] != magic_v2 or header[4] & opaque_payload_mask):
        raise ValueError(f"its frame table does not describe {count} records (or it is "
                         "compressed, or of magic 1)")
    j = index // step
    first_byte, end = _FRAME_SPAN.unpack_from(buffer, start + _framed_prefix_bytes + 4 * j)
    last = j == elements - 2
    if (not first_frame <= first_byte < end <= content_bytes
            or (j == 0 and first_byte != first_frame) or (last and end != content_bytes)):
        raise ValueError("its frame table's positions do not tile its payload")
    frame = _unpack_frame(buffer[start + first_byte : start + end])
    size = count - step * j if last else step
    if type(frame) is not tuple or len(frame) != 4:
        raise ValueError("its frame is not [timestamps, keys, values, headers]")
    timestamps, keys, values, headers = frame
    if not (type(timestamps) is type(keys) is type(values) is tuple
            and len(timestamps) == len(keys) == len(values) == size
            and (headers is None or (type(headers) is tuple and len(headers) == size))):
        raise ValueError(f"its frame {j} does not hold {size} records")
    return header[0] + step * j, timestamps, keys, values, headers


def encode_one(
    base_offset: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    headers: tuple | None,
    attributes: int,
    producer_id: int,
    producer_epoch: int,
    sequence: int,
) -> tuple[bytes, BatchHeader]:
    """Encode a batch of one record; returns the bytes and their header.

    The payload is the single-record form ``[timestamp, key, value]`` (or with
    headers as a fourth element): one flat msgpack array, less than half the
    cost of the column form. This is the path of every ``send()`` with
    ``linger_ms=0``.
    """
    if headers:
        payload = _payload(attributes, (timestamp_ms, key, value, headers))
    else:
        payload = _payload(attributes, (timestamp_ms, key, value))
    # Positional (BatchHeader's order): base_offset, attributes, last_offset_delta,
    # base_timestamp, max_timestamp, producer_id, producer_epoch, base_sequence, count.
    return pack_batch(payload, base_offset, attributes, 0, timestamp_ms, timestamp_ms,
                      producer_id, producer_epoch, sequence, 1)


def encode_prefix(header: BatchHeader, columns: Columns, offset: int) -> bytes:
    """The records of a stored batch below ``offset`` re-encoded as one batch with the
    same base offset and producer fields (a truncation that cuts through a batch);
    empty if none lies below it. A delete horizon is dropped: the cleaner stamps anew.
    Pure. Cost: one msgpack call (one compression call), one CRC.
    """
    n = len(columns.offsets) - records_from(columns.offsets, offset)  # below ``offset``
    if n == 0:  # a compacted batch whose first record lies at or past ``offset``
        return b""
    deltas = None
    if header.attributes & attr_explicit_offsets:
        deltas = [o - header.base_offset for o in columns.offsets[:n]]
    return encode_batch(
        header.base_offset,
        list(columns.timestamps[:n]),
        list(columns.keys[:n]),
        list(columns.values[:n]),
        None if columns.headers is None else list(columns.headers[:n]),
        attributes=header.attributes & ~(attr_explicit_offsets | attr_delete_horizon
                                         | attr_kafka_records | attr_record_frames),
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        offset_deltas=deltas,
        # A framed batch's kept records framed again (the topic chose frames).
        frame_records=frame_records_default if header.attributes & attr_record_frames else 0,
    )




def decode_header(buffer: object, position: int = 0) -> BatchHeader:
    """The header at ``position`` of any buffer (bytes, mmap). Does not check the CRC."""
    return make_header(HEADER.unpack_from(buffer, position))  # type: ignore[arg-type]


def plausible(header: BatchHeader, available_bytes: int) -> bool:
    """True if the header could start a whole batch within ``available_bytes``.

    A zero-filled or torn region fails here before any CRC is computed.
    """
    return (
        (header.magic == magic_v2 or header.magic == magic_v1)
        and (header.record_count > 0
             or (header.record_count == 0 and bool(header.attributes & attr_compacted)))
        and header.last_offset_delta >= max(header.record_count - 1, 0)
        and header.batch_length >= header_bytes - length_prefix_bytes
        and header.batch_length + length_prefix_bytes <= available_bytes
    )


def verify_crc(batch_tail: bytes | memoryview, header: BatchHeader) -> bool:
    """True if ``batch_tail`` (bytes [17, end) of the batch) matches the header's CRC."""
    return _crc32(batch_tail) == header.crc


_SIZE = struct.Struct("<I")
_size_bytes = _SIZE.size
_COMPRESS: dict[int, Callable[[bytes], object]] = {
    compression_gzip: cramjam.gzip.compress,
    compression_snappy: cramjam.snappy.compress_raw,
    compression_lz4: partial(cramjam.lz4.compress_block, store_size=False),
    compression_zstd: cramjam.zstd.compress,
}
# Twice the most each format can inflate one byte to (deflate 1032:1; an lz4 block
# about 255:1; snappy 64 bytes per 3-byte copy, 21.3:1; a zstd RLE block 128 KiB
# from 4 bytes, 32768:1), plus slack for tiny payloads: a declared size above this
# cannot be true, whatever the limit.
_RATIO_MAX = {
    compression_gzip: 2 * 1032,
    compression_snappy: 2 * 22,
    compression_lz4: 2 * 256,
    compression_zstd: 2 * 32768,
}
_ratio_slack_bytes = 64
_NAMES = {code: name for name, code in COMPRESSION_CODES.items()}
_DECOMPRESS_INTO: dict[int, Callable[[object, bytearray], int]] = {
    compression_gzip: cramjam.gzip.decompress_into,
    compression_snappy: cramjam.snappy.decompress_raw_into,
    compression_lz4: cramjam.lz4.decompress_block_into,
    compression_zstd: cramjam.zstd.decompress_into,
}


def compress(code: int, payload: bytes) -> bytes:
    """``payload`` compressed with codec ``code``, prefixed by its size (4 bytes LE)."""
    return _SIZE.pack(len(payload)) + bytes(_COMPRESS[code](payload))  # type: ignore[call-overload]


def inflated_bytes_max(max_message_bytes: int) -> int:
    """The most a compressed batch of a topic may declare: its max_message_bytes, but
    never less than ``inflated_bytes_floor``."""
    return max(max_message_bytes, inflated_bytes_floor)


def inflated_size(data: bytes | memoryview) -> int:
    """The uncompressed payload size a whole compressed batch ``data`` declares."""
    header = decode_header(data)
    content = stored_content(header, memoryview(data)[crc_start:])
    return int(_SIZE.unpack_from(content)[0])


_BIN_PREFIX = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # msgpack bin8/16/32: bytes of the length


def stored_content(header: BatchHeader, batch_tail: bytes | memoryview) -> memoryview:
    """The payload of a stored batch as its encoder made it, framing removed: msgpack
    columns, or (compressed) the size and the codec's stream. ``batch_tail`` is bytes
    [17, end) of the batch. Raises ValueError naming the problem if a magic-2 frame is
    malformed (no trailer, a compressed payload that is not one msgpack bin).
    Pure; no copy.
    """
    payload = memoryview(batch_tail)[header_bytes - crc_start :]
    if header.magic == magic_v1:
        return payload
    if payload[-2:] != frame_trailer:
        raise ValueError("it does not end with the frame trailer c4 39")
    payload = payload[:-2]
    if not header.attributes & opaque_payload_mask:
        return payload
    width = _BIN_PREFIX.get(payload[0]) if len(payload) else None
    if width is None or len(payload) < 1 + width:
        raise ValueError("its compressed payload is not framed as a msgpack bin")
    size = int.from_bytes(payload[1 : 1 + width], "big")
    if 1 + width + size != len(payload):
        raise ValueError(f"its compressed payload's frame declares {size} bytes, "
                         f"holds {len(payload) - 1 - width}")
    return payload[1 + width :]


def inflate(header: BatchHeader, payload: memoryview, limit_bytes: int) -> bytearray:
    """The msgpack payload of a compressed batch, allocating at most its declared size.

    Raises ValueError naming the problem (the caller, which knows the file, makes it
    a CorruptLogError) if the codec is unknown; if the declared size exceeds
    ``limit_bytes`` or what the codec can make of this many compressed bytes
    (``_RATIO_MAX``): refused before anything is allocated; or if the stream is
    not valid data of exactly the declared size. Cost: one allocation of the
    declared size, one decompression call.
    """
    code = header.attributes & compression_mask
    decompress_into = _DECOMPRESS_INTO.get(code)
    if decompress_into is None:
        raise ValueError(
            f"it names compression code {code}, none of Kafka's "
            f"({', '.join(f'{v} {k}' for k, v in COMPRESSION_CODES.items())})"
        )
    if len(payload) < _size_bytes:
        raise ValueError("it is compressed but too short to hold its uncompressed size")
    size = _SIZE.unpack_from(payload)[0]
    stream_bytes = len(payload) - _size_bytes
    if size > limit_bytes:
        raise ValueError(
            f"it declares {size} bytes uncompressed, over the limit of {limit_bytes} (the "
            "topic's max_message_bytes, at least 32 MiB): not decompressed"
        )
    if size > stream_bytes * _RATIO_MAX[code] + _ratio_slack_bytes:
        raise ValueError(
            f"it declares {size} bytes uncompressed from {stream_bytes} bytes, more than "
            f"{_NAMES[code]} can inflate that many to: not decompressed"
        )
    out = bytearray(size)
    try:
        written = decompress_into(payload[_size_bytes:], out)
    except cramjam.DecompressionError as exc:
        raise ValueError(f"it does not decompress to the {size} bytes it declares ({exc})"
                         ) from exc
    if written != size:
        raise ValueError(f"it decompresses to {written} bytes but declares {size}")
    return out


def decode_columns(
    header: BatchHeader, batch_tail: bytes, inflated_bytes_max: int = inflated_bytes_floor
) -> Columns:
    """Decode the payload; ``batch_tail`` is bytes [17, end) of the batch (CRC-checked).

    ``inflated_bytes_max``: the most a compressed payload may declare (see
    ``inflated_bytes_max()``); more is refused before anything is allocated.
    Raises (msgpack's, or) ValueError naming the problem if the payload is not
    what the header promises (``inflate``, ``check_columns``): a CRC-valid batch
    may still be nonsense; Segment's ``decode_stored`` makes them CorruptLogError
    naming the file. Cost: one decompression call if compressed, one msgpack
    call, O(1) checks.
    """
    return columns_of_content(header, stored_content(header, batch_tail), inflated_bytes_max)


def columns_of_content(
    header: BatchHeader, content: memoryview, inflated_bytes_max: int = inflated_bytes_floor
) -> Columns:
    """The Columns of a stored payload, its framing removed (``stored_content``):
    inflated if compressed, then decoded. Raises ValueError as ``decode_columns``."""
    if header.attributes & attr_kafka_records:
        return _kafka_columns(header, content)
    if header.attributes & attr_record_frames:
        return _framed_columns(header, content)
    if header.attributes & compression_mask:
        content = inflate(header, content, inflated_bytes_max)  # type: ignore[assignment]
    return columns_of(header, _unpackb(content, use_list=False))


def columns_of(header: BatchHeader, decoded: Any) -> Columns:
    """The Columns of the msgpack object ``decoded`` (an uncompressed payload, decoded)
    of the batch ``header``. Raises ValueError naming the problem if it is not what
    the header promises. Cost: O(1) checks (O(records) for compacted offsets).
    """
    base = header.base_offset
    if header.attributes & attr_record_frames:  # the frames are read from their bytes
        raise ValueError("it is framed: its frames must be decoded from its bytes")
    if len(decoded) != 5:  # the single-record form: [timestamp, key, value(, headers)]
        # Checked inline: this is the decode of every send() with linger_ms=0.
        if not (type(decoded) is tuple and 3 <= len(decoded) <= 4
                and header.record_count == 1 and header.last_offset_delta == 0
                and type(decoded[0]) is int
                and (decoded[1] is None or type(decoded[1]) is bytes)
                and (decoded[2] is None or type(decoded[2]) is bytes)
                and (len(decoded) == 3 or type(decoded[3]) is tuple)):
            raise ValueError(_single_record_problem(header, decoded))
        return Columns(
            range(base, base + 1), (decoded[0],), (decoded[1],), (decoded[2],),
            (decoded[3],) if len(decoded) == 4 else None,
        )
    timestamps, keys, values, headers, deltas = decoded  # type: ignore[misc]
    if deltas is None:
        offsets: Sequence[int] = range(base, base + header.record_count)
    else:
        offsets = [base + d for d in deltas]
    cols = Columns(offsets, timestamps, keys, values, headers)
    check_columns(header, cols)
    return cols


def _kafka_columns(header: BatchHeader, payload: memoryview) -> Columns:
    """A Kafka records payload's columns, decoded when first used (kafka_records)."""
    count = header.record_count
    if header.attributes & compression_mask or count < 1 or header.last_offset_delta != count - 1:
        raise ValueError("its Kafka records are compressed, empty or not dense")
    base = header.base_offset
    return Columns(range(base, base + count), *kafka_records.lazy_columns(
        bytes(payload), count, base, header.base_timestamp))


def check_columns(header: BatchHeader, cols: Columns) -> None:
    """Raise ValueError naming the problem unless ``cols`` has the shape ``header``
    promises: ``record_count`` records in every column, offsets inside the batch
    and (compacted batches) strictly increasing, a dense batch ending at its
    ``last_offset_delta`` (``decode_columns`` checks the single-record form).

    A CRC-valid batch can still be nonsense (a foreign or hostile writer): this is
    what keeps it from reading as other offsets or other records. Cost: O(1) per
    batch, O(records) only for the ``offset_deltas`` of compacted batches; the
    types of keys and values are not checked (that would cost a quarter of a read).
    """
    count = header.record_count
    offsets, timestamps, keys, values, headers = cols
    if not (type(timestamps) is type(keys) is type(values) is tuple
            and len(timestamps) == len(keys) == len(values) == len(offsets) == count):
        raise ValueError(f"its columns do not each hold {count} records")
    if headers is not None and (type(headers) is not tuple or len(headers) != count):
        raise ValueError(f"its headers column does not hold {count} records")
    attributes = header.attributes
    if type(offsets) is range:
        if header.last_offset_delta != count - 1 and not attributes & attr_compacted:
            raise ValueError(f"it holds {count} dense records but its last offset delta is "
                             f"{header.last_offset_delta}")
        return
    if not attributes & attr_compacted:
        raise ValueError("it carries offset deltas but is not a compacted batch")
    if any(type(o) is not int for o in offsets) or sorted(set(offsets)) != list(offsets):
        raise ValueError("its offset deltas are not strictly increasing integers")
    if count and not header.base_offset <= offsets[0] <= offsets[-1] <= header.last_offset:
        raise ValueError("its offset deltas lie outside the batch")


def _single_record_problem(header: BatchHeader, decoded: object) -> str:
    """What is wrong with a payload in the single-record form (the error path only)."""
    if type(decoded) is not tuple or len(decoded) not in (3, 4):
        return "its payload is neither 5 columns nor one record"
    if header.record_count != 1 or header.last_offset_delta != 0:
        return (f"it holds one record in the single-record form but its header says "
                f"{header.record_count} record(s), last offset delta {header.last_offset_delta}")
    if type(decoded[0]) is not int:
        return "its timestamp is not an integer"
    if len(decoded) == 4 and type(decoded[3]) is not tuple:
        return "its headers are not an array"
    return "its key or value is neither bytes nor nil"


def records_from(offsets: Sequence[int], offset: int) -> int:
    """How many of a batch's (increasing) ``offsets`` are at or above ``offset``. O(log n)."""
    if isinstance(offsets, range):
        return len(offsets) - min(max(offset - offsets.start, 0), len(offsets))
    return len(offsets) - bisect_left(offsets, offset)


def delete_horizon_ms(header: BatchHeader) -> int:
    """The batch's delete horizon (ms), or -1 if the cleaner has not stamped one."""
    return header.base_timestamp if header.attributes & attr_delete_horizon else -1


def encode_retained(
    original: BatchHeader,
    columns: Columns,
    *,
    delete_horizon_ms: int = -1,
) -> bytes:
    """Re-encode what the cleaner keeps of ``original`` as a compacted batch.

    ``columns`` holds the kept records (possibly none: a producer's last batch or a
    segment's last batch survives empty). The batch keeps the original's base
    offset, last_offset_delta, attributes and producer fields, gains the compacted
    bit, and carries ``offset_deltas`` unless the kept offsets are dense from the
    base offset. ``delete_horizon_ms`` >= 0 sets bit 7 and stores it in
    base_timestamp. Pure. Cost: one msgpack call (one compression call), one CRC.
    """
    base = original.base_offset
    offsets = columns.offsets
    count = len(offsets)
    assert count <= original.record_count
    assert count == 0 or offsets[-1] <= original.last_offset
    dense = count == 0 or (offsets[0] == base and offsets[-1] == base + count - 1)
    deltas = None if dense else [o - base for o in offsets]
    attributes = (original.attributes | attr_compacted) & ~(
        attr_delete_horizon | attr_kafka_records | attr_record_frames)
    if delete_horizon_ms >= 0:
        attributes |= attr_delete_horizon
    payload = _payload(attributes, [columns.timestamps, columns.keys, columns.values,
                                    columns.headers, deltas])
    max_ts = max(columns.timestamps) if count else original.max_timestamp
    if delete_horizon_ms >= 0:
        base_ts = delete_horizon_ms
    else:
        base_ts = columns.timestamps[0] if count else max_ts
    return pack_batch(
        payload, base_offset=base, attributes=attributes,
        last_offset_delta=original.last_offset_delta, base_timestamp=base_ts,
        max_timestamp=max_ts, producer_id=original.producer_id,
        producer_epoch=original.producer_epoch, base_sequence=original.base_sequence,
        record_count=count,
    )[0]


def restamp(data: bytes, *, attributes: int, base_timestamp: int) -> bytes:
    """``data`` (one whole batch) with new attributes and base_timestamp and its CRC
    recomputed; the records are not touched. Pure. Cost: one CRC over the batch.

    The cleaner uses it to mark a batch it keeps whole as compacted, or to stamp a
    delete horizon, without decoding and re-encoding the records.
    """
    header = decode_header(data)
    body = memoryview(data)[header_bytes:]  # as stored: its magic's framing is kept
    tail = _TAIL.pack(attributes, header.last_offset_delta, base_timestamp,
                      header.max_timestamp, header.producer_id, header.producer_epoch,
                      header.base_sequence, header.record_count)
    crc = _crc32(body, _crc32(tail))
    return _HEAD.pack(header.base_offset, header.batch_length, header.magic, crc) + tail + body


# ---------------------------------------------------------------------- control batches
# A control batch ends a transaction in a partition (Kafka's ControlRecordType, KIP-98;
# docs/storage.md, "Transactions in the log"): attributes transactional + control, one
# record whose key is ``int16 version (0) + int16 type`` and whose value is
# ``int16 version (0) + int32 coordinator epoch``.

CONTROL_KEY = struct.Struct(">hh")  # version, type
CONTROL_VALUE = struct.Struct(">hi")  # version, coordinator epoch
control_abort = 0
control_commit = 1
control_version = 0
marker_attributes = attr_control | attr_transactional


def encode_marker(base_offset: int, timestamp_ms: int, producer_id: int, producer_epoch: int,
                  commit: bool, coordinator_epoch: int = 0) -> bytes:
    """One control batch ending ``producer_id``'s transaction. Pure."""
    key = CONTROL_KEY.pack(control_version, control_commit if commit else control_abort)
    value = CONTROL_VALUE.pack(control_version, coordinator_epoch)
    return encode_batch(
        base_offset, [timestamp_ms], [key], [value], attributes=marker_attributes,
        producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=-1,
    )


def marker_type(key: bytes | None) -> int:
    """``control_commit`` or ``control_abort`` from a control record's key.

    Raises ValueError naming the problem for any other key (the caller names the file).
    """
    if type(key) is not bytes or len(key) != CONTROL_KEY.size:
        raise ValueError(f"its control record key {key!r} is not 4 bytes")
    version, kind = CONTROL_KEY.unpack(key)
    if version != control_version or kind not in (control_abort, control_commit):
        raise ValueError(f"its control record has version {version} type {kind}, "
                         "not a version 0 commit (1) or abort (0) marker")
    return int(kind)
