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
  work). If the group does not complete within ``gather_seconds`` of its first
  arrival (a thread stopped sending), that first arrival, the only waiter with a
  timeout, starts it, and the next group is the smaller one that fsync saw. A
  single thread is a group of one: nothing waits.

Each waiter sleeps on a lock of its own thread's (made once per thread, reused),
which only the fsync that releases it (or, for the gather's first arrival, its
timeout) ends, so a thread wakes once per fsync it waits for: nothing notifies
the group's waiters while it gathers. The fsync's thread records the outcome
before it releases the waiters, and a released waiter whose offset is on disk
returns without taking the group's lock again.

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


def gather_seconds(sync_seconds: float, gathered_seconds: float = 0.0) -> float:
    """How long the next fsync waits for its group, given how long the last one took
    and how long the last group that completed took to gather: twice the longer of
    the two (the group's threads are slowed by the machine's load as much as the
    disk is), at most ``gather_seconds_max``. Waiting for a thread that does not
    come back costs at most that, once: the group after is smaller."""
    return min(2.0 * max(sync_seconds, gathered_seconds), gather_seconds_max)


class SyncTarget(Protocol):
    """What the group commit uses of the log (PartitionLog). The three sync methods
    run in this order for each fsync; ``start`` and ``finish`` with the group's lock
    held, ``sync`` without it."""

    synced_offset: int  # offsets below it are on disk

    def refuse_if_failed(self) -> None:
        """Raise StorageError if an earlier fsync failed (the log refuses writes)."""
        ...

    def sync_start(self) -> tuple[int, Any]:
        """What the next fsync covers: the end offset it covers (every offset below it
        was appended before it starts), and a token for ``sync_data``/``sync_finish``."""
        ...

    def sync_data(self, token: Any) -> None:
        """Run the fsync (StorageError if it fails)."""
        ...

    def sync_finish(self, token: Any, error: StorageError | None) -> None:
        """Record the fsync's outcome: advance ``synced_offset``, or raise ``error``."""
        ...


_local = threading.local()


def _waiter() -> Any:
    """This thread's waiter: a lock it holds while it is not waiting. To wait, the
    thread queues it and acquires it again; whoever takes it off the queue releases
    it, exactly once. Made once per thread."""
    try:
        return _local.waiter
    except AttributeError:
        lock = _local.waiter = threading.Lock()
        lock.acquire()
        return lock


class GroupCommit:
    """The group commit of one log. See the module docstring. Thread-safe."""

    __slots__ = (
        "_deadline", "_first_arrival", "_flight", "_flight_end", "_gather", "_gathered",
        "_group", "_lock", "_next", "_syncing", "_timer", "log",
    )

    def __init__(self, log: SyncTarget) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._syncing = False  # an fdatasync is in flight
        self._flight_end = 0  # the end offset the fsync in flight covers
        self._flight: list[Any] = []  # waiters the fsync in flight covers
        self._next: list[Any] = []  # waiters for the next fsync (the group so far)
        self._group = 1  # threads in ``wait_for`` when the last fsync ended
        self._deadline = 0.0  # perf_counter time the gather ends (0: no gather)
        self._first_arrival = 0.0  # perf_counter time the group's first waiter came
        self._gather = 0.0  # gather_seconds() after the last fsync
        self._gathered = 0.0  # how long the last group that completed took to gather
        self._timer: Any = None  # the waiter of ``_next`` that waits with a timeout

    def wait_for(self, offset: int) -> None:
        """Return once every offset below ``offset`` is on disk. StorageError if the
        fsync that was to cover it failed (or an earlier one did).

        Cost: one fsync shared with the group, or none if one that covers ``offset``
        is in flight; at most ``gather_seconds`` of waiting for the group.
        Thread safety: thread-safe; call it without the partition lock.
        """
        log = self.log
        if log.synced_offset >= offset:
            return
        waiter = _waiter()
        lock = self._lock
        lock.acquire()
        held = True
        try:
            while log.synced_offset < offset:
                log.refuse_if_failed()
                timeout = -1.0
                if self._syncing:
                    # Covered by the fsync in flight: its end. Otherwise the next
                    # fsync's group, without a wake-up when this one ends (its first
                    # looks in now and then, in case the group never completes).
                    queue = self._flight if offset <= self._flight_end else self._next
                    if queue is self._next and self._timer is None:
                        self._timer = waiter
                        timeout = gather_seconds_max
                else:
                    now = time.perf_counter()
                    deadline = self._deadline
                    complete = len(self._next) + 1 >= self._group
                    if complete or (deadline != 0.0 and now >= deadline):
                        if complete and deadline != 0.0:
                            self._gathered = now - self._first_arrival
                        self._sync_locked()
                        return  # at most one fsync each (a truncation may have cut ``offset``)
                    queue = self._next
                    if self._timer is None:  # the group's first: it keeps the time
                        if deadline == 0.0:
                            self._first_arrival = now
                            deadline = self._deadline = now + self._gather
                        self._timer = waiter
                        timeout = deadline - now
                queue.append(waiter)
                lock.release()
                held = False
                try:
                    released = waiter.acquire(True, timeout)
                except BaseException:  # interrupted (KeyboardInterrupt): leave no trace
                    lock.acquire()
                    held = True
                    self._unqueue(waiter)
                    if self._timer is None and self._next:  # hand the time on
                        self._deadline = 0.0
                        self._next.pop(0).release()
                    raise
                if released and log.synced_offset >= offset:
                    return  # the common path: the outcome is recorded, no lock needed
                lock.acquire()
                held = True
                if not released:  # the gather's time ran out (or ran out late)
                    self._unqueue(waiter)
        finally:
            if held:
                lock.release()

    def _unqueue(self, waiter: Any) -> None:
        """Take ``waiter`` off its queue, or take back the release that already did."""
        if self._timer is waiter:
            self._timer = None
        if waiter in self._next:
            self._next.remove(waiter)
        elif waiter in self._flight:
            self._flight.remove(waiter)
        else:  # released after its timeout, before the lock was taken
            waiter.acquire()

    def _sync_locked(self) -> None:
        """Run one fsync for the group. The lock is held, and released while the fsync
        runs so that other threads append and queue for the next one."""
        log = self.log
        lock = self._lock
        self._syncing = True
        self._deadline = 0.0
        flight = self._flight = self._next
        self._next = []
        timer = self._timer
        if timer is not None:  # the gather's first waits with a timeout: end it now,
            self._timer = None  # while the disk works, not during the next gather
            if timer in flight:
                flight.remove(timer)
                timer.release()
        self._flight_end, token = log.sync_start()  # decided before the fsync starts
        error: StorageError | None = None
        sync_seconds = 0.0
        lock.release()
        try:
            try:
                started = time.perf_counter()
                log.sync_data(token)
                sync_seconds = time.perf_counter() - started
            except StorageError as exc:
                error = exc
            finally:
                lock.acquire()
                self._syncing = False
            log.sync_finish(token, error)  # first: a released waiter reads the outcome
        finally:
            self._group = len(flight) + 1 + len(self._next)  # every thread waiting now
            self._gather = gather_seconds(sync_seconds, self._gathered)
            if self._next:  # some came while it ran: the gather starts now
                self._first_arrival = now = time.perf_counter()
                self._deadline = now + self._gather
            self._flight = []
            for waiter in flight:
                waiter.release()
