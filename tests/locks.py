"""Lock doubles for tests that must see, without sleeping, that a thread is waiting."""

from __future__ import annotations

import threading


class ContentionLock:
    """A lock that sets ``progress`` when an acquire has to wait for another holder."""

    def __init__(self, progress: threading.Event) -> None:
        self._lock = threading.Lock()
        self._progress = progress

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(False):
            return True
        if not blocking:
            return False
        self._progress.set()
        return self._lock.acquire(True, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
