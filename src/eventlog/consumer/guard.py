"""ThreadGuard: one thread at a time uses a consumer, and close() may come from any thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ClosedError, IllegalStateError

__all__ = ["ThreadGuard"]


class ThreadGuard:
    """The consumer's lock and closed flags (Kafka's single-thread rule, made an error).

    A second thread calling while one holds the guard gets IllegalStateError; once
    close() began, every thread but the closing one (whose callbacks may still use
    the consumer) gets ClosedError.
    """

    __slots__ = ("_closer", "_lock", "close_requested", "closed")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.closed = False
        self.close_requested = False
        self._closer = 0  # the thread running close()

    def ensure_open(self) -> None:
        """ClosedError if the consumer is closed (or closing, to other threads)."""
        if self.closed or (self.close_requested and threading.get_ident() != self._closer):
            raise ClosedError("this consumer is closed; create a new one")

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the consumer for one call; IllegalStateError if another thread holds it."""
        if not self._lock.acquire(blocking=False):
            self.ensure_open()  # close() from another thread holds the lock
            raise IllegalStateError(
                "this Consumer is being used by another thread; a Consumer is not safe for "
                "concurrent use: give each thread its own consumer"
            )
        try:
            self.ensure_open()
            yield
        finally:
            self._lock.release()

    def begin_close(self, timeout_s: float) -> bool:
        """Mark the consumer closing (from this thread) and wait up to ``timeout_s`` for
        the thread using it; True if this thread holds it now (then call release())."""
        self._closer = threading.get_ident()
        self.close_requested = True
        return self._lock.acquire(timeout=timeout_s)

    def release(self) -> None:
        self._lock.release()
