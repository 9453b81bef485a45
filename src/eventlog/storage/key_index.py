"""KeyIndex: for each record key of one log, the offsets of its records, in order.

Pure values (bytes keys, int offsets): no files, clock or lock. The owner (a
partition) feeds it every appended record under its append lock, throws it away
whenever records leave the log (truncation, retention, compaction) and rebuilds
it from the log on first use (``index_batches``), so it is never stored and can
never disagree with the log after a crash.

Layout, chosen for millions of keys: one dict entry per key whose value is the
key's only offset (an int) or, from its second record on, an ``array('q')`` of
its offsets (8 bytes a record). Memory per key: the key's bytes object (33 bytes
+ its length) + the dict slot (~50 bytes) + one int (28-32 bytes) or one array
(64 bytes + 8 a record, grown by about 1/8). For a 16-byte key with 10 records:
about 240 bytes, 24 of them per record.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import pairwise

from .batch import BatchHeader, Columns, attr_control

__all__ = ["KeyIndex", "index_batches"]


class KeyIndex:
    """Offsets per key. ``end_offset``: every record below it has been indexed."""

    __slots__ = ("_offsets", "end_offset")

    def __init__(self, end_offset: int = 0) -> None:
        self._offsets: dict[bytes, int | array] = {}
        self.end_offset = end_offset

    def __len__(self) -> int:
        """The number of keys. O(1)."""
        return len(self._offsets)

    def add(self, key: bytes, offset: int) -> None:
        """Index one record (offsets must come in increasing order). O(1) amortised."""
        offsets = self._offsets
        found = offsets.get(key)
        if found is None:
            offsets[key] = offset
        elif type(found) is int:
            offsets[key] = array("q", (found, offset))
        else:
            found.append(offset)

    def add_all(self, keys: Iterable[bytes | None], offsets: Iterable[int]) -> None:
        """Index records given as parallel keys and offsets; None keys are skipped."""
        add = self.add
        for key, offset in zip(keys, offsets):
            if key is not None:
                add(key, offset)

    def count(self, key: bytes) -> int:
        """How many records ``key`` has. O(1)."""
        found = self._offsets.get(key)
        if found is None:
            return 0
        return 1 if type(found) is int else len(found)

    def offsets(self, key: bytes, start: int = 0, stop: int | None = None) -> Sequence[int]:
        """The offsets of ``key``'s records number ``start`` to ``stop`` (exclusive,
        default the last), a copy. O(stop - start)."""
        found = self._offsets.get(key)
        if found is None:
            return ()
        if type(found) is int:
            return (found,)[start:stop]
        return found[start:stop]

    def check(self) -> None:
        """Assert the invariants (tests): offsets strictly increasing, below end_offset."""
        for key, found in self._offsets.items():
            seq = (found,) if type(found) is int else found
            assert len(seq) >= 1, key
            assert all(a < b for a, b in pairwise(seq)), key
            assert seq[-1] < self.end_offset, (key, seq[-1], self.end_offset)


def index_batches(
    index: KeyIndex, batches: Iterable[tuple[BatchHeader, Columns]], start: int, stop: int
) -> int:
    """Index the records of ``batches`` with offsets in ``[start, stop)``, skipping
    control batches and keyless records. Returns the offset after the last batch seen
    (at least ``start``), for the caller's next read."""
    after = start
    for header, cols in batches:
        last = header.base_offset + header.last_offset_delta
        if not header.attributes & attr_control:
            if cols.offsets and cols.offsets[0] >= start and cols.offsets[-1] < stop:
                index.add_all(cols.keys, cols.offsets)
            else:
                for key, offset in zip(cols.keys, cols.offsets):
                    if key is not None and start <= offset < stop:
                        index.add(key, offset)
        after = max(after, last + 1)
    return after
