"""ManualClock: time that moves only when a test says so."""

from __future__ import annotations

import threading
import weakref

__all__ = ["ManualClock"]


class ManualClock:
    """A Clock whose time moves only by ``advance()`` / ``set()``.

    ``time_ms()`` starts at ``start_ms`` (a fixed date by default, so record
    timestamps are reproducible) and ``monotonic_ms()`` at 0; both move together.

    Waits with a timeout never sleep on the real clock. With ``autojump=True``
    (the default), a wait that nothing else can end jumps the clock to its
    deadline at once, so ``consumer.poll(timeout_ms=1000)`` on an idle topic
    returns immediately with time advanced by a second, as trio's MockClock
    autojump does. With ``autojump=False`` a wait blocks until another thread
    calls ``advance()`` past its deadline or the condition is notified.

    Thread-safe.
    """

    def __init__(self, start_ms: int = 1_700_000_000_000, *, autojump: bool = True) -> None:
        self._lock = threading.Lock()
        self._offset_ms = 0.0
        self._start_ms = start_ms
        self.autojump = autojump
        self._waiting: weakref.WeakSet[threading.Condition] = weakref.WeakSet()

    def time_ms(self) -> int:
        return self._start_ms + int(self._offset_ms)

    def monotonic_ms(self) -> float:
        return self._offset_ms

    def advance(self, ms: float) -> None:
        """Move time forward by ``ms`` milliseconds and wake every timed wait."""
        if ms < 0:
            raise ValueError(f"time only moves forward; got advance({ms})")
        with self._lock:
            self._offset_ms += ms
            waiting = list(self._waiting)
        for condition in waiting:
            with condition:
                condition.notify_all()

    def set(self, time_ms: int) -> None:
        """Move wall-clock time forward to ``time_ms``."""
        self.advance(time_ms - self.time_ms())

    def wait(self, condition: threading.Condition, timeout_ms: float | None) -> bool:
        """Wait on ``condition`` (caller holds its lock); see the class docstring."""
        if timeout_ms is not None and timeout_ms <= 0:
            return False
        if self.autojump and timeout_ms is not None:
            # One real, short wait lets another thread's notify land first; then jump.
            if condition.wait(0.0005):
                return True
            with self._lock:
                self._offset_ms += timeout_ms
            return False
        with self._lock:
            self._waiting.add(condition)
        return condition.wait()

    def __repr__(self) -> str:
        return f"ManualClock(time_ms={self.time_ms()}, autojump={self.autojump})"
