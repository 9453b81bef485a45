"""persist-queue: the file-based ``Queue`` and the ``SQLiteQueue``, one ``put`` per record.

Items are ``(key, value)`` tuples, pickled by the queue (its default serializer).
Both write through on every put (PEERS.md: ~3-4k puts/s), so they are capped to a
few thousand records; their reads are destructive gets, so there is no read row.
"""

from __future__ import annotations

from time import perf_counter

from ..harness import Case
from ..scratch import scratch_dir
from ..workloads import Dataset
from . import require

__all__ = ["append_one"]


def _open(kind: str, folder) -> object:
    persistqueue = require("persistqueue")
    if kind == "file":
        return persistqueue.Queue(str(folder / "queue"))
    return persistqueue.SQLiteQueue(str(folder / "queue"), auto_commit=True)


def _time_puts(kind: str, data: Dataset) -> float:
    with scratch_dir("persist-queue") as folder:
        queue = _open(kind, folder)
        put = queue.put
        start = perf_counter()
        for record in data.records:
            put(record)
        elapsed = perf_counter() - start
        del queue
        return elapsed


def append_one(kind: str) -> Case:
    name = {"file": "persist-queue Queue", "sqlite": "persist-queue SQLiteQueue"}[kind]
    return Case(
        name,
        run=lambda data: _time_puts(kind, data),
        max_records=(1_000, 2_000),
        note="put() of a (key, value) tuple",
    )
