"""DataSignal: the one counter every append of an EventLog bumps, and what consumers wait on."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from ..clock import Clock

__all__ = ["DataSignal"]


class DataSignal:
    """A counter that every append bumps, and a condition notified only while someone
    waits. One per EventLog, shared by its partitions.

    Each bump stores a number no bump stored before (``next(counter)``, atomic), so a
    waiter that compares ``version`` with the value it read sees every later append.
    An unlocked ``version += 1`` did not: appends to two partitions could both read n
    and store n + 1, or a stale store could move the counter back to a value a waiter
    had read, and the waiter then slept through an append until its timeout. The
    value may move back (a bump that took n stores it after one that took n + 1);
    only inequality means anything.
    """

    __slots__ = ("cond", "counter", "version", "waiters")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.counter = itertools.count(1)
        self.version = 0
        self.waiters = 0

    def bump(self) -> None:
        """Count one append and wake the waiters, if any. Thread-safe. O(1): no lock
        unless someone waits."""
        self.version = next(self.counter)
        if self.waiters:
            self.notify()

    def notify(self) -> None:
        """Wake every waiter."""
        with self.cond:
            self.cond.notify_all()

    def wait(self, version: int, timeout_ms: float | None, clock: Clock,
             closed: Callable[[], bool]) -> bool:
        """Block until the counter moved from ``version``, ``timeout_ms`` passed (on
        ``clock``) or ``closed()``; returns whether it moved. Thread-safe."""
        deadline = None if timeout_ms is None else clock.monotonic_ms() + timeout_ms
        with self.cond:
            self.waiters += 1
            try:
                while self.version == version and not closed():
                    remaining = None if deadline is None else deadline - clock.monotonic_ms()
                    if remaining is not None and remaining <= 0:
                        return False
                    clock.wait(self.cond, remaining)
                return self.version != version
            finally:
                self.waiters -= 1
