"""Transactions in storage: control batches, the aborted-transactions index, the LSO.

Kafka's design (KIP-98; KAFKA_SEMANTICS 8.7 and 10), specified byte by byte in
docs/storage.md:

* **Control batches** end a transaction in a partition. Attributes: transactional
  (bit 4) and control (bit 5); producer id and epoch of the transaction; base
  sequence -1; one record whose key is ``int16 version (0) + int16 type`` (0 ABORT,
  1 COMMIT) and whose value is ``int16 version (0) + int32 coordinator epoch``.
  They take an offset and are never returned to applications.
* **Transactional data batches** carry bit 4 and the producer's id and epoch.
* **The aborted-transactions index** (Kafka's ``.txnindex``): one file per segment,
  ``<base offset, 20 digits>.txnindex``, holding one 34-byte entry per transaction
  aborted by a marker in that segment: ``int16 version (0) · int64 producer_id ·
  int64 first_offset · int64 last_offset (the marker's) · int64
  last_stable_offset``. Files are appended to; a torn entry at the end is dropped.
* **The last stable offset** (LSO) of a partition is the first offset of its
  earliest open transaction, or the log end offset when none is open.
* ``txn-checkpoint`` (ASCII decimal): an offset at which no transaction of the
  partition was open and below which the index files are complete. Written at
  close when no transaction is open. On open the state is rebuilt by scanning the
  batch headers from it (from the log start without it): open transactions are
  found again and index entries of markers at or above it are rewritten from the
  log, so a crash between a marker and its index entry loses nothing.
* ``transactional``: an empty file, created by the first transactional batch a
  partition receives. A partition without it holds no transactional batch and
  costs nothing at open.

Locking: every method except the lookups is called under the partition lock.
``aborted_between`` and ``last_stable_offset`` take no lock: each loads one
attribute (the LSO's first open offset; the entries and their offsets as one
pair, which an abort appends to in place, entry before offset). An abort's entry
is published before the LSO moves past its transaction.
"""

from __future__ import annotations

import logging
import os
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol

from ..errors import CorruptLogError, StorageError
from . import batch as codec
from .batch import (  # control batches are the codec's; re-exported for callers here
    CONTROL_KEY,
    CONTROL_VALUE,
    control_abort,
    control_commit,
    control_version,
    encode_marker,
    marker_attributes,
    marker_type,
)
from .files import Files, atomic_write, os_files, storage_error

__all__ = [
    "CONTROL_KEY",
    "CONTROL_VALUE",
    "AbortedTxn",
    "PartitionTxns",
    "control_abort",
    "control_commit",
    "control_version",
    "encode_marker",
    "marker_attributes",
    "marker_type",
]

_log = logging.getLogger("eventlog.storage.txn_index")

ENTRY = struct.Struct(">hqqqq")  # version, producer id, first, last, last stable offset
entry_bytes = ENTRY.size
assert entry_bytes == 34
entry_version = 0
txn_index_suffix = ".txnindex"
flag_file = "transactional"
checkpoint_file = "txn-checkpoint"


class AbortedTxn(NamedTuple):
    """One entry of the aborted-transactions index."""

    producer_id: int
    first_offset: int
    last_offset: int  # the abort marker's offset
    last_stable_offset: int


class _Segment(Protocol):
    """What the transaction scan reads of a segment (storage/segment.py's Segment)."""

    base_offset: int
    next_offset: int

    @property
    def path(self) -> str | None: ...

    def headers(self) -> Iterator[tuple[codec.BatchHeader, int]]: ...

    def read_batch(self, position: int, header: codec.BatchHeader) -> bytes: ...


class TxnLog(Protocol):
    """What the transaction state reads of its partition's log (PartitionLog): typed
    structurally, so this module imports nothing above it."""

    directory: str | None
    fsync: str
    files: Files
    start_offset: int

    @property
    def end_offset(self) -> int: ...

    @property
    def segments(self) -> Sequence[_Segment]: ...


def _segment_file(directory: str, base: int) -> str:
    return os.path.join(directory, f"{base:020d}{txn_index_suffix}")


class PartitionTxns:
    """The transaction state of one partition: open transactions and aborted ones."""

    def __init__(self, directory: str | None, fsync: str, files: Files = os_files) -> None:
        self.directory = directory
        self._fsync = fsync
        self._io = files
        self.ongoing: dict[int, int] = {}  # producer id -> first offset of its open txn
        # min(ongoing.values()), -1 if none: one attribute a lock-free reader (the LSO,
        # the cleaner) loads, never a dict another thread may be changing.
        self._first_open = -1
        # An entry failed to reach its file: no checkpoint until a rewrite succeeds.
        self._index_behind = False
        # The aborted transactions by last offset (markers are in order) and their last
        # offsets, as ONE pair a lock-free reader loads at once: an abort appends to
        # both lists in place (entry first, so a reader's bisection of the offsets never
        # finds an entry that is not there yet): amortised O(1), not a copy of every
        # entry; a change that drops entries publishes a new pair.
        self._index: tuple[list[AbortedTxn], list[int]] = ([], [])
        # The longest transaction's marker offset minus its first offset: no entry whose
        # marker lies further than this past a read's end can hold records inside it.
        # Grown before an entry is published, so a lock-free reader never misses one.
        self._span_max = 0
        self._files: dict[int, list[AbortedTxn]] = {}  # segment base -> its entries
        self.warnings: list[str] = []

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, log: TxnLog) -> PartitionTxns | None:
        """The state of ``log``'s partition rebuilt from its files, or None if it never
        held a transactional batch (no ``transactional`` file: nothing is read).

        Cost: one stat without transactions; else the index files plus one header
        scan from ``txn-checkpoint`` (one CRC and decode per control batch).
        """
        directory = log.directory
        if directory is None or not log.files.exists(os.path.join(directory, flag_file)):
            return None
        txns = cls(directory, log.fsync, log.files)
        entries = txns._load_files()
        start = txns._read_checkpoint(log)
        entries = [e for e in entries if e.last_offset < start]
        entries.extend(txns._scan(log, start))
        txns._set_entries(entries, log)
        txns._rewrite_files()
        return txns

    @classmethod
    def create(cls, log: TxnLog) -> PartitionTxns:
        """Start tracking transactions in ``log``'s partition (its first transactional
        batch): writes the ``transactional`` file first, so a crash after the batch
        lands still finds it."""
        txns = cls(log.directory, log.fsync, log.files)
        if log.directory is not None:
            atomic_write(os.path.join(log.directory, flag_file), b"",
                         durable=log.fsync != "never", files=log.files)
        return txns

    def _load_files(self) -> list[AbortedTxn]:
        assert self.directory is not None
        out: list[AbortedTxn] = []
        for name in sorted(self._io.listdir(self.directory)):
            if not name.endswith(txn_index_suffix):
                continue
            path = os.path.join(self.directory, name)
            data = self._io.read_file(path)
            whole = len(data) - len(data) % entry_bytes
            if whole != len(data):
                self.warnings.append(f"{path}: dropped a torn entry of {len(data) - whole} bytes")
            for i in range(0, whole, entry_bytes):
                version, pid, first, last, lso = ENTRY.unpack_from(data, i)
                if version != entry_version or not 0 <= first <= last:
                    raise CorruptLogError(
                        f"{path}: entry {i // entry_bytes} (version {version}, offsets "
                        f"{first}..{last}) is not an aborted-transaction entry eventlog wrote; "
                        "remove the file and its partition's txn-checkpoint to rebuild it"
                    )
                out.append(AbortedTxn(pid, first, last, lso))
        out.sort(key=lambda e: e.last_offset)
        return out

    def _read_checkpoint(self, log: TxnLog) -> int:
        assert self.directory is not None
        path = os.path.join(self.directory, checkpoint_file)
        try:
            text = self._io.read_file(path)
        except FileNotFoundError:
            return log.start_offset
        if text.isdigit() and len(text) <= 19 and int(text) <= log.end_offset:
            return max(int(text), log.start_offset)
        self.warnings.append(f"{path}: {text[:40]!r} is not an offset of the log: "
                             "scanned from the log start instead")
        return log.start_offset

    def _scan(self, log: TxnLog, start: int) -> list[AbortedTxn]:
        """Rebuild ``ongoing`` from the batches at and after ``start``; return the
        aborted transactions whose markers lie there."""
        ongoing: dict[int, int] = {}
        out: list[AbortedTxn] = []
        for seg in list(log.segments):
            if seg.next_offset <= start:
                continue
            try:
                for header, position in seg.headers():
                    attributes = header.attributes
                    if not attributes & codec.attr_transactional or header.last_offset < start:
                        continue
                    pid = header.producer_id
                    if not attributes & codec.attr_control:
                        ongoing.setdefault(pid, header.base_offset)
                        continue
                    kind = self._marker_at(seg, position, header)
                    first = ongoing.pop(pid, None)
                    if first is not None and kind == control_abort:
                        lso = min(ongoing.values(), default=header.base_offset + 1)
                        out.append(AbortedTxn(pid, first, header.base_offset, lso))
            except CorruptLogError as exc:  # damage is reported by the log; keep what we have
                self.warnings.append(f"transaction scan stopped in {seg.path}: {exc}")
        self.ongoing = ongoing
        self._first_open = min(ongoing.values(), default=-1)
        return out

    @staticmethod
    def _marker_at(seg: _Segment, position: int, header: codec.BatchHeader) -> int:
        data = seg.read_batch(position, header)
        tail = data[codec.crc_start:]
        path = seg.path
        if not codec.verify_crc(tail, header):
            raise CorruptLogError(f"control batch at byte {position} of {path} fails its CRC")
        try:
            cols = codec.decode_columns(header, tail)
            if len(cols.keys) != 1:
                raise ValueError(f"it holds {len(cols.keys)} records, not one")
            return marker_type(cols.keys[0])
        except Exception as exc:
            raise CorruptLogError(
                f"control batch at byte {position} of {path} (offset {header.base_offset}) "
                f"is not a transaction marker: {exc}"
            ) from exc

    # ------------------------------------------------------------------ state

    def _set_entries(self, entries: Iterable[AbortedTxn], log: TxnLog) -> None:
        """Publish ``entries`` (sorted by last offset) and assign each to the segment
        holding its marker; entries wholly below the log start are forgotten."""
        start = log.start_offset
        kept = tuple(e for e in entries if e.last_offset >= start)
        bases = [s.base_offset for s in log.segments]
        files: dict[int, list[AbortedTxn]] = {}
        for e in kept:
            i = max(bisect_right(bases, e.last_offset) - 1, 0)
            files.setdefault(bases[i], []).append(e)
        self._span_max = max(self._span_max, _span_max(kept))
        self._index = (list(kept), [e.last_offset for e in kept])
        self._pending_files = files

    def _rewrite_files(self) -> None:
        """Make the index files say exactly what ``_set_entries`` assigned."""
        files = self._pending_files
        if self.directory is not None:
            existing = {int(n[:20]) for n in self._io.listdir(self.directory)
                        if n.endswith(txn_index_suffix) and n[:20].isdigit() and len(n) == 29}
            for base in existing - files.keys():
                self._io.unlink(_segment_file(self.directory, base))
            for base, entries in files.items():
                if self._files.get(base) != entries or base not in existing:
                    atomic_write(_segment_file(self.directory, base),
                                 b"".join(ENTRY.pack(entry_version, *e) for e in entries),
                                 durable=self._fsync != "never", files=self._io)
        self._files = files
        self._index_behind = False

    def reconcile(self, log: TxnLog) -> None:
        """After segments were deleted or merged (retention, compaction): reassign the
        entries to the segments that now hold their markers and drop those below the
        log start. Cost: O(entries); files are rewritten only where they changed."""
        self._set_entries(self._index[0], log)
        self._rewrite_files()

    def rebuild(self, log: TxnLog) -> None:
        """After ``truncate_to``: forget the checkpoint and rebuild from the log start."""
        if self.directory is not None:
            try:
                self._io.unlink(os.path.join(self.directory, checkpoint_file))
            except FileNotFoundError:
                pass
        entries = self._scan(log, log.start_offset)
        self._set_entries(entries, log)
        self._rewrite_files()

    def begin(self, producer_id: int, first_offset: int) -> None:
        """A transactional batch of ``producer_id`` is about to land at ``first_offset``."""
        if producer_id not in self.ongoing:
            self.ongoing[producer_id] = first_offset
            if self._first_open < 0 or first_offset < self._first_open:
                self._first_open = first_offset

    def complete(self, producer_id: int, marker_offset: int, commit: bool,
                 segment_base: int) -> AbortedTxn | None:
        """A marker landed at ``marker_offset`` (in the segment ``segment_base``).
        Returns the index entry written for an abort of an open transaction."""
        ongoing = self.ongoing
        first = ongoing.pop(producer_id, None)
        if first is None:
            return None
        if commit:
            self._first_open = min(ongoing.values()) if ongoing else -1
            return None
        entry = AbortedTxn(producer_id, first, marker_offset,
                           min(ongoing.values(), default=marker_offset + 1))
        # Published before the LSO moves past the transaction: a lock-free reader that
        # reads up to the new LSO finds the entry, never the aborted records as data.
        self._span_max = max(self._span_max, marker_offset - first)
        aborted, lasts = self._index
        aborted.append(entry)
        lasts.append(marker_offset)
        self._first_open = min(ongoing.values()) if ongoing else -1
        self._files.setdefault(segment_base, []).append(entry)
        if self.directory is not None:
            path = _segment_file(self.directory, segment_base)
            try:
                self._append_entry(path, entry)
            except StorageError as exc:
                # The marker is in the log and the state here is right: only the index
                # file lags. It is derived data, so the marker's caller must not see a
                # failure (it would write the marker again). The next reconcile rewrites
                # the file, and until one succeeds no checkpoint is written, so the
                # next open scans the marker again and rebuilds the entry.
                self._files.pop(segment_base, None)
                self._index_behind = True
                _log.warning("%s; the entry is rebuilt from the log's marker", exc)
        return entry

    def _append_entry(self, path: str, entry: AbortedTxn) -> None:
        """Append one entry to ``path`` (created if absent), fsynced with "always". A
        short write leaves a torn entry, which the next open drops (and rewrites from
        the log, since the scan from ``txn-checkpoint`` finds its marker again)."""
        files = self._io
        try:
            fd = files.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                data = memoryview(ENTRY.pack(entry_version, *entry))
                while data:
                    data = data[files.write(fd, data):]
                if self._fsync == "always":
                    files.fsync(fd)
            finally:
                files.close(fd)
        except OSError as exc:
            raise storage_error(exc, f"append to {path}", path, files=files,
                                needed_bytes=entry_bytes) from exc

    def last_stable_offset(self, end_offset: int) -> int:
        """The first offset of the earliest open transaction, else ``end_offset``.
        Lock-free: O(1)."""
        first = self._first_open
        return end_offset if first < 0 else min(first, end_offset)

    def forget(self, marker_offsets: Iterable[int]) -> None:
        """The cleaner removed these abort markers (every record of their transactions
        went before them): drop their entries. Caller holds the partition lock; the
        files follow at the next ``reconcile``. O(entries)."""
        gone = set(marker_offsets)
        if not gone:
            return
        kept = [e for e in self._index[0] if e.last_offset not in gone]
        self._index = (kept, [e.last_offset for e in kept])

    def aborted_between(self, start: int, stop: int) -> list[AbortedTxn]:
        """Aborted transactions that may hold records in ``[start, stop)``: marker at
        or after ``start``, first offset before ``stop``. Lock-free. O(log n + k): only
        entries whose markers lie within the longest transaction's span past ``stop``
        are looked at, not every entry after ``start``."""
        aborted, lasts = self._index
        i = bisect_left(lasts, start)
        j = bisect_right(lasts, stop - 1 + self._span_max, i)
        return [e for e in aborted[i:j] if e.first_offset < stop]

    def close(self, end_offset: int) -> None:
        """Record a checkpoint if no transaction is open (the next open scans nothing)."""
        if self.directory is None or self.ongoing or self._index_behind:
            return
        atomic_write(os.path.join(self.directory, checkpoint_file),
                     str(end_offset).encode("ascii"), durable=self._fsync != "never",
                     files=self._io)

    @property
    def aborted(self) -> tuple[AbortedTxn, ...]:
        """A copy of the entries, by marker offset. O(entries)."""
        return tuple(self._index[0])


def _span_max(entries: Sequence[AbortedTxn]) -> int:
    return max((e.last_offset - e.first_offset for e in entries), default=0)
