"""DataSignal: the one counter every append of an EventLog bumps, and what consumers wait on."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..clock import Clock

__all__ = ["DataSignal"]


class DataSignal:
    """A counter that every append bumps, and a condition notified only while someone
    waits. One per EventLog, shared by its partitions.

    ``bump()`` increments under the condition's lock: appends to two partitions run
    in parallel, and an unlocked ``version += 1`` could lose one of the increments
    (both read the same value) or move the counter back (a stale write after a
    newer one), so a waiter that compared with the value it read could sleep
    through an append until its timeout.
    """

    __slots__ = ("cond", "version", "waiters")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.version = 0
        self.waiters = 0

    def bump(self) -> None:
        """Count one append and wake the waiters, if any. Thread-safe. O(1): one
        uncontended lock."""
        with self.cond:
            self.version += 1
            if self.waiters:
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
