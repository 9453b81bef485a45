"""``FaultyFiles``: disk faults on demand, for tests of code that must survive them.

Pass one to ``eventlog.open(path, files=FaultyFiles())`` and every file-system
call of the log's storage goes through it. Plan faults by operation name, and
optionally by the path they touch::

    files = FaultyFiles()
    log = eventlog.open(tmp_path, files=files)
    files.disk_full()                  # allocations and writes: ENOSPC
    files.fail("fsync", errno.EIO)     # the next fsync fails
    files.fail("pwrite", short=True, path=".index")  # the next index write is short
    files.clear()                      # the disk works again

Nothing is simulated beyond the failure itself: a call that does not fail
goes to the operating system unchanged, so the files on disk are real and a
reopened log reads what the faulty run left (SQLite's test VFS and
TigerBeetle's storage fault injection work the same way). ``injected`` lists
the faults raised, in order.
"""

from __future__ import annotations

import errno as errno_codes
import mmap
import os
import random
import threading
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ..storage.files import Files

__all__ = ["FaultyFiles", "file_operations"]

# The operations of ``Files`` a fault can be planned for.
file_operations = (
    "open", "pwrite", "allocate", "ftruncate", "fsync", "mmap", "resize", "msync",
    "replace", "rename", "unlink", "makedirs", "rmdir", "rmtree", "pread", "listdir",
)
# What a full disk fails: every call that may need a new block.
_full_disk_operations = ("allocate", "pwrite", "makedirs")


@dataclass
class _Plan:
    operation: str
    error: int
    path: str | None  # a substring of the path the call touches; None: any
    after: int  # matching calls to let through first
    times: int | None  # how many to fail; None: until cleared
    short: bool  # pwrite only: write half, report it, and do not raise

    def matches(self, operation: str, path: str | None) -> bool:
        if operation != self.operation:
            return False
        return self.path is None or (path is not None and self.path in path)


class FaultyFiles(Files):
    """A ``Files`` whose calls fail when told to (see the module docstring).

    Thread-safe: the log's maintenance thread and a producer's flusher call it
    too. ``calls`` counts every call by operation name.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: list[_Plan] = []
        self._random: random.Random | None = None
        self._probability = 0.0
        self._random_operations: tuple[str, ...] = ()
        self._random_errors: tuple[int, ...] = ()
        self._fd_paths: dict[int, str] = {}
        self._map_paths: weakref.WeakKeyDictionary[mmap.mmap, str] = weakref.WeakKeyDictionary()
        self.calls: Counter[str] = Counter()
        self.injected: list[tuple[str, str | None, int]] = []  # (operation, path, errno)

    # ------------------------------------------------------------------ planning

    def fail(
        self,
        operation: str,
        error: int = errno_codes.EIO,
        *,
        path: str | None = None,
        after: int = 0,
        times: int | None = 1,
        short: bool = False,
    ) -> None:
        """Fail ``operation`` (a name in ``file_operations``) with errno ``error``:
        let ``after`` matching calls through, then fail the next ``times`` (None:
        every one until ``clear``). ``path``: only calls whose path contains it.
        ``short=True`` (pwrite only) writes half of the data and returns that count
        instead of raising, as a kernel may."""
        if operation not in file_operations:
            raise ValueError(
                f"unknown file operation {operation!r}; one of: {', '.join(file_operations)}"
            )
        if short and operation != "pwrite":
            raise ValueError("short=True applies to 'pwrite' only")
        if after < 0 or (times is not None and times < 1):
            raise ValueError(f"after must be >= 0 and times >= 1 or None, got {after}, {times}")
        with self._lock:
            self._plans.append(_Plan(operation, error, path, after, times, short))

    def disk_full(self, *, path: str | None = None) -> None:
        """From now until ``clear``: every call that may need a new disk block
        (allocate, pwrite, makedirs) fails with ENOSPC."""
        for operation in _full_disk_operations:
            self.fail(operation, errno_codes.ENOSPC, path=path, times=None)

    def fail_randomly(
        self,
        probability: float,
        *,
        seed: int = 0,
        operations: Iterable[str] = ("pwrite", "allocate", "fsync", "msync", "replace",
                                     "ftruncate"),
        errors: Iterable[int] = (errno_codes.ENOSPC, errno_codes.EIO),
    ) -> None:
        """Fail each call of ``operations`` with that probability (a seeded draw, so
        a run repeats), with an errno drawn from ``errors``."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        operations = tuple(operations)
        unknown = set(operations) - set(file_operations)
        if unknown:
            raise ValueError(f"unknown file operations {sorted(unknown)}")
        with self._lock:
            self._random = random.Random(seed)
            self._probability = probability
            self._random_operations = operations
            self._random_errors = tuple(errors)

    def clear(self) -> None:
        """No more faults: every later call goes to the operating system."""
        with self._lock:
            self._plans.clear()
            self._random = None
            self._probability = 0.0

    # ------------------------------------------------------------------ injection

    def _check(self, operation: str, path: str | None) -> bool:
        """Raise the planned fault for this call, if any. True: a short write."""
        with self._lock:
            self.calls[operation] += 1
            for plan in self._plans:
                if not plan.matches(operation, path):
                    continue
                if plan.after:
                    plan.after -= 1
                    continue
                if plan.times is not None:
                    plan.times -= 1
                    if plan.times == 0:
                        self._plans.remove(plan)
                self.injected.append((operation, path, plan.error))
                if plan.short:
                    return True
                raise OSError(plan.error, f"{os.strerror(plan.error)} (injected)", path)
            rng = self._random
            if (rng is not None and operation in self._random_operations
                    and rng.random() < self._probability):
                code = rng.choice(self._random_errors)
                self.injected.append((operation, path, code))
                raise OSError(code, f"{os.strerror(code)} (injected)", path)
        return False

    def _fd_path(self, fd: int) -> str | None:
        return self._fd_paths.get(fd)

    # ------------------------------------------------------------------ Files

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        self._check("open", path)
        fd = super().open(path, flags, mode)
        self._fd_paths[fd] = path
        return fd

    def open_directory(self, path: str) -> int:
        self._check("open", path)
        fd = super().open_directory(path)
        self._fd_paths[fd] = path
        return fd

    def close(self, fd: int) -> None:
        self._fd_paths.pop(fd, None)
        super().close(fd)

    def pread(self, fd: int, length: int, position: int) -> bytes:
        self._check("pread", self._fd_path(fd))
        return super().pread(fd, length, position)

    def pwrite(self, fd: int, data: bytes | memoryview, position: int) -> int:
        if self._check("pwrite", self._fd_path(fd)) and len(data) > 1:
            return super().pwrite(fd, memoryview(data)[: len(data) // 2], position)
        return super().pwrite(fd, data, position)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """Planned as "pwrite" (the same promise; ``short`` writes half)."""
        if self._check("pwrite", self._fd_path(fd)) and len(data) > 1:
            return super().write(fd, memoryview(data)[: len(data) // 2])
        return super().write(fd, data)

    def allocate(self, fd: int, offset: int, length: int) -> None:
        if length > 0:
            self._check("allocate", self._fd_path(fd))
        super().allocate(fd, offset, length)

    def ftruncate(self, fd: int, size: int) -> None:
        self._check("ftruncate", self._fd_path(fd))
        super().ftruncate(fd, size)

    def fsync(self, fd: int) -> None:
        self._check("fsync", self._fd_path(fd))
        super().fsync(fd)

    def fdatasync(self, fd: int) -> None:
        self._check("fsync", self._fd_path(fd))  # planned as "fsync": the same promise
        super().fdatasync(fd)

    def mmap(self, fd: int, size: int) -> mmap.mmap:
        path = self._fd_path(fd)
        self._check("mmap", path)
        mapped = super().mmap(fd, size)
        if path is not None:
            self._map_paths[mapped] = path
        return mapped

    def mmap_read_only(self, fd: int, size: int) -> mmap.mmap:
        self._check("mmap", self._fd_path(fd))  # planned as "mmap"
        return super().mmap_read_only(fd, size)

    def resize(self, mapped: mmap.mmap, size: int) -> None:
        self._check("resize", self._map_paths.get(mapped))
        super().resize(mapped, size)

    def msync(self, mapped: mmap.mmap) -> None:
        self._check("msync", self._map_paths.get(mapped))
        super().msync(mapped)

    def replace(self, source: str, target: str) -> None:
        self._check("replace", target)
        super().replace(source, target)

    def rename(self, source: str, target: str) -> None:
        self._check("rename", target)
        super().rename(source, target)

    def unlink(self, path: str) -> None:
        self._check("unlink", path)
        super().unlink(path)

    def makedirs(self, path: str) -> None:
        if not os.path.isdir(path):  # an existing directory needs no block
            self._check("makedirs", path)
        super().makedirs(path)

    def listdir(self, path: str) -> list[str]:
        self._check("listdir", path)
        return super().listdir(path)

    def rmdir(self, path: str) -> None:
        self._check("rmdir", path)
        super().rmdir(path)

    def rmtree(self, path: str) -> None:
        self._check("rmtree", path)
        super().rmtree(path)
