"""BatchCache: the last few decoded batches of one partition, for point reads.

A read of one record (``Partition.read(offset, max_records=1)``, a consumer that
seeks, ``read_key``) must CRC-check and decode the whole batch holding it: with
1,000-record batches about 150 µs, of which the record is 1/1000th. The next
point read into the same batch would pay it again. This cache keeps the decoded
columns of the batches such reads only partly used, so that the CRC check and
the decode happen once per batch and later reads into it are slices.

What goes in (Segment.read decides): a batch a read started inside (the read's
offset lies past the batch's first record) or stopped inside (the read's record
limit fell short of the batch's end). A read that consumes whole batches, as a
sequential replay does, neither adds nor evicts anything, so the hot sequential
path pays one dict lookup per read call, nothing per batch.

Keys are ``(segment token, byte position)``. A segment takes a fresh token
whenever bytes it already published may change or go away (``truncate_to``,
``recover``, ``scan``, ``close``, ``detach``), so entries of the old bytes can
never be hit again and age out. A hit must also carry the very header read from
the file at that position (all 12 fields, CRC included), which guards against
any position reuse the tokens missed. Every cached batch passed its CRC check
when it was decoded: a record returned from the cache was checked once, and the
cache is the memory of that check.

Admission. Keeping a batch is not free: the batch it evicts is freed cold, out of
the CPU caches, which costs about as much as the decode saved (measured: uniformly
random point reads, which never return to a batch, ran 2-3x slower when every
batch was kept). So a batch is kept at once only when a read of more than one
record stopped inside it (a consumer's next poll starts there: ``put``); a point
read (one record: ``admit``) keeps it only on its second miss within the last
``seen_max`` batches missed that way, so point reads at random offsets only note
their keys, and a run of point reads into one batch decodes it twice, then slices.

Bounded by ``entries_max`` batches and ``stored_bytes_max`` bytes of their
stored (encoded) size, per partition, oldest first out (FIFO). Thread-safe:
lookups are plain dict reads, insertions and evictions take a lock.
"""

from __future__ import annotations

import itertools
import threading

from .batch import BatchHeader, Columns

__all__ = [
    "BatchCache", "entries_max_default", "new_token", "seen_max_default",
    "stored_bytes_max_default",
]

entries_max_default = 8
seen_max_default = 64  # batches a point read missed, remembered (keys only) for admission
# Decoded, a batch takes about twice its stored bytes of Python objects.
stored_bytes_max_default = 1024 * 1024

_tokens = itertools.count(1)


def new_token() -> int:
    """A token never handed out before (segments key their cache entries with it)."""
    return next(_tokens)


class BatchCache:
    """Decoded batches keyed by ``(segment token, position)``; see the module docstring."""

    __slots__ = ("_bytes", "_entries", "_lock", "_seen", "entries_max", "hits", "misses",
                 "seen_max", "stored_bytes_max")

    def __init__(
        self,
        entries_max: int = entries_max_default,
        stored_bytes_max: int = stored_bytes_max_default,
    ) -> None:
        self.entries_max = entries_max
        self.stored_bytes_max = stored_bytes_max
        self._entries: dict[tuple[int, int], tuple[BatchHeader, Columns]] = {}
        self._seen: dict[tuple[int, int, int], None] = {}  # (token, position, crc)
        self.seen_max = seen_max_default
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0  # counted by the segment on a hit (tests, and a look at the ratio)
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: int, position: int, header: BatchHeader) -> Columns | None:
        """The decoded columns of the batch at ``position`` of segment ``token``, if
        cached with exactly ``header`` (the header read from the file now)."""
        found = self._entries.get((token, position))
        if found is None or found[0] != header:
            return None
        return found[1]

    def put(self, token: int, position: int, header: BatchHeader, cols: Columns) -> None:
        """Remember a decoded, CRC-checked batch; evicts the oldest over the bounds.
        A batch larger than ``stored_bytes_max`` on its own is not kept."""
        size = header.total_bytes
        if size > self.stored_bytes_max or self.entries_max <= 0:
            return
        key = (token, position)
        with self._lock:
            entries = self._entries
            old = entries.pop(key, None)
            if old is not None:
                self._bytes -= old[0].total_bytes
            entries[key] = (header, cols)
            self._bytes += size
            while len(entries) > self.entries_max or self._bytes > self.stored_bytes_max:
                oldest = next(iter(entries))
                self._bytes -= entries.pop(oldest)[0].total_bytes

    def admit(self, token: int, position: int, header: BatchHeader, cols: Columns) -> None:
        """A point read decoded this batch: keep it if one did not long ago (``put``),
        else only note it. See "Admission" in the module docstring."""
        key = (token, position, header.crc)
        seen = self._seen
        if key in seen:
            with self._lock:
                seen.pop(key, None)
            self.put(token, position, header, cols)
            return
        with self._lock:
            seen[key] = None
            while len(seen) > self.seen_max:
                del seen[next(iter(seen))]

    def clear(self) -> None:
        """Forget every batch."""
        with self._lock:
            self._entries.clear()
            self._seen.clear()
            self._bytes = 0

    @property
    def stored_bytes(self) -> int:
        """The stored size of the cached batches."""
        return self._bytes
