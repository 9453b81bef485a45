"""Floors: what any pure-Python log pays at least, for scale.

- ``mmap frames``: a bare loop copying pre-built frames (an 8-byte length prefix
  plus key and value) into a memory-mapped file: the cost of touching each record
  once, page faults included.
- ``msgpack.packb per batch``: one ``msgpack.packb`` of each batch of 1,000
  ``(key, value)`` tuples: the encoding a batch format needs, and nothing else.
- ``msgpack.unpackb per batch``: decoding those batches back into lists, the floor
  of reading them.
"""

from __future__ import annotations

import mmap
import struct
from time import perf_counter

from ..harness import Case
from ..scratch import scratch_dir
from ..workloads import Dataset
from . import require

__all__ = ["mmap_frames", "msgpack_pack", "msgpack_unpack"]

_LENGTH = struct.Struct("<II")  # key length, value length


def _frames(data: Dataset) -> list[bytes]:
    pack = _LENGTH.pack
    return [pack(len(k), len(v)) + k + v for k, v in data.records]


def _time_mmap_writes(frames: list[bytes]) -> float:
    size = max(mmap.PAGESIZE, sum(len(f) for f in frames))
    with scratch_dir("floor") as folder, open(folder / "segment", "w+b") as file:
        file.truncate(size)
        with mmap.mmap(file.fileno(), size) as region:
            position = 0
            start = perf_counter()
            for frame in frames:
                end = position + len(frame)
                region[position:end] = frame
                position = end
            return perf_counter() - start


def mmap_frames() -> Case:
    return Case("floor: mmap frame copy loop", setup=_frames, run=_time_mmap_writes)


def _time_packs(batches: list[list[tuple[bytes, bytes]]]) -> float:
    packb = require("msgpack").packb
    start = perf_counter()
    for batch in batches:
        packb(batch)
    return perf_counter() - start


def msgpack_pack() -> Case:
    return Case(
        "floor: msgpack.packb per batch",
        setup=lambda data: data.batches(),
        run=_time_packs,
    )


def _packed(data: Dataset) -> list[bytes]:
    packb = require("msgpack").packb
    return [packb(batch) for batch in data.batches()]


def _time_unpacks(blobs: list[bytes]) -> float:
    unpackb = require("msgpack").unpackb
    start = perf_counter()
    for blob in blobs:
        unpackb(blob, use_list=False)
    return perf_counter() - start


def msgpack_unpack() -> Case:
    return Case("floor: msgpack.unpackb per batch", setup=_packed, run=_time_unpacks)
