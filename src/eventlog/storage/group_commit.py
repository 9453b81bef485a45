"""GroupCommit: when the fdatasyncs of a partition under fsync="always" run, and who
waits for which (PostgreSQL's and Kafka's group commit); the log says what one covers.

Threads that appended a batch call ``wait_for(end)`` without the partition lock and
return once every offset below ``end`` is on disk:

* One fdatasync runs at a time, without the group's lock (and with the GIL
  released). It covers every batch appended before it started, and each waiter
  returns as soon as the first fsync that covers it ends, never queued behind an
  fsync that started after its batch was appended.
* The next fsync waits for its group: the threads that were in ``wait_for`` when
  the last one ended. Those it released are appending their next batch; without
  the wait, four threads split into two halves that alternate, each fsync
  covering two batches instead of four. The thread whose arrival completes the
  group starts the fsync itself (it is running: no wake-up before the disk gets
  work). If the group does not complete within ``gather_seconds`` of the first
  arrival (a thread stopped sending), the first to arrive starts it, and the next
  group is the smaller one that fsync saw. A single thread is a group of one:
  nothing waits.

Only how many batches one fsync covers depends on timing, never what is on disk
when ``wait_for`` returns: that is decided by the log (``SyncTarget``), which
records what each fsync covered.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from ..errors import StorageError

__all__ = ["GroupCommit", "SyncTarget", "gather_seconds", "gather_seconds_max"]

# How long the next fsync waits for its group, at most.
gather_seconds_max = 0.002


def gather_seconds(sync_seconds: float) -> float:
    """How long the next fsync waits for its group, given how long the last one took:
    no longer than that (waiting for a thread that does not come back costs at most
    one fsync's time), and at most ``gather_seconds_max``."""
    return min(sync_seconds, gather_seconds_max)


class SyncTarget(Protocol):
    """What the group commit uses of the log (PartitionLog). The three sync methods
    run in this order for each fsync; ``start`` and ``finish`` with the group's lock
    held, ``sync`` without it."""

    synced_offset: int  # offsets below it are on disk

    def refuse_if_failed(self) -> None:
        """Raise StorageError if an earlier fsync failed (the log refuses writes)."""
        ...

    def sync_start(self) -> Any:
        """What the next fsync covers: a token for ``sync_data``/``sync_finish``."""
        ...

    def sync_data(self, token: Any) -> None:
        """Run the fsync (StorageError if it fails)."""
        ...

    def sync_finish(self, token: Any, error: StorageError | None) -> None:
        """Record the fsync's outcome: advance ``synced_offset``, or raise ``error``."""
        ...


class GroupCommit:
    """The group commit of one log. See the module docstring. Thread-safe."""

    __slots__ = (
        "_arrived", "_done", "_gather_seconds", "_gather_until", "_group", "_syncing",
        "_threads", "log",
    )

    def __init__(self, log: SyncTarget) -> None:
        self.log = log
        self._done = threading.Condition(threading.Lock())  # notified when an fsync ends
        self._syncing = False  # an fdatasync is in flight
        self._threads = 0  # threads in ``wait_for``, waiting or syncing
        self._arrived = 0  # threads that came to ``wait_for`` since the last fsync started
        self._group = 1  # ``_threads`` when the last fsync ended
        self._gather_until = 0.0  # perf_counter time the group's wait ends (0: none yet)
        self._gather_seconds = 0.0  # gather_seconds() of the last fsync's duration

    def wait_for(self, offset: int) -> None:
        """Return once every offset below ``offset`` is on disk. StorageError if the
        fsync that was to cover it failed (or an earlier one did).

        Cost: one fsync shared with the group, or none if one that covers ``offset``
        is in flight; at most ``gather_seconds`` of waiting for the group.
        Thread safety: thread-safe; call it without the partition lock.
        """
        log = self.log
        done = self._done
        with done:
            self._threads += 1
            self._arrived += 1
            timer = False  # this thread keeps the group's time
            try:
                while log.synced_offset < offset:
                    log.refuse_if_failed()
                    if self._syncing:
                        done.wait()  # woken when the fsync in flight ends
                        continue
                    if self._arrived < self._group:  # gather the group first
                        if self._gather_until == 0.0:  # the first to arrive keeps the time
                            self._gather_until = time.perf_counter() + self._gather_seconds
                            timer = True
                        if not timer:
                            done.wait()  # woken when an fsync ends (or the timer leaves)
                            continue
                        remaining = self._gather_until - time.perf_counter()
                        if remaining > 0:
                            done.wait(remaining)
                            continue
                    self._sync_locked()
                    return  # at most one fsync each (a truncation may have cut ``offset``)
            finally:
                self._threads -= 1
                if timer and self._gather_until != 0.0 and not self._syncing:
                    self._gather_until = 0.0  # left without starting it (an exception):
                    done.notify_all()  # the others gather again

    def _sync_locked(self) -> None:
        """Run one fsync for the group. The lock is held, and released while the fsync
        runs so that other threads append and queue for the next one."""
        log = self.log
        done = self._done
        self._syncing = True
        self._arrived = 0
        self._gather_until = 0.0
        token = log.sync_start()  # what it covers: decided before the fsync starts
        error: StorageError | None = None
        done.release()
        try:
            started = time.perf_counter()
            log.sync_data(token)
            self._gather_seconds = gather_seconds(time.perf_counter() - started)
        except StorageError as exc:
            error = exc
        finally:
            done.acquire()
            self._syncing = False
            self._group = group = self._threads  # this thread and every waiter
            if group > 1:
                done.notify_all()
        log.sync_finish(token, error)
