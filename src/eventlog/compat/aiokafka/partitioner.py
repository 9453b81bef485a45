"""aiokafka.partitioner: ``DefaultPartitioner``, Java's murmur2 for keyed records and a
random available partition for the others, as aiokafka's."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ...partitioning import murmur2

__all__ = ["DefaultPartitioner", "murmur2"]


class DefaultPartitioner:
    """``partitioner(key_bytes, all_partitions, available_partitions)`` -> a partition."""

    def __call__(self, key: bytes | None, all_partitions: Sequence[int],
                 available: Sequence[int]) -> int:
        if key is None:
            return random.choice(list(available or all_partitions))
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
