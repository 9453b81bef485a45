"""PartitionLog: the ordered segments of one partition, and everything done to them.

A partition's directory holds its segments (``<base offset>.log/.index/.timeindex``)
and these small files (docs/storage.md specifies each):

* ``log-start-offset``: the log start offset, ASCII decimal, written whenever
  ``delete_before``, retention or ``truncate_to`` moves it (Kafka's
  log-start-offset checkpoint). Absent, or below the first segment's base offset:
  that base offset. Not parsable or past the log end: not trusted (it would hide
  records); the first segment's base offset, reported in ``RecoveryReport.warnings``.
* ``recovery-point``: the position (segment base, byte; two int64) up to which the
  log was last fsynced, written after each ``flush`` (the ``interval`` policy's,
  a roll's, an explicit one), not after the per-append syncs of ``always``.
  Recovery after a crash re-checks everything after it; a malformed one is
  ignored (with a warning) and recovery starts from the index.

* ``cleaner-offset-checkpoint``: where the log cleaner stopped (compacted logs;
  storage/cleaner.py, which also owns the transient ``.cleaned``/``.swap`` files
  that opening completes or deletes first).
* ``reader-view``: what readers in other processes follow (storage/reader_view.py).
* ``transactional``, ``txn-checkpoint`` and ``<base offset>.txnindex``: the
  transaction state, owned by storage/txn_index.py (the partition drives it).

Every sealed segment must end where the next one starts. Opening reports one that
does not (``RecoveryReport.damaged``) and keeps its file untouched; ``read`` raises
CorruptLogError at the missing offsets instead of stepping over them.

With ``fsync="always"`` an append is acknowledged once ``sync(end)`` returns: the
caller appends under the partition lock, releases it, then syncs. ``sync`` is a
group commit: one fdatasync of the active ``.log`` (the GIL released) covers every
batch appended before it started, so threads appending meanwhile wait for the next
one instead of one each. A failed sync undoes every batch after the last good one
(``undo_unsynced``, under the partition lock) and the log refuses writes.

Offsets are dense from the log start offset and never reused (DESIGN invariant 1).
Appends, rolls, truncation, deletion and retention are serialised by the caller
(the partition lock). Reads are lock-free: readers take the current
``(base offsets, segments)`` snapshot, which writers replace, never mutate.
The log cleaner builds its segments without the lock and takes it only to swap
them in (``replace_segments``).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from bisect import bisect_right
from collections.abc import Sequence
from contextlib import AbstractContextManager
from itertools import pairwise
from typing import NamedTuple

from sortedcontainers import SortedDict

from ..config import TopicConfig
from ..errors import CorruptLogError, OffsetOutOfRangeError, StorageError
from . import batch as codec
from .batch import BatchHeader, Columns
from .batch_cache import BatchCache
from .cleaner import CleanerStats, LogCleaner
from .files import (
    Files,
    atomic_write,
    fsync_dir,
    offset_from_file_name,
    os_files,
    segment_file_name,
    storage_error,
    with_errno,
)
from .reader_view import ReaderView
from .retention import SegmentSummary, plan_retention
from .segment import RecoveredSegment, Segment, relative_offset_max
from .swap import complete_swaps

__all__ = ["DamagedRange", "PartitionLog", "RecoveryReport"]

_log = logging.getLogger("eventlog.storage")

_RECOVERY_POINT = struct.Struct(">qq")
log_start_file = "log-start-offset"
recovery_point_file = "recovery-point"
log_start_bytes_max = 19  # ASCII digits of the largest int64 offset
# A read that finds its segment closed retries on the new snapshot this many times:
# each retry means a cleaner swap completed meanwhile, which takes far longer than a read.
read_retries_max = 8


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


class PartitionLog:
    """The segments of one partition. See the module docstring for the files and locking."""

    def __init__(
        self,
        directory: str | None,
        config: TopicConfig,
        *,
        now_ms: int,
        clean_shutdown: bool = False,
        fsync: str = "never",
        files: Files = os_files,
    ) -> None:
        """Open (or create) the log in ``directory`` (None: in memory) and recover it.

        ``clean_shutdown``: the caller found the clean-shutdown marker, so the files
        are trusted and only read where needed. Otherwise the last segment is
        scanned from its last known-good point and cut at the first bad batch.
        The result is in ``self.recovery``. Never raises for a torn tail.
        """
        started = time.perf_counter()
        self.directory = directory
        self.config = config
        self.files = files
        # Set by the first failed fsync (see ``_fsync_failed``): writes are refused
        # from then on, until the log is reopened from what the disk holds.
        self.fsync_error: StorageError | None = None
        self.fsync = fsync
        self._fsync_always = fsync == "always"
        self._segment_bytes = config.segment_bytes
        # Kafka's LogConfig.maxSegmentMs: a compacted log also rolls by
        # max_compaction_lag_ms, since the cleaner never touches the active segment.
        self._segment_ms = (
            min(config.segment_ms, config.max_compaction_lag_ms)
            if config.compacted else config.segment_ms
        )
        self._segments: SortedDict = SortedDict()
        # Decoded batches that point reads used in part, shared by the segments.
        self.batch_cache = BatchCache()
        self._view: tuple[list[int], list[Segment]] = ([], [])
        self.start_offset = 0
        self._closed = False
        if directory is not None:
            try:
                files.makedirs(directory)
            except OSError as exc:
                raise storage_error(exc, f"create {directory}", directory, files=files) from exc
        # Readers in other processes follow what this publishes (storage/reader_view.py).
        self._reader_view = ReaderView.for_writer(directory, files)
        self._published = self._reader_view.words  # the append path's one store
        try:
            report = self._open_segments(clean_shutdown, now_ms)
        except BaseException:
            self._reader_view.close()
            raise
        self.recovery = report._replace(duration_ms=(time.perf_counter() - started) * 1000)
        # Group commit (fsync="always"): offsets below this are on disk.
        self._sync_lock = threading.Lock()
        self.synced_offset = self.end_offset
        self._cleaner = LogCleaner(self)
        self._reader_view.publish_segments(self.start_offset)
        self._reader_view.publish_end(self.end_offset)

    # ------------------------------------------------------------------ opening

    def _open_segments(self, clean: bool, now_ms: int) -> RecoveryReport:
        bases = self._existing_base_offsets()
        if not bases:
            self._add_segment(0, now_ms)
            self.start_offset = 0
            return RecoveryReport(clean, 1, 0, 0, 0, 0, 0.0)
        for base in bases:
            self._segments[base] = self._new_segment(base, now_ms, trusted=clean)
        last = self._segments.peekitem(-1)[1]
        for seg in self._segments.values():
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
        self._publish()
        damaged = self._find_damage()
        self.start_offset = self._read_log_start(warnings)
        for problem in [*(d.reason for d in damaged), *warnings]:
            _log.warning("%s", problem)
        return RecoveryReport(
            clean,
            len(self._segments),
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
        segs = list(self._segments.values())
        for seg, following in pairwise(segs):
            if seg.next_offset == following.base_offset:
                continue
            seg.mark_damaged()
            damaged.append(_damage(seg, following, self.directory))
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
        while len(self._segments) > 1:
            base, seg = self._segments.peekitem(-1)
            prev = self._segments.peekitem(-2)[1]
            if seg.size == 0 and prev.next_offset != base:
                seg.delete()
                del self._segments[base]
                deleted += 1
            else:
                break
        return deleted

    def _recovery_start(self, last: Segment, warnings: list[str]) -> int | None:
        """The recovery point if it lies in the last segment, else None (use the index).

        A file that is not 16 bytes, or names a position outside its segment's file,
        is ignored (the index is used instead) and reported in ``warnings``.
        """
        if self.directory is None:
            return None
        path = os.path.join(self.directory, recovery_point_file)
        try:
            data = self.files.read_file(path)[: _RECOVERY_POINT.size + 1]
        except FileNotFoundError:
            return None
        except OSError as exc:
            warnings.append(f"cannot read {path} ({exc}); recovering from the index instead")
            return None
        if len(data) != _RECOVERY_POINT.size:
            warnings.append(f"{path} holds {len(data)} bytes, not {_RECOVERY_POINT.size}: "
                            "ignored; recovering from the index instead")
            return None
        base, position = _RECOVERY_POINT.unpack(data)
        seg = self._segments.get(base)
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
        first = self._segments.peekitem(0)[1].base_offset
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
        if stored > self.end_offset:
            warnings.append(f"{path} names offset {stored}, past the log end {self.end_offset}: "
                            f"ignored; the log starts at the first segment's base offset "
                            f"{first} instead")
            return first
        return max(stored, first)

    def _new_segment(self, base: int, now_ms: int, *, trusted: bool = True) -> Segment:
        return Segment(
            self.directory,
            base,
            segment_bytes=self.config.segment_bytes,
            index_interval_bytes=self.config.index_interval_bytes,
            created_ms=now_ms,
            trusted=trusted,
            inflated_bytes_max=codec.inflated_bytes_max(self.config.max_message_bytes),
            files=self.files,
            batch_cache=self.batch_cache,
        )

    def _add_segment(self, base: int, now_ms: int) -> Segment:
        seg = self._new_segment(base, now_ms)
        self._segments[base] = seg
        if self.directory is not None and self.fsync != "never":
            try:
                fsync_dir(self.directory, files=self.files)
            except OSError as exc:
                del self._segments[base]
                seg.delete()
                raise self._fsync_failed(storage_error(
                    exc, f"fsync {self.directory} after creating segment {base}",
                    self.directory, files=self.files)) from exc
        self._publish()
        return seg

    def _publish(self) -> None:
        """Replace the readers' snapshot (never mutated in place), and tell readers in
        other processes that the segment files changed."""
        self._view = (list(self._segments.keys()), list(self._segments.values()))
        self._reader_view.publish_segments(self.start_offset)

    # ------------------------------------------------------------------ state

    @property
    def end_offset(self) -> int:
        """The log end offset: the offset the next record will get."""
        return self._view[1][-1].next_offset

    @property
    def active_segment(self) -> Segment:
        return self._view[1][-1]

    @property
    def segments(self) -> Sequence[Segment]:
        return tuple(self._view[1])

    @property
    def size_bytes(self) -> int:
        return sum(seg.size for seg in self._view[1])

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ writing

    def append(
        self,
        timestamps: list[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        headers: list[tuple] | None,
        *,
        attributes: int = 0,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        now_ms: int,
    ) -> BatchHeader:
        """Encode the records as one batch at the log end and append it.

        Values are already validated by the caller, which holds the partition lock.
        Rolls first if the batch would overflow the segment, the segment is older
        than ``segment_ms``, or relative offsets would overflow. Returns the header
        (base offset, last offset, ...). Cost: one encode, one copy into the map.
        """
        base = self.end_offset
        data, header = codec.encode_batch_with_header(
            base,
            timestamps,
            keys,
            values,
            headers,
            attributes=attributes,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
        )
        return self.append_encoded(data, header, now_ms=now_ms)

    def append_encoded(self, data: bytes, header: BatchHeader, *, now_ms: int) -> BatchHeader:
        """Append a batch already encoded at the log end (see ``append``).

        A StorageError (a full disk: ENOSPC) leaves the log as it was. With
        ``fsync="always"`` a failed fsync undoes the append and refuses every
        later write (``fsync_error``)."""
        if self.fsync_error is not None:
            raise self._refused()
        seg = self._view[1][-1]
        assert header.base_offset == seg.next_offset, "batch not encoded at the log end"
        size = seg.size
        if size and (
            # A cheap test that is true whenever _should_roll can be (it runs per append).
            size + len(data) > self._segment_bytes
            or header.max_timestamp - seg.first_max_timestamp > self._segment_ms
            or header.base_offset + header.last_offset_delta - seg.base_offset
            > relative_offset_max
        ) and self._should_roll(seg, header, len(data), now_ms):
            seg = self.roll(now_ms)
        seg.append(data, header)
        if not self._fsync_always:  # "always": published once synced (``sync``)
            self._published[1] = seg.next_offset  # ReaderView.publish_end, inlined
        return header

    @property
    def sync_each_append(self) -> bool:
        """fsync="always": the caller ``sync``s after each append, lock released."""
        return self._fsync_always

    def sync(self, offset: int) -> None:
        """Return once every offset below ``offset`` is on disk (fsync="always";
        called without the partition lock). A group commit: if another thread's
        sync started after those offsets were appended, its sync covers them and
        this one only waits for it. StorageError if the sync fails (then the
        caller, holding the partition lock, calls ``undo_unsynced``)."""
        if self.synced_offset >= offset:
            return
        with self._sync_lock:
            if self.synced_offset >= offset:
                return  # the sync that just finished covered it
            if self.fsync_error is not None:
                raise self._refused()
            seg = self._view[1][-1]
            end = seg.next_offset  # appended before the sync starts: covered by it
            try:
                seg.sync_data()
            except StorageError as exc:
                raise self._fsync_failed(exc) from exc
            self.synced_offset = end
            # Readers in other processes see only what is on disk (never an append
            # a failed fsync undoes); not past the end, should a truncation have run.
            self._published[1] = min(end, self.end_offset)

    def undo_unsynced(self) -> None:
        """After a failed sync: remove every batch appended since the last good one,
        so nothing readable was not acknowledged (best effort: the log refuses writes
        from now on either way). Caller holds the partition lock."""
        offset = min(self.synced_offset, self.end_offset)
        if offset < self.start_offset or offset >= self.end_offset:
            return
        try:
            self.truncate_to(offset)
        except OSError as exc:
            _log.error("cannot remove the unacknowledged batches from offset %d of %s: %s",
                       offset, self.directory, exc)

    def _fsync_failed(self, error: StorageError) -> StorageError:
        """Record the first failed fsync (PostgreSQL's lesson, "fsyncgate": after a
        failed fsync the kernel may have dropped the dirty pages and a retry may
        report success without writing them). What was written since the last good
        fsync is not durable; every later write raises until the log is closed and
        reopened, which recovers from what the disk holds."""
        if self.fsync_error is None:
            self.fsync_error = error
            _log.error("%s; writes to %s are refused until the log is reopened: records "
                       "written since the last successful fsync may not be on disk",
                       error, self.directory)
        return error

    def _refused(self) -> StorageError:
        error = self.fsync_error
        assert error is not None
        return StorageError(
            error.errno,
            f"{self.directory} refuses writes: an earlier fsync failed "
            f"({error.strerror or error}), so records written since the last successful "
            "fsync may not be on disk. "
            "Close the log and open it again: opening recovers from what the disk holds",
        )

    def _should_roll(self, seg: Segment, header: BatchHeader, size: int, now_ms: int) -> bool:
        """Kafka's LogSegment.shouldRoll (KAFKA_SEMANTICS 5.3)."""
        if seg.size == 0:
            return False
        config = self.config
        if seg.size > config.segment_bytes - size:
            return True
        first_ts = seg.first_max_timestamp
        if first_ts >= 0:
            if header.max_timestamp - first_ts > self._segment_ms:
                return True
        elif now_ms - seg.created_ms > self._segment_ms:
            return True
        return header.last_offset - seg.base_offset > relative_offset_max

    def roll(self, now_ms: int) -> Segment:
        """Start a new active segment at the log end (no-op if the active one is empty)."""
        seg = self.active_segment
        if seg.size == 0:
            return seg
        if self.fsync != "never":
            self._flush_segment(seg)
        new = self._add_segment(seg.next_offset, now_ms)  # first: a failure changes nothing
        seg.seal()
        return new

    def flush(self) -> None:
        """fsync the active segment and record the recovery point."""
        if self.fsync_error is not None:
            raise self._refused()
        seg = self.active_segment
        end = seg.next_offset
        self._flush_segment(seg)
        self.synced_offset = max(self.synced_offset, end)
        if self._fsync_always:
            self._published[1] = end  # caller holds the partition lock: the log end
        if self.directory is not None:
            point = _RECOVERY_POINT.pack(seg.base_offset, seg.size)
            path = os.path.join(self.directory, recovery_point_file)
            files = self.files
            try:
                fd = files.open(path, os.O_WRONLY | os.O_CREAT)
                try:
                    files.pwrite(fd, point, 0)
                finally:
                    files.close(fd)
            except OSError as exc:
                # Only a hint for recovery (a short or missing file is ignored there).
                _log.warning("cannot write %s: %s", path, exc)

    def _flush_segment(self, seg: Segment) -> None:
        try:
            seg.flush()
        except OSError as exc:
            raise self._fsync_failed(storage_error(
                exc, f"fsync segment {seg.base_offset} of {self.directory}",
                self.directory or "memory", files=self.files)) from exc

    def truncate_to(self, offset: int) -> int:
        """Cut the tail: remove every record at or above ``offset``. Returns bytes removed.

        ``offset`` must lie in ``[start_offset, end_offset]``; Raises
        OffsetOutOfRangeError otherwise, changing nothing.
        """
        if not self.start_offset <= offset <= self.end_offset:
            raise OffsetOutOfRangeError(
                f"cannot truncate to offset {offset}: the log holds "
                f"[{self.start_offset}, {self.end_offset}]"
            )
        removed = 0
        self.synced_offset = min(self.synced_offset, offset)  # new offsets there are not
        self._reader_view.publish_end(offset)  # before the bytes go: readers stop short
        while len(self._segments) > 1 and self._segments.peekitem(-1)[0] >= offset:
            _base, seg = self._segments.popitem(-1)
            removed += seg.size
            seg.delete()
        self._publish()
        seg = self.active_segment
        if offset < seg.next_offset:
            removed += seg.truncate_to(offset)
        self._reader_view.publish_end(self.end_offset)
        self._persist_log_start(min(self.start_offset, offset))
        self._cleaner.truncate_checkpoint(offset)
        return removed

    def delete_before(self, offset: int) -> int:
        """Drop the head: make ``offset`` the log start offset and delete the segments
        wholly below it (Kafka's DeleteRecords). Returns the segments deleted.

        Raises OffsetOutOfRangeError if ``offset`` is above the log end, changing nothing.
        """
        if offset > self.end_offset:
            raise OffsetOutOfRangeError(
                f"cannot delete records before offset {offset}: the log ends at {self.end_offset}"
            )
        if offset <= self.start_offset:
            return 0
        self._persist_log_start(offset)
        deleted = 0
        while len(self._segments) > 1:
            base, seg = self._segments.peekitem(0)
            if self._segments.peekitem(1)[0] > offset:
                break
            del self._segments[base]
            self._publish()
            seg.delete()
            deleted += 1
        self._publish()
        return deleted

    def _persist_log_start(self, offset: int) -> None:
        self.start_offset = offset
        if self.directory is not None:
            atomic_write(os.path.join(self.directory, log_start_file),
                         str(offset).encode("ascii"), durable=self.fsync != "never",
                         files=self.files)
        self._reader_view.publish_segments(offset)

    def apply_retention(self, now_ms: int) -> int:
        """Delete whole segments past ``retention_ms`` / ``retention_bytes``. Returns count."""
        summaries = [
            SegmentSummary(s.base_offset, s.next_offset, s.size, s.max_timestamp, s.created_ms)
            for s in self._segments.values()
        ]
        plan = plan_retention(
            summaries,
            now_ms=now_ms,
            retention_ms=self.config.retention_ms,
            retention_bytes=self.config.retention_bytes,
            log_start_offset=self.start_offset,
            high_watermark=self.end_offset,
        )
        if not plan.delete_base_offsets:
            return 0
        if plan.roll_first:
            self.roll(now_ms)
        for base in plan.delete_base_offsets:
            seg = self._segments.pop(base)
            self._publish()
            seg.delete()
        first = self._segments.peekitem(0)[0]
        if first > self.start_offset:
            self._persist_log_start(first)
        return len(plan.delete_base_offsets)

    # ------------------------------------------------------------------ compaction

    def clean(self, now_ms: int, *, commit_lock: AbstractContextManager[object]) -> CleanerStats:
        """Run the log cleaner once (compaction; see storage/cleaner.py). Thread-safe;
        ``commit_lock`` is the lock the caller's writers hold (the partition lock)."""
        return self._cleaner.clean(now_ms, commit_lock=commit_lock)

    @property
    def cleaner_checkpoint(self) -> int:
        """The first dirty offset the cleaner recorded (-1: it never ran)."""
        return self._cleaner.checkpoint

    def holds(self, segments: Sequence[Segment]) -> bool:
        """True if the log is open and every one of ``segments`` is still one of its own."""
        current = self._segments
        return not self._closed and all(current.get(s.base_offset) is s for s in segments)

    def replace_segments(self, old: Sequence[Segment], new: Segment) -> None:
        """Put ``new`` (the cleaned form of the consecutive segments ``old``, with the
        first one's base offset) in their place, publish, then unmap ``old``: their
        files were replaced or removed by the cleaner's swap. Caller holds the
        partition lock and checked ``holds(old)``.
        """
        assert old and new.base_offset == old[0].base_offset
        assert self.holds(old)
        assert old[-1] is not self._segments.peekitem(-1)[1], "the active segment is never cleaned"
        for seg in old:
            del self._segments[seg.base_offset]
        self._segments[new.base_offset] = new
        new.batch_cache = self.batch_cache
        self._publish()
        for seg in old:
            seg.detach()

    # ------------------------------------------------------------------ reading

    def _segment_for(self, offset: int) -> tuple[int, list[Segment]]:
        bases, segs = self._view
        i = bisect_right(bases, offset) - 1
        return max(i, 0), segs

    def read(
        self, offset: int, max_records: int, max_bytes: int = 2**31
    ) -> list[tuple[BatchHeader, Columns]]:
        """Decoded batches holding records from ``offset`` on (the first batch may start
        below it: the caller trims). Empty at the log end. Lock-free.

        Raises OffsetOutOfRangeError if ``offset`` is outside [start_offset, end_offset],
        CorruptLogError if the first batch to read is damaged or its offsets are
        missing (a sealed segment that ends before the next one starts: see
        ``RecoveryReport.damaged``); batches before a damaged range are returned
        first, and the next read, starting in it, raises.
        """
        if not self.start_offset <= offset <= self.end_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} is out of range: the log holds [{self.start_offset}, "
                f"{self.end_offset}]; seek within it or reset to the start or end"
            )
        i, segs = self._segment_for(offset)
        out: list[tuple[BatchHeader, Columns]] = []
        retries = 0
        while i < len(segs) and max_records > 0 and max_bytes > 0:
            seg = segs[i]
            if offset < seg.base_offset and i:  # a sealed segment ended early: damage
                if out:
                    break  # return what lies before it; the next read raises
                raise CorruptLogError(_damage(segs[i - 1], seg, self.directory).reason)
            if offset < seg.next_offset:
                try:
                    batches = seg.read(offset, max_records, max_bytes)
                except OffsetOutOfRangeError:
                    # The segment was closed under us. Retention deleted it (the offset
                    # is now below the start: raise), or the cleaner replaced it: its
                    # records from ``offset`` on are in the new snapshot, same offsets.
                    if (self._view[1] is segs or offset < self.start_offset
                            or retries == read_retries_max):
                        raise
                    retries += 1
                    i, segs = self._segment_for(offset)
                    continue
                for header, cols in batches:
                    max_records -= codec.records_from(cols.offsets, offset)  # gaps: compaction
                    max_bytes -= header.total_bytes
                out.extend(batches)
                if batches:
                    offset = batches[-1][0].last_offset + 1
                if offset < seg.next_offset:
                    break  # a limit was reached, or damage ended the segment's read
            i += 1
        return out

    def batch_at_position(
        self, offset: int, position: int
    ) -> tuple[BatchHeader, Columns] | None:
        """The decoded batch at byte ``position`` of the segment holding ``offset``, if
        a whole, CRC-valid batch holding ``offset`` starts there; None otherwise (a stale
        or unknown position: the caller reads through ``read``). Lock-free.

        The fast path of ``Partition.read_key``: one bisect, one header, one CRC, one
        decode; no sparse-index lookup, no header walk. Raises CorruptLogError only for
        a batch that holds ``offset`` and passes its CRC but cannot be decoded.
        """
        if position < 0 or not self.start_offset <= offset < self.end_offset:
            return None
        bases, segs = self._view
        seg = segs[max(bisect_right(bases, offset) - 1, 0)]
        try:
            return seg.batch_at_position(offset, position)
        except ValueError:  # the map was closed under us (deleted or replaced)
            return None

    def batch_positions(self, batches: Sequence[tuple[BatchHeader, Columns]]) -> list[int]:
        """The byte position, in its segment, of each of ``batches`` (as ``read``
        returned them: consecutive in the log), -1 where it cannot be told. Lock-free.

        O(1) per batch within a segment (batches are contiguous in a segment's file);
        one sparse-index lookup per segment the batches enter.
        """
        out: list[int] = []
        bases, segs = self._view
        seg_index = -1
        position = -1
        for header, _cols in batches:
            base = header.base_offset
            i = max(bisect_right(bases, base) - 1, 0)
            if i != seg_index:
                seg_index = i
                try:
                    position = segs[i].find_position(base)
                except (ValueError, CorruptLogError):
                    position = -1
            out.append(position)
            if position >= 0:
                position += header.total_bytes
        return out

    def last_batch_position(self, total_bytes: int) -> int:
        """The byte position of the batch of ``total_bytes`` just appended (the caller
        holds the append lock, so it is the active segment's last)."""
        return self._view[1][-1].size - total_bytes

    def batch_at(self, offset: int) -> tuple[BatchHeader, Columns] | None:
        """The decoded batch holding ``offset`` (or the first one after it, as
        ``read(offset, 1)``), None at the log end: a point read (``read_key``).
        Lock-free; raises like ``read``.

        Inside one segment it goes straight to ``Segment.batch_at`` (no limits to
        count, no list to build); anything else (a segment's end, damage, a segment
        closed under it) is ``read(offset, 1)``'s business.
        """
        if self.start_offset <= offset:
            bases, segs = self._view
            i = bisect_right(bases, offset) - 1
            if i >= 0:
                seg = segs[i]
                if offset < seg.next_offset:
                    try:
                        found = seg.batch_at(offset)
                    except OffsetOutOfRangeError:
                        found = None  # closed under us: read() retries on the new view
                    if found is not None:
                        return found
        batches = self.read(offset, 1)
        return batches[0] if batches else None

    def offset_for_time(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record, in offset order, whose timestamp is
        >= ``timestamp_ms``; None if there is none. Lock-free.

        A segment closed under the lookup (replaced by the cleaner, deleted by
        retention) makes it start again on the new snapshot.
        """
        for _attempt in range(read_retries_max):
            segs = self._view[1]
            try:
                return self._offset_for_time(segs, timestamp_ms)
            except ValueError:  # a closed map
                if self._view[1] is segs:
                    raise
        return self._offset_for_time(self._view[1], timestamp_ms)

    def _offset_for_time(
        self, segs: list[Segment], timestamp_ms: int
    ) -> tuple[int, int] | None:
        for i, seg in enumerate(segs):
            if seg.max_timestamp >= timestamp_ms:
                found = seg.offset_for_time(timestamp_ms)
                if found is not None and found[0] >= self.start_offset:
                    return found
                if found is not None:
                    return self._first_at_or_after(timestamp_ms, self.start_offset)
            if i + 1 < len(segs) and seg.next_offset < segs[i + 1].base_offset and (
                segs[i + 1].base_offset > self.start_offset
            ):  # the answer may lie in the missing offsets: do not step over them
                raise CorruptLogError(_damage(seg, segs[i + 1], self.directory).reason)
        return None

    def _first_at_or_after(self, timestamp_ms: int, start: int) -> tuple[int, int] | None:
        offset = start
        while offset < self.end_offset:
            batches = self.read(offset, 1000)
            if not batches:
                return None
            for _header, cols in batches:
                for off, ts in zip(cols.offsets, cols.timestamps):
                    if off >= start and ts >= timestamp_ms:
                        return off, ts
            offset = batches[-1][0].last_offset + 1
        return None

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Flush (unless fsync is "never"), unmap and trim every segment. Idempotent."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for seg in self._segments.values():
            try:
                # Always: the clean-shutdown marker written after this must not reach
                # the disk before the data it vouches for.
                seg.flush()
                seg.close()
            except OSError as exc:
                errors.append(exc)
        if self.fsync_error is not None:
            errors.append(self._refused())  # no clean-shutdown marker: recover on open
        elif self.directory is not None:
            try:
                self.files.unlink(os.path.join(self.directory, recovery_point_file))
            except FileNotFoundError:
                pass
            except OSError as exc:
                errors.append(exc)
        self._reader_view.close()  # the file stays: readers keep following it
        if errors:
            raise with_errno(errors[0], f"closing {self.directory}: {errors[0]}") from errors[0]

    def delete(self) -> None:
        """Close and remove every file of this log (its directory too)."""
        for seg in self._segments.values():
            seg.delete()
        self._reader_view.close()
        self._closed = True
        if self.directory is not None:
            files = self.files
            for name in files.listdir(self.directory):
                files.unlink(os.path.join(self.directory, name))
            files.rmdir(self.directory)

    def check(self) -> None:
        """Assert DESIGN invariant 1 and every segment's invariants."""
        bases, segs = self._view
        assert bases == list(self._segments.keys())
        assert segs, "a log always has at least one segment"
        for i, seg in enumerate(segs):
            seg.check()
            assert seg.base_offset == bases[i]
            if i + 1 < len(segs):
                assert seg.next_offset <= bases[i + 1] or seg.damaged, "segments overlap"
                assert seg.size > 0 or seg.damaged, "only the active segment may be empty"
                assert seg.next_offset == bases[i + 1] or seg.damaged, "a gap not reported"
        assert segs[0].base_offset <= self.start_offset <= self.end_offset

    def __repr__(self) -> str:
        return (
            f"PartitionLog({self.directory or '<memory>'}, start_offset={self.start_offset}, "
            f"end_offset={self.end_offset}, segments={len(self._view[1])})"
        )


def _damage(seg: Segment, following: Segment, directory: str | None) -> DamagedRange:
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
