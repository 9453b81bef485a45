"""Opening a log: recovery of its segments and of what a crash left behind.

Two levels, as Kafka's LogSegment.recover and LogLoader:

* ``SegmentRecovery`` (the opening half of Segment, which inherits it): trust a
  segment's files after a clean close (``load``: only the tail after the last
  index entry is walked), rebuild a damaged sealed one without changing it
  (``scan``), or re-check the active one from a known-good point and cut it at
  the first torn, corrupt or zero-filled batch (``recover``); a read-only copy
  ``follow``s the segment another process appends to.
* ``LogLoader``: the segments of one partition directory. Completes or forgets
  an interrupted cleaning first (storage/swap.py), deletes ``.tmp`` and
  ``.deleted`` leftovers, loads every segment, recovers the last one from the
  ``recovery-point`` (or the index), drops segments a crash mid-roll left empty
  past the data, reports damage before the tail (``DamagedRange``: never cut
  or stepped over) and reads ``log-start-offset``. The result is a
  ``RecoveryReport``.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import TYPE_CHECKING, NamedTuple

from sortedcontainers import SortedDict

from ..errors import CorruptLogError
from . import batch as codec
from .batch import BatchHeader
from .batch_cache import new_token
from .files import Files, MappedFile, offset_from_file_name, segment_file_name, storage_error
from .index import OffsetIndex, TimeIndex, entry_due, relative_offset_max
from .swap import complete_swaps

__all__ = [
    "DamagedRange",
    "LogLoader",
    "RecoveredSegment",
    "RecoveryReport",
    "SegmentRecovery",
    "damage_between",
    "log_start_file",
    "recovery_point_file",
]

_log = logging.getLogger("eventlog.storage")

RECOVERY_POINT = struct.Struct(">qq")  # recovery-point: segment base offset, byte
torn_scan_bytes_max = 2 * 1024 * 1024  # > max_message_bytes default: one torn write
index_pending_entries_max = 512  # index entries kept in memory between two writes (4 KiB)
# ... and at most this much log behind them: the log a recovery after kill -9 may have
# to rescan to rebuild them (512 entries of 1,000-record batches would be 70 MB).
index_pending_log_bytes_max = 1024 * 1024
log_start_file = "log-start-offset"
recovery_point_file = "recovery-point"
log_start_bytes_max = 19  # ASCII digits of the largest int64 offset



class RecoveredSegment(NamedTuple):
    """What recovering one segment found."""

    base_offset: int
    batches_checked: int
    bytes_truncated: int


class DamagedRange(NamedTuple):
    """Offsets that opening found missing or unreadable before the log's tail.

    Nothing is cut or skipped for them: a read that reaches them raises
    CorruptLogError naming the same offsets and file, until the user moves past
    them (``seek``, ``delete_before``, ``truncate_to``).
    """

    start_offset: int  # the first offset affected
    end_offset: int  # the offset after the last one affected
    file: str  # the .log that should hold them ("memory" in memory mode)
    reason: str


class RecoveryReport(NamedTuple):
    """What opening a partition's log found and repaired."""

    clean: bool  # opened after a clean close: nothing was scanned
    segments: int
    segments_checked: int
    batches_checked: int
    bytes_truncated: int
    segments_deleted: int  # segments after a cut, dropped as Kafka's LogLoader does
    duration_ms: float
    # Damage before the tail, which opening reports and does not repair.
    damaged: tuple[DamagedRange, ...] = ()
    # Bad bookkeeping files (log-start-offset, recovery-point) that were ignored,
    # each with the value used instead.
    warnings: tuple[str, ...] = ()


class SegmentRecovery:
    """The opening half of a Segment (segment.py inherits it): load, scan, recover,
    follow. Works on the segment's own state; the reading and writing half is
    Segment's."""

    __slots__ = ()

    if TYPE_CHECKING:  # Segment's state and methods, which these methods use
        base_offset: int
        size: int
        next_offset: int
        max_timestamp: int
        first_max_timestamp: int
        damaged: bool
        files: Files
        index: OffsetIndex
        _log: MappedFile
        _cache_token: object
        _bytes_since_index: int
        _index_interval_bytes: int
        _time_index: TimeIndex | None
        _keep_file_bytes: int
        _read_only: bool
        _timeindex_path: str | None

        @property
        def time_index(self) -> TimeIndex: ...
        @property
        def file_bytes(self) -> int: ...
        @property
        def path(self) -> str | None: ...
        def _header_at(self, position: int, limit: int) -> BatchHeader | None: ...
        def _headers_from(self, position: int,
                          limit: int) -> Iterator[tuple[BatchHeader, int]]: ...
        def seal(self) -> None: ...
        def delete(self) -> None: ...

    @property
    def buffer(self) -> mmap.mmap:
        """The segment's mapped bytes (``MappedFile.buffer``: slice at once, never keep).
        Read ``size`` first: the map then holds every byte below it."""
        return self._log.buffer

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

    def _account(self, header: BatchHeader, position: int) -> None:
        self.next_offset = header.last_offset + 1
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
        if position == 0:
            self.first_max_timestamp = header.max_timestamp

    def _rescan(self) -> None:
        """Recompute next_offset and the timestamps from the batch headers, in one walk."""
        self.next_offset = self.base_offset
        self.max_timestamp = -1
        self.first_max_timestamp = -1
        for header, position in self._headers_from(0, self.size):
            self._account(header, position)

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

    # ------------------------------------------------------------------ index entries

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


class LogLoader:
    """Loads the segments of one partition directory (None: in memory, nothing to load).

    ``open_segment(base, trusted)`` opens one segment's files (PartitionLog's
    factory). After ``load``: ``segments`` (base offset -> segment, in order) and
    ``start_offset``.
    """

    def __init__(self, directory: str | None, files: Files,
                 open_segment: Callable[[int, bool], SegmentRecovery]) -> None:
        self.directory = directory
        self.files = files
        self._open_segment = open_segment
        self.segments: SortedDict = SortedDict()
        self.start_offset = 0

    def load(self, clean: bool) -> RecoveryReport | None:
        """Open every segment of the directory and recover what needs it (see the
        module docstring); None if there is none (a new log: the caller creates the
        first segment). Then ``segments`` and ``start_offset`` hold the result."""
        bases = self._existing_base_offsets()
        if not bases:
            return None
        for base in bases:
            self.segments[base] = self._open_segment(base, clean)
        last = self.segments.peekitem(-1)[1]
        for seg in self.segments.values():
            if (seg is not last or clean) and not seg.load():
                if seg is last:
                    clean = False  # its files disagree (cut, zeroed, replaced): recover
                else:
                    seg.scan()  # damaged: find what is left, report the rest below
            if seg is not last:
                seg.seal()
        recovered = RecoveredSegment(last.base_offset, 0, 0)
        if clean and last.size != last.file_bytes:
            clean = False  # the marker lied (e.g. files changed after close): recover
        warnings: list[str] = []
        if not clean:
            recovered = last.recover(self._recovery_start(last, warnings))
        deleted = self._drop_empty_tail()
        damaged = self._find_damage()
        self.start_offset = self._read_log_start(warnings)
        for problem in [*(d.reason for d in damaged), *warnings]:
            _log.warning("%s", problem)
        return RecoveryReport(
            clean,
            len(self.segments),
            0 if clean else 1,
            recovered.batches_checked,
            recovered.bytes_truncated,
            deleted,
            0.0,
            tuple(damaged),
            tuple(warnings),
        )

    def _find_damage(self) -> list[DamagedRange]:
        """Every sealed segment must end where the next one starts (a roll starts the
        next segment at the previous one's end, and the cleaner keeps each segment's
        last batch). One that ends early was cut short, zeroed or damaged, or the
        segment files between them were deleted: report it, and keep its file as it
        is. O(segments); the bytes were read by ``load`` already.
        """
        damaged = []
        segs = list(self.segments.values())
        for seg, following in pairwise(segs):
            if seg.next_offset == following.base_offset:
                continue
            seg.mark_damaged()
            damaged.append(damage_between(seg, following, self.directory))
        last = segs[-1]
        head_end = last.damaged_head()
        if head_end is not None:  # recovery kept later batches of the active segment
            damaged.append(DamagedRange(
                last.base_offset, head_end, last.path or "memory",
                f"offsets {last.base_offset} to {head_end - 1} of {self.directory or 'the log'} "
                f"are unreadable: the first batch of {last.path or 'the memory segment'} is "
                f"damaged, though batches after it check out. Nothing was skipped: to give "
                f"these offsets up, read from (or seek to) offset {head_end}",
            ))
        return damaged

    def _existing_base_offsets(self) -> list[int]:
        if self.directory is None:
            return []
        complete_swaps(self.directory, self.files)  # an interrupted cleaning: finish or forget it
        bases = set()
        for name in self.files.listdir(self.directory):
            if name.endswith(".log"):
                base = offset_from_file_name(name)
                if base is not None:
                    bases.add(base)
            elif name.endswith((".tmp", ".deleted")):
                self.files.unlink(os.path.join(self.directory, name))
        return sorted(bases)

    def _drop_empty_tail(self) -> int:
        """Delete segments left empty by a crash after a roll, except the first one.

        An empty segment after a non-empty one is harmless only if its base offset
        equals the previous segment's end; otherwise a crash mid-roll left it with a
        base offset the data no longer reaches, so it goes (Kafka deletes all
        segments after a cut one).
        """
        deleted = 0
        while len(self.segments) > 1:
            base, seg = self.segments.peekitem(-1)
            prev = self.segments.peekitem(-2)[1]
            if seg.size == 0 and prev.next_offset != base:
                seg.delete()
                del self.segments[base]
                deleted += 1
            else:
                break
        return deleted

    def _recovery_start(self, last: SegmentRecovery, warnings: list[str]) -> int | None:
        """The recovery point if it lies in the last segment, else None (use the index).

        A file that is not 16 bytes, or names a position outside its segment's file,
        is ignored (the index is used instead) and reported in ``warnings``.
        """
        if self.directory is None:
            return None
        path = os.path.join(self.directory, recovery_point_file)
        try:
            data = self.files.read_file(path)[: RECOVERY_POINT.size + 1]
        except FileNotFoundError:
            return None
        except OSError as exc:
            warnings.append(f"cannot read {path} ({exc}); recovering from the index instead")
            return None
        if len(data) != RECOVERY_POINT.size:
            warnings.append(f"{path} holds {len(data)} bytes, not {RECOVERY_POINT.size}: "
                            "ignored; recovering from the index instead")
            return None
        base, position = RECOVERY_POINT.unpack(data)
        seg = self.segments.get(base)
        if seg is None or not 0 <= position <= seg.file_bytes:
            warnings.append(
                f"{path} names byte {position} of segment {base}, which "
                f"{'does not exist' if seg is None else f'holds {seg.file_bytes} bytes'}: "
                "ignored; recovering from the index instead"
            )
            return None
        return position if base == last.base_offset else None

    def _read_log_start(self, warnings: list[str]) -> int:
        """The log start offset: ``log-start-offset`` if it lies in [first segment's base,
        log end], the first segment's base offset if the file is absent or below it
        (a crash between deleting segments and recording the new start).

        A file that does not parse (ASCII decimal, at most 19 digits) or names an
        offset past the log end is not trusted, since it would hide records: the
        first segment's base offset is used and ``warnings`` says so. The file is
        left as it is (the next change of the log start replaces it).
        """
        first = self.segments.peekitem(0)[1].base_offset
        if self.directory is None:
            return first
        path = os.path.join(self.directory, log_start_file)
        try:
            data = self.files.read_file(path)[: log_start_bytes_max + 1]
        except FileNotFoundError:
            return first
        except OSError as exc:
            warnings.append(f"cannot read {path} ({exc}); the log starts at the first "
                            f"segment's base offset {first} instead")
            return first
        if not (data.isdigit() and len(data) <= log_start_bytes_max):
            warnings.append(f"{path} does not hold an offset ({data[:40]!r}): ignored; the log "
                            f"starts at the first segment's base offset {first} instead")
            return first
        stored = int(data)
        end = self.segments.peekitem(-1)[1].next_offset
        if stored > end:
            warnings.append(f"{path} names offset {stored}, past the log end {end}: "
                            f"ignored; the log starts at the first segment's base offset "
                            f"{first} instead")
            return first
        return max(stored, first)


def damage_between(seg: SegmentRecovery, following: SegmentRecovery,
                   directory: str | None) -> DamagedRange:
    """The range between a sealed segment's end and the next segment's base offset."""
    file = seg.path or "memory"
    start, end = seg.next_offset, following.base_offset
    if start < end:
        reason = (
            f"offsets {start} to {end - 1} of {directory or 'the log'} are missing: {file} "
            f"ends at offset {start} (byte {seg.size} of {seg.file_bytes}) but the next "
            f"segment starts at offset {end}: that file was cut short, zeroed or damaged, "
            f"or a segment {segment_file_name(start, '.log')} was deleted. Nothing was "
            f"skipped: to give these offsets up, read from (or seek to) offset {end}"
        )
    else:
        reason = (
            f"offsets {end} to {start - 1} of {directory or 'the log'} are in two segments: "
            f"{file} ends at offset {start} but the next segment starts at offset {end}"
        )
        start, end = end, start
    return DamagedRange(start, end, file, reason)
