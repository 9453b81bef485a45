"""partitions_for_keys agrees with partition_for_key, cached or not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventlog.partitioner import partition_for_key, partitions_for_keys


@given(st.lists(st.binary(max_size=40), max_size=50), st.integers(1, 1000))
def test_bulk_matches_one_at_a_time(keys: list[bytes], n: int) -> None:
    assert partitions_for_keys(keys, n) == [partition_for_key(k, n) for k in keys]


def test_unhashable_keys_fall_back() -> None:
    keys = [bytearray(b"abc"), b"abc"]
    assert partitions_for_keys(keys, 7) == [partition_for_key(b"abc", 7)] * 2
