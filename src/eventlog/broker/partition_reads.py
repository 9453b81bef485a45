"""PartitionReads: the reads of a partition: by offset, in batches, by time, and waiting.

Lock-free: the storage layer publishes a batch only once all its bytes are in the
map, so a read never sees a partly written one and never blocks a writer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING

from ..clock import Clock
from ..errors import InvalidConfigError, OffsetOutOfRangeError
from ..records import Record
from ..storage.batch import BatchHeader, Columns

if TYPE_CHECKING:
    from ..storage.partition_log import PartitionLog

__all__ = ["PartitionReads", "iter_batch_records"]

make_record = partial(tuple.__new__, Record)
_new_tuple = tuple.__new__
_records = repeat(Record)  # map(_new_tuple, _records, rows): no partial call per record
iter_batch_records = 500  # records per read in Partition.iter()


class PartitionReads:
    """The read half of Partition (a base class of it; not used alone)."""

    topic: str
    index: int
    lingering: dict[object, Callable[[], None]]
    _log: PartitionLog
    _clock: Clock
    _data: threading.Condition
    _waiters: int
    _closed: bool

    _ensure_open: Callable[..., None]  # Partition's

    def flush_lingering(self) -> None:
        """Append the batches this log's producers hold for this partition (records
        sent with ``linger_ms > 0`` not yet appended), so that what a process sent
        before it reads is what it reads. ``read``, ``read_batches``,
        ``read_columns``, ``wait_for`` and a consumer's poll call it; the check
        costs one truth test when nothing lingers. Must not be called holding
        this partition's lock.

        Cost: one truth test when nothing lingers; else the lingering batches' appends.
        Thread safety: any thread not holding this partition's lock.
        Raises: what the producers' appends raise.
        """
        for flush in list(self.lingering.values()):
            flush()

    def read(self, offset: int, max_records: int = 500) -> list[Record]:
        """Records from ``offset`` on, at most ``max_records`` (default 500: a bounded
        read, not the whole log; use :meth:`iter` to replay everything); empty at the
        log end.

        Raises OffsetOutOfRangeError if ``offset`` is below the log start offset or
        above the log end offset. Lock-free; never blocks a writer.

        Cost: O(records returned): one mapped read, decoded per batch.
        Thread safety: any thread; lock-free, never blocks a writer.
        Raises: OffsetOutOfRangeError below the log start or above the log end, InvalidConfigError,
        TypeError for a non-int offset, ClosedError, CorruptLogError for damaged stored bytes.
        """
        if type(offset) is not int:
            raise TypeError(f"offset must be an int, got {type(offset).__name__}")
        if type(max_records) is not int or max_records < 1:
            raise InvalidConfigError(f"max_records must be an int >= 1, got {max_records!r}")
        if max_records == 1:
            one = self._read_one(offset)
            if one is not None:
                return one
        out: list[Record] = []
        for header, cols in self.read_columns(offset, max_records, runs=True):
            out.extend(map(_new_tuple, _records, _rows(header, cols)))
        return out

    def _read_one(self, offset: int) -> list[Record] | None:
        """``read(offset, 1)`` as a point read: the one batch holding ``offset``, or of a
        framed batch the one frame (``LogView.point_at``: the batch cache, no run
        decode, no limits to count).
        None where ``read_columns`` must decide (the log's ends, compaction gaps)."""
        if self.lingering:
            self.flush_lingering()
        if self._closed:
            self._ensure_open()
        log = self._log
        if offset < log.start_offset:
            return None  # an error: read_columns says which
        record = log.record_at(offset)  # a framed batch: one frame decoded
        if record is not None:
            return [record]
        found = log.point_at(offset)  # None at the log end
        if found is None:
            return None
        cols = found[1]
        offsets = cols.offsets
        if isinstance(offsets, range):
            i = offset - offsets.start
            if not 0 <= i < len(offsets):
                return None
        elif offsets and offsets[0] == offset:
            i = 0
        else:
            return None  # compacted offsets: read_columns trims them
        headers = cols.headers
        return [_new_tuple(Record, (offsets[i], cols.timestamps[i], cols.keys[i],
                                    cols.values[i], () if headers is None else headers[i]))]

    def read_batches(
        self, offset: int, max_records: int, max_bytes: int = 2**31, *, runs: bool = False
    ) -> list[tuple[BatchHeader, Columns]]:
        """Whole decoded batches holding records from ``offset`` on (the first may start
        below it; control batches included). Lock-free. Raises like ``read``.
        ``runs``: plain one-record batches may come back merged (see ``read_columns``).

        Cost: O(batches returned).
        Thread safety: any thread; lock-free.
        Raises: as ``read``.
        """
        if self.lingering:
            self.flush_lingering()
        self._ensure_open()
        return self._log.read(offset, max_records, max_bytes, runs=runs)

    def read_columns(
        self, offset: int, max_records: int, max_bytes: int = 2**31, *, runs: bool = False
    ) -> list[tuple[BatchHeader, Columns]]:
        """Decoded batches trimmed to ``[offset, offset + max_records)``. Lock-free.

        ``runs``: for a caller that wants the records, not the batches as stored: a run
        of plain one-record batches (no transaction, control, compaction or codec) may
        come back as one merged pair under a synthetic header (crc 0, producer fields
        -1: ``storage.batch.decode_run``), decoded with one msgpack call.

        Cost: O(batches returned); trimmed without copying the records.
        Thread safety: any thread; lock-free.
        Raises: as ``read``.
        """
        if self.lingering:
            self.flush_lingering()
        self._ensure_open()
        if offset < self._log.start_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} of {self.topic}-{self.index} is below the log start offset "
                f"{self._log.start_offset}; records before it were deleted"
            )
        batches = self._log.read(offset, max_records, max_bytes, runs=runs)
        out = []
        remaining = max_records
        for header, cols in batches:
            cols = _trim(cols, offset, remaining)
            n = len(cols.offsets)
            if n:
                out.append((header, cols))
                remaining -= n
            if remaining <= 0:
                break
        return out

    def iter(
        self,
        from_offset: int | None = None,
        *,
        to_offset: int | None = None,
        batch_records: int = iter_batch_records,
    ) -> Iterator[Record]:
        """Every record from ``from_offset`` (default: the log start offset) up to
        ``to_offset`` (exclusive; default: the log end offset when iteration starts),
        read ``batch_records`` at a time: a replay of the whole log, unlike ``read``
        which returns at most ``max_records`` (500 by default).

        Lazy and lock-free: records appended while iterating are included only below
        ``to_offset``. Raises OffsetOutOfRangeError at once if ``from_offset`` is
        outside ``[start_offset, end_offset]`` (and while iterating if retention
        removes the records ahead), InvalidConfigError for a bad argument.

        Cost: O(records), ``batch_records`` per read; lazy.
        Thread safety: any thread; lock-free.
        Raises: OffsetOutOfRangeError, InvalidConfigError, ClosedError.
        """
        if type(batch_records) is not int or batch_records < 1:
            raise InvalidConfigError(f"batch_records must be an int >= 1, got {batch_records!r}")
        self._ensure_open()
        if self.lingering:  # as read(): what this process sent before is what it reads
            self.flush_lingering()
        offset = self._log.start_offset if from_offset is None else from_offset
        stop = self._log.end_offset if to_offset is None else to_offset
        if type(offset) is not int or type(stop) is not int:
            raise InvalidConfigError(
                f"from_offset and to_offset must be ints, got {from_offset!r}, {to_offset!r}"
            )
        if not self._log.start_offset <= offset <= self._log.end_offset:
            raise OffsetOutOfRangeError(
                f"from_offset {offset} of {self.topic}-{self.index} is outside the log "
                f"[{self._log.start_offset}, {self._log.end_offset}]; start within it"
            )
        return self._iter(offset, stop, batch_records)

    def _iter(self, offset: int, stop: int, batch_records: int) -> Iterator[Record]:
        while offset < stop:
            batches = self.read_columns(offset, min(batch_records, stop - offset), runs=True)
            if not batches:
                return  # the rest of the range was compacted away
            for header, cols in batches:
                yield from map(make_record, _rows(header, cols))
            offset = batches[-1][1].offsets[-1] + 1

    def offset_for_time(self, timestamp_ms: int) -> int | None:
        """The earliest offset whose record timestamp is >= ``timestamp_ms``, or None.

        Cost: O(log segments + log index entries): the time index is searched.
        Thread safety: any thread; lock-free.
        Raises: InvalidConfigError for a bad timestamp, ClosedError.
        """
        found = self.offset_and_timestamp_for_time(timestamp_ms)
        return None if found is None else found[0]

    def offset_and_timestamp_for_time(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= ``timestamp_ms``.

        Cost: as ``offset_for_time``.
        Thread safety: any thread; lock-free.
        Raises: as ``offset_for_time``.
        """
        if type(timestamp_ms) is not int or timestamp_ms < 0:
            raise InvalidConfigError(f"timestamp_ms must be an int >= 0, got {timestamp_ms!r}")
        self._ensure_open()
        if self.lingering:  # as read(): lingering records of this log's producers count
            self.flush_lingering()
        return self._log.offset_for_time(timestamp_ms)

    def wait_for(self, offset: int, timeout: float | None = None) -> bool:
        """Block until the log end offset is above ``offset`` (a record at ``offset``
        can be read) or ``timeout`` seconds pass. Returns whether it arrived.
        Waits on the log's clock, so a manual clock never sleeps.

        Cost: blocks; O(1) per append woken for.
        Thread safety: any thread.
        Raises: nothing (False on timeout).
        """
        if self.lingering:
            self.flush_lingering()
        timeout_ms = None if timeout is None else timeout * 1000.0
        deadline = None if timeout_ms is None else self._clock.monotonic_ms() + timeout_ms
        with self._data:
            self._waiters += 1
            try:
                while self._log.end_offset <= offset and not self._closed:
                    remaining = None if deadline is None else deadline - self._clock.monotonic_ms()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._clock.wait(self._data, remaining)
                return self._log.end_offset > offset
            finally:
                self._waiters -= 1


def _trim(cols: Columns, offset: int, max_records: int) -> Columns:
    """Keep the records at or above ``offset``, at most ``max_records``."""
    offsets = cols.offsets
    if offsets and offsets[0] >= offset and len(offsets) <= max_records:
        return cols
    if isinstance(offsets, range):
        start = max(0, offset - offsets.start)
    else:
        start = next((i for i, o in enumerate(offsets) if o >= offset), len(offsets))
    end = start + max_records
    return Columns(
        offsets[start:end],
        cols.timestamps[start:end],
        cols.keys[start:end],
        cols.values[start:end],
        None if cols.headers is None else cols.headers[start:end],
    )


def _rows(header: BatchHeader, cols: Columns) -> Iterable[tuple]:
    headers = cols.headers if cols.headers is not None else repeat(())
    return zip(cols.offsets, cols.timestamps, cols.keys, cols.values, headers)
