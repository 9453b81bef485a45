"""Checking stored bytes end to end (``eventlog verify``) and printing them
(``eventlog dump``), without changing a byte.

``verify_log`` walks every batch of every segment of a partition log (its own or a
FollowedLog: only what the writer published), and checks, without decoding the
records:

* each batch header is plausible (magic, lengths inside the file, counts) and its
  CRC matches (the CRC covers every record byte: see docs/storage.md);
* offsets are dense: each batch starts where the previous one ended (only a
  compacted batch may start later), the first at the segment's base offset, and
  each segment ends where the next one starts;
* every ``.index`` entry names the position of a batch and that batch's last
  offset, entries strictly increase, and a sealed segment's index has no entry
  past its last batch or partial entry at its end;
* every ``.timeindex`` entry increases and bounds the timestamps of the records at
  or below its offset.

Cost: one CRC pass over the bytes (zlib's crc32, a few GB/s) and one header
unpack per batch; the index files are read once each.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from . import batch as codec
from .index import OFFSET_ENTRY, TIME_ENTRY
from .segment import Segment

__all__ = ["Damage", "VerifyReport", "dump_segment", "index_entries", "verify_log"]

_CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


class Damage(NamedTuple):
    file: str
    problem: str


class VerifyReport(NamedTuple):
    batches: int
    damage: list[Damage]


def verify_log(log: Any, *, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Check every segment of ``log`` (a PartitionLog or FollowedLog on disk)."""
    damage: list[Damage] = []
    batches = 0
    segments = list(log.segments)
    for i, seg in enumerate(segments):
        sealed = i + 1 < len(segments)
        batches += _verify_segment(seg, sealed, damage)
        if sealed and seg.next_offset != segments[i + 1].base_offset:
            damage.append(Damage(seg.path or "memory", (
                f"ends at offset {seg.next_offset} but the next segment starts at "
                f"{segments[i + 1].base_offset}: offsets are missing or overlap")))
        if progress is not None:
            progress(seg.size)
    return VerifyReport(batches, damage)


def _verify_segment(seg: Segment, sealed: bool, damage: list[Damage]) -> int:
    path = seg.path
    size = seg.size
    if path is None or size == 0:
        return 0
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)
        try:
            return _walk(view, seg, sealed, path, damage)
        finally:
            view.release()


def _walk(buf: memoryview, seg: Segment, sealed: bool, path: str,
          damage: list[Damage]) -> int:
    size = len(buf)
    assert (codec.magic_v1, codec.magic_v2) == (1, 2)
    unpack = codec.HEADER.unpack_from
    crc32 = zlib.crc32
    compacted = codec.attr_compacted
    offsets = _index_file(path[:-4] + ".index", OFFSET_ENTRY, sealed, damage)
    times = _index_file(path[:-4] + ".timeindex", TIME_ENTRY, sealed, damage)
    _check_increasing(path, offsets, times, damage)
    base_offset = seg.base_offset
    j = k = 0  # the next offset / time index entry to meet
    # Where the next entry applies (byte / offset); past the end when there is none.
    next_entry_position = offsets[0][1] if offsets else size
    next_time_offset = base_offset + times[0][1] if times else 2**63
    expected = base_offset
    max_ts = -1
    position = 0
    walked = 0
    min_length = codec.header_bytes - codec.length_prefix_bytes
    prefix = codec.length_prefix_bytes
    crc_start = codec.crc_start
    while position < size:
        if position + codec.header_bytes > size:
            damage.append(Damage(path, f"a partial batch header at byte {position}"))
            break
        (base, length, magic, crc, attrs, lod, _bts, mts, _pid, _pep, _seq,
         count) = unpack(buf, position)
        end = position + length + prefix
        if (not 1 <= magic <= 2 or length < min_length or end > size or lod < 0 or lod < count - 1
                or (count <= 0 and not (count == 0 and attrs & compacted))):
            damage.append(Damage(path, f"no valid batch at byte {position} (offset "
                                       f"{expected} expected); the rest of the segment "
                                       "cannot be walked"))
            break
        last = base + lod
        if base != expected and not (base > expected and attrs & compacted):
            damage.append(Damage(path, f"the batch at byte {position} starts at offset {base}"
                                       f", expected {expected}: offsets are not dense"))
        if crc32(buf[position + crc_start:end]) != crc:
            damage.append(Damage(path, f"the batch at byte {position} (offsets {base}.."
                                       f"{last}) fails its CRC"))
        if mts > max_ts:
            max_ts = mts
        if next_entry_position <= position:
            while j < len(offsets) and offsets[j][1] <= position:
                rel, pos = offsets[j]
                if pos != position or base_offset + rel != last:
                    damage.append(Damage(path[:-4] + ".index", (
                        f"entry {j} ({rel}, {pos}) names no batch ending at offset "
                        f"{base_offset + rel} at byte {pos}")))
                j += 1
            next_entry_position = offsets[j][1] if j < len(offsets) else size
        if next_time_offset <= last:
            while k < len(times) and base_offset + times[k][1] <= last:
                ts, rel = times[k]
                if max_ts > ts and base_offset + rel == last:
                    damage.append(Damage(path[:-4] + ".timeindex", (
                        f"entry {k} says records up to offset {base_offset + rel} are at or "
                        f"before {ts}, but one is at {max_ts}")))
                k += 1
            next_time_offset = base_offset + times[k][1] if k < len(times) else 2**63
        expected = last + 1
        position = end
        walked += 1
    if sealed and j < len(offsets):
        damage.append(Damage(path[:-4] + ".index", (
            f"{len(offsets) - j} entries past the last batch (the first: {offsets[j]})")))
    return walked


def _index_file(path: str, entry: struct.Struct, sealed: bool,
                damage: list[Damage]) -> list[tuple[int, int]]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    whole = len(data) - len(data) % entry.size
    if whole != len(data) and sealed:
        damage.append(Damage(path, f"{len(data) - whole} bytes of a partial entry at its end"))
    return list(entry.iter_unpack(data[:whole]))


def _check_increasing(path: str, offsets: list[tuple[int, int]],
                      times: list[tuple[int, int]], damage: list[Damage]) -> None:
    for i in range(1, len(offsets)):
        if offsets[i][0] <= offsets[i - 1][0] or offsets[i][1] <= offsets[i - 1][1]:
            damage.append(Damage(path[:-4] + ".index",
                                 f"entry {i} {offsets[i]} does not follow {offsets[i - 1]}"))
    for i in range(1, len(times)):
        if times[i][0] <= times[i - 1][0] or times[i][1] < times[i - 1][1]:
            damage.append(Damage(path[:-4] + ".timeindex",
                                 f"entry {i} {times[i]} does not follow {times[i - 1]}"))


# ---------------------------------------------------------------------- dump

def dump_segment(path: str, *, records: bool = False) -> Iterator[dict[str, Any]]:
    """Every batch of the ``.log`` at ``path`` as kafka-dump-log prints it, from byte 0
    to the first bytes that are not a batch (zeros: the preallocated tail). Reads
    with ``pread`` (never maps), so a file being written or trimmed is safe."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        position = 0
        while position + codec.header_bytes <= size:
            head = os.pread(fd, codec.header_bytes, position)
            header = codec.decode_header(head)
            if not codec.plausible(header, size - position):
                break
            data = os.pread(fd, header.total_bytes, position)
            tail = data[codec.crc_start:]
            valid = codec.verify_crc(tail, header)
            out: dict[str, Any] = {
                "baseOffset": header.base_offset, "lastOffset": header.last_offset,
                "count": header.record_count, "position": position,
                "CreateTime": header.max_timestamp, "size": header.total_bytes,
                "magic": header.magic,
                "compresscodec": _CODECS.get(header.attributes & codec.compression_mask, "?"),
                "crc": header.crc, "isvalid": valid,
                "producerId": header.producer_id, "producerEpoch": header.producer_epoch,
                "baseSequence": header.base_sequence,
                "isTransactional": bool(header.attributes & codec.attr_transactional),
                "isControl": bool(header.attributes & codec.attr_control),
            }
            if records and valid:
                cols = codec.decode_columns(header, tail, codec.inflated_bytes_floor)
                out["records"] = [
                    {"offset": o, "CreateTime": t, "key": k, "payload": v,
                     "headers": list(h) if h else []}
                    for o, t, k, v, h in zip(cols.offsets, cols.timestamps, cols.keys,
                                             cols.values, cols.headers or [()] * len(
                                                 cols.offsets))
                ]
            yield out
            position += header.total_bytes
    finally:
        os.close(fd)


def index_entries(path: str) -> list[dict[str, int]]:
    """The entries of a ``.index`` (offset, position) or ``.timeindex`` (timestamp,
    offset) file, relative offsets made absolute from the file name."""
    name = os.path.basename(path)
    base = int(name.split(".")[0]) if name.split(".")[0].isdigit() else 0
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".timeindex"):
        whole = data[: len(data) - len(data) % TIME_ENTRY.size]
        return [{"timestamp": ts, "offset": base + rel}
                for ts, rel in TIME_ENTRY.iter_unpack(whole)]
    whole = data[: len(data) - len(data) % OFFSET_ENTRY.size]
    return [{"offset": base + rel, "position": pos}
            for rel, pos in OFFSET_ENTRY.iter_unpack(whole)]
