"""The maintenance thread of an EventLog: interval fsyncs, registered tasks, retention and
compaction; and the retention and compaction passes over every partition."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from ..errors import ClosedError, CorruptLogError, StorageError
from ..storage.cleaner import CleanerStats
from .partition import Partition

__all__ = ["MaintainedLog", "Maintenance", "compaction_pass", "retention_pass"]

_log = logging.getLogger("eventlog.broker")

maintenance_interval_ms_max = 1000


class MaintainedLog(Protocol):
    """What the maintenance thread needs of its log."""

    @property
    def closed(self) -> bool: ...

    def partitions(self) -> list[Partition]: ...

    def run_retention(self, now_ms: int | None = None) -> int: ...

    def compact_in_background(self) -> int: ...


class Maintenance:
    """The background thread of one log, started by ``start()`` and stopped by
    ``stop()``: every ``min(flush_interval_ms, 1 s)`` it fsyncs (``fsync="interval"``)
    and runs the registered tasks (the transaction coordinator's timeouts); every
    ``retention_check_interval_ms`` it runs retention and then compaction.

    Thread-safe: ``register`` may be called from any thread.
    """

    def __init__(self, log: MaintainedLog, *, name: str, flush_interval_ms: int,
                 retention_check_interval_ms: int, interval_fsync: bool) -> None:
        self._log = log
        self._period_s = min(flush_interval_ms, maintenance_interval_ms_max) / 1000.0
        self._retention_interval_ms = retention_check_interval_ms
        self._interval_fsync = interval_fsync
        self._tasks: tuple[Callable[[], None], ...] = ()
        self._tasks_lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def register(self, task: Callable[[], None]) -> None:
        """Run ``task()`` at every tick of the thread, until the log closes. A task that
        raises ClosedError or StorageError once the log is closed ends the thread
        quietly; any other error propagates (and ends the thread)."""
        with self._tasks_lock:
            self._tasks = (*self._tasks, task)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (unless called from it)."""
        self._stop.set()
        if threading.current_thread() is not self.thread and self.thread.is_alive():
            self.thread.join()

    def _run(self) -> None:
        log = self._log
        last_retention = time.monotonic()
        while not self._stop.wait(self._period_s):
            try:
                if self._interval_fsync:
                    for p in log.partitions():
                        p.flush()
                for task in self._tasks:
                    task()
                if (time.monotonic() - last_retention) * 1000 >= self._retention_interval_ms:
                    last_retention = time.monotonic()
                    log.run_retention()
                    # A partition that cannot be cleaned must not stop the fsyncs and
                    # retention of every other partition.
                    log.compact_in_background()
            except (ClosedError, StorageError):
                if log.closed:
                    return
                raise


def retention_pass(partitions: Iterable[Partition], now_ms: int) -> int:
    """Apply retention to every partition whose cleanup policy deletes; returns the
    number of segments deleted."""
    deleted = 0
    for p in partitions:
        if "delete" in p.config.cleanup_policy:
            deleted += p.apply_retention(now_ms)
    return deleted


def compaction_pass(partitions: Iterable[Partition], now_ms: int, *, background: bool,
                    stats: list[CleanerStats]) -> int:
    """Clean every compacted partition where it is due; returns the records removed and
    appends each partition's CleanerStats to ``stats``. In the ``background`` the
    storage errors of one partition (a corrupt segment, a full disk) are logged and
    the others go on: it is tried again at the next interval. Otherwise a
    CorruptLogError is raised once the other partitions were cleaned, and any other
    StorageError at once. A partition closed meanwhile (a deleted topic) is skipped."""
    removed = 0
    corrupt: CorruptLogError | None = None
    for p in partitions:
        if not p.config.compacted:
            continue
        try:
            stats.append(p.compact(now_ms))
            removed += stats[-1].records_removed
        except ClosedError:
            if not p.closed:
                raise  # the partition is open: not a deleted topic
        except StorageError as exc:
            if background:
                _log.warning("compacting %s-%d failed: %s", p.topic, p.index, exc)
            elif isinstance(exc, CorruptLogError):
                corrupt = corrupt or exc
            else:
                raise
    if corrupt is not None:
        raise corrupt
    return removed
