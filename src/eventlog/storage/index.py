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

Entries live in memory in ``array`` objects (bisect is C-level; readers use
only these) and reach the file in bulk: ``append`` only adds to the arrays, and
``write_pending`` writes every entry not yet on file with one ``pwrite``. The
owner calls it when enough entries are pending and before it fsyncs, seals or
closes; ``fsync`` and ``close`` also write what is pending, so a closed index
file always holds every entry. A file may hold fewer entries than memory (a
killed process loses the pending ones), never different ones: recovery rebuilds
the index from the log after the last entry it trusts. In-memory mode has no file.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from bisect import bisect_right

from .files import Files, os_files, storage_error

__all__ = ["OffsetIndex", "TimeIndex"]

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
offset_entry_bytes = _OFFSET_ENTRY.size
time_entry_bytes = _TIME_ENTRY.size
assert offset_entry_bytes == 8
assert time_entry_bytes == 12


class _IndexFile:
    """An append-only file of fixed-size entries (or nothing, in memory).

    ``entries`` counts the entries on file; the owner's arrays may hold more
    (pending: not yet written). The file is exactly ``entries`` entries long,
    except for a partial entry a crash left at the end of a trusted file, which
    the next write overwrites.

    The descriptor is opened on demand and can be released (``release``) once
    the segment is sealed, so a log with many segments does not hold a
    descriptor per index file. After ``close`` the file is never reopened (a
    reader racing a deletion must not re-create it).

    ``read_only`` (a reader of a log another process writes): the file is read
    once and never created, written or cut; entries added later stay in memory.
    """

    __slots__ = ("_closed", "_dirty", "_entry_bytes", "_fd", "_read_only", "entries", "files",
                 "path")

    def __init__(self, path: str | None, entry_bytes: int, files: Files = os_files, *,
                 read_only: bool = False) -> None:
        self.path = path
        self.files = files
        self._entry_bytes = entry_bytes
        self._fd = -1
        self._closed = False
        self._dirty = True  # the first fsync after opening always syncs
        self._read_only = read_only
        self.entries = 0
        if not read_only:
            self._handle()  # create it now: an index file exists beside every .log

    def _handle(self) -> int:
        if self._read_only:
            return -1
        if self._fd < 0 and self.path is not None and not self._closed:
            try:
                self._fd = self.files.open(self.path, os.O_RDWR | os.O_CREAT)
            except OSError as exc:
                raise storage_error(exc, f"open the index file {self.path}", self.path,
                                    files=self.files) from exc
        return self._fd

    def read_all(self) -> bytes:
        if self._read_only and self.path is not None:
            try:
                return self.files.read_file(self.path)
            except FileNotFoundError:
                return b""
            except OSError as exc:
                raise storage_error(exc, f"read the index file {self.path}", self.path,
                                    files=self.files) from exc
        fd = self._handle()
        if fd < 0:
            return b""
        try:
            return self.files.pread(fd, self.files.size(fd), 0)
        except OSError as exc:
            raise storage_error(exc, f"read the index file {self.path}", self.path,
                                files=self.files) from exc

    def append(self, data: bytes) -> None:
        """Write whole entries after the ``entries`` already on file, in one pwrite
        (more only if the kernel writes part of it). On error nothing is counted
        as written: the next call writes the same entries again.
        """
        fd = self._handle()
        if fd >= 0:
            view = memoryview(data)
            position = self.entries * self._entry_bytes
            try:
                while view:
                    written = self.files.pwrite(fd, view, position)
                    view = view[written:]
                    position += written
            except OSError as exc:
                raise storage_error(exc, f"write the index file {self.path}", self.path,
                                    files=self.files, needed_bytes=len(view)) from exc
            self._dirty = True
        self.entries += len(data) // self._entry_bytes

    def truncate(self, entries: int) -> None:
        """Keep at most the first ``entries`` entries on file."""
        if entries < self.entries:
            self.cut(entries)

    def cut(self, entries: int) -> None:
        """Make the file exactly ``entries`` entries long (a torn tail goes too)."""
        fd = self._handle()
        if fd >= 0:
            try:
                self.files.ftruncate(fd, entries * self._entry_bytes)
            except OSError as exc:
                raise storage_error(exc, f"cut the index file {self.path}", self.path,
                                    files=self.files) from exc
            self._dirty = True
        self.entries = entries

    def fsync(self) -> None:
        # Nothing written since the last fsync (or since the release, which seal
        # does after an fsync): nothing to sync. Skipping matters to fsync="always".
        if self._fd >= 0 and self._dirty:
            try:
                self.files.fsync(self._fd)
            except OSError as exc:
                raise storage_error(exc, f"fsync the index file {self.path}", self.path,
                                    files=self.files) from exc
            self._dirty = False

    def release(self) -> None:
        """Close the descriptor; the next write or truncate reopens it."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            self.files.close(fd)

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
    ``append`` touches memory only; ``write_pending`` (or ``fsync``/``close``)
    puts the new entries on file.
    """

    __slots__ = ("_file", "offsets", "positions")

    def __init__(self, path: str | None, *, trusted: bool = False,
                 files: Files = os_files, read_only: bool = False) -> None:
        """Load the entries in ``path``; ``trusted`` (after a clean close) skips validation.
        ``read_only``: never write the file (see _IndexFile)."""
        self._file = _IndexFile(path, offset_entry_bytes, files, read_only=read_only)
        self.offsets, self.positions = _load_offset_entries(self._file.read_all(), trusted)
        if trusted:
            self._file.entries = len(self.offsets)
        else:
            self._file.cut(len(self.offsets))

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def pending(self) -> int:
        """Entries in memory not yet written to the file."""
        return len(self.offsets) - self._file.entries

    def append(self, relative_offset: int, position: int) -> None:
        assert not self.offsets or relative_offset > self.offsets[-1]
        assert not self.positions or position > self.positions[-1]
        # Position first: a lock-free reader bisects offsets, then indexes positions.
        self.positions.append(position)
        self.offsets.append(relative_offset)

    def write_pending(self) -> None:
        """Write the pending entries to the file with one pwrite. O(pending)."""
        written = self._file.entries
        count = len(self.offsets)
        if count == written:
            return
        if self._file.path is None:  # in memory: nothing to write
            self._file.entries = count
            return
        raw = array("i", bytes((count - written) * offset_entry_bytes))
        raw[0::2] = self.offsets[written:count]
        raw[1::2] = self.positions[written:count]
        if sys.byteorder == "little":
            raw.byteswap()
        self._file.append(raw.tobytes())

    def lookup(self, relative_offset: int) -> int:
        """Position of the batch of the greatest entry <= ``relative_offset``, else 0."""
        i = bisect_right(self.offsets, relative_offset)
        return self.positions[i - 1] if i else 0

    def position_at_or_below(self, position: int) -> int:
        """The greatest entry position <= ``position``, or 0."""
        i = bisect_right(self.positions, position)
        return self.positions[i - 1] if i else 0

    def keep_first(self, keep: int) -> None:
        """Keep the first ``keep`` entries, in memory and (if it holds more) on file, so
        that the count on file never exceeds the entries in memory."""
        if keep < len(self.offsets):
            del self.offsets[keep:]
            del self.positions[keep:]
            self._file.truncate(keep)

    def truncate_after_position(self, size: int) -> None:
        """Drop entries that point at or past ``size`` bytes (the log was cut there).
        Pending entries are dropped from memory; the file is cut only if it holds
        entries being dropped."""
        keep = bisect_right(self.positions, size - 1)
        if keep < len(self.offsets):
            del self.offsets[keep:]
            del self.positions[keep:]
            self._file.truncate(keep)

    def last_entry(self) -> tuple[int, int] | None:
        return (self.offsets[-1], self.positions[-1]) if self.offsets else None

    def drop_invalid(self) -> None:
        """Keep only the leading entries that strictly increase (as an untrusted load
        does): a trusted index turned out not to match its log. O(entries)."""
        keep = _valid_prefix(self.offsets, self.positions, seconds_strict=True, firsts_min=1)
        if keep < len(self.offsets):
            del self.offsets[keep:]
            del self.positions[keep:]
            self._file.cut(keep)

    def drop_last(self) -> None:
        del self.offsets[-1]
        del self.positions[-1]
        self._file.truncate(len(self.offsets))

    def fsync(self) -> None:
        """Write the pending entries and make the file durable."""
        self.write_pending()
        self._file.fsync()

    def release(self) -> None:
        """Give back the file descriptor until the next write (a sealed segment)."""
        self._file.release()

    def close(self) -> None:
        """Write the pending entries and close the file: it now holds every entry."""
        try:
            self.write_pending()
        finally:
            self._file.close()

    def check(self) -> None:
        assert len(self.offsets) == len(self.positions)
        assert 0 <= self._file.entries <= len(self.offsets)
        for i in range(1, len(self.offsets)):
            assert self.offsets[i] > self.offsets[i - 1], "offset index not increasing"
            assert self.positions[i] > self.positions[i - 1], "positions not increasing"


class TimeIndex:
    """Sparse map from timestamp to relative offset: every record at or below the
    entry's offset has a timestamp <= the entry's timestamp.

    Buffered as OffsetIndex is: ``append`` touches memory only.
    """

    __slots__ = ("_file", "offsets", "timestamps")

    def __init__(self, path: str | None, files: Files = os_files, *,
                 read_only: bool = False) -> None:
        self._file = _IndexFile(path, time_entry_bytes, files, read_only=read_only)
        self.timestamps, self.offsets = _load_time_entries(self._file.read_all())
        self._file.cut(len(self.timestamps))

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def pending(self) -> int:
        """Entries in memory not yet written to the file."""
        return len(self.timestamps) - self._file.entries

    def append(self, timestamp_ms: int, relative_offset: int) -> None:
        """Add an entry if ``timestamp_ms`` is a new maximum (entries strictly increase)."""
        if self.timestamps and timestamp_ms <= self.timestamps[-1]:
            return
        self.offsets.append(relative_offset)
        self.timestamps.append(timestamp_ms)

    def write_pending(self) -> None:
        """Write the pending entries to the file with one pwrite. O(pending)."""
        written = self._file.entries
        count = len(self.timestamps)
        if count == written:
            return
        if self._file.path is None:  # in memory: nothing to write
            self._file.entries = count
            return
        self._file.append(b"".join(map(
            _TIME_ENTRY.pack, self.timestamps[written:count], self.offsets[written:count]
        )))

    def last_below(self, timestamp_ms: int) -> int | None:
        """Relative offset of the last entry with timestamp < ``timestamp_ms``, if any."""
        i = bisect_right(self.timestamps, timestamp_ms - 1)
        return self.offsets[i - 1] if i else None

    def max_timestamp(self) -> int:
        return self.timestamps[-1] if self.timestamps else -1

    def truncate_after_offset(self, relative_offset: int) -> None:
        """Drop entries for offsets above ``relative_offset`` (the log was cut there).
        As OffsetIndex.truncate_after_position, the file is cut only if needed."""
        keep = bisect_right(self.offsets, relative_offset)
        if keep < len(self.timestamps):
            del self.timestamps[keep:]
            del self.offsets[keep:]
            self._file.truncate(keep)

    def fsync(self) -> None:
        """Write the pending entries and make the file durable."""
        self.write_pending()
        self._file.fsync()

    def release(self) -> None:
        """Give back the file descriptor until the next write (a sealed segment)."""
        self._file.release()

    def close(self) -> None:
        """Write the pending entries and close the file: it now holds every entry."""
        try:
            self.write_pending()
        finally:
            self._file.close()

    def check(self) -> None:
        assert len(self.offsets) == len(self.timestamps)
        assert 0 <= self._file.entries <= len(self.timestamps)
        for i in range(1, len(self.timestamps)):
            assert self.timestamps[i] > self.timestamps[i - 1], "time index not increasing"
            assert self.offsets[i] >= self.offsets[i - 1], "time index offsets decreasing"
