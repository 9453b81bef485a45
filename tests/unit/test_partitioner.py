"""Tests for eventlog.partitioning and eventlog.testing.partitioners.

Keyed partitioning is checked three ways: against Kafka's own murmur2 vectors
(UtilsTest.testMurmur2, KAFKA_SEMANTICS 1.4 and 1.5); against a golden table
made with ``reference_murmur2`` below, a slow transcription of the algorithm in
KAFKA_SEMANTICS 1.2 that masks every step; and against partitions that
librdkafka's Java-compatible "murmur2" partitioner chose on a 4-partition topic.
A hypothesis property ties the fast hash to the reference on arbitrary bytes.
"""

from __future__ import annotations

import enum
import itertools
import random
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog.errors import InvalidConfigError, UnknownPartitionError
from eventlog.partitioning import (
    DefaultPartitioner,
    Partitioner,
    RoundRobinPartitioner,
    checked_partition,
    murmur2,
    partition_for_key,
    resolve_partitioner,
    to_positive,
)
from eventlog.partitioning import caches as partitioner_module
from eventlog.testing.partitioners import check_partitioner


def reference_murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, transcribed step by step with explicit 32-bit masks."""
    mask32 = 0xFFFFFFFF
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    length = len(data)
    h = (seed ^ length) & mask32
    for block in range(length // 4):
        i = block * 4
        k = (
            (data[i] & 0xFF)
            | ((data[i + 1] & 0xFF) << 8)
            | ((data[i + 2] & 0xFF) << 16)
            | ((data[i + 3] & 0xFF) << 24)
        )
        k = (k * m) & mask32
        k ^= k >> r
        k = (k * m) & mask32
        h = (h * m) & mask32
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= (data[base + 2] & 0xFF) << 16
    if tail >= 2:
        h ^= (data[base + 1] & 0xFF) << 8
    if tail >= 1:
        h ^= data[base] & 0xFF
        h = (h * m) & mask32
    h ^= h >> 13
    h = (h * m) & mask32
    h ^= h >> 15
    return h - (1 << 32) if h >= (1 << 31) else h  # as a Java int


def reference_partition(key: bytes, num_partitions: int) -> int:
    return (reference_murmur2(key) & 0x7FFFFFFF) % num_partitions


def utf8(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


@pytest.fixture(autouse=True)
def _empty_key_hash_cache() -> Iterator[None]:
    partitioner_module._key_hash_cache.clear()
    yield
    partitioner_module._key_hash_cache.check()
    partitioner_module._key_hash_cache.clear()


# --------------------------------------------------------------------------- murmur2

# Kafka UtilsTest.testMurmur2 (KAFKA_SEMANTICS 1.4) and kafka-python's empty-key vector (1.5).
KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
    (b"", 275646681),
]


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS)
def test_murmur2_matches_kafka_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected
    assert reference_murmur2(key) == expected


def test_empty_key_is_hashed_to_partition_681_of_1000() -> None:
    assert partition_for_key(b"", 1000) == 681


# (key, murmur2(key), num_partitions, partition). Made with reference_murmur2 and
# cross-checked once against aiokafka's murmur2; str keys are UTF-8 encoded, as Java's
# StringSerializer does.
GOLDEN = [
    (b"", 275646681, 1, 0),
    (b"a", -1563381124, 2, 0),
    (b"ab", 316155434, 3, 2),
    (b"abc", 479470107, 7, 4),
    (b"abcd", -1323649548, 10, 0),
    (b"abcde", 461995741, 16, 13),
    (b"21", -973932308, 100, 40),
    (b"21", -973932308, 10, 0),
    (b"foobar", -790332482, 1000, 166),
    (b"foobar", -790332482, 3, 0),
    (b"kafka", -798503068, 12, 4),
    (b"giberish123456789", -1890243828, 5, 0),
    (b"user-0", 637506763, 6, 1),
    (b"user-1", 1404122828, 64, 12),
    (b"user-42", 1459644460, 9, 7),
    (b"user-1000000", -1646562909, 32, 3),
    (b"order-000000123", 1522856850, 1000, 850),
    (b"sensor/42/temperature", 1660283685, 6, 3),
    (b"a-little-bit-long-string", -985981536, 4, 0),
    (b"a-little-bit-longer-string", -1486304829, 1000, 819),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 7, 3),
    (b"550e8400-e29b-41d4-a716-446655440000", 2143099391, 1000, 391),
    (b"0123456789abcdef", 1438427052, 100, 52),
    (b"x" * 64, 1222492685, 10, 5),
    ("café", -1358007374, 31, 18),
    ("été", -2101193575, 5, 3),
    ("Zürich", -1551140815, 24, 1),
    ("köln-über", 1879271568, 8, 0),
    ("日本語", 1431860170, 11, 4),
    ("ключ", 2122343024, 100, 24),
    ("\N{KEY}", 2080712807, 3, 2),
    ("\N{GRINNING FACE} emoji", 1991772780, 13, 10),
    (bytes(range(16)), -1038035159, 50, 39),
    (b"\xff" * 7, -71293549, 3, 1),
    (b"\x00", 375494588, 17, 16),
    (b"\x00" * 4, 850957120, 2, 0),
    (b"\x80" * 5, -1525148316, 2, 0),
]


@pytest.mark.parametrize(("key", "hash_", "num_partitions", "partition"), GOLDEN)
def test_golden_partitions(key: bytes | str, hash_: int, num_partitions: int, partition: int):
    data = utf8(key)
    assert reference_murmur2(data) == hash_
    assert murmur2(data) == hash_
    assert reference_partition(data, num_partitions) == partition
    assert partition_for_key(data, num_partitions) == partition
    assert partition_for_key(data, num_partitions) == partition  # now from the cache
    assert DefaultPartitioner().partition("t", data, b"v", num_partitions) == partition


# Partitions chosen by librdkafka 2.16 (confluent-kafka's mock cluster, partitioner="murmur2",
# which is documented as Java compatible) on a topic with 4 partitions.
LIBRDKAFKA_4_PARTITIONS = [
    (b"", 1),
    (b"a", 0),
    (b"ab", 2),
    (b"abc", 3),
    (b"abcd", 0),
    (b"abcde", 1),
    (b"21", 0),
    (b"foobar", 2),
    (b"kafka", 0),
    (b"giberish123456789", 0),
    (b"user-0", 3),
    (b"user-1", 0),
    (b"order-000000123", 2),
    ("café", 2),
    ("日本語", 2),
    ("köln-über", 0),
    (bytes(range(16)), 1),
    (b"\xff" * 7, 3),
    (b"550e8400-e29b-41d4-a716-446655440000", 3),
]


@pytest.mark.parametrize(("key", "partition"), LIBRDKAFKA_4_PARTITIONS)
def test_librdkafka_murmur2_partitioner_agrees(key: bytes | str, partition: int) -> None:
    assert partition_for_key(utf8(key), 4) == partition


@given(st.binary(max_size=64))
def test_murmur2_equals_reference(data: bytes) -> None:
    expected = reference_murmur2(data)
    assert murmur2(data) == expected
    assert murmur2(bytearray(data)) == expected
    assert murmur2(memoryview(data)) == expected
    assert -(2**31) <= expected < 2**31


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=10_000))
def test_partition_for_key_equals_reference(key: bytes, num_partitions: int) -> None:
    expected = reference_partition(key, num_partitions)
    assert partition_for_key(key, num_partitions) == expected
    assert partition_for_key(key, num_partitions) == expected  # cached
    assert partition_for_key(bytearray(key), num_partitions) == expected  # never cached


@given(st.text(max_size=20), st.integers(min_value=1, max_value=1000))
def test_str_keys_hash_as_their_utf8_bytes(text: str, num_partitions: int) -> None:
    key = text.encode("utf-8")
    assert partition_for_key(key, num_partitions) == reference_partition(key, num_partitions)


def test_murmur2_of_long_keys_equals_reference() -> None:
    rng = random.Random(5)
    for length in (255, 256, 257, 260, 1000, 5000):  # past the precompiled unpackers
        data = rng.randbytes(length)
        assert murmur2(data) == reference_murmur2(data)


def test_to_positive_masks_the_sign_bit_and_is_not_abs() -> None:
    assert to_positive(-1) == 2**31 - 1
    assert to_positive(-(2**31)) == 0
    assert to_positive(5) == 5
    hash_ = murmur2(b"21")
    assert hash_ == -973932308
    assert to_positive(hash_) == 1173551340
    assert abs(hash_) == 973932308
    assert partition_for_key(b"21", 10) == 1173551340 % 10 == 0
    assert abs(hash_) % 10 == 8  # what an abs()-based imitation would pick instead


def test_murmur2_rejects_str() -> None:
    for text in ("", "abc", "abcd"):
        with pytest.raises(TypeError, match="encode"):
            murmur2(text)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        partition_for_key("abc", 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [0, -1])
def test_partition_for_key_rejects_bad_partition_counts(count: int) -> None:
    with pytest.raises(InvalidConfigError, match="num_partitions"):
        partition_for_key(b"k", count)


def test_key_hash_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = partitioner_module._key_hash_cache
    monkeypatch.setattr(partitioner_module, "key_hash_cache_entries_max", 8)
    sizes = []
    for i in range(50):
        key = b"key-%d" % i
        assert partition_for_key(key, 13) == reference_partition(key, 13)
        sizes.append(len(cache.hashes))
        cache.check()
    assert sizes[:11] == [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2]  # the 9th key cleared the cache
    assert b"key-49" in cache.hashes
    assert partition_for_key(b"key-49", 13) == reference_partition(b"key-49", 13)


def test_key_hash_cache_skips_long_and_mutable_keys() -> None:
    cache = partitioner_module._key_hash_cache
    long_key = b"k" * (partitioner_module.key_hash_cache_key_bytes_max + 1)
    assert partition_for_key(long_key, 7) == reference_partition(long_key, 7)
    assert partition_for_key(bytearray(b"abc"), 7) == reference_partition(b"abc", 7)
    assert partition_for_key(memoryview(b"abcd"), 7) == reference_partition(b"abcd", 7)
    assert cache.hashes == {}
    partition_for_key(b"abc", 7)
    assert list(cache.hashes) == [b"abc"]


# --------------------------------------------------------------------------- sticky


class CountingRandom(random.Random):
    """Draws 0, 1, 2, ...: every sticky switch moves to the next partition, mod n."""

    def __init__(self) -> None:
        super().__init__(0)
        self._next = itertools.count()

    def getrandbits(self, k: int) -> int:
        return next(self._next)


def keyless(
    partitioner: DefaultPartitioner, sizes: list[int], num_partitions: int, topic: str = "t"
) -> list[int]:
    """Send keyless records with values of ``sizes`` bytes; return their partitions."""
    result = []
    for size in sizes:
        result.append(partitioner.partition(topic, None, b"v" * size, num_partitions))
        partitioner.check()
    return result


def sticky_runs(sizes: list[int], batch_size: int) -> list[int]:
    """Model: the number of records in each run between switches, for these record sizes."""
    runs, sent_bytes, records = [], 0, 0
    for size in sizes:
        sent_bytes += max(1, size)
        records += 1
        if sent_bytes >= batch_size:
            runs.append(records)
            sent_bytes, records = 0, 0
    return runs + ([records] if records else [])


def test_sticky_switches_once_batch_size_bytes_were_sent() -> None:
    p = DefaultPartitioner(batch_size=100, rng=CountingRandom())
    # 30-byte records: the 4th reaches 120 >= 100 bytes and still goes to the old partition.
    assert keyless(p, [30] * 12, 5) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    p = DefaultPartitioner(batch_size=100, rng=CountingRandom())
    assert keyless(p, [50] * 6, 5) == [0, 0, 1, 1, 2, 2]  # exactly 100 bytes switches
    p = DefaultPartitioner(batch_size=100, rng=CountingRandom())
    assert keyless(p, [99, 1, 150, 0], 5) == [0, 0, 1, 2]  # one big record is a whole run


def test_sticky_counts_key_and_value_bytes_and_at_least_one_byte() -> None:
    p = DefaultPartitioner(batch_size=3, rng=CountingRandom())
    assert [p.partition("t", None, None, 9) for _ in range(7)] == [0, 0, 0, 1, 1, 1, 2]
    p = DefaultPartitioner(batch_size=10, ignore_keys=True, rng=CountingRandom())
    assert [p.partition("t", b"kkkk", b"v", 9) for _ in range(4)] == [0, 0, 1, 1]


def test_batch_size_zero_draws_for_every_record() -> None:
    p = DefaultPartitioner(batch_size=0, rng=CountingRandom())
    assert p.batch_size == 1
    assert keyless(p, [5, 0, 7], 10) == [0, 1, 2]


@pytest.mark.parametrize("batch_size", [-1, 1.5, True, "16384", None])
def test_bad_batch_size_is_rejected(batch_size: object) -> None:
    with pytest.raises(InvalidConfigError, match="batch_size"):
        DefaultPartitioner(batch_size=batch_size)  # type: ignore[arg-type]


def test_keyless_records_between_two_switches_share_a_partition() -> None:
    rng = random.Random(11)
    sizes = [rng.choice([0, 1, 10, 100, 700, 3000]) for _ in range(3000)]
    p = DefaultPartitioner(batch_size=2000, rng=CountingRandom())
    result = keyless(p, sizes, 7)
    position = 0
    for run_index, run in enumerate(sticky_runs(sizes, 2000)):
        assert set(result[position : position + run]) == {run_index % 7}
        position += run
    assert position == len(result)


def test_sticky_spread_is_roughly_uniform() -> None:
    num_partitions, records, batch_size = 10, 20_000, 1000
    p = DefaultPartitioner(batch_size=batch_size, rng=random.Random(2024))
    result = keyless(p, [100] * records, num_partitions)
    runs = [result[i : i + 10] for i in range(0, records, 10)]  # 10 x 100 bytes per run
    assert all(len(set(run)) == 1 for run in runs)
    draws = Counter(run[0] for run in runs)
    expected = len(runs) / num_partitions
    chi_square = sum((draws[i] - expected) ** 2 / expected for i in range(num_partitions))
    assert chi_square < 30, draws  # 9 degrees of freedom: p < 0.0005 if uniform
    per_partition = Counter(result)
    assert set(per_partition) == set(range(num_partitions))
    assert all(
        abs(n - records / num_partitions) < 0.2 * records / num_partitions
        for n in per_partition.values()
    ), per_partition


def test_sticky_is_deterministic_with_a_seeded_rng() -> None:
    sizes = [random.Random(3).randrange(500) for _ in range(2000)]
    first = keyless(DefaultPartitioner(batch_size=1000, rng=random.Random(42)), sizes, 6)
    second = keyless(DefaultPartitioner(batch_size=1000, rng=random.Random(42)), sizes, 6)
    assert first == second
    assert len(set(first)) > 1


def test_sticky_choice_is_redrawn_when_out_of_range() -> None:
    p = DefaultPartitioner(batch_size=1000, rng=CountingRandom())
    assert keyless(p, [500] * 10 + [600], 7) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert p.sticky_partitions() == {"t": 5}
    assert p.partition("t", None, b"x", 3) == 6 % 3  # partition 5 is gone: draw number 6
    assert p.partition("t", None, b"x", 8) == 0  # the topic grew: the sticky choice stays
    p.check()


@given(st.lists(st.tuples(st.integers(1, 9), st.integers(0, 300)), max_size=60), st.integers())
def test_sticky_never_leaves_the_range(calls: list[tuple[int, int]], seed: int) -> None:
    p = DefaultPartitioner(batch_size=256, rng=random.Random(seed))
    for num_partitions, size in calls:
        assert 0 <= p.partition("t", None, bytes(size), num_partitions) < num_partitions
        p.check()


def test_keyed_records_do_not_touch_the_sticky_state() -> None:
    sizes = [random.Random(8).randrange(300) for _ in range(500)]
    alone = keyless(DefaultPartitioner(batch_size=700, rng=random.Random(1)), sizes, 5)
    p = DefaultPartitioner(batch_size=700, rng=random.Random(1))
    mixed = []
    for i, size in enumerate(sizes):
        key = b"key-%d" % i
        assert p.partition("t", key, b"v" * 10_000, 5) == reference_partition(key, 5)
        mixed.append(p.partition("t", None, b"v" * size, 5))
    assert mixed == alone


def test_sticky_state_is_per_topic() -> None:
    p = DefaultPartitioner(batch_size=100, rng=CountingRandom())
    assert p.partition("a", None, b"x" * 60, 9) == 0
    assert p.partition("b", None, b"x" * 60, 9) == 1
    assert p.partition("a", None, b"x" * 60, 9) == 0  # a reaches 120 bytes: switch
    assert p.partition("b", None, b"x" * 10, 9) == 1
    assert p.partition("a", None, b"x", 9) == 2
    assert p.sticky_partitions() == {"a": 2, "b": 1}


def test_ignore_keys_spreads_keyed_records_like_keyless_ones() -> None:
    p = DefaultPartitioner(batch_size=1, ignore_keys=True, rng=CountingRandom())
    assert [p.partition("t", b"same", None, 4) for _ in range(6)] == [0, 1, 2, 3, 0, 1]
    assert p.ignore_keys is True


def test_default_partitioner_rejects_bad_partition_counts() -> None:
    p = DefaultPartitioner()
    for key in (b"k", None):
        with pytest.raises(InvalidConfigError, match="num_partitions"):
            p.partition("t", key, None, 0)
    assert p.sticky_partitions() == {}


def test_default_partitioner_repr_and_protocol() -> None:
    p = DefaultPartitioner(batch_size=512, ignore_keys=True)
    assert repr(p) == "DefaultPartitioner(batch_size=512, ignore_keys=True)"
    assert isinstance(p, Partitioner)
    assert isinstance(RoundRobinPartitioner(), Partitioner)


# --------------------------------------------------------------------------- round robin


def test_round_robin_deals_partitions_in_turn() -> None:
    p = RoundRobinPartitioner()
    assert [p.partition("t", None, None, 3) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    p.check()


def test_round_robin_ignores_keys() -> None:
    p = RoundRobinPartitioner()
    result = [p.partition("t", b"same-key", b"v", 3) for _ in range(6)]
    assert result == [0, 1, 2, 0, 1, 2]


def test_round_robin_counters_are_per_topic() -> None:
    p = RoundRobinPartitioner()
    calls = [("a", 3), ("a", 3), ("b", 3), ("a", 3), ("b", 2), ("c", 5), ("b", 2)]
    assert [p.partition(topic, None, None, n) for topic, n in calls] == [0, 1, 0, 2, 1, 0, 0]
    assert p.counts() == {"a": 3, "b": 3, "c": 1}
    p.check()


def test_round_robin_rejects_bad_partition_counts_and_counts_nothing() -> None:
    p = RoundRobinPartitioner()
    with pytest.raises(InvalidConfigError, match="num_partitions"):
        p.partition("t", None, None, 0)
    assert p.counts() == {}
    assert repr(p) == "RoundRobinPartitioner()"


# --------------------------------------------------------------------------- resolve


class HalfPartitioner:
    def partition(self, topic: str, key: bytes | None, value: bytes | None, n: int) -> int:
        return n // 2


def first_partition(topic: str, key: bytes | None, value: bytes | None, n: int) -> int:
    return 0


@pytest.mark.parametrize("name", ["default", "murmur2", "DEFAULT", "Murmur2"])
def test_resolve_default_names(name: str) -> None:
    p = resolve_partitioner(name, batch_size=100, ignore_keys=True)
    assert isinstance(p, DefaultPartitioner)
    assert (p.batch_size, p.ignore_keys) == (100, True)


def test_resolve_none_is_a_new_default_partitioner() -> None:
    p = resolve_partitioner(None)
    assert isinstance(p, DefaultPartitioner)
    assert (p.batch_size, p.ignore_keys) == (16384, False)
    assert resolve_partitioner(None) is not p


@pytest.mark.parametrize("name", ["round_robin", "roundrobin", "RoundRobin"])
def test_resolve_round_robin_names(name: str) -> None:
    assert isinstance(resolve_partitioner(name), RoundRobinPartitioner)


def test_resolve_returns_objects_with_a_partition_method_as_they_are() -> None:
    half = HalfPartitioner()
    assert resolve_partitioner(half) is half
    rr = RoundRobinPartitioner()
    assert resolve_partitioner(rr, ignore_keys=True) is rr


def test_resolve_wraps_plain_functions() -> None:
    calls = []

    def record(topic: str, key: bytes | None, value: bytes | None, n: int) -> int:
        calls.append((topic, key, value, n))
        return n - 1

    p = resolve_partitioner(record)
    assert p.partition("t", b"k", b"v", 4) == 3
    assert calls == [("t", b"k", b"v", 4)]
    assert "record" in repr(p)
    assert resolve_partitioner(lambda t, k, v, n: 0).partition("t", None, None, 1) == 0


def test_resolve_prefers_the_partition_method_over_call() -> None:
    class Both(HalfPartitioner):
        def __call__(self, *args: object) -> int:
            raise AssertionError("__call__ used")

    both = Both()
    assert resolve_partitioner(both) is both


@pytest.mark.parametrize(
    "bad",
    [
        42,
        "sticky",
        "",
        b"default",
        bytearray(b"x"),
        [],
        1.5,
        True,
        object(),
        type("NotCallable", (), {"partition": 3})(),
    ],
)
def test_resolve_rejects_anything_else(bad: object) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        resolve_partitioner(bad)
    message = str(caught.value)
    for accepted in (
        "None",
        "'default'",
        "'murmur2'",
        "'round_robin'",
        "'roundrobin'",
        "partition(topic, key, value, num_partitions)",
    ):
        assert accepted in message
    assert isinstance(caught.value, ValueError)


def test_resolve_rejects_a_class_and_says_to_instantiate_it() -> None:
    with pytest.raises(InvalidConfigError, match=r"pass RoundRobinPartitioner\(\) instead"):
        resolve_partitioner(RoundRobinPartitioner)


def test_resolve_passes_on_a_bad_batch_size() -> None:
    with pytest.raises(InvalidConfigError, match="batch_size"):
        resolve_partitioner(None, batch_size=-5)


# --------------------------------------------------------------------------- checked_partition


class Color(enum.IntEnum):
    RED = 1


def test_checked_partition_returns_valid_partitions() -> None:
    assert checked_partition(0, "orders", 3) == 0
    assert checked_partition(2, "orders", 3) == 2
    result = checked_partition(Color.RED, "orders", 3)
    assert result == 1
    assert type(result) is int


def test_checked_partition_rejects_a_partition_past_the_end() -> None:
    with pytest.raises(UnknownPartitionError) as caught:
        checked_partition(5, "orders", 3)
    assert str(caught.value) == (
        "partitioner returned partition 5 for topic 'orders', which has 3 partitions (0..2)"
    )
    assert isinstance(caught.value, KeyError)
    with pytest.raises(UnknownPartitionError, match=r"which has 1 partition \(0\.\.0\)"):
        checked_partition(1, "solo", 1)


def test_checked_partition_rejects_negative_partitions() -> None:
    with pytest.raises(UnknownPartitionError) as caught:
        checked_partition(-1, "orders", 3)
    assert str(caught.value) == (
        "partitioner returned negative partition -1 for topic 'orders'; it has 3 partitions (0..2)"
    )


@pytest.mark.parametrize(
    ("bad", "type_name"), [(True, "bool"), ("1", "str"), (1.0, "float"), (None, "NoneType")]
)
def test_checked_partition_rejects_non_ints(bad: object, type_name: str) -> None:
    with pytest.raises(TypeError) as caught:
        checked_partition(bad, "orders", 3)
    message = str(caught.value)
    assert f"returned {type_name} " in message
    assert "'orders'" in message
    assert "0..2" in message


# --------------------------------------------------------------------------- check_partitioner


@pytest.mark.parametrize(
    "p",
    [
        DefaultPartitioner(),
        DefaultPartitioner(batch_size=0, rng=random.Random(1)),
        resolve_partitioner(lambda t, k, v, n: 0 if k is None else partition_for_key(k, n)),
        HalfPartitioner(),
    ],
    ids=["default", "batch_size_0", "function", "half"],
)
def test_check_partitioner_passes_key_hashing_partitioners(p: Partitioner) -> None:
    check_partitioner(p)


@pytest.mark.parametrize(
    "p", [RoundRobinPartitioner(), DefaultPartitioner(ignore_keys=True)], ids=["rr", "ignore"]
)
def test_check_partitioner_passes_key_ignoring_partitioners(p: Partitioner) -> None:
    check_partitioner(p, same_key_same_partition=False)


def test_check_partitioner_catches_partitioners_that_move_keys() -> None:
    with pytest.raises(AssertionError, match="a key must always get the same partition"):
        check_partitioner(RoundRobinPartitioner())


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda t, k, v, n: n, r"returned 1, outside 0\.\.0"),
        (lambda t, k, v, n: -1, r"returned -1, outside"),
        (lambda t, k, v, n: False, "returned bool False, not an int"),
        (lambda t, k, v, n: "0", "returned str '0', not an int"),
        (lambda t, k, v, n: 0 if k is None else 1 // 0, "raised ZeroDivisionError"),
        (lambda t, k, v, n: len(v or b"") % n, "a key must always get the same partition"),
    ],
)
def test_check_partitioner_catches_broken_partitioners(broken: Callable[..., object], message: str):
    with pytest.raises(AssertionError, match=message):
        check_partitioner(resolve_partitioner(broken))


def test_check_partitioner_names_the_failing_call() -> None:
    with pytest.raises(AssertionError) as caught:
        check_partitioner(resolve_partitioner(lambda t, k, v, n: 7), num_partitions=(3,))
    assert ".partition('check-partitioner-3', b'', " in str(caught.value)


def test_check_partitioner_rejects_bad_counts() -> None:
    with pytest.raises(AssertionError, match="counts >= 1"):
        check_partitioner(DefaultPartitioner(), num_partitions=(0,))


# --------------------------------------------------------------------------- threads


@pytest.fixture
def _frequent_thread_switches() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def run_threads(thread_count: int, work: Callable[[int], None]) -> None:
    barrier = threading.Barrier(thread_count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as error:  # re-raised in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(thread_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.mark.usefixtures("_frequent_thread_switches")
def test_round_robin_counts_are_exact_under_threads() -> None:
    p = RoundRobinPartitioner()
    counts: list[Counter[int]] = [Counter() for _ in range(8)]

    def work(index: int) -> None:
        for _ in range(5000):
            counts[index][p.partition("t", b"k", None, 3)] += 1

    run_threads(8, work)
    assert sum(counts, Counter()) == {0: 13334, 1: 13333, 2: 13333}
    assert p.counts() == {"t": 40_000}
    p.check()


@pytest.mark.usefixtures("_frequent_thread_switches")
def test_sticky_state_is_consistent_under_threads() -> None:
    # 10-byte records and batch_size 100: every run is exactly 10 records whatever the
    # interleaving, and CountingRandom deals runs to partitions 0..4 in turn.
    p = DefaultPartitioner(batch_size=100, rng=CountingRandom())
    counts: list[Counter[int]] = [Counter() for _ in range(8)]
    keys = [b"key-%d" % i for i in range(50)]

    def work(index: int) -> None:
        for i in range(2000):
            counts[index][p.partition("t", None, b"0123456789", 5)] += 1
            key = keys[(i + index) % len(keys)]
            assert p.partition("t", key, None, 5) == reference_partition(key, 5)
            if i % 500 == index:
                partitioner_module._key_hash_cache.clear()

    run_threads(8, work)
    assert sum(counts, Counter()) == {partition: 3200 for partition in range(5)}
    p.check()
