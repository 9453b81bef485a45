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
        """Wall-clock time in milliseconds since the epoch (record timestamps)."""
        ...

    def monotonic_ms(self) -> float:
        """A monotonic time in milliseconds (timeouts, linger, sessions)."""
        ...

    def wait(self, condition: threading.Condition, timeout_ms: float | None) -> bool:
        """Wait on ``condition`` (whose lock the caller holds) for at most ``timeout_ms``.

        Returns False if the wait timed out. A manual clock returns as soon as it
        is advanced past the deadline, so tests never sleep.
        """
        ...


class SystemClock:
    """The real clock: ``time.time()`` and ``time.monotonic()``."""

    __slots__ = ()

    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> float:
        return time.monotonic() * 1000.0

    def wait(self, condition: threading.Condition, timeout_ms: float | None) -> bool:
        return condition.wait(None if timeout_ms is None else max(0.0, timeout_ms) / 1000.0)

    def __repr__(self) -> str:
        return "SystemClock()"
