"""The log cleaner: runs Kafka's log compaction on ``cleanup_policy="compact"`` logs.

Theory of operation (KAFKA_SEMANTICS 6; Kafka's LogCleaner, LogCleanerManager):

* **Ranges.** A log is ``[clean | dirty | uncleanable]``. The *cleaner checkpoint*
  (first dirty offset) is where the last cleaning stopped. The first uncleanable
  offset is the active segment's base offset, or (``min_compaction_lag_ms`` > 0)
  the base offset of the first dirty segment holding a record newer than
  ``now - min_compaction_lag_ms``, whichever is lower. The active segment is never
  cleaned, so the newest duplicates stay visible until it rolls.
* **When.** A log is cleaned when ``dirty / (clean + dirty) > min_cleanable_dirty_ratio``
  (bytes of whole segments), when a dirty segment's first batch is older than
  ``max_compaction_lag_ms``, or when a tombstone's delete horizon has passed.
* **Key map.** The dirty range is read once into ``{key: latest offset}`` (at most
  ``key_map_keys_max`` keys, whole segments at a time, as Kafka's dedupe buffer).
  The map's end (a segment base offset) becomes the new checkpoint.
* **Keep rule** (LogCleaner.shouldRetainRecord): every segment below the map's end
  is rewritten keeping a record iff no later record of its key is in the map, and
  it has a value or is a tombstone whose batch's delete horizon has not passed.
  Keyless records (impossible on a compacted topic) are kept.
* **Transactions** (Kafka's, docs/storage.md "Transactions and compaction"):
  nothing at or past the last stable offset is cleanable; records of aborted
  transactions stay out of the key map and are removed; a marker stays while
  records of its transaction do, then is stamped with a delete horizon and removed
  after it (compaction.py's TransactionFilter and clean_batch).
  The first cleaning that keeps a tombstone stamps its batch with
  ``delete horizon = now + delete_retention_ms`` (batch.py, attribute bit 7).
* **Batches.** Kept batches keep their base offset, last offset and producer
  fields (a reader's position after one is ``last offset + 1``), gain the
  compacted bit, and are rewritten only if they lost records or need a new stamp.
  A batch that keeps no record disappears, except the last batch of each
  producer id seen within ``producer_id_expiration_ms`` (its sequence numbers,
  KAFKA_SEMANTICS 6.6) and the last batch of each rewritten segment (so a
  segment still ends where it ended and the next one still starts there), which
  survive as empty batches.
* **Segments.** Consecutive segments are merged while their sizes add up to at
  most ``segment_bytes`` (Kafka's groupSegmentsBySize); a group's cleaned segment
  takes the first one's base offset, so the log start offset never moves.
* **Swap** (crash safety, as Kafka's replaceSegments / LogLoader): the cleaned
  segment is written as ``<base>.log.cleaned`` (+ ``.index.cleaned``,
  ``.timeindex.cleaned``), fsynced, renamed to ``.swap`` (index files first, the
  ``.log`` last: that rename is the commit point) and the directory fsynced. Then
  the group's other segments are deleted (index files first) and the ``.swap``
  files renamed over the originals. Opening a log first completes or forgets
  what a crash interrupted (storage/swap.py).
* **Readers** are lock-free over the log's published segments. The swap opens the
  new segment, publishes it, and only then unmaps the old ones (on POSIX their
  files may be replaced while mapped); a reader that finds an old segment closed
  reads on from the new snapshot (PartitionLog.read), where every record it has
  not read yet still is, at the same offset.
* **Locks.** A cleaning reads and writes without the partition lock, serialised per
  log by the cleaner's own lock; only the swap takes ``commit_lock`` (the
  partition lock), after checking that the segments it replaces are still the
  log's. If retention, truncation or close changed them, the cleaning is dropped.

The plan (ranges, when, groups, what each batch keeps) is pure, in
storage/compaction.py; this module reads, writes and swaps.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

from ..config import TopicConfig
from ..errors import CorruptLogError, OffsetOutOfRangeError, StorageError
from . import batch as codec
from .batch import BatchHeader, Columns
from .compaction import (
    AbortedRange,
    CleanableRange,
    SegmentInfo,
    TransactionFilter,
    clean_batch,
    cleanable_range,
    compaction_due,
    group_segments,
)
from .files import Files, atomic_write, fsync_dir, segment_file_name, with_errno
from .index import OffsetIndex, TimeIndex, entry_due, relative_offset_max
from .segment import Segment, decode_stored
from .swap import cleaned_suffix, complete_swap, segment_suffixes, swap_suffix

__all__ = ["CleanableLog", "CleanerStats", "CleanerTxns", "LogCleaner"]

checkpoint_file = "cleaner-offset-checkpoint"  # Kafka's name (one file per log dir there)
# Kafka's dedupe buffer (log.cleaner.dedupe.buffer.size, 128 MiB) holds about 5M
# 24-byte entries; a Python dict entry with its bytes key costs ~100-150 bytes, so
# 10^6 keys is about the same memory.
key_map_keys_max = 1_000_000
producer_id_expiration_ms = 86_400_000  # Kafka's producer.id.expiration.ms (1 day)


class CleanerStats(NamedTuple):
    """What one run of the cleaner on one log did (Kafka's CleanerStats, in part)."""

    cleaned: bool
    reason: str  # why it cleaned, or why not
    first_dirty: int
    end_offset: int  # the key map's end: the new checkpoint if cleaned
    records_read: int = 0
    records_removed: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    segments_read: int = 0
    segments_written: int = 0


def _info(seg: Segment) -> SegmentInfo:
    return SegmentInfo(
        seg.base_offset, seg.next_offset, seg.size, seg.first_max_timestamp, seg.max_timestamp
    )


def _batches(seg: Segment) -> Iterator[tuple[BatchHeader, bytes, Columns]]:
    """Every batch of a sealed segment: header, stored bytes, decoded columns.

    Raises CorruptLogError for a batch that fails its CRC, ValueError if the segment
    is closed meanwhile.
    """
    for header, position in seg.headers():
        data = seg.read_batch(position, header)
        tail = memoryview(data)[codec.crc_start:]
        if len(data) != header.total_bytes or not codec.verify_crc(tail, header):
            raise CorruptLogError(
                f"batch at byte {position} of segment {seg.base_offset} (offsets "
                f"{header.base_offset}..{header.last_offset}) fails its CRC; not cleaning"
            )
        yield header, data, decode_stored(header, tail, position, seg.path,
                                          seg.inflated_bytes_max)


class CleanableLog(Protocol):
    """What the cleaner needs of the log it compacts (PartitionLog): typed
    structurally, so the cleaner imports nothing above it and the log imports it."""

    directory: str | None
    config: TopicConfig
    files: Files
    start_offset: int

    @property
    def segments(self) -> Sequence[Segment]: ...

    @property
    def end_offset(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    def holds(self, segments: Sequence[Segment]) -> bool: ...

    def replace_segments(self, old: Sequence[Segment], new: Segment) -> None: ...


class CleanerTxns(Protocol):
    """What the cleaner needs of a partition's transaction state (txn_index.py's
    PartitionTxns): the LSO and the aborted transactions, read without the partition
    lock (both are single loads of immutable values), and ``forget``, called under it."""

    @property
    def aborted(self) -> Sequence[AbortedRange]: ...

    def last_stable_offset(self, end_offset: int) -> int: ...

    def forget(self, marker_offsets: Sequence[int]) -> None: ...


class _Aborted(Exception):
    """The log changed under the cleaner (closed, truncated, retention): drop the work."""


class LogCleaner:
    """Compacts one PartitionLog: ``clean(now_ms, commit_lock=...)``.

    Thread-safe: runs are serialised by the cleaner's own lock (a second concurrent
    run returns at once, not cleaning). The checkpoint lives in the log directory
    (``cleaner-offset-checkpoint``: the first dirty offset in ASCII decimal,
    replaced atomically), or in memory for an in-memory log.
    """

    def __init__(self, log: CleanableLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._checkpoint: int | None = None  # read from the file on first use
        # The earliest delete horizon in the cleaned range, as the last cleaning left
        # it: -1 none, None unknown (after opening, or an aborted run): walk headers.
        self._earliest_horizon: int | None = None

    # ------------------------------------------------------------------ checkpoint

    def _checkpoint_path(self) -> str | None:
        directory = self._log.directory
        return None if directory is None else os.path.join(directory, checkpoint_file)

    @property
    def checkpoint(self) -> int:
        """The first dirty offset as last recorded (-1: never; the log start offset applies)."""
        if self._checkpoint is None:
            path = self._checkpoint_path()
            stored = -1
            if path is not None:
                try:
                    stored = int(self._log.files.read_file(path).decode("ascii").strip())
                except (OSError, ValueError):
                    stored = -1
            self._checkpoint = stored
        return self._checkpoint

    def _write_checkpoint(self, offset: int) -> None:
        path = self._checkpoint_path()
        if path is not None:
            atomic_write(path, str(offset).encode("ascii"), durable=True, files=self._log.files)
        self._checkpoint = offset

    def truncate_checkpoint(self, offset: int) -> None:
        """The log was cut at ``offset``: the dirty range cannot start past it.
        Caller holds the partition lock."""
        if self.checkpoint > offset:
            self._write_checkpoint(offset)

    # ------------------------------------------------------------------ cleaning

    def clean(
        self, now_ms: int, *, commit_lock: AbstractContextManager[object],
        txns: CleanerTxns | None = None,
    ) -> CleanerStats:
        """Clean the log once if it is due (see the module docstring). Returns stats.

        Cost: a header walk of the log; if due, one read of every segment below the
        first uncleanable offset and one write of what is kept. ``commit_lock`` (the
        partition lock) is held only to swap segments in.

        Raises CorruptLogError if a batch to clean fails its CRC (nothing changed)
        and StorageError if the disk fails (a half-done swap completes at the next
        open).

        ``txns``: the partition's transactions, if it ever had any. Nothing at or past
        their last stable offset is cleaned; data of aborted transactions is removed
        whatever its keys, and markers go once their transactions left no data
        (``TransactionFilter``, ``clean_batch``); the abort markers removed are
        ``forget``-ed under ``commit_lock`` with the swap that removed them.
        """
        if not self._lock.acquire(blocking=False):
            return CleanerStats(False, "another cleaning of this log is running", -1, -1)
        try:
            return self._clean(now_ms, commit_lock, txns)
        except OSError as exc:
            if isinstance(exc, StorageError):
                raise
            raise with_errno(exc, f"cleaning {self._log.directory}: {exc}; the cleaned "
                             "copy was discarded and the log is as it was") from exc
        finally:
            self._lock.release()

    def _clean(self, now_ms: int, commit_lock: AbstractContextManager[object],
               txns: CleanerTxns | None) -> CleanerStats:
        log = self._log
        config = log.config
        segments = log.segments
        infos = [_info(seg) for seg in segments]
        aborted = () if txns is None else tuple(txns.aborted)
        cleanable = cleanable_range(
            infos, checkpoint=self.checkpoint, log_start_offset=log.start_offset,
            now_ms=now_ms, min_compaction_lag_ms=config.min_compaction_lag_ms,
            last_stable_offset=None if txns is None else txns.last_stable_offset(log.end_offset),
        )
        reason = compaction_due(
            cleanable, infos, now_ms=now_ms,
            min_cleanable_dirty_ratio=config.min_cleanable_dirty_ratio,
            max_compaction_lag_ms=config.max_compaction_lag_ms,
        )
        try:
            if reason is None and self._horizon_passed(segments, cleanable, now_ms):
                reason = "delete horizon"
            if reason is None:
                return CleanerStats(False, "not due", cleanable.first_dirty,
                                    cleanable.first_uncleanable)
            damaged = [seg for seg in segments
                       if seg.damaged and seg.base_offset < cleanable.first_uncleanable]
            if damaged:  # merging them would turn reported damage into silent gaps
                raise CorruptLogError(
                    f"not cleaning {log.directory or 'the log'}: segment(s) "
                    f"{', '.join(str(seg.base_offset) for seg in damaged)} are damaged "
                    "(see the log's recovery report); remove the damaged range first"
                )
            self._earliest_horizon = None  # unknown until this run completes
            latest, map_end = _key_map(segments, cleanable, aborted)
            producers = _producer_last_batches(segments, now_ms)
            stats = CleanerStats(True, reason, cleanable.first_dirty, map_end)
            doomed = [seg for seg in segments if seg.base_offset < map_end]
            groups = group_segments([_info(s) for s in doomed],
                                    segment_bytes=config.segment_bytes,
                                    relative_offset_max=relative_offset_max)
            by_base = {seg.base_offset: seg for seg in doomed}
            ctx = _Context(latest, map_end, now_ms, config.delete_retention_ms, producers, [-1],
                           TransactionFilter(aborted), txns)
            for group in groups:
                stats = self._clean_group(
                    [by_base[info.base_offset] for info in group], ctx, stats, commit_lock
                )
        except _Aborted as exc:
            return CleanerStats(False, f"aborted: {exc}", cleanable.first_dirty, -1)
        except (ValueError, OffsetOutOfRangeError, OSError) as exc:
            # A segment closed under us, or the directory went (a deleted topic): drop
            # the work. Anything else (a corrupt batch, a full disk) is raised.
            if log.holds(segments):
                raise
            return CleanerStats(False, f"aborted: the log changed ({exc})",
                                cleanable.first_dirty, -1)
        with commit_lock:
            if not log.closed and map_end != self.checkpoint:
                self._write_checkpoint(map_end)
        self._earliest_horizon = ctx.earliest_horizon[0]
        return stats

    def _horizon_passed(
        self, segments: Sequence[Segment], cleanable: CleanableRange, now_ms: int
    ) -> bool:
        """True if a batch in the clean range carries a delete horizon at or before now.
        O(1) after a cleaning; a header walk of the clean range after opening."""
        earliest = self._earliest_horizon
        if earliest is None:
            earliest = -1
            for seg in segments:
                if seg.base_offset >= cleanable.first_dirty:
                    break
                for header, _position in seg.headers():
                    horizon = codec.delete_horizon_ms(header)
                    if horizon >= 0 and (earliest < 0 or horizon < earliest):
                        earliest = horizon
            self._earliest_horizon = earliest
        return 0 <= earliest <= now_ms

    def _clean_group(
        self,
        group: list[Segment],
        ctx: _Context,
        stats: CleanerStats,
        commit_lock: AbstractContextManager[object],
    ) -> CleanerStats:
        """Rewrite one group of segments into one, and swap it in if anything changed."""
        log = self._log
        writer = _Writer(log, group[0])
        markers: list[int] = []  # abort markers this group's cleaning removes
        try:
            read, removed, changed = self._filter_group(group, ctx, writer, markers)
            if not changed:
                writer.discard()
                return stats._replace(records_read=stats.records_read + read,
                                      bytes_read=stats.bytes_read + group[0].size)
            new = writer.finish()
            with commit_lock:
                if not log.holds(group):
                    raise _Aborted("its segments changed (retention, truncation or close)")
                new_segment = writer.commit([seg.base_offset for seg in group[1:]], new)
                log.replace_segments(group, new_segment)
                if markers and ctx.txns is not None:
                    ctx.txns.forget(markers)
        except BaseException:
            writer.discard()
            raise
        return stats._replace(
            records_read=stats.records_read + read,
            records_removed=stats.records_removed + removed,
            bytes_read=stats.bytes_read + sum(seg.size for seg in group),
            bytes_written=stats.bytes_written + new_segment.size,
            segments_read=stats.segments_read + len(group),
            segments_written=stats.segments_written + 1,
        )

    def _filter_group(
        self, group: list[Segment], ctx: _Context, writer: _Writer, markers: list[int]
    ) -> tuple[int, int, bool]:
        """Feed what the group keeps to ``writer``: (records read, removed, changed);
        the offsets of the abort markers it removes go to ``markers``."""
        read = removed = 0
        changed = len(group) > 1  # merging segments is a change in itself
        last = group[-1]
        for seg in group:
            for header, data, columns in _batches(seg):
                keep_empty = (seg is last and header.last_offset + 1 == seg.next_offset) or (
                    (header.producer_id, header.last_offset) in ctx.producers
                )
                control = header.attributes & codec.attr_control
                kind = _marker_kind(seg, header, columns) if control else None
                out, gone = clean_batch(
                    header, data, columns, latest=ctx.latest, map_end=ctx.map_end,
                    now_ms=ctx.now_ms, delete_retention_ms=ctx.delete_retention_ms,
                    keep_empty=keep_empty,
                    aborted=not control and ctx.transactions.data_batch(header),
                    marker_removable=bool(control) and ctx.transactions.marker(header, kind),
                )
                if out is None and kind == codec.control_abort:
                    markers.append(header.base_offset)
                read += header.record_count
                removed += gone
                if out is not data:
                    changed = True
                if out is not None:
                    writer.add(out)
                    ctx.note_horizon(out)
        return read, removed, changed


class _Context(NamedTuple):
    latest: dict[bytes | None, int]
    map_end: int
    now_ms: int
    delete_retention_ms: int
    producers: frozenset[tuple[int, int]]
    earliest_horizon: list[int]  # one item: the earliest horizon written so far, -1 none
    transactions: TransactionFilter  # this cleaning's walk through the transactions
    txns: CleanerTxns | None

    def note_horizon(self, data: bytes) -> None:
        horizon = codec.delete_horizon_ms(codec.decode_header(data))
        earliest = self.earliest_horizon[0]
        if horizon >= 0 and (earliest < 0 or horizon < earliest):
            self.earliest_horizon[0] = horizon


def _key_map(
    segments: Sequence[Segment], cleanable: CleanableRange, aborted: Sequence[AbortedRange]
) -> tuple[dict[bytes | None, int], int]:
    """``{key: latest offset}`` over the dirty range, whole segments at a time, and the
    offset where the map ends (a segment base offset; ``first_dirty`` if empty).

    Control batches and the records of ``aborted`` transactions are left out (Kafka's
    buildOffsetMap): an aborted record must not make an older committed one of its
    key obsolete."""
    transactions = TransactionFilter(aborted)
    latest: dict[bytes | None, int] = {}
    map_end = cleanable.first_dirty
    for i, seg in enumerate(segments[:-1]):
        if seg.base_offset >= cleanable.first_uncleanable:
            break
        if seg.next_offset <= cleanable.first_dirty:
            continue
        seen: dict[bytes | None, int] = {}
        for header, _data, columns in _batches(seg):
            if header.attributes & codec.attr_control or transactions.data_batch(header):
                continue
            if header.base_offset < cleanable.first_dirty:  # the dirty range starts inside
                pairs = [(k, o) for k, o in zip(columns.keys, columns.offsets)
                         if o >= cleanable.first_dirty]
                seen.update(pairs)
            else:
                seen.update(zip(columns.keys, columns.offsets))
        if latest and len(latest) + len(seen) > key_map_keys_max:
            break  # the map is full: clean up to here, the rest next time
        latest.update(seen)
        map_end = min(segments[i + 1].base_offset, cleanable.first_uncleanable)
    return latest, map_end


def _marker_kind(seg: Segment, header: BatchHeader, columns: Columns) -> int | None:
    """The type of a control batch (commit or abort), None if it holds no record.
    CorruptLogError if its record is not a transaction marker: nothing is cleaned."""
    if not columns.keys:
        return None
    try:
        if len(columns.keys) != 1:
            raise ValueError(f"it holds {len(columns.keys)} records, not one")
        return codec.marker_type(columns.keys[0])
    except ValueError as exc:
        raise CorruptLogError(
            f"control batch at offset {header.base_offset} of {seg.path or 'memory segment'} "
            f"is not a transaction marker ({exc}); not cleaning"
        ) from exc


def _producer_last_batches(
    segments: Sequence[Segment], now_ms: int
) -> frozenset[tuple[int, int]]:
    """(producer id, last offset) of each producer's last batch in the log, for
    producers seen within ``producer_id_expiration_ms`` (KAFKA_SEMANTICS 6.6)."""
    last: dict[int, tuple[int, int]] = {}
    for seg in segments:
        for header, _position in seg.headers():
            if header.producer_id >= 0:
                last[header.producer_id] = (header.last_offset, header.max_timestamp)
    return frozenset(
        (pid, offset) for pid, (offset, ts) in last.items()
        if now_ms - ts <= producer_id_expiration_ms
    )


class _Writer:
    """Writes one cleaned segment: ``<base>.*.cleaned`` files, or (in memory) a Segment.

    ``add`` batches in order, ``finish``, then ``commit`` under the partition lock;
    ``discard`` on any failure before the commit (idempotent).
    """

    def __init__(self, log: CleanableLog, first: Segment) -> None:
        self._log = log
        self.base_offset = first.base_offset
        self._created_ms = first.created_ms
        self._interval = log.config.index_interval_bytes
        self._directory = log.directory
        self._files = log.files
        self._memory: Segment | None = None
        self._fd = -1
        self._pending = bytearray()  # written to the file in chunks of _write_chunk_bytes
        self._written = 0
        self._position = 0
        self._since_index = 0
        self._max_ts = -1
        # Built in memory with the segment's own index classes, written by finish().
        self._index = OffsetIndex(None)
        self._time_index = TimeIndex(None)
        if self._directory is None:
            self._memory = self._new_segment(None)
        else:
            self._fd = self._files.open(self._path(".log", cleaned_suffix),
                                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC)

    def _path(self, suffix: str, extra: str = "") -> str:
        assert self._directory is not None
        return os.path.join(self._directory, segment_file_name(self.base_offset, suffix) + extra)

    def _new_segment(self, directory: str | None) -> Segment:
        config = self._log.config
        return Segment(
            directory, self.base_offset, segment_bytes=config.segment_bytes,
            index_interval_bytes=config.index_interval_bytes, created_ms=self._created_ms,
            trusted=True, inflated_bytes_max=codec.inflated_bytes_max(config.max_message_bytes),
            files=self._files,
        )

    def add(self, data: bytes) -> None:
        header = codec.decode_header(data)
        if self._memory is not None:
            self._memory.append(data, header)
            return
        assert self._fd >= 0
        position = self._position
        # Segment's rule (index.entry_due), so the files match what appends would build.
        if entry_due(self._since_index, self._interval, position):
            relative = header.last_offset - self.base_offset
            self._index.append(relative, position)
            self._time_index.append(max(self._max_ts, header.max_timestamp), relative)
            self._since_index = 0
        self._pending += data
        if len(self._pending) >= _write_chunk_bytes:
            self._drain()
        self._since_index += len(data)
        self._position += len(data)
        self._max_ts = max(self._max_ts, header.max_timestamp)

    def finish(self) -> Segment | None:
        """Make the cleaned files durable (always fsynced: the swap must never rename a
        file the disk does not hold yet). Returns the in-memory segment, if any."""
        if self._memory is not None:
            self._memory.seal()
            return self._memory
        assert self._fd >= 0
        files = self._files
        self._drain()
        files.fsync(self._fd)
        fd, self._fd = self._fd, -1
        files.close(fd)
        for suffix, data in ((".index", self._index.encode()),
                             (".timeindex", self._time_index.encode())):
            fd = files.open(self._path(suffix, cleaned_suffix),
                            os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                _write_all(files, fd, data, 0)
                files.fsync(fd)
            finally:
                files.close(fd)
        return None

    def _drain(self) -> None:
        """Write what ``add`` buffered to the ``.log.cleaned`` file."""
        if self._pending:
            _write_all(self._files, self._fd, self._pending, self._written)
            self._written += len(self._pending)
            self._pending = bytearray()

    def commit(self, others: list[int], memory: Segment | None) -> Segment:
        """Swap the cleaned segment in for the group (``others``: the group's bases after
        the first). Caller holds the partition lock. Returns the opened segment."""
        if memory is not None:
            self._memory = None  # now the log's
            return memory
        directory = self._directory
        assert directory is not None
        try:
            files = self._files
            for suffix in (".index", ".timeindex", ".log"):  # the .log last: the commit point
                files.replace(self._path(suffix, cleaned_suffix), self._path(suffix, swap_suffix))
            fsync_dir(directory, files=files)
            if sys.platform == "win32":  # pragma: no cover - a mapped file cannot be replaced
                for seg in self._log.segments:
                    if seg.base_offset == self.base_offset or seg.base_offset in others:
                        seg.detach()
            complete_swap(directory, self.base_offset, others, files)
            segment = self._new_segment(directory)
            segment.load()
            segment.seal()
        except OSError as exc:
            raise with_errno(
                exc, f"swapping cleaned segment {self.base_offset} into {directory}: {exc}; "
                "reopening the log completes the swap"
            ) from exc
        return segment

    def discard(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None
        if self._directory is not None:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                self._files.close(fd)
            for suffix in segment_suffixes:
                try:
                    self._files.unlink(self._path(suffix, cleaned_suffix))
                except FileNotFoundError:
                    pass


_write_chunk_bytes = 1024 * 1024  # the cleaned .log is written this much at a time


def _write_all(files: Files, fd: int, data: bytes | bytearray, position: int) -> None:
    """pwrite all of ``data`` at ``position`` (a short write continues where it stopped)."""
    view = memoryview(data)
    while view:
        written = files.pwrite(fd, view, position)
        view = view[written:]
        position += written
