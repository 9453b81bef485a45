"""queuelib's ``FifoDiskQueue``: push one record per call, pop them all back.

A record is pushed as ``key + value`` (116 bytes; the key is fixed-width). The queue
never fsyncs. Pops are destructive, so each read run pops from a fresh copy of a
queue built once (the copy is untimed; opening and popping are timed).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from time import perf_counter

from ..harness import Case
from ..scratch import make_dir, remove_dir, scratch_dir
from ..workloads import Dataset
from . import require

__all__ = ["append_one", "read_seq"]

_SYSTEM = "queuelib FifoDiskQueue"


def _frames(data: Dataset) -> list[bytes]:
    return [key + value for key, value in data.records]


def _time_pushes(frames: list[bytes]) -> float:
    queuelib = require("queuelib")
    with scratch_dir("queuelib") as folder:
        queue = queuelib.FifoDiskQueue(str(folder / "queue"))
        push = queue.push
        start = perf_counter()
        for frame in frames:
            push(frame)
        elapsed = perf_counter() - start
        queue.close()
        return elapsed


def append_one() -> Case:
    return Case(_SYSTEM, setup=_frames, run=_time_pushes, note="push() per record")


def _build(data: Dataset) -> tuple[Path, int]:
    queuelib = require("queuelib")
    folder = make_dir("queuelib")
    queue = queuelib.FifoDiskQueue(str(folder / "queue"))
    for frame in _frames(data):
        queue.push(frame)
    queue.close()
    return folder, len(data)


def _time_pops(state: tuple[Path, int]) -> float:
    queuelib = require("queuelib")
    folder, expected = state
    with scratch_dir("queuelib") as copy:
        shutil.copytree(folder / "queue", copy / "queue")
        start = perf_counter()
        queue = queuelib.FifoDiskQueue(str(copy / "queue"))
        pop = queue.pop
        count = 0
        while pop() is not None:
            count += 1
        elapsed = perf_counter() - start
        queue.close()
    if count != expected:
        raise RuntimeError(f"popped {count}, expected {expected}")
    return elapsed


def read_seq() -> Case:
    return Case(
        _SYSTEM,
        setup=_build,
        run=_time_pops,
        teardown=lambda state: remove_dir(state[0]),
        note="pop() per record (destructive; from a fresh copy)",
    )
