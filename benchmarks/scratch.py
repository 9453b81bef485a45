"""Scratch directories under /tmp for one run or one case, always removed afterwards."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["make_dir", "remove_dir", "scratch_dir"]

_live: set[Path] = set()


def make_dir(label: str = "bench") -> Path:
    """A new empty directory under /tmp; removed by ``remove_dir`` or at exit."""
    path = Path(tempfile.mkdtemp(prefix=f"eventlog-{label}-", dir="/tmp"))
    _live.add(path)
    return path


def remove_dir(path: Path) -> None:
    _live.discard(path)
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(label: str = "bench") -> Iterator[Path]:
    path = make_dir(label)
    try:
        yield path
    finally:
        remove_dir(path)


@atexit.register
def _remove_leftovers() -> None:
    for path in list(_live):
        remove_dir(path)
