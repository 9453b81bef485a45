"""The bulk path: ``send_batch``, many records in one call, one batch per partition.

The records are validated and serialized as columns, grouped by partition (the
default partitioner's keys through the bulk key caches, one byte per record), and
each partition's share is appended as one batch, holding that partition's queue
lock (after a lingering batch of ``send()`` records, appended first). The metadata
of the records is built only when asked (``BatchMetadata``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from itertools import compress
from operator import itemgetter
from typing import Any

from ..broker.partition import (
    check_bytes_column,
    normalise_headers,
    split_columns,
    timestamp_problem,
)
from ..errors import InvalidRecordError
from ..partitioning import (
    Partitioner,
    checked_partition,
    partition_bytes_for_keys,
    partitions_for_keys,
)
from ..records import RecordMetadata
from .accumulator import State
from .checks import closed_error, explicit_partition

__all__ = ["BatchMetadata", "BulkSender"]

group_mask_partitions_max = 8  # send_batch: a mask per partition up to this many,
group_scan_partitions_max = 16  # then a sort up to this many, else a dict


class BulkSender:
    """A producer's ``send_batch``: its state, serializers and partitioner."""

    def __init__(self, state: State, key_ser: Any, value_ser: Any, partitioner: Partitioner,
                 keyed_default: bool) -> None:
        self.state = state
        self.key_ser = key_ser
        self.value_ser = value_ser
        self.partitioner = partitioner
        self.keyed_default = keyed_default  # the default partitioner, hashing keys

    def send(self, topic: str, records: Any, partition: int | None,
             timestamp_ms: int | None) -> BatchMetadata:
        """``Producer.send_batch``: see there."""
        state = self.state
        if state.closed:
            raise closed_error()
        if not isinstance(records, list):
            records = list(records)
        if not records:
            return BatchMetadata(topic, 0, [], [], [], [])
        keys, values, headers, keyless = self.columns(records)
        log = state.log
        t = log.topic_for_produce(topic)
        groups = self.group(t, keys, values, partition, keyless)
        if timestamp_ms is None:
            timestamp_ms = log.clock.time_ms()
        elif timestamp_problem(timestamp_ms) is not None:
            raise InvalidRecordError(timestamp_problem(timestamp_ms))
        timestamps = [timestamp_ms] * len(keys)
        out_groups: list[tuple[int, int, Sequence[int]]] = []
        acks0 = state.config.acks == 0
        for index, indices in groups:
            k, v, h, ts = select(indices, keys, values, headers, timestamps)
            q = state.queue(t.partitions[index])
            with q.batch_lock:  # a lingering batch of send() records goes first
                taken = [state.take_batch(q)] if q.keys else []
                if not taken:
                    q.lock.acquire()
            try:
                state.append_ready_locked(q)  # batches send() took earlier go first
                for batch in taken:
                    state.append_batch(q, batch)
                result = state.append_sent_columns(q, k, v, h, ts)
            finally:
                q.lock.release()
            out_groups.append((index, -1 if acks0 else result.base_offset, indices))
        n = len(keys)
        return BatchMetadata(topic, n, out_groups, _Repeat(timestamp_ms, n), keys, values)

    def columns(self, records: list[Sequence[Any]]
                       ) -> tuple[list, list, list | None, bool]:
        """Validated, serialized columns, and whether any key is None."""
        try:
            lengths = list(map(len, records))  # C-level; a count beats building a set
        except TypeError:
            lengths = [-1]
        width = lengths[0]
        if width not in (2, 3) or lengths.count(width) != len(records):
            shapes = sorted({len(r) if hasattr(r, "__len__") else "no length" for r in records},
                            key=str)
            raise InvalidRecordError(
                "send_batch takes (key, value) or (key, value, headers) tuples, all of one "
                f"shape; got lengths {shapes}"
            )
        columns = split_columns(records, width)
        keys = columns[0] if self.key_ser is None else list(map(self.key_ser, columns[0]))
        values = columns[1] if self.value_ser is None else list(map(self.value_ser, columns[1]))
        key_types = check_bytes_column(keys, "key")
        check_bytes_column(values, "value")
        headers = normalise_headers(columns[2]) if len(columns) > 2 else None
        return keys, values, headers, type(None) in key_types


    def group(self, t: Any, keys: list, values: list, partition: int | None, keyless: bool
               ) -> list[tuple[int, Sequence[int]]]:
        """(partition, record indices) for each partition the records go to, in order."""
        n = t.num_partitions
        count = len(keys)
        if partition is not None:
            return [(explicit_partition(t.name, n, partition), range(count))]
        if n == 1:
            return [(0, range(count))]
        name = t.name
        if self.keyed_default and not keyless and n <= group_mask_partitions_max:
            # murmur2 through the cache, in bulk: one byte per record, its partition
            return groups_from_lanes(partition_bytes_for_keys(keys, n), n, count)
        if self.keyed_default and not keyless:
            chosen = partitions_for_keys(keys, n)
        else:
            chosen = list(map(self.partitioner.partition, itertools.repeat(name, count), keys,
                              values, itertools.repeat(n, count)))
            if not set(map(type, chosen)) <= {int} or min(chosen) < 0 or max(chosen) >= n:
                bad = next(c for c in chosen if type(c) is not int or not 0 <= c < n)
                checked_partition(bad, name, n)
        if n <= group_mask_partitions_max:
            return groups_from_lanes(bytes(chosen), n, count)
        if n <= group_scan_partitions_max:
            # A stable sort of the indices by partition, cut at each partition's count:
            # two C-level passes, about three times faster than a scan per partition.
            order = sorted(range(count), key=chosen.__getitem__)
            groups = []
            start = 0
            for p in range(n):
                size = chosen.count(p) if p < n - 1 else count - start  # the last: the rest
                if size:
                    groups.append((p, order[start : start + size]))
                    start += size
            return groups
        buckets: dict[int, list[int]] = {}
        for i, c in enumerate(chosen):
            b = buckets.get(c)
            if b is None:
                buckets[c] = [i]
            else:
                b.append(i)
        return sorted(buckets.items())


def groups_from_lanes(lanes: bytes, n: int, count: int
                       ) -> list[tuple[int, Sequence[int]]]:
    """Groups from one byte per record, its partition: per partition a 0/1 mask
    (one C-level translate), which compress() then applies to each column."""
    groups: list[tuple[int, Sequence[int]]] = []
    for p in range(n):
        size = lanes.count(p)
        if size == count:
            return [(p, range(count))]
        if size:
            groups.append((p, _Selection(lanes.translate(_MASK_TABLES[p]), size)))
    return groups


def select(indices: Sequence[int], keys: list, values: list, headers: list | None,
            timestamps: list[int]) -> tuple[list, list, list | None, list[int]]:
    """The columns of the records at ``indices`` (the columns themselves for all)."""
    if isinstance(indices, range) and len(indices) == len(keys):
        return keys, values, headers, timestamps
    if isinstance(indices, _Selection):
        pick = indices.pick
        return (pick(keys), pick(values), None if headers is None else pick(headers),
                timestamps[: len(indices)])
    if len(indices) == 1:
        i = indices[0]
        return [keys[i]], [values[i]], None if headers is None else [headers[i]], [
            timestamps[i]]
    pick = itemgetter(*indices)  # one C call per column
    return (
        list(pick(keys)),
        list(pick(values)),
        None if headers is None else list(pick(headers)),
        timestamps[: len(indices)],
    )


class BatchMetadata(Sequence[RecordMetadata]):
    """What ``send_batch`` returns: the RecordMetadata of each record, in input order.

    Built lazily from one (partition, base offset, record indices) group per
    partition, so a bulk load does not pay for a metadata object per record
    unless it asks for them.
    """

    __slots__ = ("_groups", "_items", "_keys", "_n", "_timestamps", "_topic", "_values")

    def __init__(
        self,
        topic: str,
        n: int,
        groups: list[tuple[int, int, Sequence[int]]],
        timestamps: Sequence[int],
        keys: Sequence[bytes | None],
        values: Sequence[bytes | None],
    ) -> None:
        self._topic = topic
        self._n = n
        self._groups = groups
        self._timestamps = timestamps
        self._keys = keys  # the serialized keys and values: sizes are computed on demand
        self._values = values
        self._items: list[RecordMetadata] | None = None

    def __len__(self) -> int:
        return self._n

    def _build(self) -> list[RecordMetadata]:
        items: list[Any] = [None] * self._n
        keys, values = self._keys, self._values
        for partition, base, indices in self._groups:
            for rank, i in enumerate(indices):
                key, value = keys[i], values[i]
                items[i] = RecordMetadata(
                    self._topic, partition, base + rank if base >= 0 else -1,
                    self._timestamps[i], -1 if key is None else len(key),
                    -1 if value is None else len(value),
                )
        return items

    def __getitem__(self, i: Any) -> Any:
        if self._items is None:
            self._items = self._build()
        return self._items[i]

    @property
    def partitions(self) -> dict[int, tuple[int, int]]:
        """{partition: (first offset, record count)} for each partition written."""
        return {p: (base, len(indices)) for p, base, indices in self._groups}


_MASK_TABLES = tuple(
    bytes(int(b == p) for b in range(256)) for p in range(group_mask_partitions_max)
)  # bytes.translate tables: partition p's byte to 1, every other to 0


class _Selection(Sequence[int]):
    """The indices of the records of a send_batch that go to one partition, kept as
    a mask (one byte per record, 1 for those) until someone asks for the indices."""

    __slots__ = ("_indices", "mask", "size")

    def __init__(self, mask: bytes, size: int) -> None:
        self.mask = mask
        self.size = size
        self._indices: list[int] | None = None

    def pick(self, column: Sequence[Any]) -> list[Any]:
        """The items of ``column`` at these indices, in order (C-level)."""
        return list(compress(column, self.mask))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: Any) -> Any:
        if self._indices is None:
            self._indices = self.pick(range(len(self.mask)))
        return self._indices[i]


class _Repeat(Sequence[int]):
    """A sequence of one value, n times (the batch timestamp), without a list."""

    __slots__ = ("_n", "_value")

    def __init__(self, value: int, n: int) -> None:
        self._value = value
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._value] * len(range(*i.indices(self._n)))
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._value
