"""Partitioning: which partition of a topic a record goes to (murmur2, key caches, partitioners).

Re-exports the names other modules import from ``eventlog.partitioning``.
"""

from .caches import (
    cached_key_hash,
    hash_and_cache_key,
    partition_bytes_for_keys,
    partition_for_key,
    partitions_for_keys,
)
from .hashing import murmur2, positive_murmur2_many, to_positive
from .partitioners import (
    DefaultPartitioner,
    Partitioner,
    PartitionerFunction,
    RoundRobinPartitioner,
    checked_partition,
    resolve_partitioner,
)

__all__ = [
    "DefaultPartitioner",
    "Partitioner",
    "PartitionerFunction",
    "RoundRobinPartitioner",
    "cached_key_hash",
    "checked_partition",
    "hash_and_cache_key",
    "murmur2",
    "partition_bytes_for_keys",
    "partition_for_key",
    "partitions_for_keys",
    "positive_murmur2_many",
    "resolve_partitioner",
    "to_positive",
]
