"""A segment: one ``.log`` file of batches plus its ``.index`` and ``.timeindex``.

Files are named by the segment's base offset (20 digits, as Kafka's
LogFileUtils). The ``.log`` is a sequence of batches (see batch.py) followed by
zeros up to the mapped capacity; nothing else. A segment knows offsets and
bytes only: no topic, partition or client.

Opening a segment either trusts it (after a clean close: the file was trimmed
to exactly its batches) or recovers it: scan batches from a known-good
position, check each header and CRC, and cut at the first torn, corrupt or
zero-filled batch (Kafka's LogSegment.recover). Either way only the bytes after
the last index entry on file are read: O(index_interval_bytes) after a clean
close, at most ``index_pending_log_bytes_max`` (1 MiB) more after a crash (index
entries not yet written), never the whole segment unless its files disagree.

Writers are serialised by the owner (the partition lock); readers run
concurrently and never see a partly written batch, because ``size`` and
``next_offset`` are published only after the bytes are in the map.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator

from ..errors import CorruptLogError, OffsetOutOfRangeError
from . import batch as codec
from .batch import BatchHeader, Columns
from .batch_cache import BatchCache, new_token
from .files import Files, MappedFile, os_files, segment_file_name
from .frame_reads import FramePointReads
from .index import OffsetIndex, TimeIndex
from .loader import RecoveredSegment, SegmentRecovery

__all__ = ["RecoveredSegment", "Segment", "decode_stored"]

_time_index_load_lock = threading.Lock()  # first loads of any segment's time index
# What find_position's walk reads of each header: base_offset, batch_length, magic,
# last_offset_delta (bytes 0, 8, 12 and 19).
_WALK = struct.Struct(">qiB6xi")
_length_min = codec.header_bytes - codec.length_prefix_bytes


def decode_stored(
    header: BatchHeader, batch_tail: bytes | memoryview, position: int, path: str | None,
    inflated_bytes_max: int = codec.inflated_bytes_floor,
) -> Columns:
    """Decode a stored batch whose CRC checked out.

    Every failure is the stored bytes' fault (a CRC-valid batch with a nonsense
    payload: wrong msgpack, a compression flag over data that is not compressed,
    a declared uncompressed size over ``inflated_bytes_max``), so every one is
    CorruptLogError naming the file, byte and offsets, never a ValueError that a
    reader could take for a segment deleted under it.
    """
    try:
        return codec.decode_columns(header, batch_tail, inflated_bytes_max)  # type: ignore[arg-type]
    except CorruptLogError:
        raise
    except Exception as exc:  # msgpack, decompression and shape errors: all from the bytes
        raise CorruptLogError(
            f"batch at byte {position} of {path or 'memory segment'} (offsets "
            f"{header.base_offset}..{header.last_offset}) passes its CRC but cannot be "
            f"decoded: {exc}"
        ) from exc


class Segment(SegmentRecovery, FramePointReads):
    """``.log`` + ``.index`` + ``.timeindex`` for offsets ``[base_offset, next_offset)``.

    Opening (``load``, ``scan``, ``recover``, ``follow``) is SegmentRecovery's, in
    storage/loader.py; the point read of one record (``point_at``) and the memory of
    CRC checks are FramePointReads', in storage/frame_reads.py; appending,
    truncating, reading and closing are here."""

    __slots__ = (
        "_bytes_since_index",
        "_cache_token",
        "_checked",
        "_index_interval_bytes",
        "_keep_file_bytes",
        "_log",
        "_read_only",
        "_time_index",
        "_timeindex_path",
        "base_offset",
        "batch_cache",
        "created_ms",
        "damaged",
        "files",
        "first_max_timestamp",
        "index",
        "inflated_bytes_max",
        "max_timestamp",
        "next_offset",
        "size",
        "verified",
    )

    def __init__(
        self,
        directory: str | None,
        base_offset: int,
        *,
        segment_bytes: int,
        index_interval_bytes: int,
        created_ms: int,
        trusted: bool = True,
        inflated_bytes_max: int = codec.inflated_bytes_floor,
        files: Files = os_files,
        read_only: bool = False,
        batch_cache: BatchCache | None = None,
    ) -> None:
        """Open (creating if absent) the segment files; call ``load`` or ``recover`` next.

        On failure (a full disk: StorageError with ENOSPC) the files this call
        created are removed again, so a failed roll leaves no empty segment behind.

        ``inflated_bytes_max``: the most a compressed batch may declare when read
        (batch.py's ``inflated_bytes_max``); more is CorruptLogError.
        ``read_only``: the files of a log another process writes, mapped and read
        but never created, written or trimmed; call ``load`` (a sealed segment) or
        ``follow`` (the writer's active one) next.

        ``batch_cache``: the partition's cache of decoded batches for point reads
        (batch_cache.py), shared by its segments; None: no caching.
        """
        self.base_offset = base_offset
        self.batch_cache = batch_cache
        self._cache_token = new_token()
        self.inflated_bytes_max = inflated_bytes_max
        self._index_interval_bytes = index_interval_bytes
        self.created_ms = created_ms

        def path(suffix: str) -> str | None:
            if directory is None:
                return None
            return os.path.join(directory, segment_file_name(base_offset, suffix))

        self.files = files
        self._read_only = read_only
        log_path, index_path = path(".log"), path(".index")
        existed = log_path is not None and files.exists(log_path)
        self._log = MappedFile(log_path, capacity_max_bytes=segment_bytes,
                               create=not read_only, files=files, read_only=read_only)
        try:
            self.index = OffsetIndex(index_path, trusted=trusted, files=files,
                                     read_only=read_only)
        except BaseException:
            self._log.close()
            if not existed and log_path is not None and not read_only:
                try:
                    files.unlink(log_path)
                except OSError:
                    pass
            raise
        self._timeindex_path = path(".timeindex")
        self._time_index: TimeIndex | None = None
        self.size = 0
        self.verified = 0  # bytes below: CRC-checked or appended here (run_reads.py)
        # Batches above ``verified`` whose CRC a point read checked: (token, position,
        # crc) keys, oldest first out (see ``_crc_checked``).
        self._checked: dict[tuple[int, int, int], None] = {}
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.first_max_timestamp = -1
        self._bytes_since_index = 0
        self._keep_file_bytes = 0  # close() trims to no less (a damaged segment)
        self.damaged = False  # opening found it ends early or is unreadable: see scan()

    def _header_at(self, position: int, limit: int) -> BatchHeader | None:
        """The header at ``position`` if it plausibly starts a whole batch before ``limit``."""
        if position < 0 or position + codec.header_bytes > limit:  # < 0: a damaged index
            return None
        header = codec.make_header(self._log.unpack_from(codec.HEADER, position))
        return header if codec.plausible(header, limit - position) else None

    # ------------------------------------------------------------------ writing

    def append(self, data: bytes, header: BatchHeader) -> None:
        """Append one encoded batch. Caller holds the partition lock and checked roll rules.

        The hot path of every append: kept flat.
        """
        position = self.size
        n = len(data)
        end = position + n
        log = self._log
        if end > log.capacity:
            log.ensure(end)
        log.write(position, data)
        since = self._bytes_since_index
        if since > self._index_interval_bytes and position:  # entry_due, inlined
            self._maybe_index(header, position)
            since = 0
        self._bytes_since_index = since + n
        if self.verified == position:  # these bytes are ours: no read need check them
            self.verified = end
        self.size = end  # publish: size, then next_offset
        self.next_offset = header.base_offset + header.last_offset_delta + 1
        timestamp = header.max_timestamp
        if timestamp > self.max_timestamp:
            self.max_timestamp = timestamp
        if not position:
            self.first_max_timestamp = timestamp

    @property
    def time_index(self) -> TimeIndex:
        """The time index, loaded on first use (open does not need it).

        A lock-free reader (``offset_for_time``) and the writer may ask at once:
        the load is serialised, so both get the one instance the writer appends to.
        """
        time_index = self._time_index
        if time_index is None:
            with _time_index_load_lock:
                time_index = self._time_index
                if time_index is None:
                    time_index = self._time_index = (
                        TimeIndex(self._timeindex_path, self.files, read_only=True)
                        if self._read_only else TimeIndex(self._timeindex_path, self.files))
        return time_index

    def truncate_to(self, offset: int) -> int:
        """Remove every record at or above ``offset``; returns bytes removed.

        A batch that straddles ``offset`` is re-encoded with its records below it.
        Caller holds the partition lock.
        """
        assert self.base_offset <= offset < self.next_offset
        self._cache_token = new_token()  # the batches cut (or re-encoded) must not be hit
        position = self.find_position(offset)
        header = self._header_at(position, self.size)
        assert header is not None
        old_size = self.size
        keep = b""
        if header.base_offset < offset:
            keep = codec.encode_prefix(header, self._decode_at(position, header), offset)
        self._log.zero(position, old_size)
        self.verified = min(self.verified, position)
        self.size = position
        self._rescan()
        self.index.truncate_after_position(position)
        self.time_index.truncate_after_offset(offset - 1 - self.base_offset)
        if keep:
            self.append(keep, codec.decode_header(keep))
        return old_size - self.size

    # ------------------------------------------------------------------ reading

    def _headers_from(self, position: int, limit: int) -> Iterator[tuple[BatchHeader, int]]:
        while position < limit:
            header = self._header_at(position, limit)
            if header is None:
                raise CorruptLogError(
                    f"no valid batch at byte {position} of {self._log.path or 'memory segment'}"
                    f" (base offset {self.base_offset}); the log is damaged before its tail"
                )
            yield header, position
            position += header.total_bytes

    def find_position(self, offset: int) -> int:
        """Position of the batch holding ``offset`` (or the first batch after it).

        O(log index entries) + a walk of at most ``index_interval_bytes`` of headers.
        """
        return self._find(offset)[0]

    def _find(self, offset: int) -> tuple[int, BatchHeader | None]:
        """``find_position``, with the (checked) header found there; None at the end.

        The walk reads four fields a header (``_WALK``: one C call) and checks what
        it steps by (magic, a length inside the segment); the header it stops at is
        checked in full. Anything odd on the way falls back to ``_headers_from``,
        which raises CorruptLogError at the damage.
        """
        size = self.size
        start = self.index.lookup(offset - self.base_offset)
        position = start
        if position >= 0:
            unpack = _WALK.unpack_from
            buf = self._log.buffer  # ValueError once closed, as every read of the map
            while position + codec.header_bytes <= size:
                base, length, magic, last_delta = unpack(buf, position)
                if (magic != codec.magic_v2 and magic != codec.magic_v1) or length < _length_min:
                    break
                if base + last_delta >= offset:
                    header = self._header_at(position, size)
                    if header is not None:
                        return position, header
                    break
                position += length + codec.length_prefix_bytes
            else:
                if position == size:
                    return size, None
        for header, pos in self._headers_from(start, size):
            if header.last_offset >= offset:
                return pos, header
        return size, None

    def batch_at(self, offset: int) -> tuple[BatchHeader, Columns] | None:
        """The decoded batch holding ``offset`` (or the first after it), None past the
        last batch: the point read of ``read_key``, without ``read``'s limits.

        Looked up in the ``batch_cache`` first; a batch of more than one record is
        offered to it (``admit``: a later point read into it can then be a slice). Lock-free. Raises
        CorruptLogError for a damaged batch, OffsetOutOfRangeError if the segment
        was closed under the read (deleted or replaced).
        """
        try:
            position, header = self._find(offset)
            if header is None:
                return None
            return self._batch_found(position, header)
        except ValueError as exc:
            if not self._log.closed:
                raise
            raise OffsetOutOfRangeError(
                f"offset {offset} was removed (segment {self.base_offset} deleted) while reading"
            ) from exc

    def _batch_found(self, position: int, header: BatchHeader) -> tuple[BatchHeader, Columns]:
        """``batch_at``'s decode of the batch ``_find`` found (``header`` at ``position``)."""
        cache = self.batch_cache
        if cache is None:
            return header, self._decode_at(position, header)
        token = self._cache_token
        cols = cache.get(token, position, header)
        if cols is not None:
            cache.hits += 1
            return header, cols
        cache.misses += 1
        cols = self._decode_at(position, header)
        if header.record_count > 1:
            cache.admit(token, position, header, cols)
        return header, cols

    def _decode_at(self, position: int, header: BatchHeader) -> Columns:
        cols = self._decode_if_valid(position, header)
        if cols is None:
            raise CorruptLogError(
                f"batch at byte {position} of {self._log.path or 'memory segment'} "
                f"(offsets {header.base_offset}..{header.last_offset}) fails its CRC"
            )
        return cols

    def _decode_if_valid(self, position: int, header: BatchHeader) -> Columns | None:
        """The batch's columns if it passes its CRC (not computed below ``verified``,
        bytes checked or appended by this process, nor for a batch a framed point read
        checked before: ``_crc_checked``), else None; CorruptLogError if a CRC-valid batch
        does not decode to what its header promises."""
        tail = self._log.read(position + codec.crc_start, header.batch_length - 5)
        end = position + header.total_bytes
        if end > self.verified and not self._crc_checked(position, header, tail, False):
            return None
        return decode_stored(header, tail, position, self._log.path, self.inflated_bytes_max)

    def batch_at_position(self, offset: int, position: int) -> tuple[BatchHeader, Columns] | None:
        """The decoded batch at ``position`` if a whole batch holding ``offset`` starts
        there and passes its CRC; None otherwise. Raises ValueError if the map is
        closed, CorruptLogError if that batch cannot be decoded."""
        size = self.size
        if position < 0 or position + codec.header_bytes > size:
            return None
        header = codec.make_header(self._log.unpack_from(codec.HEADER, position))
        if not (header.base_offset <= offset <= header.last_offset
                and codec.plausible(header, size - position)):
            return None
        cols = self._decode_if_valid(position, header)
        if cols is None:
            return None  # a stale position, or damage: the generic read decides which
        return header, cols

    def read(
        self, offset: int, max_records: int, max_bytes: int
    ) -> list[tuple[BatchHeader, Columns]]:
        """Decoded batches from the one holding ``offset``, until ``max_records`` records
        at or above ``offset`` or ``max_bytes`` of batches (at least one batch) are read.

        Lock-free. Cost: O(log entries) to find the start, then one CRC, one
        msgpack call (and one decompression call) per batch. Raises CorruptLogError if
        the first batch to read is damaged; damage after it ends the read early.

        With a ``batch_cache``: the first batch is looked up in it (O(1): no CRC, no
        decode on a hit), and a batch the read used only part of (it starts inside
        the first batch, or its record limit ends inside the last) is offered to it
        (``put`` after a read of several records, ``admit`` after a point read), so
        the next read into that batch can be a hit. Whole batches are not cached.
        """
        try:
            size = self.size
            position = self.find_position(offset)
            out: list[tuple[BatchHeader, Columns]] = []
            records = 0
            read_bytes = 0
            cache = self.batch_cache
            partial = None  # (position, header, columns) of a batch used only in part
            hit = False
            try:
                for header, pos in self._headers_from(position, size):
                    cols = None
                    if cache is not None and not out:
                        cols = cache.get(self._cache_token, pos, header)
                        hit = cols is not None
                        if hit:
                            cache.hits += 1
                        else:
                            cache.misses += 1
                    if cols is None:
                        cols = self._decode_at(pos, header)
                        if cache is not None and not out and offset > header.base_offset:
                            partial = (pos, header, cols)
                    out.append((header, cols))
                    records += codec.records_from(cols.offsets, offset)  # compaction: gaps
                    read_bytes += header.total_bytes
                    if records >= max_records or read_bytes >= max_bytes:
                        if (cache is not None and partial is None and records > max_records
                                and not (hit and len(out) == 1)):
                            partial = (pos, header, cols)  # the limit ends inside it
                        break
            except CorruptLogError:
                if not out:
                    raise
                # Return the batches before the damage; the next read, starting at
                # it, raises (so a consumer gets every record before it first).
            if partial is not None:
                if max_records > 1:  # a bulk read stopped inside: the next one starts there
                    cache.put(self._cache_token, *partial)  # type: ignore[union-attr]
                else:
                    cache.admit(self._cache_token, *partial)  # type: ignore[union-attr]
            return out
        except ValueError as exc:
            if not self._log.closed:
                raise  # a bug: every error from the bytes is CorruptLogError already
            # The map was closed under us: the segment was deleted or replaced.
            raise OffsetOutOfRangeError(
                f"offset {offset} was removed (segment {self.base_offset} deleted) while reading"
            ) from exc

    def read_batch(self, position: int, header: BatchHeader) -> bytes:
        """The whole batch at ``position`` (``header`` is its header), as stored. Lock-free.

        Raises ValueError if the segment was closed meanwhile (deleted or replaced).
        """
        return self._log.read(position, header.total_bytes)

    def headers(self) -> Iterator[tuple[BatchHeader, int]]:
        """Every batch header in the segment, with its position."""
        return self._headers_from(0, self.size)

    def offset_for_time(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= ``timestamp_ms``."""
        if self.max_timestamp < timestamp_ms:
            return None
        below = self.time_index.last_below(timestamp_ms)
        start = 0 if below is None else self.index.lookup(below + 1)
        for header, pos in self._headers_from(start, self.size):
            if header.max_timestamp < timestamp_ms:
                continue
            cols = self._decode_at(pos, header)
            try:
                for off, ts in zip(cols.offsets, cols.timestamps):
                    if ts >= timestamp_ms:
                        return off, ts
            except TypeError as exc:  # a CRC-valid batch with a timestamp of another type
                raise CorruptLogError(
                    f"batch at byte {pos} of {self._log.path or 'memory segment'} (offsets "
                    f"{header.base_offset}..{header.last_offset}) holds a timestamp that is "
                    "not an integer"
                ) from exc
        return None

    # ------------------------------------------------------------------ lifecycle

    def flush(self) -> None:
        """Make the written bytes and index entries durable (msync; write the pending
        index entries, time index first as ``_write_indexes``; fsync)."""
        self._log.flush()
        if self._time_index is not None:
            self._time_index.fsync()
        self.index.fsync()

    def sync_data(self) -> None:
        """fdatasync the ``.log`` only (fsync="always"): its batches are what an
        acknowledgement promises; indexes are rebuilt by recovery if they lag."""
        self._log.sync_data()

    def seal(self) -> None:
        """The segment will take no more appends: sync its index files and release
        their descriptors (they reopen if a truncation ever needs them). The sync
        keeps ``close()``'s promise that everything is on disk before the
        clean-shutdown marker, since a released descriptor has nothing to fsync.
        """
        for index in (self._time_index, self.index):  # fsync writes pending entries
            if index is not None:
                index.fsync()
                index.release()

    def close(self) -> None:
        """Unmap and trim the ``.log`` to its batches, write the pending index entries
        and close the index files (read-only: unmap and close only). Idempotent."""
        self._cache_token = new_token()
        if self._read_only:
            self.detach()
            return
        if not self._log.closed:
            self._log.close(trim_to=max(self.size, self._keep_file_bytes))
        if self._time_index is not None:
            self._time_index.close()
        self.index.close()

    def detach(self) -> None:
        """Unmap and close without touching the files: the log cleaner replaced or
        removed them (storage/cleaner.py). Only for a sealed segment, whose index
        entries are all on file already. Idempotent.
        """
        self._cache_token = new_token()
        if not self._log.closed:
            self._log.close()
        self.index.close()
        if self._time_index is not None:
            self._time_index.close()

    @property
    def closed(self) -> bool:
        return self._log.closed

    @property
    def file_bytes(self) -> int:
        """Size of the ``.log`` file when it was opened (trimmed to its batches on close)."""
        return self._log.file_bytes_at_open

    def delete(self) -> None:
        """Close and remove the segment's files."""
        self.close()
        for path in (self._log.path, self.index_path, self._timeindex_path):
            if path is not None:
                try:
                    self.files.unlink(path)
                except FileNotFoundError:
                    pass

    @property
    def path(self) -> str | None:
        """The ``.log`` file (None in memory)."""
        return self._log.path

    @property
    def index_path(self) -> str | None:
        return None if self._log.path is None else self._log.path[: -len(".log")] + ".index"

    def check(self) -> None:
        """Assert the segment's invariants (tests call this after every step)."""
        check_segment(self)

    def __repr__(self) -> str:
        return (
            f"Segment(base_offset={self.base_offset}, next_offset={self.next_offset}, "
            f"size={self.size})"
        )


def check_segment(seg: Segment) -> None:
    """Assert the segment's invariants (``Segment.check``; tests call it after every step)."""
    seg.index.check()
    if seg._time_index is not None:
        seg._time_index.check()
    expected = None
    last_end = seg.base_offset
    max_ts = -1
    for header, _pos in seg.headers():
        if expected is not None:
            assert header.base_offset >= expected, "offsets not increasing"
        else:
            assert header.base_offset >= seg.base_offset
        expected = header.last_offset + 1
        last_end = expected
        max_ts = max(max_ts, header.max_timestamp)
    assert last_end == seg.next_offset, f"next_offset {seg.next_offset} != {last_end}"
    assert max_ts == seg.max_timestamp, f"max_timestamp {seg.max_timestamp} != {max_ts}"
    for rel, pos in zip(seg.index.offsets, seg.index.positions):
        assert pos < seg.size
        header = seg._header_at(pos, seg.size)
        assert header is not None and header.last_offset == seg.base_offset + rel
