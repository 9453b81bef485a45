"""FollowedLog: a partition's log as a reader in another process sees it.

The writer (a PartitionLog in the process that holds the data directory's lock)
publishes its end offset, its start offset and an epoch of its segment files in
``reader-view`` (storage/reader_view.py). A FollowedLog maps the same segment
files read-only and serves the same lock-free reads as PartitionLog, up to the
published end offset; ``refresh`` catches up with what the writer did since:

* new batches: the active segment walks their headers up to the new end;
* a new epoch (a roll, retention, compaction's swap, a truncation, a writer that
  opened the log again): the directory is listed again, segments that are gone
  are unmapped (a read of them raises OffsetOutOfRangeError, as in the writer's
  process), new or replaced ones (a different inode) are mapped;
* no reader view (a directory written by an earlier version, with no writer
  now): the last segment is walked up to its last batch whose CRC checks out.

Nothing here writes, creates or removes a file. Reads touch only bytes below the
published end, so a file the writer trims or replaces cannot fault the reader.
"""

from __future__ import annotations

import os
import threading
import time

from sortedcontainers import SortedDict

from ..config import TopicConfig
from ..errors import StorageError
from . import batch as codec
from .files import offset_from_file_name, os_files, segment_file_name
from .partition_log import PartitionLog, RecoveryReport
from .reader_view import Published, ReaderView
from .segment import Segment

__all__ = ["FollowedLog"]

reload_attempts_max = 16  # listings raced by file changes before giving up (each is rare)
reload_backoff_s = 0.001  # times the attempt number: about 0.12 s in all before giving up


class FollowedLog(PartitionLog):
    """A read-only PartitionLog over the files another process writes.

    Reads (``read``, ``offset_for_time``, the offsets and sizes) are PartitionLog's,
    lock-free. ``refresh`` is serialised by the caller (one thread at a time).
    Every method that would change the log raises AssertionError: the read-only
    Partition above refuses writes with ReadOnlyLogError before they get here.
    """

    def __init__(self, directory: str, config: TopicConfig, *, now_ms: int) -> None:
        """Map the partition in ``directory`` as the writer last published it.

        Raises StorageError if the directory or a segment cannot be read.
        """
        started = time.perf_counter()
        self.directory = directory
        self.config = config
        self.files = os_files
        self.fsync = "never"
        self._fsync_always = False
        self._segment_bytes = config.segment_bytes
        self._segments = SortedDict()
        self._view = ([], [])
        self.start_offset = 0
        self._closed = False
        self._now_ms = now_ms
        self._epoch: int | None = None
        self._refresh_lock = threading.Lock()
        self._inodes: dict[int, int] = {}  # base offset -> inode of the .log mapped
        try:
            self._inode = self.files.stat(directory).st_ino
        except OSError as exc:
            raise StorageError(f"cannot read the partition directory {directory}: {exc}") \
                from exc
        self._reader_view = ReaderView.for_reader(directory, self.files)
        self._reload(self._published())
        self.recovery = RecoveryReport(True, len(self._segments), 0, 0, 0, 0,
                                       (time.perf_counter() - started) * 1000)

    # ------------------------------------------------------------------ following

    @property
    def inode(self) -> int:
        """The directory's inode when opened (a topic deleted and created again differs)."""
        return self._inode

    def _published(self) -> Published | None:
        view = self._reader_view
        return None if view is None else view.read()

    def refresh(self) -> bool:
        """Catch up with the writer. Returns whether anything changed. O(1) when nothing
        did (three loads from the map); else one header per new batch, or one listing
        of the directory when the segment files changed. Thread-safe (one at a time)."""
        with self._refresh_lock:
            return self._refresh()

    def _refresh(self) -> bool:
        if self._closed:
            return False
        if self._reader_view is None:
            self._reader_view = ReaderView.for_reader(self.directory, self.files)
            if self._reader_view is None:
                return False  # no writer has published here: the open's scan stands
        published = self._reader_view.read()
        end = self.end_offset
        if published.epoch == self._epoch and published.end_offset == end:
            return False
        if published.epoch != self._epoch or published.end_offset < end:
            self._reload(published)
            return True
        if not self._view[1][-1].follow(published.end_offset):
            self._reload(published)  # the files changed although the epoch did not
        return self.end_offset != end

    def _reload(self, published: Published | None) -> None:
        """List the segment files again and map what changed, up to ``published``.

        A file that goes between the listing and its mapping (retention, a swap)
        makes the listing start again, at most ``reload_attempts_max`` times.
        """
        for attempt in range(reload_attempts_max):
            try:
                segments = self._map_listed(published)
                break
            except FileNotFoundError:
                if attempt == reload_attempts_max - 1:
                    raise StorageError(
                        f"the segment files of {self.directory} kept changing while they "
                        "were listed (or there are none); try again") from None
                # A writer creating the partition makes its first segment a moment
                # after the directory: give it that moment, growing.
                time.sleep(reload_backoff_s * attempt)
        old = self._segments
        self._segments = segments
        self._view = (list(segments.keys()), list(segments.values()))
        for base, seg in old.items():
            if segments.get(base) is not seg:
                seg.close()
                if base not in segments:
                    self._inodes.pop(base, None)
        first = segments.peekitem(0)[0]
        if published is None:
            self.start_offset = first
        else:
            self.start_offset = min(max(published.start_offset, first), self.end_offset)
            self._epoch = published.epoch

    def _map_listed(self, published: Published | None) -> SortedDict:
        old = self._segments
        bases = self._base_offsets()
        segments = SortedDict()
        for i, base in enumerate(bases):
            last = i == len(bases) - 1
            seg = old.get(base)
            path = os.path.join(self.directory, segment_file_name(base, ".log"))
            inode = self.files.stat(path).st_ino
            if seg is not None and self._inodes.get(base) == inode and (
                    not last or published is not None):
                segments[base] = seg  # the same file, mapped already: follow it on
            else:
                self._inodes[base] = inode
                seg = segments[base] = self._open_segment(base, last=last, published=published)
            if not last and seg.next_offset < bases[i + 1]:
                seg.follow(bases[i + 1])  # sealed: every batch below the next base is whole
            elif last and published is not None:
                seg.follow(published.end_offset)
        if not segments:  # a writer between creating the directory and its first segment
            raise FileNotFoundError(self.directory)
        return segments

    def _open_segment(self, base: int, *, last: bool, published: Published | None) -> Segment:
        try:
            seg = Segment(
                self.directory, base,
                segment_bytes=self.config.segment_bytes,
                index_interval_bytes=self.config.index_interval_bytes,
                created_ms=self._now_ms,
                trusted=False,
                inflated_bytes_max=codec.inflated_bytes_max(self.config.max_message_bytes),
                files=self.files,
                read_only=True,
            )
        except StorageError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                raise exc.__cause__ from None  # gone since the listing: list again
            raise
        if not last:
            if not seg.load():
                seg.scan()  # damaged (or replaced under us): what checks out
        elif published is not None:
            seg.open_following(published.end_offset)
        else:
            seg.scan()  # no writer published here: every batch whose CRC checks out
        return seg

    def _base_offsets(self) -> list[int]:
        try:
            names = self.files.listdir(self.directory)
        except FileNotFoundError:
            return []  # the topic was deleted: keep what is mapped until it is closed
        except OSError as exc:
            raise StorageError(f"cannot list {self.directory}: {exc}") from exc
        bases = {offset_from_file_name(n) for n in names if n.endswith(".log")}
        bases.discard(None)
        return sorted(bases)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Unmap every segment and the reader view. Idempotent; changes no file."""
        with self._refresh_lock:
            if self._closed:
                return
            self._closed = True
            for seg in self._segments.values():
                seg.close()
            if self._reader_view is not None:
                self._reader_view.close()

    def check(self) -> None:
        """PartitionLog's invariants, but a segment may be mid-roll (empty) here."""
        segs = self._view[1]
        assert segs, "a log always has at least one segment"
        for seg in segs:
            seg.check()
        assert segs[0].base_offset <= self.start_offset <= self.end_offset

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("a FollowedLog is read-only: the Partition refuses writes first")

    append = append_encoded = roll = flush = truncate_to = delete_before = _refuse
    apply_retention = clean = replace_segments = delete = _refuse  # type: ignore[assignment]
