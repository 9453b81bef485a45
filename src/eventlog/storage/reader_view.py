"""The reader view: what a partition's writer publishes to readers in other processes.

File ``reader-view`` in each partition directory, one page (4096 bytes), four
64-bit words in the machine's byte order (every store is one aligned 8-byte
store; the file is rewritten by every writer that opens the log, so it never
travels between machines)::

    word 0  magic        0x31564552 ("REV1" little-endian): the file was written by a writer
    word 1  end offset   every batch below it is whole in the segment files
    word 2  epoch        changes whenever the set of segment files changes (a roll,
                         retention, compaction's swap, a truncation, a writer's open)
    word 3  start offset the log start offset

The writer stores the end offset after it copied a batch into the segment's map
(one store per append, not per record) and bumps the epoch after it changed the
segment files, before any batch lands in a new one. A reader loads the end offset
first, then the epoch: see docs/storage.md ("Readers in other processes") for why
a reader that sees an end offset also sees every byte below it.

Nothing in the file is trusted for more than it says: a reader that finds no file,
a short one or another magic falls back to checking every batch's CRC, and a
writer that finds one starts a new epoch from whatever word 2 holds.
"""

from __future__ import annotations

import mmap
import os
from typing import NamedTuple

from .files import Files, os_files, storage_error

__all__ = ["Published", "ReaderView", "reader_view_file"]

reader_view_file = "reader-view"
view_bytes = 4096  # one page: the first store into it is never a page's first allocation
view_magic = 0x31564552
_MAGIC, _END, _EPOCH, _START = range(4)


class Published(NamedTuple):
    """One reading of a reader view."""

    end_offset: int
    epoch: int
    start_offset: int


class ReaderView:
    """The four words, mapped: written by the partition's writer, read by readers.

    In memory (``directory=None``) the words live in a bytearray: the writer's code
    path is the same. Thread-safe in the sense of single aligned word stores and loads.
    """

    __slots__ = ("_map", "path", "words")

    def __init__(self, words: memoryview, backing: mmap.mmap | None, path: str | None) -> None:
        self.words = words
        self._map = backing
        self.path = path

    @classmethod
    def for_writer(cls, directory: str | None, files: Files = os_files) -> ReaderView:
        """Create or reuse ``directory/reader-view`` for the writer that holds the log
        (never through a symbolic link: ``Files.open`` refuses one, a StorageError).

        The file's bytes are written with ``pwrite`` before they are mapped, so no
        later store into the map allocates a disk block (a full disk then is an
        error here, not a SIGBUS in an append). Raises StorageError.
        """
        if directory is None:  # nobody else can read it: the four words only
            return cls(memoryview(bytearray(32)).cast("q"), None, None)
        path = os.path.join(directory, reader_view_file)
        fd = -1
        try:
            fd = files.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            old = files.pread(fd, view_bytes, 0)
            epoch = 0
            if len(old) == view_bytes:
                words = memoryview(old).cast("q")
                epoch = words[_EPOCH] if words[_MAGIC] == view_magic else 0
            else:
                _write_all(files, fd, bytes(view_bytes))
                files.ftruncate(fd, view_bytes)
            backing = files.mmap(fd, view_bytes)
        except OSError as exc:
            raise storage_error(exc, f"create the reader view {path}", path,
                                files=files) from exc
        finally:
            if fd >= 0:
                files.close(fd)
        view = cls(memoryview(backing).cast("q"), backing, path)
        view.words[_EPOCH] = (epoch + 1) % 2**63
        view.words[_MAGIC] = view_magic
        return view

    @classmethod
    def for_reader(cls, directory: str, files: Files = os_files) -> ReaderView | None:
        """Map ``directory/reader-view`` read-only; None if there is none yet, or it is
        not one a writer finished creating (no magic)."""
        path = os.path.join(directory, reader_view_file)
        fd = -1
        try:
            fd = files.open(path, os.O_RDONLY)
            if files.size(fd) < view_bytes:
                return None
            backing = files.mmap_read_only(fd, view_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(exc, f"map the reader view {path}", path, files=files) from exc
        finally:
            if fd >= 0:
                files.close(fd)
        view = cls(memoryview(backing).cast("q"), backing, path)
        if view.words[_MAGIC] != view_magic:
            view.close()
            return None
        return view

    # ------------------------------------------------------------------ writer

    def publish_end(self, end_offset: int) -> None:
        """Every batch below ``end_offset`` is whole. One aligned 8-byte store."""
        self.words[_END] = end_offset

    def publish_segments(self, start_offset: int) -> None:
        """The segment files changed (and the log may start at ``start_offset``)."""
        words = self.words
        words[_START] = start_offset
        words[_EPOCH] = (words[_EPOCH] + 1) % 2**63

    # ------------------------------------------------------------------ reader

    def read(self) -> Published:
        """The end offset (loaded first), the epoch, then the start offset."""
        words = self.words
        end = words[_END]
        return Published(end, words[_EPOCH], words[_START])

    def close(self) -> None:
        self.words.release()
        if self._map is not None:
            self._map.close()
            self._map = None


def _write_all(files: Files, fd: int, data: bytes) -> None:
    """pwrite all of ``data`` from byte 0 (a short write continues where it stopped)."""
    view = memoryview(data)
    position = 0
    while position < len(view):
        position += files.pwrite(fd, view[position:], position)
