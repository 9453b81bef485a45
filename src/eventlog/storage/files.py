"""Every operating-system call of the storage layer: ``Files``, file naming, atomic
replacement, directory fsync and growable memory maps.

Every file-system call of storage (open, read, pwrite, append, fallocate,
ftruncate, fsync, rename, unlink, stat, listing, mmap and its growth, read-only
maps) goes through a ``Files`` object, so tests can inject ENOSPC, EIO, a failed
fsync or a short write at any call (``eventlog.testing.FaultyFiles``). Each
``EventLog`` has one, passed down to its partitions, segments, indexes, reader
view and aborted-transactions index; the offline verifier uses ``os_files``.

Maps grow in chunks (``chunk_bytes_min`` doubling up to a cap) instead of being
preallocated at ``segment_bytes``: Kafka's default segment is 1 GiB, and a test
suite that creates hundreds of small partitions must not reserve that much
each. In-memory mode uses anonymous maps through the same class, so both modes
run the same code.

A full disk must be an error, never a signal: a store into a shared file map
whose page has no disk block behind it makes the kernel raise SIGBUS, which
kills the interpreter. So every byte range of a file is allocated
(``Files.allocate``: posix_fallocate, or zeros written where the file system
cannot) before it is mapped, and a map grows only after its new range is
allocated. A store into the map is never the first allocation of a block;
ENOSPC surfaces from the call that grows the map, as a ``StorageError`` with
errno ENOSPC, before anything was written.

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

import errno
import mmap
import os
import shutil
import struct
import sys

from ..errors import StorageError

__all__ = [
    "Files",
    "MappedFile",
    "atomic_write",
    "fsync_dir",
    "offset_from_file_name",
    "os_files",
    "segment_file_name",
    "storage_error",
    "with_errno",
]

offset_digits = 20  # Kafka's LogFileUtils: base offset zero-padded to 20 digits
chunk_bytes_min = 64 * 1024  # first chunk of a new map; doubles as the map fills
# A file map grows by at most this much at a time: each growth allocates its range
# on disk first, and a 1 GiB segment must not reserve 512 MiB it may never use.
growth_bytes_max = 64 * 1024 * 1024
release_interval_bytes = 32 * 1024 * 1024  # pages touched between two MADV_DONTNEEDs
populate_window_bytes_max = 1024 * 1024  # pages prefaulted ahead of the writer, at most
_can_resize = sys.platform.startswith("linux")  # mmap.resize needs mremap elsewhere
# Windows keeps a mapped view's dirty pages apart from the file's cache: an fsync
# (FlushFileBuffers) writes them only after FlushViewOfFile (mmap.flush). POSIX
# systems have one page cache for maps and writes (docs/storage.md, durability).
_msync_before_fsync = sys.platform == "win32"
# Linux 5.14+; Python 3.11's mmap lacks the name. None: not Linux, no prefaulting.
_MADV_POPULATE_WRITE = (
    getattr(mmap, "MADV_POPULATE_WRITE", 23) if sys.platform.startswith("linux") else None
)
# Cleared for the process by the first madvise that fails (an older kernel: EINVAL).
_populate = _MADV_POPULATE_WRITE is not None and hasattr(mmap.mmap, "madvise")
_never = sys.maxsize  # a position no write reaches
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # never follow a planted symbolic link
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_zeros_chunk = 1024 * 1024  # the fallback allocation writes zeros this much at a time
# posix_fallocate's answers when the file system cannot preallocate: write zeros instead
_unsupported = {errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


class Files:
    """The file-system calls of the storage layer, one method each.

    Subclass and override to inject faults (``eventlog.testing.FaultyFiles``).
    Every method raises ``OSError`` as the operating system does; callers turn
    it into a ``StorageError`` naming the file (``storage_error``). Files are
    opened with ``O_NOFOLLOW`` where the platform has it, so a symbolic link
    planted in the data directory is refused, never followed.
    """

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY, mode)

    def open_directory(self, path: str) -> int:
        return os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)

    def close(self, fd: int) -> None:
        os.close(fd)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def pread(self, fd: int, length: int, position: int) -> bytes:
        return os.pread(fd, length, position)

    def pwrite(self, fd: int, data: bytes | memoryview, position: int) -> int:
        """Write at ``position``; returns how many bytes were written (maybe fewer)."""
        return os.pwrite(fd, data, position)

    def allocate(self, fd: int, offset: int, length: int) -> None:
        """Reserve disk blocks for ``[offset, offset + length)``, extending the file
        if that passes its end: posix_fallocate where the platform and file system
        have it, else zeros written past the file's end (a range inside it is
        already allocated by this module, or is a hole left by an older version,
        which the zeros fill too). ENOSPC if the disk is full."""
        if length <= 0:
            return
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, offset, length)
                return
            except OSError as exc:
                if exc.errno not in _unsupported:
                    raise
        end = offset + length
        position = offset
        while position < end:
            n = min(_zeros_chunk, end - position)
            written = os.pwrite(fd, bytes(n), position)
            position += written

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        """fsync without the metadata a read does not need (Linux: fdatasync).
        Writes back the file's dirty pages, those dirtied through a shared map too,
        and releases the GIL while it waits."""
        if hasattr(os, "fdatasync"):
            os.fdatasync(fd)
        else:  # macOS, Windows
            os.fsync(fd)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """Write at the descriptor's position (its end, for ``O_APPEND``); returns how
        many bytes were written (maybe fewer)."""
        return os.write(fd, data)

    def mmap(self, fd: int, size: int) -> mmap.mmap:
        return mmap.mmap(fd, size)

    def mmap_read_only(self, fd: int, size: int) -> mmap.mmap:
        """A map of the first ``size`` bytes that can only be read."""
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ)

    def resize(self, mapped: mmap.mmap, size: int) -> None:
        """Grow a map in place (Linux's mremap) after its range was allocated."""
        mapped.resize(size)

    def msync(self, mapped: mmap.mmap) -> None:
        """The map's dirty pages reach the disk before this returns."""
        mapped.flush()

    def replace(self, source: str, target: str) -> None:
        os.replace(source, target)

    def rename(self, source: str, target: str) -> None:
        os.rename(source, target)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def truncate(self, path: str, size: int) -> None:
        fd = self.open(path, os.O_WRONLY)
        try:
            self.ftruncate(fd, size)
        finally:
            self.close(fd)

    def exists(self, path: str) -> bool:
        """True if ``path`` names anything, a dangling symbolic link included."""
        return os.path.lexists(path)

    def stat(self, path: str) -> os.stat_result:
        """The metadata (size, inode) of the file or directory ``path`` names."""
        return os.stat(path)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path)

    def read_file(self, path: str) -> bytes:
        """A whole small file (metadata, markers), opened without following links."""
        fd = self.open(path, os.O_RDONLY)
        try:
            return self.pread(fd, self.size(fd), 0)
        finally:
            self.close(fd)

    def free_bytes(self, path: str) -> int | None:
        """Free space for unprivileged users on ``path``'s file system, if known."""
        try:
            st = os.statvfs(path)
        except (OSError, AttributeError):
            return None
        return st.f_bavail * st.f_frsize


os_files = Files()  # the operating system's calls, unchanged


def storage_error(exc: OSError, doing: str, path: str, *, files: Files = os_files,
                  needed_bytes: int | None = None) -> StorageError:
    """A StorageError for ``exc``, keeping its errno. ``doing``: what failed ("grow
    /d/0.log to 128 bytes"). A full disk says where, how much was needed and how
    much is free, and that nothing was changed."""
    if isinstance(exc, StorageError):
        return exc
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        directory = os.path.dirname(path) or "."
        free = files.free_bytes(directory)
        parts = []
        if needed_bytes:
            parts.append(f"{needed_bytes} more bytes were needed")
        if free is not None:
            parts.append(f"{free} bytes are free")
        detail = f" ({'; '.join(parts)})" if parts else ""
        message = f"cannot {doing}: no space left on the device of {directory}{detail}"
        message += (". Nothing was written by this call and every acknowledged record is "
                    "still readable: free disk space (or delete records or topics) and retry")
        return StorageError(code, message)
    if code is None:
        return StorageError(f"cannot {doing}: {exc}")
    return StorageError(code, f"cannot {doing}: {os.strerror(code)} ({exc})")


def with_errno(exc: BaseException, message: str) -> StorageError:
    """A StorageError saying ``message``, with the errno of ``exc`` (an OSError) if it
    has one, so callers can tell a full disk (ENOSPC) from other failures."""
    code = getattr(exc, "errno", None)
    return StorageError(code, message) if code is not None else StorageError(message)


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


def fsync_dir(path: str, *, files: Files = os_files) -> None:
    """fsync a directory, so a file created, renamed or deleted in it survives power loss.
    StorageError (with the errno) if it fails."""
    try:
        fd = files.open_directory(path)
        try:
            files.fsync(fd)
        finally:
            files.close(fd)
    except OSError as exc:
        raise storage_error(exc, f"fsync the directory {path}", path, files=files) from exc


def atomic_write(path: str, data: bytes, *, durable: bool = True,
                 files: Files = os_files) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new file.

    Writes ``path.tmp`` (created afresh with O_EXCL: a leftover or planted one is
    removed first, never written through), fsyncs it (if ``durable``), renames it
    over ``path`` and fsyncs the directory. On any error ``path`` is unchanged and
    the temporary file is gone; the error is a StorageError naming ``path``.
    """
    tmp = path + ".tmp"
    try:
        try:
            files.unlink(tmp)  # a leftover of a crash, or a planted link: never followed
        except FileNotFoundError:
            pass
        fd = files.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            position = 0
            while position < len(view):
                position += files.pwrite(fd, view[position:], position)
            if durable:
                files.fsync(fd)
        finally:
            files.close(fd)
        files.replace(tmp, path)
    except OSError as exc:
        try:
            files.unlink(tmp)
        except OSError:
            pass
        raise storage_error(exc, f"write {path}", path, files=files,
                            needed_bytes=len(data)) from exc
    if durable:
        try:
            fsync_dir(os.path.dirname(path) or ".", files=files)
        except OSError as exc:
            raise storage_error(exc, f"fsync the directory of {path}", path,
                                files=files) from exc


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
        "_sync_fd",
        "_touched_bytes", "capacity", "capacity_max_bytes", "file_bytes_at_open", "files",
        "path",
    )

    def __init__(self, path: str | None, *, capacity_max_bytes: int, create: bool,
                 files: Files = os_files, read_only: bool = False) -> None:
        self.path = path
        self.files = files
        self.capacity_max_bytes = capacity_max_bytes
        self._file_backed = path is not None
        self._read_only = read_only
        self._touched_bytes = 0  # by reads, since the last release
        # Writes: the first write ending past ``_next_event`` (the nearer of the two
        # positions below) prefaults and/or releases pages (``_write_event``).
        self._populated_end = 0  # pages below it were prefaulted (or are released/written)
        self._release_at = release_interval_bytes if self._file_backed else _never
        self._next_event = 0
        self._sync_fd = -1  # opened by the first sync_data (fsync="always" only)
        self.file_bytes_at_open = 0
        if path is None:
            self._map = _anonymous_map(chunk_bytes_min)
            self.capacity = chunk_bytes_min
            return
        if read_only:
            self._map = self._map_read_only()
            self.capacity = self.file_bytes_at_open = len(self._map)
            return
        self._map = self._map_file(chunk_bytes_min, create=create, at_open=True)
        self.capacity = len(self._map)

    def _map_file(self, size: int, *, create: bool = False, at_open: bool = False) -> mmap.mmap:
        """Map the file, allocated on disk and at least ``size`` bytes long (at open,
        the whole file if it is longer; otherwise exactly ``size``).

        Every byte of the mapped range is allocated first (``Files.allocate``), holes
        left by older versions included, so no store into the map can meet a full
        disk. On failure the file is as it was (a file this call created is removed)
        and the error is a StorageError (ENOSPC for a full disk).

        The descriptor is closed once the file is mapped (the map keeps its own
        duplicate), so an open segment costs one descriptor, not two: a log with
        thousands of partitions stays under the usual limit of 1,024.
        """
        assert self.path is not None
        files = self.files
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        created = create and not files.exists(self.path)
        try:
            fd = files.open(self.path, flags)
        except FileNotFoundError:
            raise StorageError(errno.ENOENT, f"cannot open and map {self.path}: "
                               "no such file") from None
        except OSError as exc:
            raise storage_error(exc, f"open {self.path}", self.path, files=files) from exc
        current = -1
        try:
            current = files.size(fd)
            if at_open:
                self.file_bytes_at_open = current
                size = max(size, current)
            if current > size:
                files.ftruncate(fd, size)
            files.allocate(fd, 0, size)
            return files.mmap(fd, size)
        except OSError as exc:
            self._undo_growth(fd, current, created=created)
            raise storage_error(exc, f"allocate and map {size} bytes of {self.path}",
                                self.path, files=files,
                                needed_bytes=max(size - max(current, 0), 0) or None) from exc
        finally:
            files.close(fd)

    def _undo_growth(self, fd: int, size: int, *, created: bool) -> None:
        """A failed allocation may have extended the file: cut it back (best effort),
        or remove the file this call created, so a failed call changes nothing."""
        try:
            if created:
                self.files.unlink(self.path)  # type: ignore[arg-type]
            elif size >= 0:
                self.files.ftruncate(fd, size)
        except OSError:
            pass

    def _map_read_only(self) -> mmap.mmap:
        """Map all of the file as it is now, read-only (an empty file: an empty map).

        The reader must touch only bytes the writer published: past the end of a
        file that the writer trimmed meanwhile, a page of the map raises SIGBUS.
        """
        assert self.path is not None
        files = self.files
        fd = -1
        try:
            fd = files.open(self.path, os.O_RDONLY)
            size = files.size(fd)
            if size == 0:
                return _anonymous_map(mmap.PAGESIZE)  # zeros: no batch starts here
            return files.mmap_read_only(fd, size)
        except OSError as exc:
            raise StorageError(f"cannot open and map {self.path} read-only: {exc}") from exc
        finally:
            if fd >= 0:
                files.close(fd)

    def follow(self) -> bool:
        """Read-only maps: map the file again if it grew. Returns whether it did.

        The old map is not closed (a reader may still slice it; it goes with its
        last reference), as in ``_remap``. Cost: one stat, and one mmap if it grew.
        """
        assert self._read_only and self.path is not None
        try:
            if self.files.stat(self.path).st_size <= len(self._map):
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
        """Grow the map so it holds ``needed_bytes``: doubling, by at most
        ``growth_bytes_max`` at a time for files, up to the cap. A file's new range
        is allocated on disk before the map grows over it. On failure (ENOSPC: a
        full disk) nothing changed: the map and the file are as they were."""
        capacity = len(self._map)
        if needed_bytes <= capacity:
            return
        new = capacity
        while new < needed_bytes:
            new += min(new, growth_bytes_max) if self._file_backed else new
        new = max(needed_bytes, min(new, self.capacity_max_bytes))
        if not self._file_backed:
            self._grow_anonymous(new)
        elif _can_resize:
            self._grow_file(capacity, new)
        else:
            self._remap(new)
        self.capacity = new

    def _grow_anonymous(self, size: int) -> None:
        try:
            if _can_resize:
                self._map.resize(size)  # mremap
            else:
                self._remap(size)
        except OSError as exc:
            raise StorageError(exc.errno, f"cannot grow a memory map to {size} bytes: "
                               f"{exc}") from exc

    def _grow_file(self, capacity: int, size: int) -> None:
        """Allocate ``[capacity, size)`` of the file, then mremap over it."""
        assert self.path is not None
        files = self.files
        try:
            fd = files.open(self.path, os.O_RDWR)
        except OSError as exc:
            raise storage_error(exc, f"open {self.path}", self.path, files=files) from exc
        try:
            files.allocate(fd, capacity, size - capacity)
            files.resize(self._map, size)  # the file is that long already: only mremap
        except OSError as exc:
            self._undo_growth(fd, capacity, created=False)
            raise storage_error(exc, f"grow {self.path} to {size} bytes", self.path,
                                files=files, needed_bytes=size - capacity) from exc
        finally:
            files.close(fd)

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

    @property
    def buffer(self) -> mmap.mmap:
        """The map itself, for readers that slice many batches or read many
        headers in one C-level pass (storage/point_reads.py, the header walk).
        Use it at once and never keep it: ``ensure`` and ``close`` replace or
        close it (a slice of a closed map raises ValueError). Such reads do not
        count towards the release of read pages (``read`` does)."""
        return self._map

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
            self.files.truncate(self.path, size)
        except OSError as exc:
            # The map is closed: map the file again as it is, then report.
            self._map = self._map_file(capacity)
            raise storage_error(exc, f"cut {self.path} at byte {size}", self.path,
                                files=self.files) from exc
        self._map = self._map_file(capacity)
        self.capacity = capacity
        self._repopulate()

    def flush(self) -> None:
        """msync the map: the written bytes reach the disk before this returns.
        A failure is a StorageError: what was written since the last good flush
        may not be on disk (see PartitionLog's fsync failure handling)."""
        if self._file_backed:
            try:
                self.files.msync(self._map)
            except OSError as exc:
                raise storage_error(exc, f"msync {self.path}", self.path,  # type: ignore[arg-type]
                                    files=self.files) from exc

    def sync_data(self) -> None:
        """fdatasync the file: what was written through the map is on disk when this
        returns (a shared map is the file's page cache; on Windows the view is
        flushed first). Unlike ``flush`` (msync) it waits with the GIL released, so
        other threads append meanwhile (group commit: one sync covers them all).
        Keeps one descriptor open for it, until ``close``."""
        if not self._file_backed:
            return
        files = self.files
        try:
            if _msync_before_fsync:
                files.msync(self._map)
            fd = self._sync_fd
            if fd < 0:
                fd = self._sync_fd = files.open(self.path, os.O_RDWR)  # type: ignore[arg-type]
            files.fdatasync(fd)
        except OSError as exc:
            raise storage_error(exc, f"fdatasync {self.path}", self.path,  # type: ignore[arg-type]
                                files=files) from exc

    def close(self, *, trim_to: int | None = None) -> None:
        """Unmap, then (files only) truncate to ``trim_to`` bytes and close the file.

        The map is closed before the truncate: truncating under a live map raises
        SIGBUS on POSIX and is refused on Windows.
        """
        if self._sync_fd >= 0:
            fd, self._sync_fd = self._sync_fd, -1
            self.files.close(fd)
        if not self._map.closed:
            self._map.close()
        if self._file_backed and trim_to is not None and not self._read_only:
            try:
                self.files.truncate(self.path, trim_to)  # type: ignore[arg-type]
            except FileNotFoundError:
                pass  # deleted already (a deleted topic or segment)
            except OSError as exc:
                raise storage_error(exc, f"trim {self.path} to {trim_to} bytes",
                                    self.path, files=self.files) from exc  # type: ignore[arg-type]

    def __repr__(self) -> str:
        state = "closed" if self._map.closed else f"capacity={len(self._map)}"
        return f"MappedFile({self.path or '<memory>'}, {state})"
