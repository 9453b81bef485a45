"""Contract checks for partitioners: run them against your own partitioner.

    from eventlog.testing.partitioners import check_partitioner
    check_partitioner(MyPartitioner())    # raises AssertionError naming the broken call

:func:`check_partitioner` calls ``partition(topic, key, value, num_partitions)``
with a deterministic mix of keyed and keyless records (empty, binary and UTF-8
keys; ``None``, empty and non-empty values) for several partition counts, and
checks that:

* every result is an ``int`` (not a ``bool``) in ``0 .. num_partitions - 1``;
* no call raises;
* unless ``same_key_same_partition=False``, a key asked for again (in another
  order, with another value, between keyless records) gets the partition it
  got the first time, for the same topic and partition count (DESIGN
  invariant 4). Partitioners that ignore keys, such as
  ``RoundRobinPartitioner`` or ``DefaultPartitioner(ignore_keys=True)``, are
  checked with ``same_key_same_partition=False``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import NoReturn

from eventlog.partitioning import Partitioner

__all__ = ["check_partitioner"]

_samples_default = 200  # records of each kind per partition count: about 10 ms for the built-ins
_key_bytes_max = 64
_fixed_keys = (
    b"",
    b"\x00",
    b"\xff\xff\xff\xff",
    b"21",
    b"foobar",
    "café".encode(),
    "日本語のキー".encode(),
    "\N{GRINNING FACE}".encode(),
)


def check_partitioner(
    partitioner: Partitioner,
    *,
    num_partitions: Iterable[int] = (1, 2, 3, 7, 100),
    samples: int = _samples_default,
    same_key_same_partition: bool = True,
    seed: int = 0,
) -> None:
    """Check that ``partitioner`` honours the partitioner contract (module docstring).

    For each count in ``num_partitions``, makes ``samples`` keyed calls,
    ``samples`` keyless calls, then the keyed calls again in reverse order,
    each followed by a keyless call, on a topic named for the count. ``seed``
    fixes the sample keys and values. Cost: ``4 * samples`` calls per count.

    Raises:
        AssertionError: the first violation, naming the call and its result.
    """
    rng = random.Random(seed)
    for count in num_partitions:
        if count < 1:
            raise AssertionError(f"num_partitions must hold counts >= 1, got {count}")
        topic = f"check-partitioner-{count}"
        keys = _sample_keys(rng, samples)
        first = {key: _call(partitioner, topic, key, _value(rng), count) for key in keys}
        for _ in range(samples):
            _call(partitioner, topic, None, _value(rng), count)
        for key in reversed(keys):
            again = _call(partitioner, topic, key, _value(rng), count)
            _call(partitioner, topic, None, _value(rng), count)
            if same_key_same_partition and again != first[key]:
                _fail(
                    f"{partitioner!r} put key {key!r} of topic {topic!r} "
                    f"({count} partitions) on partition {first[key]}, then on {again}; "
                    "a key must always get the same partition (pass "
                    "same_key_same_partition=False for a partitioner that ignores keys)"
                )


def _sample_keys(rng: random.Random, samples: int) -> list[bytes]:
    """Return ``samples`` distinct keys: fixed awkward ones first, then random bytes.

    The fixed keys are the empty key, a NUL byte, UTF-8 text (accents, CJK, an
    emoji) and keys whose murmur2 hash is negative; the rest are random, 0 to
    64 bytes long. O(samples).
    """
    keys = list(dict.fromkeys(_fixed_keys[:samples]))
    seen = set(keys)
    while len(keys) < samples:
        key = rng.randbytes(rng.randrange(_key_bytes_max + 1))
        if key not in seen:
            seen.add(key)
            keys.append(key)
    return keys


def _value(rng: random.Random) -> bytes | None:
    choice = rng.randrange(4)
    if choice == 0:
        return None
    if choice == 1:
        return b""
    return rng.randbytes(rng.randrange(1, 200))


def _call(
    partitioner: Partitioner, topic: str, key: bytes | None, value: bytes | None, count: int
) -> int:
    try:
        result = partitioner.partition(topic, key, value, count)
    except Exception as error:
        call = _describe_call(partitioner, topic, key, value, count)
        raise AssertionError(f"{call} raised {error!r}") from error
    if isinstance(result, bool) or not isinstance(result, int):
        problem = f"returned {type(result).__name__} {result!r}, not an int"
    elif not 0 <= result < count:
        problem = f"returned {result}, outside 0..{count - 1}"
    else:
        return result
    _fail(f"{_describe_call(partitioner, topic, key, value, count)} {problem}")


def _describe_call(
    partitioner: Partitioner, topic: str, key: bytes | None, value: bytes | None, count: int
) -> str:
    value_text = "None" if value is None else f"<{len(value)} bytes>"
    return f"{partitioner!r}.partition({topic!r}, {key!r}, {value_text}, {count})"


def _fail(message: str) -> NoReturn:
    raise AssertionError(message)
