"""Partitioners: which partition of a topic a record is appended to.

The producer asks its partitioner once per record that has no explicit
partition, passing the topic, the *serialized* key and value bytes, and the
topic's partition count (all partitions: in one process every partition is
always available). An explicit ``partition=`` on the record wins over any
partitioner (KafkaProducer.partition). Keyed records go where Kafka's Java
client puts them: ``(murmur2(key) & 0x7fffffff) % num_partitions``
(``partitioning.hashing``), looked up in a bounded cache first
(``partitioning.caches``).

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

State. The key caches are shared by the whole process, bounded and lock-free
(``partitioning.caches``). The sticky and round-robin
partitioners keep a little per-topic state behind one lock each, because a
producer is shared by threads; the keyed path takes no lock.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..errors import InvalidConfigError, UnknownPartitionError
from .caches import _bad_partition_count, _cached_key_hash, _key_hash_cache
from .hashing import _POSITIVE_MASK

__all__ = [
    "DefaultPartitioner",
    "Partitioner",
    "PartitionerFunction",
    "RoundRobinPartitioner",
    "checked_partition",
    "resolve_partitioner",
]

batch_size_default = 16384  # Kafka's batch.size default (ProducerConfig.java)


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
        """Return the partition for one record (class docstring).

        Cost: a keyed record, as :func:`partition_for_key` (about 0.07 us for a
            recently seen key); a keyless one, O(1) under the lock.
        Thread safety: any thread; keyed records take no lock.
        Raises: InvalidConfigError when ``num_partitions`` is less than 1 (nothing
            changed); TypeError when ``key`` is not bytes-like.
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
        switch (the draw happens on the next keyless record).

        Cost: O(topics).
        Thread safety: any thread; takes the sticky state's lock.
        Raises: nothing.
        """
        with self._lock:
            return {topic: choice.partition for topic, choice in self._sticky_by_topic.items()}

    def check(self) -> None:
        """Assert the sticky state's invariants.

        Cost: O(topics).
        Thread safety: any thread; takes the sticky state's lock.
        Raises: AssertionError naming the broken invariant.
        """
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
        """Return the topic's next partition in turn.

        Cost: O(1), about 0.3 us.
        Thread safety: any thread; the counters are behind one lock.
        Raises: InvalidConfigError when ``num_partitions`` is less than 1 (the
            counter is unchanged).
        """
        if num_partitions < 1:
            raise _bad_partition_count(num_partitions)
        with self._lock:
            count = self._next_by_topic.get(topic, 0)
            self._next_by_topic[topic] = count + 1
        return count % num_partitions

    def counts(self) -> dict[str, int]:
        """Return ``{topic: records partitioned so far}``.

        Cost: O(topics).
        Thread safety: any thread; takes the counters' lock.
        Raises: nothing.
        """
        with self._lock:
            return dict(self._next_by_topic)

    def check(self) -> None:
        """Assert the counters' invariants.

        Cost: O(topics).
        Thread safety: any thread; takes the counters' lock.
        Raises: AssertionError naming the broken invariant.
        """
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
