"""KeyIndex: for each record key of one log, the offsets of its records, in order.

Pure values (bytes keys, int offsets): no files, clock or lock. The owner (a
partition) feeds it every appended record under its append lock, throws it away
whenever records leave the log (truncation, retention, compaction) and rebuilds
it from the log on first use (``index_batches``), so it is never stored and can
never disagree with the log after a crash.

Each record is indexed with its location: its offset and the byte position, in
the segment holding that offset, of the batch holding it (-1 if not known), so
``Partition.read_key`` reads the batch at that position without the segment's
sparse-index lookup and header walk. A position is a hint, never trusted alone:
the reader checks that the batch found there holds the offset (and its CRC and
key), and reads through the log's generic path otherwise.

Layout, chosen for millions of keys: one dict entry per key whose value is the
key's only location (an ``(offset, position)`` tuple) or, from its second record
on, an ``array('q')`` of its offsets and positions interleaved (16 bytes a
record). Memory per key: the key's bytes object (33 bytes + its length) + the
dict slot (~50 bytes) + one tuple (56 bytes + two ints) or one array (64 bytes +
16 a record, grown by about 1/8). For a 16-byte key with 10 records: about 320
bytes, 32 of them per record.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import pairwise

from .batch import BatchHeader, Columns, attr_control

__all__ = ["KeyIndex", "index_batches"]


class KeyIndex:
    """Locations per key. ``end_offset``: every record below it has been indexed."""

    __slots__ = ("_offsets", "end_offset")

    def __init__(self, end_offset: int = 0) -> None:
        self._offsets: dict[bytes, tuple[int, int] | array] = {}
        self.end_offset = end_offset

    def __len__(self) -> int:
        """The number of keys. O(1)."""
        return len(self._offsets)

    def add(self, key: bytes, offset: int, position: int = -1) -> None:
        """Index one record (offsets must come in increasing order); ``position``: the
        byte position of its batch in its segment, -1 if unknown. O(1) amortised."""
        offsets = self._offsets
        found = offsets.get(key)
        if found is None:
            offsets[key] = (offset, position)
        elif type(found) is tuple:
            offsets[key] = array("q", (found[0], found[1], offset, position))
        else:
            found.append(offset)
            found.append(position)

    def add_all(
        self, keys: Iterable[bytes | None], offsets: Iterable[int], position: int = -1
    ) -> None:
        """Index records given as parallel keys and offsets, all in the batch at byte
        ``position`` (-1: unknown); None keys are skipped."""
        if type(keys) is list and len(keys) == 1:  # an application's one-event append
            if keys[0] is not None:
                self.add(keys[0], next(iter(offsets)), position)
            return
        add = self.add
        for key, offset in zip(keys, offsets):
            if key is not None:
                add(key, offset, position)

    def __contains__(self, key: bytes) -> bool:
        """True if ``key`` has a record. O(1)."""
        return key in self._offsets

    def count(self, key: bytes) -> int:
        """How many records ``key`` has. O(1)."""
        found = self._offsets.get(key)
        if found is None:
            return 0
        return 1 if type(found) is tuple else len(found) >> 1

    def offsets(self, key: bytes, start: int = 0, stop: int | None = None) -> Sequence[int]:
        """The offsets of ``key``'s records number ``start`` to ``stop`` (exclusive,
        default the last), a copy. O(stop - start)."""
        return self.locations(key, start, stop)[0]

    def locations(
        self, key: bytes, start: int = 0, stop: int | None = None
    ) -> tuple[Sequence[int], Sequence[int]]:
        """The offsets of ``key``'s records number ``start`` to ``stop`` (as
        ``offsets``) and, parallel, the byte positions of their batches (-1: unknown).
        O(stop - start)."""
        found = self._offsets.get(key)
        if found is None:
            return (), ()
        if type(found) is tuple:
            return (found[0],)[start:stop], (found[1],)[start:stop]
        # The end of whole pairs, read once: a writer appends a record's offset and its
        # position as two steps, so a lock-free reader may see an offset without its
        # position; both slices stop before it.
        end = len(found) & ~1
        if stop is not None:
            end = min(end, 2 * stop)
        return found[2 * start : end : 2], found[2 * start + 1 : end : 2]

    def last(self, key: bytes) -> tuple[int, int, int]:
        """``(count, offset, position)`` of ``key``'s last record, one consistent
        reading of it (lock-free readers: see ``locations``); ``(0, -1, -1)`` if
        ``key`` has none. O(1)."""
        found = self._offsets.get(key)
        if found is None:
            return 0, -1, -1
        if type(found) is tuple:
            return 1, found[0], found[1]
        count = len(found) >> 1
        return count, found[2 * count - 2], found[2 * count - 1]

    def check(self) -> None:
        """Assert the invariants (tests): offsets strictly increasing, below end_offset."""
        for key, found in self._offsets.items():
            seq = found[0::2]
            assert len(seq) >= 1, key
            assert all(a < b for a, b in pairwise(seq)), key
            assert seq[-1] < self.end_offset, (key, seq[-1], self.end_offset)


def index_batches(
    index: KeyIndex, batches: Iterable[tuple[BatchHeader, Columns]], start: int, stop: int,
    positions: Sequence[int] | None = None,
) -> int:
    """Index the records of ``batches`` with offsets in ``[start, stop)``, skipping
    control batches and keyless records; ``positions``: each batch's byte position in
    its segment (None: unknown). Returns the offset after the last batch seen (at least
    ``start``), for the caller's next read."""
    after = start
    for n, (header, cols) in enumerate(batches):
        position = -1 if positions is None else positions[n]
        last = header.base_offset + header.last_offset_delta
        if not header.attributes & attr_control:
            if cols.offsets and cols.offsets[0] >= start and cols.offsets[-1] < stop:
                index.add_all(cols.keys, cols.offsets, position)
            else:
                for key, offset in zip(cols.keys, cols.offsets):
                    if key is not None and start <= offset < stop:
                        index.add(key, offset, position)
        after = max(after, last + 1)
    return after
