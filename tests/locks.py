"""Lock doubles for tests that must see, without sleeping, that a thread is waiting."""

from __future__ import annotations

import threading


class _LockDouble:
    """A ``threading.Lock`` stand-in; subclasses watch ``acquire``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        raise NotImplementedError


class ContentionLock(_LockDouble):
    """A lock that sets ``progress`` when an acquire has to wait for another holder."""

    def __init__(self, progress: threading.Event) -> None:
        super().__init__()
        self._progress = progress

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(False):
            return True
        if not blocking:
            return False
        self._progress.set()
        return self._lock.acquire(True, timeout)


class ThreadWatchLock(_LockDouble):
    """A lock that sets ``wanted`` when the thread named ``thread_name`` starts to take it."""

    def __init__(self, thread_name: str) -> None:
        super().__init__()
        self._name = thread_name
        self.wanted = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if threading.current_thread().name == self._name:
            self.wanted.set()
        return self._lock.acquire(blocking, timeout)
