"""PartitionLog: the writer of one partition's segments (append, roll, sync, truncate,
delete, retention and compaction runs); reads are LogView's, opening is LogLoader's.

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
one instead of one each; each waiter returns when the first fsync that covers it
ends, and the next fsync first waits (at most one fsync's time) for the threads the
last one released, so that they share it. A failed sync undoes every batch after
the last good one (``undo_unsynced``, under the partition lock) and the log refuses
writes.

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
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager

from sortedcontainers import SortedDict

from ..config import TopicConfig
from ..errors import OffsetOutOfRangeError, StorageError
from . import batch as codec
from .batch import BatchHeader
from .batch_cache import BatchCache
from .cleaner import CleanerStats, CleanerTxns, LogCleaner
from .files import Files, atomic_write, fsync_dir, os_files, storage_error, with_errno
from .group_commit import GroupCommit
from .index import relative_offset_max
from .loader import (
    RECOVERY_POINT,
    DamagedRange,
    LogLoader,
    RecoveryReport,
    log_start_file,
    recovery_point_file,
)
from .log_view import LogView
from .reader_view import ReaderView
from .retention import SegmentSummary, plan_retention
from .segment import Segment

__all__ = ["DamagedRange", "PartitionLog", "RecoveryReport"]

_log = logging.getLogger("eventlog.storage")



class PartitionLog(LogView):
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
            report = self._load(clean_shutdown, now_ms)
        except BaseException:
            self._reader_view.close()
            raise
        self.recovery = report._replace(duration_ms=(time.perf_counter() - started) * 1000)
        # fsync="always": offsets below ``synced_offset`` are on disk; the group
        # commit decides when fsyncs run. ``_truncations`` is odd while
        # ``truncate_to`` runs and grows by two each call, so an fsync that a
        # truncation overlapped does not vouch for the offsets written after it.
        self._group_commit = GroupCommit(LogSyncTarget(self))
        self._truncations = 0
        self.synced_offset = self.end_offset
        self._cleaner = LogCleaner(self)
        self._reader_view.publish_segments(self.start_offset)
        self._reader_view.publish_end(self.end_offset)

    def _load(self, clean: bool, now_ms: int) -> RecoveryReport:
        """Open the directory's segments (storage/loader.py), or the first one of a new log."""
        loader = LogLoader(self.directory, self.files,
                           lambda base, trusted: self._new_segment(base, now_ms, trusted=trusted))
        try:
            report = loader.load(clean)
        except BaseException:
            for seg in loader.segments.values():
                try:
                    seg.detach()  # unmap only: close() would trim a file not loaded yet
                except OSError:
                    pass  # the error being raised is the one to report
            raise
        if report is None:
            self._add_segment(0, now_ms)
            self.start_offset = 0
            return RecoveryReport(clean, 1, 0, 0, 0, 0, 0.0)
        self._segments = loader.segments
        self._publish()
        self.start_offset = loader.start_offset
        return report

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
            frame_records=self.config.frame_records,
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
        called without the partition lock): a group commit (storage/group_commit.py).
        StorageError if the sync fails (then the caller, holding the partition lock,
        calls ``undo_unsynced``)."""
        if self.synced_offset < offset:
            self._group_commit.wait_for(offset)

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
            point = RECOVERY_POINT.pack(seg.base_offset, seg.size)
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
        self._truncations += 1  # odd while it runs: see ``_sync_locked``
        try:
            return self._truncate_to(offset)
        finally:
            self._truncations += 1

    def _truncate_to(self, offset: int) -> int:
        removed = 0
        self.synced_offset = min(self.synced_offset, offset)  # new offsets there are not
        # Readers in other processes see only what is on disk under "always".
        visible = self.synced_offset if self._fsync_always else offset
        self._reader_view.publish_end(visible)  # before the bytes go: readers stop short
        while len(self._segments) > 1 and self._segments.peekitem(-1)[0] >= offset:
            _base, seg = self._segments.popitem(-1)
            removed += seg.size
            seg.delete()
        self._publish()
        seg = self.active_segment
        if offset < seg.next_offset:
            removed += seg.truncate_to(offset)
        self._reader_view.publish_end(min(visible, self.end_offset))
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

    def last_batch_position(self, total_bytes: int) -> int:
        """The byte position of the batch of ``total_bytes`` just appended (the caller
        holds the append lock, so it is the active segment's last)."""
        return self._view[1][-1].size - total_bytes

    # ------------------------------------------------------------------ compaction

    def clean(self, now_ms: int, *, commit_lock: AbstractContextManager[object],
              txns: CleanerTxns | None = None) -> CleanerStats:
        """Run the log cleaner once (compaction; see storage/cleaner.py). Thread-safe;
        ``commit_lock`` is the lock the caller's writers hold (the partition lock);
        ``txns``: the partition's transaction state, if it has one (txn_index.py)."""
        return self._cleaner.clean(now_ms, commit_lock=commit_lock, txns=txns)

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


class LogSyncTarget:
    """The group commit's SyncTarget for a PartitionLog: what one fsync covers (the
    active segment up to its end when the fsync starts) and its outcome."""

    __slots__ = ("log",)

    def __init__(self, log: PartitionLog) -> None:
        self.log = log

    @property
    def synced_offset(self) -> int:
        return self.log.synced_offset

    def refuse_if_failed(self) -> None:
        if self.log.fsync_error is not None:
            raise self.log._refused()

    def sync_start(self) -> tuple[int, tuple[Segment, int, int]]:
        """The end the fsync covers (every batch appended before it starts), and its
        token: the active segment, that end and the log's truncation count (see
        ``sync_finish``)."""
        seg = self.log._view[1][-1]
        end = seg.next_offset
        return end, (seg, end, self.log._truncations)

    def sync_data(self, token: tuple[Segment, int, int]) -> None:
        token[0].sync_data()

    def sync_finish(self, token: tuple[Segment, int, int], error: StorageError | None) -> None:
        log = self.log
        if error is not None:
            raise log._fsync_failed(error) from error
        _seg, end, truncations = token
        if truncations & 1 or truncations != log._truncations:
            return  # a truncation overlapped: offsets below ``end`` may be new ones
        if end > log.synced_offset:
            log.synced_offset = end
            # Readers in other processes see only what is on disk (never an append
            # a failed fsync undoes).
            log._published[1] = end
