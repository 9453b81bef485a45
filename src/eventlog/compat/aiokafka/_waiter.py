"""Parking a coroutine until a log gets new data, without a thread per call.

One daemon thread per log (started on demand, gone when nothing waits) blocks in
``EventLog.wait_for_data`` and resolves the waiting coroutines' futures through their
loops' ``call_soon_threadsafe``. Group changes bump the log's data version too, so a
rebalance wakes them as well.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

from ...broker import EventLog

_waiters: weakref.WeakKeyDictionary[EventLog, DataWaiter] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class DataWaiter:
    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._pending: list[tuple[asyncio.AbstractEventLoop, asyncio.Future, int]] = []
        self._thread: threading.Thread | None = None

    def wait(self, version: int) -> asyncio.Future:
        """A future that completes once the log's data version differs from ``version``."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            if self._log.closed or self._log.data_version != version:
                fut.set_result(None)
                return fut
            self._pending.append((loop, fut, version))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="eventlog-aio-waiter")
                self._thread.start()
        return fut

    def _run(self) -> None:
        log = self._log
        while True:
            with self._lock:
                current = log.data_version
                closed = log.closed
                ready = [p for p in self._pending
                         if closed or p[1].done() or p[2] != current]
                self._pending = [p for p in self._pending if p not in ready]
                if not self._pending:
                    self._thread = None
            for loop, fut, _ in ready:
                if not fut.done():
                    try:
                        loop.call_soon_threadsafe(_resolve, fut)
                    except RuntimeError:  # the loop was closed meanwhile
                        pass
            with self._lock:
                if self._thread is None:
                    return
            log.wait_for_data(current, None)


def waiter_for(log: EventLog) -> DataWaiter:
    with _registry_lock:
        w = _waiters.get(log)
        if w is None:
            w = _waiters[log] = DataWaiter(log)
        return w
