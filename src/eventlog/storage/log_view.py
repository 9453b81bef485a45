"""LogView: the lock-free reads of a log, over the snapshot of its segments that the
writer publishes.

``_view`` is ``(base offsets, segments)``, replaced whole (never mutated) by the
owner whenever its segments change (a roll, retention, truncation, the cleaner's
swap). A reader takes one snapshot and reads it; a segment closed under it (the
cleaner replaced it, retention deleted it) makes the read retry on the newer
snapshot, where every record it has not read yet still is, at the same offset.
PartitionLog (the writer) and FollowedLog (a reader in another process) are
LogViews.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

from ..errors import CorruptLogError, OffsetOutOfRangeError
from ..records import Record
from . import batch as codec
from .batch import BatchHeader, Columns
from .loader import damage_between
from .run_reads import read_run
from .segment import Segment

_Found = tuple[BatchHeader, Columns]

__all__ = ["LogView", "read_retries_max"]

# A read that finds its segment closed retries on the new snapshot this many times:
# each retry means a cleaner swap completed meanwhile, which takes far longer than a read.
read_retries_max = 8


class LogView:
    """Reads over ``_view``; the subclass owns the segments and publishes the view."""

    directory: str | None
    start_offset: int
    _view: tuple[list[int], list[Segment]]

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

    # ------------------------------------------------------------------ reading

    def _segment_for(self, offset: int) -> tuple[int, list[Segment]]:
        bases, segs = self._view
        i = bisect_right(bases, offset) - 1
        return max(i, 0), segs

    def read(
        self, offset: int, max_records: int, max_bytes: int = 2**31, *, runs: bool = False
    ) -> list[tuple[BatchHeader, Columns]]:
        """Decoded batches holding records from ``offset`` on (the first batch may start
        below it: the caller trims). Empty at the log end. Lock-free.

        ``runs``: the caller wants records, not batches as stored: runs of plain
        one-record batches may come back merged under a synthetic header
        (``storage.run_reads.read_run``).

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
                raise CorruptLogError(damage_between(segs[i - 1], seg, self.directory).reason)
            if offset < seg.next_offset:
                try:
                    batches = (read_run(seg, offset, max_records, max_bytes) if runs
                               else seg.read(offset, max_records, max_bytes))
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

    def _found_at(self, offset: int, find: Callable[[Segment, int], _Found | None]
                  ) -> _Found | None:
        """``find(segment, offset)`` in the segment holding ``offset``; ``read(offset,
        1)``'s first batch for anything else (a segment's end, damage, a segment
        closed under it)."""
        if self.start_offset <= offset:
            bases, segs = self._view
            i = bisect_right(bases, offset) - 1
            if i >= 0:
                seg = segs[i]
                if offset < seg.next_offset:
                    try:
                        found = find(seg, offset)
                    except OffsetOutOfRangeError:
                        found = None  # closed under us: read() retries on the new view
                    if found is not None:
                        return found
        batches = self.read(offset, 1)
        return batches[0] if batches else None

    def batch_at(self, offset: int) -> tuple[BatchHeader, Columns] | None:
        """The decoded batch holding ``offset`` (or the first one after it, as
        ``read(offset, 1)``), None at the log end: a point read (``read_key``).
        Lock-free; raises like ``read``.

        Inside one segment it goes straight to ``Segment.batch_at`` (no limits to
        count, no list to build); anything else (a segment's end, damage, a segment
        closed under it) is ``read(offset, 1)``'s business.
        """
        return self._found_at(offset, Segment.batch_at)

    def point_at(self, offset: int) -> tuple[BatchHeader, Columns] | None:
        """``batch_at`` for a read of the one record at ``offset`` (``Partition.read(
        offset, 1)``): from a framed batch, only the frame holding it, decoded
        (``Segment.point_at``); the Columns returned may hold fewer records than the
        batch. Lock-free; raises like ``read``."""
        return self._found_at(offset, Segment.point_at)

    def record_at(self, offset: int) -> Record | None:
        """The record at ``offset`` if a framed batch holds it (``Segment.record_at``:
        one frame decoded, the Record built from it); None for anything else (the
        caller reads through ``point_at``). Lock-free; raises like ``read`` for
        damage."""
        bases, segs = self._view
        i = bisect_right(bases, offset) - 1
        if i < 0 or offset < self.start_offset:
            return None
        seg = segs[i]
        if offset >= seg.next_offset:
            return None
        try:
            return seg.record_at(offset)
        except OffsetOutOfRangeError:
            return None  # closed under us: point_at retries on the new view

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
                raise CorruptLogError(damage_between(seg, segs[i + 1], self.directory).reason)
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
