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
from bisect import bisect_right
from collections.abc import Iterator
from typing import NamedTuple

from ..errors import CorruptLogError, OffsetOutOfRangeError
from . import batch as codec
from .batch import BatchHeader, Columns
from .batch_cache import BatchCache, new_token
from .files import Files, MappedFile, os_files, segment_file_name, storage_error
from .index import OffsetIndex, TimeIndex, entry_due

__all__ = ["RecoveredSegment", "Segment", "decode_stored"]

relative_offset_max = 2**31 - 1  # relative offsets in the .index are int32
index_pending_entries_max = 512  # index entries kept in memory between two writes (4 KiB)
# ... and at most this much log behind them: the log a recovery after kill -9 may have
# to rescan to rebuild them (512 entries of 1,000-record batches would be 70 MB).
index_pending_log_bytes_max = 1024 * 1024
_time_index_load_lock = threading.Lock()  # first loads of any segment's time index
torn_scan_bytes_max = 2 * 1024 * 1024  # > max_message_bytes default: one torn write
# What find_position's walk reads of each header: base_offset, batch_length, magic,
# last_offset_delta (bytes 0, 8, 12 and 19).
_WALK = struct.Struct(">qiB6xi")
_length_min = codec.header_bytes - codec.length_prefix_bytes


class RecoveredSegment(NamedTuple):
    """What recovering one segment found."""

    base_offset: int
    batches_checked: int
    bytes_truncated: int


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


class Segment:
    """``.log`` + ``.index`` + ``.timeindex`` for offsets ``[base_offset, next_offset)``."""

    __slots__ = (
        "_bytes_since_index",
        "_cache_token",
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
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.first_max_timestamp = -1
        self._bytes_since_index = 0
        self._keep_file_bytes = 0  # close() trims to no less (a damaged segment)
        self.damaged = False  # opening found it ends early or is unreadable: see scan()

    # ------------------------------------------------------------------ opening

    def load(self) -> bool:
        """Trust the batches (a sealed segment, or any segment after a clean close) and
        read only the tail after the last index entry, without CRC checks. The walk
        ends at the end of the file or at the zeros after the last batch.

        Returns False if the files disagree: the last index entry does not start a
        whole batch ending at the offset it names, or no batch starts the file
        although the index says there are some (a file cut short, zeroed or
        replaced). The segment then reads as empty until the caller ``recover``s
        it (the active segment) or ``scan``s it (a sealed one). Cost:
        O(index_interval_bytes) of headers.
        """
        limit = self._log.file_bytes_at_open
        last = self.index.last_entry()
        if last is not None:
            header = self._header_at(last[1], limit)
            if (header is None or header.last_offset != self.base_offset + last[0]
                    or self._header_at(0, limit) is None):
                self.index.drop_invalid()  # trusted, and wrong: recover/scan use it
                return False
        self.size = last[1] if last else 0
        self.max_timestamp = self._last_time_entry_timestamp()
        self._scan_tail(limit, verify=False)
        if self.size:
            self._read_first_timestamp()
        return True

    def scan(self) -> None:
        """Rebuild a sealed segment's state and indexes from its batches, from byte 0,
        checking every CRC; stop at the first batch that is implausible, out of
        sequence or fails its CRC. Never changes the ``.log`` (unlike ``recover``):
        a sealed segment that ends early is damage to report (the owner calls
        ``mark_damaged``, so that ``close`` will not trim it), not a torn tail to
        cut. Cost: O(segment).
        """
        self._cache_token = new_token()
        self.index.truncate_after_position(0)  # increasing: load() dropped the rest
        self.time_index.truncate_after_offset(-1)
        self.size = 0
        self.next_offset = self.base_offset
        self.max_timestamp = -1
        self.first_max_timestamp = -1
        self._scan_tail(self._log.file_bytes_at_open, verify=True, rebuild_index=True)
        if self.size:
            self._read_first_timestamp()

    def damaged_head(self) -> int | None:
        """If the segment's first batch is unreadable although later ones check out (a
        recovery that started at a later index entry), the offset of the first batch
        known to be whole; else None. O(1): two headers."""
        if not self.size or self._header_at(0, self.size) is not None:
            return None
        if not len(self.index):
            return self.next_offset
        header = self._header_at(self.index.positions[0], self.size)
        return self.next_offset if header is None else header.base_offset

    def mark_damaged(self) -> None:
        """Keep the ``.log`` as it is on close (no trim): its bytes past ``size`` are
        damaged, not free space, and may be recoverable by hand."""
        self.damaged = True
        self._keep_file_bytes = max(self._keep_file_bytes, self._log.file_bytes_at_open)

    def _last_time_entry_timestamp(self) -> int:
        if self._timeindex_path is None:
            return -1
        files = self.files
        try:
            fd = files.open(self._timeindex_path, os.O_RDONLY)
        except FileNotFoundError:
            return -1
        except OSError as exc:
            raise storage_error(exc, f"open {self._timeindex_path}", self._timeindex_path,
                                files=files) from exc
        try:
            size = files.size(fd)
            if size < 12 or size % 12:
                return self.time_index.max_timestamp()
            return int.from_bytes(files.pread(fd, 8, size - 12), "big", signed=True)
        except OSError as exc:
            raise storage_error(exc, f"read {self._timeindex_path}", self._timeindex_path,
                                files=files) from exc
        finally:
            files.close(fd)

    def recover(self, start_position: int | None = None) -> RecoveredSegment:
        """Re-check the log from a known-good point and cut it at the first bad batch.

        The known-good point is the last index entry (at or below ``start_position``,
        the last fsynced position, if given) whose batch is whole, checks out and
        ends at the entry's offset (the page cache survives a killed process).
        Checking it keeps a damaged batch under the entry from being trusted, or
        its base offset from being adopted unchecked. Every batch after it is
        verified and its index entries rebuilt. Never raises for a torn or corrupt
        tail: the bytes cut are returned.
        """
        self._cache_token = new_token()  # bytes may be cut: no cached batch stays valid
        if start_position is not None:
            self.index.truncate_after_position(start_position + 1)
        start = self._last_verified_index_position()
        self.next_offset = self.base_offset  # the scan re-walks the batch at ``start``
        self.index.truncate_after_position(start + 1)
        last = self.index.last_entry()
        start_rel = last[0] if last and last[1] == start else -1
        self.time_index.truncate_after_offset(start_rel)
        self.max_timestamp = self.time_index.max_timestamp()
        self.size = start
        checked = self._scan_tail(self._log.capacity, verify=True, rebuild_index=True)
        truncated = self._torn_bytes()
        self._log.cut(self.size)
        if self.size:
            self._read_first_timestamp()
        return RecoveredSegment(self.base_offset, checked, truncated)

    def _read_first_timestamp(self) -> None:
        first = self._header_at(0, self.size)
        # None: the first batch is damaged, though a later one checks out (recover
        # starts at the last good index entry). Reads of it raise CorruptLogError.
        if first is None:
            self.first_max_timestamp = -1
            return
        self.first_max_timestamp = first.max_timestamp
        if self.max_timestamp < 0 and self.size:
            known = (self.next_offset, self.max_timestamp, self.first_max_timestamp)
            try:
                self._rescan()
            except CorruptLogError:  # damage in the middle: a read of it raises; open goes on
                self.next_offset, self.max_timestamp, self.first_max_timestamp = known

    def _torn_bytes(self) -> int:
        """How many non-zero bytes a crash left after the last whole batch.

        Looks at most ``torn_scan_bytes_max`` past it (a torn batch is at most one
        write); zeros after that are the preallocated, never-written tail.
        """
        window = self._log.read(self.size, torn_scan_bytes_max)
        return len(window.rstrip(b"\0"))

    def _last_verified_index_position(self) -> int:
        """Position of the latest index entry whose batch is whole and matches its entry."""
        while len(self.index):
            rel, pos = self.index.last_entry()  # type: ignore[misc]
            header = self._header_at(pos, self._log.capacity)
            if header is not None and header.last_offset == self.base_offset + rel:
                tail = self._log.read(pos + codec.crc_start, header.batch_length - 5)
                if codec.verify_crc(tail, header):
                    return pos
            self.index.drop_last()
        return 0

    def _header_at(self, position: int, limit: int) -> BatchHeader | None:
        """The header at ``position`` if it plausibly starts a whole batch before ``limit``."""
        if position < 0 or position + codec.header_bytes > limit:  # < 0: a damaged index
            return None
        header = codec.make_header(self._log.unpack_from(codec.HEADER, position))
        return header if codec.plausible(header, limit - position) else None

    def _scan_tail(self, limit: int, *, verify: bool, rebuild_index: bool = False,
                   end_offset: int | None = None) -> int:
        """Walk batches from ``self.size`` up to ``limit``, advancing size, next_offset and
        max_timestamp; stop at the first batch that is implausible, out of sequence
        (a batch starts where the previous one ended; only a compacted batch may
        start later) or (``verify``) fails its CRC, or (``end_offset``) once
        next_offset reaches it. Returns the number of batches walked.
        """
        walked = 0
        if end_offset is None:  # following goes on counting where the last call stopped
            self._bytes_since_index = 0
        expected = self.base_offset if self.size == 0 else None
        while end_offset is None or self.next_offset < end_offset:
            position = self.size
            header = self._header_at(position, limit)
            if header is None:
                break
            if expected is not None and header.base_offset != expected and not (
                # Only the cleaner leaves gaps, and it marks every batch it writes.
                header.base_offset > expected and header.attributes & codec.attr_compacted
            ):
                break
            if header.last_offset - self.base_offset > relative_offset_max:
                break
            if verify:
                tail = self._log.read(position + codec.crc_start, header.batch_length - 5)
                if not codec.verify_crc(tail, header):
                    break
            if rebuild_index:
                self._maybe_index(header, position)
            self._bytes_since_index += header.total_bytes
            self.size = position + header.total_bytes
            self._account(header, position)
            expected = header.last_offset + 1
            walked += 1
        return walked

    def _maybe_index(self, header: BatchHeader, position: int) -> None:
        """Kafka's rule: an entry for a batch once more than index_interval_bytes of log
        precede it since the last entry (so a segment's first batch never gets one)."""
        if entry_due(self._bytes_since_index, self._index_interval_bytes, position):
            time_index = self.time_index
            index = self.index
            pending = index.pending
            if pending and (
                pending >= index_pending_entries_max
                or position - index.positions[-pending] > index_pending_log_bytes_max
            ):
                self._write_indexes()  # before adding: a failed write changes nothing
            relative = header.last_offset - self.base_offset
            self.index.append(relative, position)
            time_index.append(max(self.max_timestamp, header.max_timestamp), relative)
            self._bytes_since_index = 0

    def _write_indexes(self) -> None:
        """Write both indexes' pending entries: the time index first, so that every
        offset entry on file has its time entry on file too (``recover`` takes the
        max timestamp from the time entries at or below its start entry)."""
        if self._time_index is not None:
            self._time_index.write_pending()
        self.index.write_pending()

    def _account(self, header: BatchHeader, position: int) -> None:
        self.next_offset = header.last_offset + 1
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
        if position == 0:
            self.first_max_timestamp = header.max_timestamp

    # ------------------------------------------------------------------ following

    def open_following(self, end_offset: int) -> None:
        """Read-only: start following the segment another process appends to.

        Keeps the index entries on file for batches below ``end_offset`` (entries
        for batches the writer has not published yet are dropped, in memory only),
        then ``follow``s from the last one. Cost: one index file read and a walk of
        at most ``index_interval_bytes`` of headers (more if the writer's pending
        entries were not written yet).
        """
        assert self._read_only
        index = self.index
        index.keep_first(bisect_right(index.offsets, end_offset - 1 - self.base_offset))
        index.drop_invalid()
        last = index.last_entry()
        if last is not None and (
            self._header_at(last[1], self._log.capacity) is None
            or self._header_at(0, self._log.capacity) is None
        ):
            index.truncate_after_position(0)
            last = None
        if last is not None:
            self.size = last[1]  # the batch ending at base + last[0] starts here
            self.next_offset = self.base_offset + last[0]  # its last offset: walked next
            stamps = self.time_index
            i = bisect_right(stamps.offsets, last[0])
            self.max_timestamp = stamps.timestamps[i - 1] if i else -1
        self.follow(end_offset)
        if self.size:
            self._read_first_timestamp()

    def follow(self, end_offset: int) -> bool:
        """Read-only: walk the batches the writer appended up to ``end_offset`` (the end
        it published: every batch below it is whole). Returns whether the segment
        reached it; False means the files changed under the reader (a truncation,
        a replaced file): the owner re-lists the directory.

        Touches only bytes below ``end_offset``'s position, so a file the writer
        trims meanwhile cannot fault. No CRC checks here: every read checks.
        Cost: one header per batch; one stat and one mmap when the file grew.
        """
        assert self._read_only
        if self.next_offset >= end_offset:
            return True
        self._scan_tail(self._log.capacity, verify=False, rebuild_index=True,
                        end_offset=end_offset)
        if self.next_offset < end_offset and self._log.follow():
            self._scan_tail(self._log.capacity, verify=False, rebuild_index=True,
                            end_offset=end_offset)
        return self.next_offset >= end_offset

    @property
    def read_only(self) -> bool:
        return self._read_only

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
        self.size = position
        self._rescan()
        self.index.truncate_after_position(position)
        self.time_index.truncate_after_offset(offset - 1 - self.base_offset)
        if keep:
            self.append(keep, codec.decode_header(keep))
        return old_size - self.size

    def _rescan(self) -> None:
        """Recompute next_offset and the timestamps from the batch headers, in one walk."""
        self.next_offset = self.base_offset
        self.max_timestamp = -1
        self.first_max_timestamp = -1
        for header, position in self._headers_from(0, self.size):
            self._account(header, position)

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
            unpack = self._log.unpack_from
            while position + codec.header_bytes <= size:
                base, length, magic, last_delta = unpack(_WALK, position)
                if magic != codec.magic_v1 or length < _length_min:
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
        except ValueError as exc:
            if not self._log.closed:
                raise
            raise OffsetOutOfRangeError(
                f"offset {offset} was removed (segment {self.base_offset} deleted) while reading"
            ) from exc

    def _decode_at(self, position: int, header: BatchHeader) -> Columns:
        cols = self._decode_if_valid(position, header)
        if cols is None:
            raise CorruptLogError(
                f"batch at byte {position} of {self._log.path or 'memory segment'} "
                f"(offsets {header.base_offset}..{header.last_offset}) fails its CRC"
            )
        return cols

    def _decode_if_valid(self, position: int, header: BatchHeader) -> Columns | None:
        """The batch's columns if it passes its CRC, else None; CorruptLogError if a
        CRC-valid batch does not decode to what its header promises."""
        tail = self._log.read(position + codec.crc_start, header.batch_length - 5)
        if not codec.verify_crc(tail, header):
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
        self.index.check()
        if self._time_index is not None:
            self._time_index.check()
        expected = None
        last_end = self.base_offset
        max_ts = -1
        for header, _pos in self.headers():
            if expected is not None:
                assert header.base_offset >= expected, "offsets not increasing"
            else:
                assert header.base_offset >= self.base_offset
            expected = header.last_offset + 1
            last_end = expected
            max_ts = max(max_ts, header.max_timestamp)
        assert last_end == self.next_offset, f"next_offset {self.next_offset} != {last_end}"
        assert max_ts == self.max_timestamp, f"max_timestamp {self.max_timestamp} != {max_ts}"
        for rel, pos in zip(self.index.offsets, self.index.positions):
            assert pos < self.size
            header = self._header_at(pos, self.size)
            assert header is not None and header.last_offset == self.base_offset + rel

    def __repr__(self) -> str:
        return (
            f"Segment(base_offset={self.base_offset}, next_offset={self.next_offset}, "
            f"size={self.size})"
        )
