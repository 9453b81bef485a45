"""Clocks that tell a test when another thread has started waiting on them.

A thread that waits on a clock holds the condition's lock while it does, so whatever
the test does after ``waiting`` is set (an append, a notify) comes after the wait
began: no sleep needed to order the two threads.
"""

from __future__ import annotations

import threading

from eventlog.clock import SystemClock
from eventlog.testing import ManualClock


class SignallingSystemClock(SystemClock):
    """The real clock; ``waiting`` is set once a thread blocks in a wait on it."""

    def __init__(self) -> None:
        self.waiting = threading.Event()

    def wait(self, condition: threading.Condition, timeout_ms: float | None) -> bool:
        self.waiting.set()  # the caller holds the condition: a notify cannot come first
        return super().wait(condition, timeout_ms)


class SignallingManualClock(ManualClock):
    """A ManualClock (without autojump) whose ``waiting`` is set once a thread waits."""

    def __init__(self) -> None:
        super().__init__(autojump=False)
        self.waiting = threading.Event()

    def wait(self, condition: threading.Condition, timeout_ms: float | None) -> bool:
        self.waiting.set()
        return super().wait(condition, timeout_ms)
