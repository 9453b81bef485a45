"""Where time comes from.

Everything in eventlog that depends on time (retention, segment rolling,
linger, session and poll-interval timeouts, auto-commit) reads one injectable
:class:`Clock`, so tests can move time instead of sleeping. ``ManualClock``
lives in :mod:`eventlog.testing`.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of wall-clock and monotonic time, and a way to wait on a condition."""

    def time_ms(self) -> int:
        """Wall-clock time in milliseconds since the epoch (record timestamps).

        Cost: O(1); one clock read.
        Thread safety: any thread.
        Raises: nothing.
        """
        ...

    def monotonic_ms(self) -> float:
        """A monotonic time in milliseconds (timeouts, linger, sessions).

        Cost: O(1); one clock read.
        Thread safety: any thread.
        Raises: nothing.
        """
        ...

    def wait(self, condition: threading.Condition, timeout_ms: float | None) -> bool:
        """Wait on ``condition`` (whose lock the caller holds) for at most ``timeout_ms``.

        Returns False if the wait timed out. A manual clock returns as soon as it
        is advanced past the deadline, so tests never sleep.

        Cost: blocks up to ``timeout_ms`` (None: until notified); O(1) otherwise.
        Thread safety: any thread holding ``condition``'s lock, as Condition.wait.
        Raises: RuntimeError if the caller does not hold the lock.
        """
        ...


class SystemClock:
    """The real clock: ``time.time()`` and ``time.monotonic()``."""

    __slots__ = ()

    def time_ms(self) -> int:
        """``time.time_ns()`` in whole milliseconds.

        Cost: O(1); one clock read.
        Thread safety: any thread.
        Raises: nothing.
        """
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> float:
        """``time.monotonic()`` in milliseconds.

        Cost: O(1); one clock read.
        Thread safety: any thread.
        Raises: nothing.
        """
        return time.monotonic() * 1000.0

    def wait(self, condition: threading.Condition, timeout_ms: float | None) -> bool:
        """``condition.wait`` for ``timeout_ms`` (negative: no wait); False on timeout.

        Cost: blocks up to ``timeout_ms`` of real time (None: until notified).
        Thread safety: any thread holding ``condition``'s lock.
        Raises: RuntimeError if the caller does not hold the lock.
        """
        return condition.wait(None if timeout_ms is None else max(0.0, timeout_ms) / 1000.0)

    def __repr__(self) -> str:
        return "SystemClock()"
