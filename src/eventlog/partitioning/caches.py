"""The key caches: bounded maps from a key to its hash or partition, shared by the process.

Keys repeat in real workloads (users, orders, devices), and hashing a 16-byte key
costs about 1.2 us in pure Python, which alone would cap a producer near 0.8M keyed
records/s. So the partition of a ``bytes`` key is looked up before it is computed:

* the key-hash cache maps a key to ``to_positive(murmur2(key))``: a hit costs about
  0.07 us (:func:`partition_for_key`, and the producer's inlined
  :data:`cached_key_hash`);
* the partition maps (one per partition count, for ``send_batch``) map a key to
  its partition, so a batch of known keys is one C-level pass with no modulo.

Misses that come many at once (``send_batch``'s first sight of its keys) are hashed
together (``hashing.positive_murmur2_many``).

Memory bound. Each map holds at most ``key_hash_cache_entries_max`` (65,536) keys of
at most ``key_hash_cache_key_bytes_max`` (256) bytes; longer keys, ``bytearray`` and
``memoryview`` are never kept. A map that would grow past its bound is cleared
(cheaper than LRU bookkeeping on every hit; the hot keys come back within a few
records). At most ``_partition_maps_max`` (4) partition maps exist at once.
Measured with tracemalloc (CPython 3.11, 64-bit, 65,536 entries): the key-hash
cache's dict and ints take 4.4 MiB and a partition map's dict 2.5 MiB, plus the
keys themselves, 3 MiB of 16-byte or 18 MiB of 256-byte keys, counted once when
the maps and the application share the key objects. So everything here pins at
most 4.4 + 4 x 2.5 + 5 x 18 = about 105 MiB (keys of 256 bytes, none shared), and
about 30 MiB with 16-byte keys.

Thread safety. Lock-free: a dict read is atomic and no dict is ever replaced; a
miss inserts, then clears the whole map if that took it past the bound, so threads
racing may briefly add one entry each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import filterfalse

from ..errors import InvalidConfigError
from .hashing import _POSITIVE_MASK, murmur2, positive_murmur2_many

__all__ = [
    "cached_key_hash",
    "hash_and_cache_key",
    "partition_bytes_for_keys",
    "partition_for_key",
    "partitions_for_keys",
]

# Bounds of every map here (the module docstring gives the memory they mean). 65536
# keys cover the hot set of most workloads; longer keys than 256 bytes are rare, and
# their misses already cost over 16 us of hashing each.
key_hash_cache_entries_max = 65536
key_hash_cache_key_bytes_max = 256


class _KeyHashCache:
    """A bounded map from bytes key to ``to_positive(murmur2(key))``.

    Lock-free: the hit path reads :attr:`hashes` directly (a dict read is
    atomic, and the dict object is never replaced), and a miss inserts, then
    clears the whole map if that took it past ``key_hash_cache_entries_max``.
    Clearing is cheaper than LRU bookkeeping on every hit, and the hot keys
    come back within a few records. Because each insert is followed by its
    own size check, the bound holds whenever no insert is in flight (threads
    racing may briefly add one entry each). Only ``bytes`` keys of at most
    ``key_hash_cache_key_bytes_max`` bytes are cached: ``bytearray`` and
    ``memoryview`` are mutable or unhashable.
    """

    __slots__ = ("hashes",)

    def __init__(self) -> None:
        self.hashes: dict[bytes, int] = {}

    def insert(self, key: bytes) -> int:
        """Hash ``key``, remember the hash if ``key`` is cacheable, and return it.

        Cost: one :func:`murmur2`, plus O(entries) when it clears the map.
        Thread-safe.
        """
        positive_hash = murmur2(key) & _POSITIVE_MASK
        if type(key) is bytes and len(key) <= key_hash_cache_key_bytes_max:
            hashes = self.hashes
            hashes[key] = positive_hash
            if len(hashes) > key_hash_cache_entries_max:
                hashes.clear()
        return positive_hash

    def insert_many(self, keys: Sequence[bytes], positive_hashes: Sequence[int]) -> bool:
        """Remember the hashes of ``keys`` (computed by the caller), as ``insert`` does
        for each. Returns True if all of them are cached now. Thread-safe."""
        if _cacheable(keys):  # the common case
            return _store_bounded(self.hashes, zip(keys, positive_hashes))
        limit = key_hash_cache_key_bytes_max
        _store_bounded(self.hashes, ((key, h) for key, h in zip(keys, positive_hashes)
                                     if type(key) is bytes and len(key) <= limit))
        return False

    def clear(self) -> None:
        """Forget every cached hash. O(entries). Thread-safe."""
        self.hashes.clear()

    def check(self) -> None:
        """Assert the bounds and that every cached hash is right. O(cached key bytes).

        Call it when no thread is hashing keys.
        """
        assert len(self.hashes) <= key_hash_cache_entries_max, len(self.hashes)
        for key, positive_hash in self.hashes.items():
            assert type(key) is bytes, type(key)
            assert len(key) <= key_hash_cache_key_bytes_max, len(key)
            assert positive_hash == murmur2(key) & _POSITIVE_MASK, key


_key_hash_cache = _KeyHashCache()
_cached_key_hash = _key_hash_cache.hashes.get  # the hit path, bound once
cached_key_hash = _cached_key_hash
"""``to_positive(murmur2(key))`` if ``key`` (bytes) is in the cache, else None.

For callers that inline the keyed path (the producer's ``send``); a miss goes
through :func:`hash_and_cache_key`. Lock-free.
"""

hash_and_cache_key = _key_hash_cache.insert
"""``to_positive(murmur2(key))`` of a bytes ``key``, remembered for the next time."""


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """Return ``to_positive(murmur2(key)) % num_partitions``: where Kafka puts ``key``.

    ``key`` is the serialized key (``b""`` is a valid key; ``None`` is not).
    Thread-safe; the result depends on the arguments only. Cost: about
    0.07 us when ``key`` is one of the recently seen ``bytes`` keys (bounded
    cache, see the module docstring), else one :func:`murmur2` plus 0.3 us.

    Raises:
        InvalidConfigError: ``num_partitions`` is less than 1.
        TypeError: ``key`` is not bytes-like.
    """
    if num_partitions < 1:
        raise _bad_partition_count(num_partitions)
    try:
        positive_hash = _cached_key_hash(key)
    except TypeError:  # unhashable: bytearray, memoryview; hashed uncached below
        positive_hash = None
    if positive_hash is None:
        positive_hash = _key_hash_cache.insert(key)
    return positive_hash % num_partitions


def partitions_for_keys(keys: Sequence[bytes], num_partitions: int) -> list[int]:
    """``partition_for_key`` for many keys at once (none of them None).

    The cache lookups run as one C-level ``map``; only the misses are hashed, in
    bulk (:func:`positive_murmur2_many`). Pure and thread-safe.
    """
    if num_partitions < 1:
        raise _bad_partition_count(num_partitions)
    try:
        hashes = _positive_hashes(keys)
    except TypeError:  # an unhashable key (bytearray, memoryview): one at a time
        return [partition_for_key(key, num_partitions) for key in keys]
    return [h % num_partitions for h in hashes]


def _positive_hashes(keys: Sequence[bytes]) -> list[int]:
    """``to_positive(murmur2(key))`` of each key, through the key-hash cache; the
    misses are hashed in bulk and cached. TypeError for an unhashable key.

    Every pass over ``keys`` is C-level: a lookup of all, a filter of the misses,
    and after caching those, the lookup again.
    """
    hashes = _key_hash_cache.hashes
    try:
        return list(map(hashes.__getitem__, keys))  # every key cached: the common case
    except KeyError:
        pass
    missed = list(filterfalse(hashes.__contains__, keys))
    if _key_hash_cache.insert_many(missed, positive_murmur2_many(missed)):
        try:
            return list(map(hashes.__getitem__, keys))
        except KeyError:  # another thread cleared the cache meanwhile
            pass
    return positive_murmur2_many(keys)  # keys too long to cache, or a full cache


_partition_maps: dict[int, dict[bytes, int]] = {}  # partition count -> {key: partition}
_partition_maps_max = 4  # partition counts remembered at once; each map holds at most
# key_hash_cache_entries_max keys of at most key_hash_cache_key_bytes_max bytes


def partition_bytes_for_keys(keys: Sequence[bytes], num_partitions: int) -> bytes:
    """``partitions_for_keys`` as bytes, one byte per key (``num_partitions`` <= 256).

    Keeps a bounded map from key to partition per partition count, so a batch of
    known keys is one C-level pass (``bytes(map(...))``), with no modulo per key;
    the keys it does not know are hashed in bulk. Pure and thread-safe (the maps
    are caches of a pure function).
    """
    assert 1 <= num_partitions <= 256
    known = _partition_maps.get(num_partitions)
    if known is None:
        if len(_partition_maps) >= _partition_maps_max:
            _partition_maps.clear()
        known = _partition_maps.setdefault(num_partitions, {})
    try:
        return bytes(map(known.__getitem__, keys))  # every key known: the common case
    except KeyError:
        pass
    except TypeError:  # an unhashable key
        return bytes(partitions_for_keys(keys, num_partitions))
    missed = list(filterfalse(known.__contains__, keys))
    # Hashed directly, not through the key-hash cache: this map is what the next
    # batch looks up, and a second cache insert per new key costs as much again.
    if _cacheable(missed) and _store_bounded(
        known, zip(missed, [h % num_partitions for h in positive_murmur2_many(missed)])
    ):
        try:
            return bytes(map(known.__getitem__, keys))
        except KeyError:  # another thread cleared the map meanwhile
            pass
    return bytes(partitions_for_keys(keys, num_partitions))


def _store_bounded(cache: dict[bytes, int], items: Iterable[tuple[bytes, int]]) -> bool:
    """Add ``items`` (key, value) to one of the bounded caches; clear the cache if that
    took it past ``key_hash_cache_entries_max``. True if the items are in it now."""
    cache.update(items)
    if len(cache) > key_hash_cache_entries_max:
        cache.clear()
        return False
    return True


def _cacheable(keys: Sequence[bytes]) -> bool:
    """True if the caches may keep ``keys``: bytes (immutable), none over the size cap."""
    return not keys or (
        set(map(type, keys)) == {bytes} and max(map(len, keys)) <= key_hash_cache_key_bytes_max
    )



def _bad_partition_count(num_partitions: object) -> InvalidConfigError:
    return InvalidConfigError(f"num_partitions must be an int >= 1, got {num_partitions!r}")


