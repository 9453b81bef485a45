"""Sparse indexes of a segment: offset -> file position, and time -> offset.

File formats (as Kafka's, big-endian, no header, no checksum: indexes are
rebuilt from the log whenever they cannot be trusted)::

    .index      8-byte entries:  int32 relative offset, int32 position in .log
    .timeindex 12-byte entries:  int64 timestamp ms,    int32 relative offset

An offset entry (R, P) says: the batch whose LAST offset is base+R starts at
byte P. A time entry (T, R) says: every record at or below offset base+R has a
timestamp <= T. Entries are strictly increasing in both fields; an all-zero or
non-increasing entry marks the end of what was written (a crash can leave a
partial entry at the tail).

Entries live in memory in ``array`` objects (bisect is C-level) and are
appended to the file with one ``pwrite`` each; one entry per
``index_interval_bytes`` (4 KiB) of log keeps that to a few thousand writes per
hundred MB. In-memory mode has no file.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from bisect import bisect_right

from ..errors import StorageError

__all__ = ["OffsetIndex", "TimeIndex"]

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
offset_entry_bytes = _OFFSET_ENTRY.size
time_entry_bytes = _TIME_ENTRY.size
assert offset_entry_bytes == 8
assert time_entry_bytes == 12


class _IndexFile:
    """An append-only file of fixed-size entries (or nothing, in memory).

    The descriptor is opened on demand and can be released (``release``) once
    the segment is sealed, so a log with many segments does not hold a
    descriptor per index file. After ``close`` the file is never reopened (a
    reader racing a deletion must not re-create it).
    """

    __slots__ = ("_closed", "_fd", "path")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fd = -1
        self._closed = False
        self._handle()  # create it now: an index file exists beside every .log

    def _handle(self) -> int:
        if self._fd < 0 and self.path is not None and not self._closed:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StorageError(f"cannot open index file {self.path}: {exc}") from exc
        return self._fd

    def read_all(self) -> bytes:
        fd = self._handle()
        if fd < 0:
            return b""
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def write_at(self, position: int, data: bytes) -> None:
        fd = self._handle()
        if fd >= 0:
            os.pwrite(fd, data, position)

    def truncate(self, size: int) -> None:
        fd = self._handle()
        if fd >= 0:
            os.ftruncate(fd, size)

    def fsync(self) -> None:
        if self._fd >= 0:  # nothing written since the last release: nothing to sync
            os.fsync(self._fd)

    def release(self) -> None:
        """Close the descriptor; the next write or truncate reopens it."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        self.release()
        self._closed = True


def _valid_prefix(
    firsts: array, seconds: array, *, seconds_strict: bool, firsts_min: int
) -> int:
    """How many leading entries are strictly increasing (the rest is a torn tail).

    A segment's first batch never gets an entry, so every real entry points past
    it: relative offset and position > 0 (.index), relative offset > 0 and
    timestamp >= 0 (.timeindex). A first entry below that (all zeros: nothing
    was written; negative: garbage) leaves no valid entry.
    """
    if not firsts or firsts[0] < firsts_min or seconds[0] <= 0:
        return 0
    for i in range(1, len(firsts)):
        if firsts[i] <= firsts[i - 1]:
            return i
        if seconds[i] < seconds[i - 1] or (seconds_strict and seconds[i] == seconds[i - 1]):
            return i
    return len(firsts)


def _load_offset_entries(data: bytes, trusted: bool) -> tuple[array, array]:
    """Decode ``.index`` bytes with two C-level calls (no Python loop unless untrusted)."""
    raw = array("i")
    raw.frombytes(data[: len(data) // offset_entry_bytes * offset_entry_bytes])
    if sys.byteorder == "little":
        raw.byteswap()
    offsets, positions = raw[0::2], raw[1::2]
    if not trusted:
        keep = _valid_prefix(offsets, positions, seconds_strict=True, firsts_min=1)
        del offsets[keep:]
        del positions[keep:]
    return offsets, positions


def _load_time_entries(data: bytes) -> tuple[array, array]:
    timestamps: array = array("q")
    offsets: array = array("i")
    whole = data[: len(data) // time_entry_bytes * time_entry_bytes]
    for ts, rel in _TIME_ENTRY.iter_unpack(whole):
        timestamps.append(ts)
        offsets.append(rel)
    keep = _valid_prefix(timestamps, offsets, seconds_strict=False, firsts_min=0)
    del timestamps[keep:]
    del offsets[keep:]
    return timestamps, offsets


class OffsetIndex:
    """Sparse map from relative offset to the file position of the batch ending there.

    Lookups are O(log entries) and lock-free; appends are serialised by the owner.
    """

    __slots__ = ("_file", "offsets", "positions")

    def __init__(self, path: str | None, *, trusted: bool = False) -> None:
        """Load the entries in ``path``; ``trusted`` (after a clean close) skips validation."""
        self._file = _IndexFile(path)
        self.offsets, self.positions = _load_offset_entries(self._file.read_all(), trusted)
        if not trusted:
            self._file.truncate(len(self.offsets) * offset_entry_bytes)

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, relative_offset: int, position: int) -> None:
        assert not self.offsets or relative_offset > self.offsets[-1]
        assert not self.positions or position > self.positions[-1]
        self._file.write_at(len(self.offsets) * offset_entry_bytes,
                            _OFFSET_ENTRY.pack(relative_offset, position))
        # Position first: a lock-free reader bisects offsets, then indexes positions.
        self.positions.append(position)
        self.offsets.append(relative_offset)

    def lookup(self, relative_offset: int) -> int:
        """Position of the batch of the greatest entry <= ``relative_offset``, else 0."""
        i = bisect_right(self.offsets, relative_offset)
        return self.positions[i - 1] if i else 0

    def position_at_or_below(self, position: int) -> int:
        """The greatest entry position <= ``position``, or 0."""
        i = bisect_right(self.positions, position)
        return self.positions[i - 1] if i else 0

    def truncate_after_position(self, size: int) -> None:
        """Drop entries that point at or past ``size`` bytes (the log was cut there)."""
        keep = bisect_right(self.positions, size - 1)
        if keep < len(self.offsets):
            del self.offsets[keep:]
            del self.positions[keep:]
            self._file.truncate(keep * offset_entry_bytes)

    def last_entry(self) -> tuple[int, int] | None:
        return (self.offsets[-1], self.positions[-1]) if self.offsets else None

    def drop_last(self) -> None:
        del self.offsets[-1]
        del self.positions[-1]
        self._file.truncate(len(self.offsets) * offset_entry_bytes)

    def fsync(self) -> None:
        self._file.fsync()

    def release(self) -> None:
        """Give back the file descriptor until the next write (a sealed segment)."""
        self._file.release()

    def close(self) -> None:
        self._file.close()

    def check(self) -> None:
        assert len(self.offsets) == len(self.positions)
        for i in range(1, len(self.offsets)):
            assert self.offsets[i] > self.offsets[i - 1], "offset index not increasing"
            assert self.positions[i] > self.positions[i - 1], "positions not increasing"


class TimeIndex:
    """Sparse map from timestamp to relative offset: every record at or below the
    entry's offset has a timestamp <= the entry's timestamp.
    """

    __slots__ = ("_file", "offsets", "timestamps")

    def __init__(self, path: str | None) -> None:
        self._file = _IndexFile(path)
        self.timestamps, self.offsets = _load_time_entries(self._file.read_all())
        self._file.truncate(len(self.timestamps) * time_entry_bytes)

    def __len__(self) -> int:
        return len(self.timestamps)

    def append(self, timestamp_ms: int, relative_offset: int) -> None:
        """Add an entry if ``timestamp_ms`` is a new maximum (entries strictly increase)."""
        if self.timestamps and timestamp_ms <= self.timestamps[-1]:
            return
        self._file.write_at(len(self.timestamps) * time_entry_bytes,
                            _TIME_ENTRY.pack(timestamp_ms, relative_offset))
        self.offsets.append(relative_offset)
        self.timestamps.append(timestamp_ms)

    def last_below(self, timestamp_ms: int) -> int | None:
        """Relative offset of the last entry with timestamp < ``timestamp_ms``, if any."""
        i = bisect_right(self.timestamps, timestamp_ms - 1)
        return self.offsets[i - 1] if i else None

    def max_timestamp(self) -> int:
        return self.timestamps[-1] if self.timestamps else -1

    def truncate_after_offset(self, relative_offset: int) -> None:
        """Drop entries for offsets above ``relative_offset`` (the log was cut there)."""
        keep = bisect_right(self.offsets, relative_offset)
        if keep < len(self.timestamps):
            del self.timestamps[keep:]
            del self.offsets[keep:]
            self._file.truncate(keep * time_entry_bytes)

    def fsync(self) -> None:
        self._file.fsync()

    def release(self) -> None:
        """Give back the file descriptor until the next write (a sealed segment)."""
        self._file.release()

    def close(self) -> None:
        self._file.close()

    def check(self) -> None:
        assert len(self.offsets) == len(self.timestamps)
        for i in range(1, len(self.timestamps)):
            assert self.timestamps[i] > self.timestamps[i - 1], "time index not increasing"
            assert self.offsets[i] >= self.offsets[i - 1], "time index offsets decreasing"

