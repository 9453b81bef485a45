"""Forged batches for tests: a valid header and CRC over a payload of our choosing.

A batch whose CRC checks out was written by *a* writer, not necessarily ours: these
helpers build such batches from the codec's own primitives (the header layout and the
CRC rule of storage/batch.py), so tests can check that nonsense which passes the CRC is
still refused as CorruptLogError.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgpack

from eventlog.storage import batch as codec


def forge(
    base_offset: int,
    payload: bytes,
    *,
    record_count: int = 1,
    last_offset_delta: int | None = None,
    attributes: int = 0,
    timestamp_ms: int = 0,
) -> bytes:
    """A batch at ``base_offset`` carrying ``payload`` as is, with a correct CRC."""
    header = codec.BatchHeader(
        base_offset, 0, codec.magic_v1, 0, attributes,
        record_count - 1 if last_offset_delta is None else last_offset_delta,
        timestamp_ms, timestamp_ms, -1, -1, -1, record_count,
    )
    return reforge(header, payload)


def reforge(header: codec.BatchHeader, payload: bytes, **changes: Any) -> bytes:
    """The batch ``header`` describes (with ``changes`` to its fields), carrying
    ``payload``; the length and CRC are recomputed for it."""
    h = header._replace(**changes)
    tail = codec.HEADER.pack(*h)[codec.crc_start:]  # attributes .. record_count
    crc = zlib.crc32(payload, zlib.crc32(tail))
    length = codec.header_bytes - codec.length_prefix_bytes + len(payload)
    head = codec.HEADER.pack(h.base_offset, length, codec.magic_v1, crc, *h[4:])
    return head[: codec.crc_start] + tail + payload


def payload_of(batch: bytes) -> bytes:
    return batch[codec.header_bytes:]


def packb(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)
