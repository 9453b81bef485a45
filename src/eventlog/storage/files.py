"""File naming, atomic replacement, directory fsync and growable memory maps.

This is the one I/O seam of the storage layer: segment, index and metadata
files are created, mapped, flushed, trimmed and deleted only through here.

Maps grow in chunks (``chunk_bytes_min`` doubling up to a cap) instead of being
preallocated at ``segment_bytes``: Kafka's default segment is 1 GiB, and a test
suite that creates hundreds of small partitions must not reserve that much
each. In-memory mode uses anonymous maps through the same class, so both modes
run the same code.

Readers never hold a buffer exported from a map (they copy slices), so a map
can be resized in place while other threads read it: ``mmap.resize`` and slice
copies both run under the GIL.

Writers are sequential, so the map prefaults ahead of them: when a write
crosses the populated boundary, one ``madvise(MADV_POPULATE_WRITE)`` maps the
next window of pages (a quarter of what the map holds, at most
``populate_window_bytes_max``), instead of one page fault per 4 KiB page. The
window, not the whole chunk: chunks grow to ``segment_bytes`` and populating
them would dirty, and write back, that many zeros.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys

from ..errors import StorageError

__all__ = [
    "MappedFile",
    "atomic_write",
    "fsync_dir",
    "offset_from_file_name",
    "segment_file_name",
]

offset_digits = 20  # Kafka's LogFileUtils: base offset zero-padded to 20 digits
chunk_bytes_min = 64 * 1024  # first chunk of a new map; doubles as the map fills
release_interval_bytes = 32 * 1024 * 1024  # pages touched between two MADV_DONTNEEDs
populate_window_bytes_max = 1024 * 1024  # pages prefaulted ahead of the writer, at most
_can_resize = sys.platform.startswith("linux")  # mmap.resize needs mremap elsewhere
# Linux 5.14+; Python 3.11's mmap lacks the name. None: not Linux, no prefaulting.
_MADV_POPULATE_WRITE = (
    getattr(mmap, "MADV_POPULATE_WRITE", 23) if sys.platform.startswith("linux") else None
)
# Cleared for the process by the first madvise that fails (an older kernel: EINVAL).
_populate = _MADV_POPULATE_WRITE is not None and hasattr(mmap.mmap, "madvise")
_never = sys.maxsize  # a position no write reaches


def segment_file_name(base_offset: int, suffix: str) -> str:
    """``00000000000000368769.log`` for base offset 368769 and suffix ``.log``."""
    assert base_offset >= 0
    return f"{base_offset:0{offset_digits}d}{suffix}"


def offset_from_file_name(name: str) -> int | None:
    """The base offset a segment file is named for, or None if the name is not one."""
    stem, dot, _ = name.partition(".")
    if not dot or len(stem) != offset_digits or not stem.isdigit():
        return None
    return int(stem)


def fsync_dir(path: str) -> None:
    """fsync a directory, so a file created, renamed or deleted in it survives power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new file.

    Writes ``path.tmp``, fsyncs it (if ``durable``), renames it over ``path`` and
    fsyncs the directory.
    """
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(os.path.dirname(path) or ".")


def _anonymous_map(size: int) -> mmap.mmap:
    """Anonymous memory that ``mmap.resize`` can grow.

    Private, not shared (``mmap.mmap(-1, n)``'s default): Linux grows a shared
    anonymous map with mremap but not the shmem object behind it, so touching
    the new pages raises SIGBUS and kills the process.
    """
    if hasattr(mmap, "MAP_PRIVATE"):  # POSIX
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return mmap.mmap(-1, size)


class MappedFile:
    """A file (or, with ``path=None``, anonymous memory) mapped and grown in chunks.

    The owner tracks how many bytes are in use; this class only guarantees that
    ``[0, capacity)`` is mapped and zero beyond what was written.
    ``capacity_max_bytes`` caps growth (a request past it still succeeds if it
    is needed: one batch larger than the cap must fit in an empty segment).

    Not thread-safe for writers: the owner serialises ``write``/``ensure``/``close``.
    ``read`` may run concurrently with them.

    ``read_only``: map an existing file that another process writes, without
    changing it (no create, resize or trim); ``follow`` maps what it grew to since.
    """

    __slots__ = (
        "_file_backed", "_map", "_next_event", "_populated_end", "_read_only", "_release_at",
        "_touched_bytes", "capacity", "capacity_max_bytes", "file_bytes_at_open", "path",
    )

    def __init__(self, path: str | None, *, capacity_max_bytes: int, create: bool,
                 read_only: bool = False) -> None:
        self.path = path
        self.capacity_max_bytes = capacity_max_bytes
        self._file_backed = path is not None
        self._read_only = read_only
        self._touched_bytes = 0  # by reads, since the last release
        # Writes: the first write ending past ``_next_event`` (the nearer of the two
        # positions below) prefaults and/or releases pages (``_write_event``).
        self._populated_end = 0  # pages below it were prefaulted (or are released/written)
        self._release_at = release_interval_bytes if self._file_backed else _never
        self._next_event = 0
        self.file_bytes_at_open = 0
        if path is None:
            self._map = _anonymous_map(chunk_bytes_min)
            self.capacity = chunk_bytes_min
            return
        if read_only:
            self._map = self._map_read_only()
            self.capacity = self.file_bytes_at_open = len(self._map)
            return
        try:
            self.file_bytes_at_open = os.stat(path).st_size
        except FileNotFoundError:
            if not create:
                raise StorageError(f"cannot open and map {path}: no such file") from None
        self._map = self._map_file(max(self.file_bytes_at_open, chunk_bytes_min),
                                   grow_only=True)
        self.capacity = len(self._map)

    def _map_file(self, size: int, *, grow_only: bool = False) -> mmap.mmap:
        """Set the file's length to ``size`` (or at least ``size``) and map all of it.

        The descriptor is closed once the file is mapped (the map keeps its own
        duplicate), so an open segment costs one descriptor, not two: a log with
        thousands of partitions stays under the usual limit of 1,024.
        """
        assert self.path is not None
        fd = -1
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            current = os.fstat(fd).st_size
            if current != size and not (grow_only and current > size):
                os.ftruncate(fd, size)
            return mmap.mmap(fd, max(size, current) if grow_only else size)
        except OSError as exc:
            raise StorageError(f"cannot open and map {self.path}: {exc}") from exc
        finally:
            if fd >= 0:
                os.close(fd)


    def _map_read_only(self) -> mmap.mmap:
        """Map all of the file as it is now, read-only (an empty file: an empty map).

        The reader must touch only bytes the writer published: past the end of a
        file that the writer trimmed meanwhile, a page of the map raises SIGBUS.
        """
        assert self.path is not None
        fd = -1
        try:
            fd = os.open(self.path, os.O_RDONLY)
            size = os.fstat(fd).st_size
            if size == 0:
                return _anonymous_map(mmap.PAGESIZE)  # zeros: no batch starts here
            return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise StorageError(f"cannot open and map {self.path} read-only: {exc}") from exc
        finally:
            if fd >= 0:
                os.close(fd)

    def follow(self) -> bool:
        """Read-only maps: map the file again if it grew. Returns whether it did.

        The old map is not closed (a reader may still slice it; it goes with its
        last reference), as in ``_remap``. Cost: one stat, and one mmap if it grew.
        """
        assert self._read_only and self.path is not None
        try:
            if os.stat(self.path).st_size <= len(self._map):
                return False
        except FileNotFoundError:
            return False  # deleted or replaced: the owner re-lists the directory
        self._map = self._map_read_only()
        self.capacity = len(self._map)
        return True

    @property
    def closed(self) -> bool:
        return self._map.closed

    def ensure(self, needed_bytes: int) -> None:
        """Grow the map (doubling, up to the cap) so it holds ``needed_bytes``."""
        capacity = len(self._map)
        if needed_bytes <= capacity:
            return
        new = capacity
        while new < needed_bytes:
            new *= 2
        new = max(needed_bytes, min(new, self.capacity_max_bytes))
        try:
            if _can_resize:
                self._map.resize(new)  # ftruncate + mremap for files; mremap for anonymous maps
            else:
                self._remap(new)
            self.capacity = new
        except OSError as exc:
            where = self.path or "memory map"
            raise StorageError(f"cannot grow {where} to {new} bytes: {exc}") from exc

    def _remap(self, size: int) -> None:
        """Grow without ``mmap.resize`` (it needs Linux's mremap): map anew and copy
        (memory) or extend the file and map it again (files).

        The old map is not closed: a reader that loaded it a moment ago may still
        slice it, and it is unmapped when the last reference goes.
        """
        if not self._file_backed:
            new_map = _anonymous_map(size)
            new_map[: len(self._map)] = self._map[:]
        else:
            new_map = self._map_file(size)
        self._map = new_map
        self._repopulate()

    def write(self, position: int, data: bytes) -> None:
        """Copy ``data`` into the map at ``position``. Caller called ``ensure`` first.

        One compare per write; past ``_next_event`` (every ``populate_window_bytes_max``
        once the map is large) one madvise prefaults the pages ahead.
        """
        end = position + len(data)
        if end > self._next_event:
            self._write_event(position, end)
        self._map[position:end] = data

    def _write_event(self, position: int, end: int) -> None:
        """A write to ``[position, end)`` crossed the release or the populated boundary."""
        if end > self._release_at:
            self._release_below(position)
        if end > self._populated_end:
            self._populate_ahead(position, end)
        self._next_event = min(self._release_at, self._populated_end)

    def _populate_ahead(self, position: int, end: int) -> None:
        """Prefault the pages from ``position`` (or the populated boundary) to a window
        past ``end``: a quarter of ``end`` (a small map stays small: at most a page or
        25% more than it holds), at most ``populate_window_bytes_max``, never past the
        map. One madvise.
        """
        global _populate
        if not _populate:
            self._populated_end = _never
            return
        page = mmap.PAGESIZE
        start = max(self._populated_end, position)
        start -= start % page
        stop = end + min(end >> 2, populate_window_bytes_max)
        stop = min(-(-stop // page) * page, len(self._map))  # a page boundary, or the end
        try:
            self._map.madvise(_MADV_POPULATE_WRITE, start, stop - start)
        except OSError:  # an older kernel (EINVAL): writes fault their pages in
            _populate = False
            stop = _never
        self._populated_end = stop

    def _repopulate(self) -> None:
        """The map was replaced: its pages are no longer prefaulted."""
        self._populated_end = 0
        self._next_event = 0

    def read(self, position: int, length: int) -> bytes:
        """A copy of ``length`` bytes at ``position`` (fewer at the end of the map)."""
        if self._file_backed:
            self._touched_bytes += length
            if self._touched_bytes > release_interval_bytes:
                self._release_below(position)
        return self._map[position : position + length]

    def _release_below(self, position: int) -> None:
        """Drop this process's mapping of the file's pages below ``position``.

        Every page a map touches counts in the process's resident set, so reading a
        1 GiB segment would show 1 GiB of RSS. MADV_DONTNEED unmaps them; for a
        shared file mapping the data stays in the page cache (dirty pages too), and
        a later access maps it back. Never done for anonymous (in-memory) maps,
        where it would discard the data.
        """
        self._touched_bytes = 0
        self._release_at = position + release_interval_bytes
        self._next_event = min(self._release_at, self._populated_end)
        end = position - position % mmap.PAGESIZE
        if end > 0 and hasattr(self._map, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED, 0, end)

    def unpack_from(self, fmt: struct.Struct, position: int) -> tuple:
        """``fmt.unpack_from`` at ``position`` without copying."""
        return fmt.unpack_from(self._map, position)

    def zero(self, start: int, end: int) -> None:
        """Zero ``[start, end)``: erase a torn tail so no stale batch can reappear later."""
        end = min(end, len(self._map))
        if end > start:
            self._map[start:end] = bytes(end - start)

    def cut(self, size: int) -> None:
        """Discard everything from ``size`` on (recovery; no concurrent readers).

        Files are truncated and re-extended, so the discarded tail becomes a sparse
        hole of zeros without writing a byte of it.
        """
        if not self._file_backed:
            self.zero(size, len(self._map))
            return
        assert self.path is not None
        capacity = max(len(self._map), chunk_bytes_min)
        self._map.close()
        try:
            os.truncate(self.path, size)
        except OSError as exc:
            raise StorageError(f"cannot cut {self.path} at byte {size}: {exc}") from exc
        self._map = self._map_file(capacity)
        self.capacity = capacity
        self._repopulate()

    def flush(self) -> None:
        """msync the map: the written bytes reach the disk before this returns."""
        if self._file_backed:
            self._map.flush()

    def close(self, *, trim_to: int | None = None) -> None:
        """Unmap, then (files only) truncate to ``trim_to`` bytes and close the file.

        The map is closed before the truncate: truncating under a live map raises
        SIGBUS on POSIX and is refused on Windows.
        """
        if not self._map.closed:
            self._map.close()
        if self._file_backed and trim_to is not None and not self._read_only:
            try:
                os.truncate(self.path, trim_to)  # type: ignore[arg-type]
            except FileNotFoundError:
                pass  # deleted already (a deleted topic or segment)
            except OSError as exc:
                raise StorageError(f"cannot trim {self.path} to {trim_to} bytes: {exc}") from exc

    def __repr__(self) -> str:
        state = "closed" if self._map.closed else f"capacity={len(self._map)}"
        return f"MappedFile({self.path or '<memory>'}, {state})"
