"""partitions_for_keys and positive_murmur2_many agree with the scalar murmur2."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_partitioner import KAFKA_VECTORS  # the same directory, on sys.path

from eventlog.partitioning import (
    caches,
    hashing,
    murmur2,
    partition_bytes_for_keys,
    partition_for_key,
    partitions_for_keys,
    positive_murmur2_many,
)


def scalar(keys: list[bytes]) -> list[int]:
    return [murmur2(k) & 0x7FFFFFFF for k in keys]


@pytest.fixture(autouse=True)
def cold_cache():
    caches._key_hash_cache.clear()
    caches._partition_maps.clear()
    yield
    caches._key_hash_cache.check()  # every hash the bulk path cached is right
    caches._key_hash_cache.clear()
    caches._partition_maps.clear()


@given(st.lists(st.binary(max_size=40), max_size=50), st.integers(1, 1000))
def test_bulk_matches_one_at_a_time(keys: list[bytes], n: int) -> None:
    caches._key_hash_cache.clear()
    assert partitions_for_keys(keys, n) == [h % n for h in scalar(keys)]
    assert partitions_for_keys(keys, n) == [partition_for_key(k, n) for k in keys]  # cached


@given(st.integers(0, 33), st.lists(st.binary(min_size=33, max_size=33), min_size=1,
                                    max_size=80))
def test_same_length_keys_hash_in_lanes_bit_for_bit(length: int, raw: list[bytes]) -> None:
    keys = [r[:length] for r in raw]  # one length: every key goes through the lanes
    assert positive_murmur2_many(keys) == scalar(keys)


@given(st.lists(st.binary(max_size=12), max_size=200))
def test_mixed_lengths_keep_their_order(keys: list[bytes]) -> None:
    assert positive_murmur2_many(keys) == scalar(keys)


def test_kafka_vectors_in_bulk() -> None:
    keys = [key for key, _ in KAFKA_VECTORS] * 5  # enough of each length for the lanes
    assert positive_murmur2_many(keys) == [h & 0x7FFFFFFF for _, h in KAFKA_VECTORS] * 5


def test_extreme_lane_values() -> None:
    # All-0xff blocks drive every product to its largest: lanes must not carry.
    keys = [b"\xff" * 16, b"\x00" * 16, b"\xff" * 16, b"\x80\x00\x00\x00" * 4] * 3
    assert positive_murmur2_many(keys) == scalar(keys)


def test_unhashable_keys_fall_back() -> None:
    keys = [bytearray(b"abc"), b"abc"]
    assert partitions_for_keys(keys, 7) == [partition_for_key(b"abc", 7)] * 2


@given(st.lists(st.binary(max_size=20), max_size=60), st.integers(1, 256))
def test_partition_bytes_match_murmur2_cached_or_not(keys: list[bytes], n: int) -> None:
    expected = bytes(h % n for h in scalar(keys))
    assert partition_bytes_for_keys(keys, n) == expected  # cold
    assert partition_bytes_for_keys(keys, n) == expected  # from the per-count map
    for count, known in caches._partition_maps.items():
        for key, p in known.items():
            assert p == (murmur2(key) & 0x7FFFFFFF) % count


def test_partition_maps_stay_bounded() -> None:
    keys = [b"key-%d" % i for i in range(10)]
    for n in range(1, 3 * caches._partition_maps_max):
        assert partition_bytes_for_keys(keys, n) == bytes(h % n for h in scalar(keys))
    assert len(caches._partition_maps) <= caches._partition_maps_max


def test_keys_too_long_to_cache_are_hashed_every_time() -> None:
    keys = [b"k" * 300, b"short", b"x" * 257, b"short"]
    expected = [h % 5 for h in scalar(keys)]
    for _ in range(2):
        assert partitions_for_keys(keys, 5) == expected
        assert partition_bytes_for_keys(keys, 5) == bytes(expected)
    assert all(len(k) <= 256 for k in caches._key_hash_cache.hashes)


def test_a_full_cache_is_cleared_and_results_stay_right(monkeypatch) -> None:
    monkeypatch.setattr(caches, "key_hash_cache_entries_max", 10)
    keys = [b"key-%d" % i for i in range(25)]
    expected = [h % 3 for h in scalar(keys)]
    assert partitions_for_keys(keys, 3) == expected
    assert partition_bytes_for_keys(keys, 3) == bytes(expected)
    assert len(caches._key_hash_cache.hashes) <= 10
    assert all(len(m) <= 10 for m in caches._partition_maps.values())


@pytest.mark.parametrize("count", [hashing.bulk_hash_keys_min,
                                   hashing.strided_lanes_keys_min - 1,
                                   hashing.strided_lanes_keys_min, 500])
@pytest.mark.parametrize("length", [0, 1, 3, 4, 7, 16, 19, 64])
def test_both_ways_of_filling_lanes(count: int, length: int) -> None:
    rng = random.Random(count * 100 + length)
    keys = [rng.randbytes(length) for _ in range(count)]
    assert positive_murmur2_many(keys) == scalar(keys)
