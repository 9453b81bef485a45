"""Deterministic benchmark data: 16-byte keys and 100-byte JSON-like values.

Keys are ``b"user-%011d"`` (16 bytes). In ``pool`` mode they are drawn from 10,000
entity ids, so keys repeat the way an event stream keyed by user does; in ``unique``
mode every record gets its own id. Values are 100-byte JSON-like documents whose
last ~35 bytes are base64 of random bytes, so they are only partly compressible
(lz4 shrinks a batch of them to about half). The same seed gives the same bytes.
"""

from __future__ import annotations

import base64
import gc
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "BATCH_RECORDS",
    "ENTITY_POOL",
    "KEY_BYTES",
    "KEY_MODES",
    "VALUE_BYTES",
    "Dataset",
    "make_dataset",
]

KEY_BYTES = 16
VALUE_BYTES = 100
ENTITY_POOL = 10_000  # distinct keys in "pool" mode
BATCH_RECORDS = 1_000  # records per append call in the batched workloads
KEY_MODES = ("pool", "unique")
DEFAULT_SEED = 20240601

_KINDS = (b"click", b"view", b"purchase", b"login", b"logout", b"search")
_FILLER_POOL_BYTES = 1 << 16


@dataclass(frozen=True)
class Dataset:
    """A list of ``(key, value)`` records and how it was made."""

    records: list[tuple[bytes, bytes]]
    key_mode: str
    seed: int

    def __len__(self) -> int:
        return len(self.records)

    def head(self, n: int) -> Dataset:
        """The first ``n`` records (the same bytes a smaller run would generate)."""
        if n >= len(self.records):
            return self
        return Dataset(self.records[:n], self.key_mode, self.seed)

    def batches(self, size: int = BATCH_RECORDS) -> list[list[tuple[bytes, bytes]]]:
        """The records cut into lists of ``size`` (the last one may be shorter)."""
        recs = self.records
        return [recs[i : i + size] for i in range(0, len(recs), size)]

    def cycle_batches(self, size: int = BATCH_RECORDS) -> Iterator[list[tuple[bytes, bytes]]]:
        """Endless batches, repeating the data: to build logs larger than the dataset."""
        return itertools.cycle(self.batches(size))

    def describe(self) -> dict[str, object]:
        """What the JSON output records about the data."""
        return {
            "key_mode": self.key_mode,
            "seed": self.seed,
            "key_bytes": KEY_BYTES,
            "value_bytes": VALUE_BYTES,
            "entity_pool": ENTITY_POOL if self.key_mode == "pool" else None,
            "batch_records": BATCH_RECORDS,
            "example": [self.records[0][0].decode(), self.records[0][1].decode()],
            "lz4_ratio_of_1000_values": _lz4_ratio(self.records[:BATCH_RECORDS]),
        }


def make_dataset(n: int, *, key_mode: str = "pool", seed: int = DEFAULT_SEED) -> Dataset:
    """Generate ``n`` records (about 1 s per 10^6 on the benchmark machine)."""
    if key_mode not in KEY_MODES:
        raise ValueError(f"key_mode must be one of {KEY_MODES}, not {key_mode!r}")
    rng = random.Random(seed)
    filler = base64.b64encode(rng.randbytes(_FILLER_POOL_BYTES))
    span = len(filler) - VALUE_BYTES
    unique = key_mode == "unique"
    records = []
    for seq in range(n):
        bits = rng.getrandbits(64)
        entity = seq if unique else bits % ENTITY_POOL
        key = b"user-%011d" % entity
        head = b'{"user":"%s","seq":%d,"kind":"%s","amount":%d,"note":"' % (
            key[5:],
            seq,
            _KINDS[(bits >> 14) % len(_KINDS)],
            (bits >> 17) % 100_000,
        )
        fill = VALUE_BYTES - len(head) - 2
        at = (bits >> 34) % span
        records.append((key, head + filler[at : at + fill] + b'"}'))
    # The data set is a fixture, not a system under test: move it (and everything
    # else alive now) out of the cyclic GC's sight, so that no system pays for
    # the collector walking 10^6 fixture tuples while it allocates its records.
    gc.collect()
    gc.freeze()
    return Dataset(records, key_mode, seed)


def _lz4_ratio(records: list[tuple[bytes, bytes]]) -> float | None:
    try:
        import cramjam
    except ImportError:
        return None
    blob = b"".join(value for _, value in records)
    return round(len(cramjam.lz4.compress_block(blob)) / len(blob), 3)
