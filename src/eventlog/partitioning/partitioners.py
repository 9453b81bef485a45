"""Partitioners: which partition of a topic a record is appended to.

The producer asks its partitioner once per record that has no explicit
partition, passing the topic, the *serialized* key and value bytes, and the
topic's partition count (all partitions: in one process every partition is
always available). An explicit ``partition=`` on the record wins over any
partitioner (KafkaProducer.partition).

Keyed records (KAFKA_SEMANTICS 1)
---------------------------------
``partition = to_positive(murmur2(key)) % num_partitions``, bit for bit as the
Java client computes it (BuiltInPartitioner.partitionForKey, Utils.murmur2), so
a key lands on the partition a Java producer would pick for the same topic
size. Details that matter:

* murmur2 is MurmurHash2, 32-bit, seed ``0x9747b28c``, multiplier
  ``0x5bd1e995``; 4-byte blocks are read little-endian; the 1 to 3 trailing
  bytes are mixed in as one little-endian integer; the result is a Java
  (signed 32-bit) ``int``.
* ``to_positive`` masks the sign bit (``n & 0x7fffffff``). It is not ``abs()``:
  for the half of all keys whose hash is negative, ``abs()`` gives another
  number, and usually another partition.
* An empty key ``b""`` is hashed like any other key; a ``None`` key never is.
* A ``str`` key must be UTF-8 encoded first, as Java's StringSerializer does;
  that is the serializer's job, and :func:`murmur2` rejects a ``str``.

Cost of the hash. Pure Python spends about 1.2 us on a 16-byte key (about 0.2
us per 4-byte block plus 0.4 us fixed; CPython 3.11 on a slow 2-core VM), which
alone would cap a producer near 0.8M keyed records/s. Keys repeat in real
workloads (users, orders, devices), so :func:`partition_for_key` keeps a
bounded cache of ``to_positive(murmur2(key))`` per ``bytes`` key: a hit costs
about 0.07 us. Misses that come many at once (``send_batch``'s first sight of
its keys) are hashed together, each key a 64-bit lane of one big integer
(:func:`positive_murmur2_many`): about 0.2 us a key. :func:`murmur2` itself is
never cached; it is the plain Java function.

Keyless records (KAFKA_SEMANTICS 2.3 and 2.5)
---------------------------------------------
:class:`DefaultPartitioner` implements KIP-794's "strictly uniform sticky"
choice as it reduces in one process, where every partition is available and
no partition's queue is longer than another's: per topic, keyless records go
to one randomly chosen partition until at least ``batch_size`` bytes have been
sent to it; the record that reaches the threshold still goes there, and the
next keyless record triggers a new uniform draw,
``to_positive(random 32 bits) % num_partitions``, which may pick the same
partition again. Records sent to a partition are counted by the bytes of
their serialized key and value, at least 1 byte per record (Kafka counts the
estimated record size in its batch, including per-record overhead; without
the 1-byte floor a stream of empty records would never switch). Keyed records
neither use nor advance the sticky state, as in Kafka, where only records
placed by the built-in partitioner update it.

Differences from Kafka (deliberate)
-----------------------------------
* Kafka suppresses a switch while the sticky partition's newest batch is not
  yet full and forces it at ``2 * batch.size``; there are no network batches
  here, so the switch happens at ``batch_size`` bytes exactly.
* Adaptive partitioning (weighting by queue length) and
  ``partitioner.availability.timeout.ms`` have nothing to measure in one
  process and are absent.
* :class:`RoundRobinPartitioner` calls ``partition()`` once per record, so it
  does not skip partitions the way Kafka's does when a new batch is created
  (KAFKA-9965).
* A partitioner that returns a partition outside the topic fails at once
  (:func:`checked_partition`); Java blocks for ``max.block.ms`` first.

State. :func:`murmur2` is a pure function. The key-hash cache is shared by
the whole process, bounded and lock-free. The sticky and round-robin
partitioners keep a little per-topic state behind one lock each, because a
producer is shared by threads; the keyed path takes no lock.
"""

from __future__ import annotations

import random
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import filterfalse
from typing import Protocol, runtime_checkable

from ..errors import InvalidConfigError, UnknownPartitionError

__all__ = [
    "DefaultPartitioner",
    "Partitioner",
    "PartitionerFunction",
    "RoundRobinPartitioner",
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

batch_size_default = 16384  # Kafka's batch.size default (ProducerConfig.java)

_SEED = 0x9747B28C
_M = 0x5BD1E995
_U32 = 0xFFFFFFFF
_SIGN_BIT = 0x80000000
_POSITIVE_MASK = 0x7FFFFFFF

# Precompiled little-endian unpackers for keys up to 256 bytes: choosing one
# by block count is cheaper than formatting "<{n}I" per call. Longer keys
# format the string (struct caches the compiled format itself).
_unpack_blocks_max = 64
_UNPACK_BLOCKS = tuple(struct.Struct(f"<{n}I").unpack_from for n in range(_unpack_blocks_max + 1))

# Bounds of the key-hash cache. 65536 keys cover the hot set of most
# workloads; keys over 256 bytes are not cached, so the cache pins at most
# about 24 MiB (65536 x (256 + 33 bytes of key + about 80 bytes of dict entry
# and int)), and about 9 MiB with 16-byte keys. Longer keys are rare, and
# their misses already cost over 16 us of hashing each.
key_hash_cache_entries_max = 65536
bulk_hash_keys_min = 3  # keys of one length from which hashing them together is faster
strided_lanes_keys_min = 64  # ... and from which their lanes are filled by strided copies
_LANE_ONE = (1).to_bytes(8, "little")
key_hash_cache_key_bytes_max = 256


def murmur2(data: bytes) -> int:
    """Return Kafka's murmur2 hash of ``data``: Java's ``Utils.murmur2``, bit for bit.

    ``data`` is ``bytes``, ``bytearray`` or a byte ``memoryview``. The result
    is a signed 32-bit int (-2**31 .. 2**31 - 1), as in Java. Pure; thread-safe. Cost:
    O(len(data)), about 0.2 us per 4 bytes plus 0.4 us fixed; never cached.

    Raises:
        TypeError: ``data`` is not bytes-like (a ``str`` must be encoded first).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"murmur2 hashes bytes, not {type(data).__name__}; encode a str key as UTF-8 first"
        )
    length = len(data)
    h = _SEED ^ length
    block_count = length >> 2
    if block_count:
        if block_count <= _unpack_blocks_max:
            blocks = _UNPACK_BLOCKS[block_count](data)
        else:
            blocks = struct.unpack_from(f"<{block_count}I", data)
        for k in blocks:
            k = (k * _M) & _U32
            # h = h*m ^ (k ^ k>>>24)*m: one mask covers both products, since the
            # low 32 bits of a product or xor depend only on the low 32 bits in.
            h = ((h * _M) ^ ((k ^ (k >> 24)) * _M)) & _U32
    tail_bytes = length & 3
    if tail_bytes:
        # Java's fall-through switch xors b[2]<<16, b[1]<<8 and b[0]: the tail
        # read as one little-endian integer.
        tail = int.from_bytes(data[length - tail_bytes :], "little")
        h = ((h ^ tail) * _M) & _U32
    h ^= h >> 13
    h = (h * _M) & _U32
    h ^= h >> 15
    return h - ((h & _SIGN_BIT) << 1)


def to_positive(number: int) -> int:
    """Return ``number`` with its 32-bit sign bit cleared (Java ``Utils.toPositive``).

    Not ``abs()``: ``to_positive(-1) == 2**31 - 1``. Pure; O(1).
    """
    return number & _POSITIVE_MASK


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


def positive_murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """``to_positive(murmur2(key))`` for each key, in order: bit for bit the scalar one.

    Keys of one length are hashed together (:func:`_positive_murmur2_lanes`),
    about 0.2 us a key from a few hundred keys on, against 1.4 us one at a time;
    fewer than ``bulk_hash_keys_min`` of a length are hashed one by one. Pure.
    """
    lengths = list(map(len, keys))
    if len(keys) >= bulk_hash_keys_min and lengths.count(lengths[0]) == len(keys):
        return _positive_murmur2_lanes(keys, lengths[0])  # one length: the common case
    by_length: dict[int, list[int]] = {}
    for i, length in enumerate(lengths):
        by_length.setdefault(length, []).append(i)
    out = [0] * len(keys)
    for length, indices in by_length.items():
        group = [keys[i] for i in indices]
        if len(group) >= bulk_hash_keys_min:
            hashes = _positive_murmur2_lanes(group, length)
        else:
            hashes = [murmur2(key) & _POSITIVE_MASK for key in group]
        for i, h in zip(indices, hashes):
            out[i] = h
    return out


def _positive_murmur2_lanes(keys: Sequence[bytes], length: int) -> list[int]:
    """``to_positive(murmur2(key))`` of keys that are all ``length`` bytes long.

    SIMD within one Python int: key i's 32-bit state lives in bits [64i, 64i + 32)
    of a big integer, so every step of murmur2 is one C-level bigint operation
    over all keys; each 4-byte block enters its lanes through strided bytearray
    copies, so no Python int is made per key until the results. A product of a
    32-bit lane and the 31-bit multiplier fits in its 64-bit lane, and masking
    with 0xffffffff in every lane after each product (and after each right
    shift, which pulls the lane above into bits 32-63) keeps the lanes apart.
    Same steps as :func:`murmur2`.
    """
    m = len(keys)
    ones = int.from_bytes(_LANE_ONE * m, "little")  # 1 in every lane
    mask = _U32 * ones
    h = (_SEED ^ length) * ones
    for block in _lanes(keys, length, m):
        k = (block * _M) & mask
        h = ((h * _M) ^ (((k ^ (k >> 24)) & mask) * _M)) & mask
    tail_bytes = length & 3
    if tail_bytes:
        tails = [int.from_bytes(k[length - tail_bytes :], "little") for k in keys]
        h = ((h ^ int.from_bytes(struct.pack(f"<{m}Q", *tails), "little")) * _M) & mask
    h ^= (h >> 13) & mask
    h = (h * _M) & mask
    h ^= (h >> 15) & mask
    h &= _POSITIVE_MASK * ones
    return list(struct.unpack(f"<{m}Q", h.to_bytes(8 * m, "little")))


def _lanes(keys: Sequence[bytes], length: int, m: int) -> Iterator[int]:
    """For each 4-byte block of the keys, one int holding block i of key i in its
    lane (bits [64i, 64i + 32)). From ``strided_lanes_keys_min`` keys on, strided
    bytearray copies move each key's bytes into place in C (no Python int per key);
    for fewer, unpacking the words and packing them into lanes costs less."""
    block_count = length >> 2
    if not block_count:
        return
    body = b"".join([k[: block_count * 4] for k in keys] if length & 3 else keys)
    if m < strided_lanes_keys_min:
        lanes = struct.Struct(f"<{m}Q")
        words = struct.unpack(f"<{m * block_count}I", body)
        for j in range(block_count):
            yield int.from_bytes(lanes.pack(*words[j::block_count]), "little")
        return
    stride = block_count * 4  # bytes of each key in ``body``
    lane_bytes = bytearray(8 * m)
    for j in range(block_count):
        for b in range(4):
            lane_bytes[b::8] = body[4 * j + b :: stride]
        yield int.from_bytes(lane_bytes, "little")


def _bad_partition_count(num_partitions: object) -> InvalidConfigError:
    return InvalidConfigError(f"num_partitions must be an int >= 1, got {num_partitions!r}")


@runtime_checkable
class Partitioner(Protocol):
    """Chooses the partition of a record that has no explicit partition.

    ``key`` and ``value`` are the serialized bytes (or ``None``);
    ``num_partitions`` is the topic's partition count (at least 1). The result
    must be an int in ``0 .. num_partitions - 1``; the producer checks it with
    :func:`checked_partition`. Called from any thread that sends, so an
    implementation with state must be thread-safe. ``eventlog.testing.
    partitioners.check_partitioner`` checks an implementation.
    """

    def partition(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        """Return the partition, in ``0 .. num_partitions - 1``, for this record."""
        ...


PartitionerFunction = Callable[[str, bytes | None, bytes | None, int], int]
"""A plain function ``f(topic, key, value, num_partitions) -> int`` usable as a partitioner."""


class _StickyChoice:
    """The current sticky partition of one topic and the bytes sent to it so far."""

    __slots__ = ("partition", "sent_bytes")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.sent_bytes = 0


class DefaultPartitioner:
    """Kafka's default partitioner: murmur2 for keyed records, uniform sticky for the rest.

    ``batch_size`` is the bytes (serialized key plus value, at least 1 per
    record) that keyless records send to one partition before a new one is
    drawn: Kafka's ``batch.size``, default 16384; 0 means 1, as in Kafka
    (a new draw for every record). ``ignore_keys=True`` treats keyed records
    as keyless (``partitioner.ignore.keys``). ``rng`` supplies the random
    draws; pass a seeded ``random.Random`` for repeatable tests.

    Thread-safe. Keyed records take no lock (see :func:`partition_for_key`
    for the cost); keyless records take one lock for about 0.3 us.

    Raises:
        InvalidConfigError: ``batch_size`` is not an int >= 0.
    """

    def __init__(
        self,
        *,
        batch_size: int = batch_size_default,
        ignore_keys: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
            raise InvalidConfigError(f"batch_size must be an int >= 0, got {batch_size!r}")
        self._batch_size = max(1, batch_size)  # KafkaProducer uses max(1, batch.size)
        self._ignore_keys = bool(ignore_keys)
        self._rng = random.Random() if rng is None else rng
        self._lock = threading.Lock()
        self._sticky_by_topic: dict[str, _StickyChoice] = {}

    @property
    def batch_size(self) -> int:
        """Bytes sent to a sticky partition before the next draw (at least 1)."""
        return self._batch_size

    @property
    def ignore_keys(self) -> bool:
        """True if keyed records are spread like keyless ones."""
        return self._ignore_keys

    def partition(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        """Return the partition for one record (class docstring). Thread-safe.

        Cost: a keyed record, as :func:`partition_for_key`; a keyless one, O(1)
        under the lock.

        Raises:
            InvalidConfigError: ``num_partitions`` is less than 1; nothing changed.
            TypeError: ``key`` is not bytes-like.
        """
        if num_partitions < 1:
            raise _bad_partition_count(num_partitions)
        if key is not None and not self._ignore_keys:
            # partition_for_key's body, inlined: this runs once per keyed record.
            try:
                positive_hash = _cached_key_hash(key)
            except TypeError:  # unhashable bytearray or memoryview
                positive_hash = None
            if positive_hash is None:
                positive_hash = _key_hash_cache.insert(key)
            return positive_hash % num_partitions
        record_bytes = (len(key) if key is not None else 0) + (
            len(value) if value is not None else 0
        )
        with self._lock:
            choice = self._sticky_by_topic.get(topic)
            if choice is None or choice.partition >= num_partitions:  # new, or topic shrank
                choice = _StickyChoice(self._draw(num_partitions))
                self._sticky_by_topic[topic] = choice
            choice.sent_bytes += record_bytes or 1  # at least 1 byte: see the module docstring
            if choice.sent_bytes >= self._batch_size:
                del self._sticky_by_topic[topic]  # the next keyless record draws again
            return choice.partition

    def _draw(self, num_partitions: int) -> int:
        # Kafka: Utils.toPositive(ThreadLocalRandom.current().nextInt()) % size.
        return (self._rng.getrandbits(32) & _POSITIVE_MASK) % num_partitions

    def sticky_partitions(self) -> dict[str, int]:
        """Return ``{topic: current sticky partition}`` for topics that have one.

        A topic is absent before its first keyless record and right after a
        switch (the draw happens on the next keyless record). O(topics).
        Thread-safe.
        """
        with self._lock:
            return {topic: choice.partition for topic, choice in self._sticky_by_topic.items()}

    def check(self) -> None:
        """Assert the sticky state's invariants. O(topics). Thread-safe."""
        with self._lock:
            assert self._batch_size >= 1, self._batch_size
            for topic, choice in self._sticky_by_topic.items():
                assert choice.partition >= 0, (topic, choice.partition)
                assert 0 < choice.sent_bytes < self._batch_size, (topic, choice.sent_bytes)

    def __repr__(self) -> str:
        return f"DefaultPartitioner(batch_size={self._batch_size}, ignore_keys={self._ignore_keys})"


class RoundRobinPartitioner:
    """Kafka's RoundRobinPartitioner: ignores keys and deals partitions in turn.

    Each topic has its own counter, starting at 0; record number ``i`` (from
    0) of a topic goes to partition ``i % num_partitions``, so records go
    0, 1, 2, 0, 1, 2, ... on a 3-partition topic. Kafka calls ``partition()``
    a second time when a record starts a new batch and so skips partitions
    (KAFKA-9965); here every record counts once, so the spread is exact.

    Thread-safe: the counters are behind one lock (about 0.3 us a call).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_by_topic: dict[str, int] = {}

    def partition(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        """Return the topic's next partition in turn. O(1). Thread-safe.

        Raises:
            InvalidConfigError: ``num_partitions`` is less than 1; the counter
                is unchanged.
        """
        if num_partitions < 1:
            raise _bad_partition_count(num_partitions)
        with self._lock:
            count = self._next_by_topic.get(topic, 0)
            self._next_by_topic[topic] = count + 1
        return count % num_partitions

    def counts(self) -> dict[str, int]:
        """Return ``{topic: records partitioned so far}``. O(topics). Thread-safe."""
        with self._lock:
            return dict(self._next_by_topic)

    def check(self) -> None:
        """Assert the counters' invariants. O(topics). Thread-safe."""
        with self._lock:
            for topic, count in self._next_by_topic.items():
                assert count >= 1, (topic, count)

    def __repr__(self) -> str:
        return "RoundRobinPartitioner()"


class _FunctionPartitioner:
    """Adapts a plain ``f(topic, key, value, num_partitions)`` to :class:`Partitioner`."""

    __slots__ = ("function",)

    def __init__(self, function: PartitionerFunction) -> None:
        self.function = function

    def partition(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        return self.function(topic, key, value, num_partitions)

    def __repr__(self) -> str:
        return f"FunctionPartitioner({self.function!r})"


_BUILT_IN_NAMES = {
    "default": DefaultPartitioner,
    "murmur2": DefaultPartitioner,
    "round_robin": RoundRobinPartitioner,
    "roundrobin": RoundRobinPartitioner,
}

_ACCEPTED = (
    "None, one of the names " + ", ".join(repr(name) for name in _BUILT_IN_NAMES) + ", an object "
    "with a partition(topic, key, value, num_partitions) method, or a function with that signature"
)


def resolve_partitioner(
    partitioner: object,
    *,
    batch_size: int = batch_size_default,
    ignore_keys: bool = False,
) -> Partitioner:
    """Turn the producer's ``partitioner=`` argument into a :class:`Partitioner`.

    ``None``, ``"default"`` or ``"murmur2"``: a new :class:`DefaultPartitioner`
    built with ``batch_size`` and ``ignore_keys`` (the producer passes its
    ``batch_size`` and ``partitioner_ignore_keys``). ``"round_robin"`` or
    ``"roundrobin"``: a new :class:`RoundRobinPartitioner`. Names are
    case-insensitive. An object with a callable ``partition`` attribute is
    returned as it is; a plain function ``f(topic, key, value,
    num_partitions)`` is wrapped. As in Kafka, ``ignore_keys`` does not
    affect a partitioner you supply. O(1).

    Raises:
        InvalidConfigError: anything else (a class instead of an instance, an
            unknown name, a non-callable), naming what is accepted; or a bad
            ``batch_size``.
    """
    if partitioner is None:
        return DefaultPartitioner(batch_size=batch_size, ignore_keys=ignore_keys)
    if isinstance(partitioner, str):
        return _partitioner_named(partitioner, batch_size, ignore_keys)
    if isinstance(partitioner, type):
        raise InvalidConfigError(
            f"partitioner must be an instance, not the class {partitioner.__name__}; "
            f"pass {partitioner.__name__}() instead"
        )
    is_bytes = isinstance(partitioner, (bytes, bytearray))  # they have a partition() method
    if not is_bytes and callable(getattr(partitioner, "partition", None)):
        return partitioner  # type: ignore[return-value]  # duck-typed Partitioner
    if callable(partitioner):
        return _FunctionPartitioner(partitioner)
    raise InvalidConfigError(
        f"partitioner must be {_ACCEPTED}; got {type(partitioner).__name__} {partitioner!r}"
    )


def _partitioner_named(name: str, batch_size: int, ignore_keys: bool) -> Partitioner:
    built_in = _BUILT_IN_NAMES.get(name.lower())
    if built_in is None:
        raise InvalidConfigError(f"unknown partitioner name {name!r}; expected {_ACCEPTED}")
    if built_in is DefaultPartitioner:
        return DefaultPartitioner(batch_size=batch_size, ignore_keys=ignore_keys)
    return built_in()


def checked_partition(result: object, topic: str, num_partitions: int) -> int:
    """Return ``result``, a partitioner's answer, after checking it names a partition.

    Pure. O(1).

    Raises:
        TypeError: ``result`` is not an int (a ``bool`` is not accepted), naming its type.
        UnknownPartitionError: ``result`` is negative, or not less than
            ``num_partitions``; the message names the topic and its partition count.
    """
    if type(result) is int and 0 <= result < num_partitions:
        return result
    if isinstance(result, bool) or not isinstance(result, int):
        raise TypeError(
            f"partitioner returned {type(result).__name__} {result!r} for topic {topic!r}; "
            f"expected an int partition in {_partition_range(num_partitions)}"
        )
    if result < 0:
        raise UnknownPartitionError(
            f"partitioner returned negative partition {result} for topic {topic!r}; "
            f"it has {_partition_count(num_partitions)} ({_partition_range(num_partitions)})"
        )
    if result >= num_partitions:
        raise UnknownPartitionError(
            f"partitioner returned partition {result} for topic {topic!r}, which has "
            f"{_partition_count(num_partitions)} ({_partition_range(num_partitions)})"
        )
    return int(result)  # an int subclass (an IntEnum, say): hand on a plain int


def _partition_count(num_partitions: int) -> str:
    return f"{num_partitions} partition" + ("" if num_partitions == 1 else "s")


def _partition_range(num_partitions: int) -> str:
    return f"0..{num_partitions - 1}"
