"""The sparse indexes of a segment (offset -> file position, time -> offset): their file
formats, and one mapped-index base class both share.

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

__all__ = [
    "OFFSET_ENTRY",
    "TIME_ENTRY",
    "MappedIndex",
    "OffsetIndex",
    "TimeIndex",
    "entry_due",
    "relative_offset_max",
]

OFFSET_ENTRY = struct.Struct(">ii")  # .index: relative offset, position
TIME_ENTRY = struct.Struct(">qi")  # .timeindex: timestamp, relative offset
relative_offset_max = 2**31 - 1  # relative offsets in the .index are int32
offset_entry_bytes = OFFSET_ENTRY.size
time_entry_bytes = TIME_ENTRY.size
assert offset_entry_bytes == 8
assert time_entry_bytes == 12


def entry_due(bytes_since_entry: int, interval_bytes: int, position: int) -> bool:
    """Kafka's rule for a sparse entry: a batch gets one once more than ``interval_bytes``
    of log precede it since the last entry, and a segment's first batch (position 0)
    never does. Segments that append and the cleaner that writes whole ones share it,
    so both build the same files."""
    return bytes_since_entry > interval_bytes and position > 0


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


class MappedIndex:
    """Entries of two parallel, strictly increasing columns (``firsts``, ``seconds``) kept
    in ``array`` objects and appended to a file of fixed-size entries (``_IndexFile``).

    The base of both indexes: loading, the pending entries, writing them in bulk,
    cutting, fsync, release, close and the invariants live here once; a subclass
    names its columns, its entry format (``ENTRY``, typecodes) and its validation
    rule (``_valid_prefix``'s arguments). Lookups are O(log entries) and lock-free
    (readers use only the arrays); writers are serialised by the owner.
    ``append`` touches memory only; ``write_pending`` (or ``fsync``/``close``) puts
    the new entries on file.
    """

    __slots__ = ("_file", "firsts", "seconds")

    ENTRY: struct.Struct
    TYPECODES: tuple[str, str]
    SECONDS_STRICT: bool  # the second column increases strictly too
    FIRSTS_MIN: int  # the least first value a real first entry can have

    def __init__(self, path: str | None, *, trusted: bool = False,
                 files: Files = os_files, read_only: bool = False) -> None:
        """Load the entries in ``path`` (None: in memory); ``trusted`` (after a clean
        close) skips validation; ``read_only``: never write the file (see _IndexFile)."""
        self._file = _IndexFile(path, self.ENTRY.size, files, read_only=read_only)
        self.firsts, self.seconds = self._decode(self._file.read_all())
        if trusted:
            self._file.entries = len(self.firsts)
        else:
            self._keep(self._valid_entries())
            self._file.cut(len(self.firsts))

    # ------------------------------------------------------------------ format

    def _decode(self, data: bytes) -> tuple[array, array]:
        """The whole entries of ``data`` as the two columns (a torn tail is dropped)."""
        firsts, seconds = array(self.TYPECODES[0]), array(self.TYPECODES[1])
        whole = data[: len(data) // self.ENTRY.size * self.ENTRY.size]
        for first, second in self.ENTRY.iter_unpack(whole):
            firsts.append(first)
            seconds.append(second)
        return firsts, seconds

    def encode(self, start: int = 0, stop: int | None = None) -> bytes:
        """Entries ``start`` to ``stop`` (default: the last) in the file format."""
        stop = len(self.firsts) if stop is None else stop
        return b"".join(map(self.ENTRY.pack, self.firsts[start:stop], self.seconds[start:stop]))

    def _valid_entries(self) -> int:
        return _valid_prefix(self.firsts, self.seconds, seconds_strict=self.SECONDS_STRICT,
                             firsts_min=self.FIRSTS_MIN)

    # ------------------------------------------------------------------ entries

    def __len__(self) -> int:
        return len(self.firsts)

    @property
    def pending(self) -> int:
        """Entries in memory not yet written to the file."""
        return len(self.firsts) - self._file.entries

    def _add(self, first: int, second: int) -> None:
        # The second column first: a lock-free reader bisects one, then indexes the other.
        self.seconds.append(second)
        self.firsts.append(first)

    def _keep(self, keep: int) -> None:
        """Keep the first ``keep`` entries in memory (the file is the caller's business)."""
        del self.firsts[keep:]
        del self.seconds[keep:]

    def keep_first(self, keep: int) -> None:
        """Keep the first ``keep`` entries, in memory and (if it holds more) on file, so
        that the count on file never exceeds the entries in memory."""
        if keep < len(self.firsts):
            self._keep(keep)
            self._file.truncate(keep)

    def drop_invalid(self) -> None:
        """Keep only the leading entries that strictly increase (as an untrusted load
        does): a trusted index turned out not to match its log. O(entries)."""
        keep = self._valid_entries()
        if keep < len(self.firsts):
            self._keep(keep)
            self._file.cut(keep)

    def drop_last(self) -> None:
        self.keep_first(len(self.firsts) - 1)

    # ------------------------------------------------------------------ file

    def write_pending(self) -> None:
        """Write the pending entries to the file with one pwrite. O(pending)."""
        written = self._file.entries
        count = len(self.firsts)
        if count == written:
            return
        if self._file.path is None:  # in memory: nothing to write
            self._file.entries = count
            return
        self._file.append(self.encode(written, count))

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
        """Assert the invariants (tests): parallel columns, strictly increasing firsts,
        increasing seconds, no more entries on file than in memory."""
        firsts, seconds = self.firsts, self.seconds
        assert len(firsts) == len(seconds)
        assert 0 <= self._file.entries <= len(firsts)
        for i in range(1, len(firsts)):
            assert firsts[i] > firsts[i - 1], f"{type(self).__name__} not increasing"
            assert seconds[i] > seconds[i - 1] or (
                not self.SECONDS_STRICT and seconds[i] == seconds[i - 1]
            ), f"{type(self).__name__} second column decreasing"


class OffsetIndex(MappedIndex):
    """Sparse map from relative offset to the file position of the batch ending there
    (``.index``): firsts are the ``offsets``, seconds the ``positions``."""

    __slots__ = ()

    ENTRY = OFFSET_ENTRY
    TYPECODES = ("i", "i")
    SECONDS_STRICT = True
    FIRSTS_MIN = 1

    @property
    def offsets(self) -> array:
        return self.firsts

    @property
    def positions(self) -> array:
        return self.seconds

    def _decode(self, data: bytes) -> tuple[array, array]:
        """Two C-level calls (frombytes, byteswap): no Python loop over the entries."""
        raw = array("i")
        raw.frombytes(data[: len(data) // offset_entry_bytes * offset_entry_bytes])
        if sys.byteorder == "little":
            raw.byteswap()
        return raw[0::2], raw[1::2]

    def encode(self, start: int = 0, stop: int | None = None) -> bytes:
        stop = len(self.firsts) if stop is None else stop
        raw = array("i", bytes((stop - start) * offset_entry_bytes))
        raw[0::2] = self.firsts[start:stop]
        raw[1::2] = self.seconds[start:stop]
        if sys.byteorder == "little":
            raw.byteswap()
        return raw.tobytes()

    def append(self, relative_offset: int, position: int) -> None:
        assert not self.firsts or relative_offset > self.firsts[-1]
        assert not self.seconds or position > self.seconds[-1]
        self._add(relative_offset, position)

    def lookup(self, relative_offset: int) -> int:
        """Position of the batch of the greatest entry <= ``relative_offset``, else 0."""
        i = bisect_right(self.firsts, relative_offset)
        return self.seconds[i - 1] if i else 0

    def position_at_or_below(self, position: int) -> int:
        """The greatest entry position <= ``position``, or 0."""
        i = bisect_right(self.seconds, position)
        return self.seconds[i - 1] if i else 0

    def truncate_after_position(self, size: int) -> None:
        """Drop entries that point at or past ``size`` bytes (the log was cut there).
        Pending entries are dropped from memory; the file is cut only if it holds
        entries being dropped."""
        self.keep_first(bisect_right(self.seconds, size - 1))

    def last_entry(self) -> tuple[int, int] | None:
        return (self.firsts[-1], self.seconds[-1]) if self.firsts else None


class TimeIndex(MappedIndex):
    """Sparse map from timestamp to relative offset (``.timeindex``): every record at or
    below the entry's offset has a timestamp <= the entry's timestamp. Firsts are the
    ``timestamps``, seconds the ``offsets``. Never trusted at load (it is loaded on
    first use, so validating it costs nothing at open)."""

    __slots__ = ()

    ENTRY = TIME_ENTRY
    TYPECODES = ("q", "i")
    SECONDS_STRICT = False
    FIRSTS_MIN = 0

    def __init__(self, path: str | None, files: Files = os_files, *,
                 read_only: bool = False) -> None:
        super().__init__(path, trusted=False, files=files, read_only=read_only)

    @property
    def timestamps(self) -> array:
        return self.firsts

    @property
    def offsets(self) -> array:
        return self.seconds

    def append(self, timestamp_ms: int, relative_offset: int) -> None:
        """Add an entry if ``timestamp_ms`` is a new maximum (entries strictly increase)."""
        if self.firsts and timestamp_ms <= self.firsts[-1]:
            return
        self._add(timestamp_ms, relative_offset)

    def last_below(self, timestamp_ms: int) -> int | None:
        """Relative offset of the last entry with timestamp < ``timestamp_ms``, if any."""
        i = bisect_right(self.firsts, timestamp_ms - 1)
        return self.seconds[i - 1] if i else None

    def max_timestamp(self) -> int:
        return self.firsts[-1] if self.firsts else -1

    def truncate_after_offset(self, relative_offset: int) -> None:
        """Drop entries for offsets above ``relative_offset`` (the log was cut there).
        As OffsetIndex.truncate_after_position, the file is cut only if needed."""
        self.keep_first(bisect_right(self.seconds, relative_offset))
