"""The accumulator: the producer's lingering batches, one per partition, and their flusher.

With ``linger_ms > 0`` a record joins its partition's open batch, which is appended
when it reaches ``batch_size`` bytes, when it is ``linger_ms`` old (a background
flusher watches the log's clock), on ``flush()``/``close()``, when someone waits
on one of its futures, or when anything in the process reads the partition (the
partition knows which producers hold a batch for it: ``Partition.lingering``).

``State`` is everything a producer owns, kept apart from the Producer object so a
finalizer and the flusher thread can deliver its records after the Producer is
collected.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from ..broker import Broker as EventLog  # the broker layer; eventlog.EventLog subclasses it
from ..broker.partition import Partition
from ..clock import SystemClock
from ..errors import ClosedError, EventLogError, InvalidRecordError
from ..metrics.window import Window
from .checks import closed_error
from .config import ProducerConfig
from .futures import BatchedFuture, DeliveryFuture
from .queues import PartitionQueue, QueueStats, acquire_contended
from .sender import Sender, unexpected

__all__ = ["State", "finalize"]

log = logging.getLogger("eventlog.producer")


class State(Sender):
    """The producer's queues (one per partition sent to), routes and flusher thread."""

    def __init__(self, log_: EventLog, config: ProducerConfig) -> None:
        super().__init__(log_, config)
        self.queues: dict[Partition, PartitionQueue] = {}
        self.queues_lock = threading.Lock()
        self.routes: dict[str, tuple[PartitionQueue, ...]] = {}  # topic -> its queues
        self.wakeup = threading.Condition()
        self.flusher_wake_ms = 0.0  # when the waiting flusher wakes (inf: idle; 0: busy)
        self.closed = False
        self.flusher: threading.Thread | None = None
        self.metrics_lock = threading.Lock()
        self.window = Window(log_.clock.monotonic_ms(), len(QueueStats.totals_fields) + 1)

    def queue(self, partition: Partition) -> PartitionQueue:
        """The state of ``partition`` (keyed by the object: a re-created topic starts anew)."""
        q = self.queues.get(partition)
        if q is None:
            with self.queues_lock:
                q = self.queues.get(partition)
                if q is None:
                    q = PartitionQueue(partition, self.config)
                    q.flush_lingering = partial(self.flush_queue, q)
                    self.queues[partition] = q
        return q

    def flush_queue(self, q: PartitionQueue) -> None:
        """Append q's lingering batch now, if it has one (takes q's locks)."""
        if q.keys:
            self.drain(q)

    # -- accumulating --------------------------------------------------------------

    def accumulate(
        self, q: PartitionQueue, key: bytes | None, value: bytes | None,
        headers: tuple | None, timestamp_ms: int,
        on_delivery: Callable[[Any, Any], None] | None, size: int,
    ) -> DeliveryFuture:
        """Add a validated record of ``size`` bytes (``queues.record_size``) to its
        partition's open batch; returns the record's future. ClosedError once closed.

        ``send()`` inlines the common case (a batch is open, has no header or
        callback column, and keeps room after this record) and calls
        ``accumulate_locked`` for the rest; this is that path for other callers.
        """
        lock = q.batch_lock
        if not lock.acquire(False):
            acquire_contended(lock)
        return self.accumulate_locked(q, key, value, headers, timestamp_ms, on_delivery, size)

    def accumulate_locked(
        self, q: PartitionQueue, key: bytes | None, value: bytes | None,
        headers: tuple | None, timestamp_ms: int,
        on_delivery: Callable[[Any, Any], None] | None, size: int,
    ) -> DeliveryFuture:
        """``accumulate`` for a caller that holds ``q.batch_lock``; releases it.

        The records ``send()`` does not add inline come here: the first record of
        a batch, the one that does not fit or fills it, one with headers or a
        callback, and every record of a batch that has a header or callback column
        (``q.room`` is -1 for those, so ``send()``'s one test sends them here).
        """
        handed_off = False  # a batch this call took waits in q.ready for its append
        try:
            future = BatchedFuture()  # no __init__: the cheapest way to make one
            filled = q.bytes + size
            keys = q.keys
            n = len(keys)
            if not n or filled > q.batch_bytes_max:  # no batch open, or no room in it
                if self.closed:
                    raise closed_error()
                if n:
                    self.hand_off(q)
                    handed_off = True
                    keys = q.keys
                    n = 0
                    filled = size
                self._open_batch(q)
            future._batch = q.pending
            future._index = n
            keys.append(key)
            q.values.append(value)
            q.timestamps.append(timestamp_ms)
            if headers is not None or on_delivery is not None or q.rare:
                q.add_rare(n, headers, on_delivery)  # and closes send()'s inline path
            q.bytes = filled
            if filled >= q.batch_bytes_max:  # full: append it now
                self.hand_off(q)
                handed_off = True
        finally:
            q.batch_lock.release()
            if handed_off:
                # Appended holding q.lock, not the batch lock: other threads fill the
                # next batch meanwhile, and none of them waits for q.lock holding it.
                self.append_ready(q)
        if not n:
            self._wake_flusher(q)
        return future

    def hand_off(self, q: PartitionQueue) -> None:
        """Move q's open batch to ``q.ready``, the batches taken and not yet appended,
        in the order they were taken (caller holds ``q.batch_lock``); the caller then
        calls ``append_ready`` without it.

        A sender that fills a batch while another thread appends the previous one
        (holding ``q.lock``) must not wait for ``q.lock`` holding the batch lock: every
        other sender would wait behind it (measured: a quarter of the full batches
        with 4 threads, 15% of the run). Whoever holds ``q.lock`` next appends every
        ready batch first, so batches still land in the order they were taken."""
        now_ms = self.log.clock.monotonic_ms()
        q.stats.queued(now_ms - (q.deadline_ms - self.config.linger_ms), now_ms)
        q.ready.append(q.take())

    def append_ready(self, q: PartitionQueue) -> None:
        """Take ``q.lock`` and append the batches waiting in ``q.ready`` (perhaps none:
        the thread holding it before appended them)."""
        with q.lock:
            self.append_ready_locked(q)

    def append_ready_locked(self, q: PartitionQueue) -> None:
        """Append every batch in ``q.ready``, oldest first. Caller holds ``q.lock``,
        before it appends anything else: a batch taken earlier lands earlier."""
        ready = q.ready
        while ready:
            self.append_batch(q, ready.popleft())

    def _open_batch(self, q: PartitionQueue) -> None:
        """Start q's lingering batch: its deadline, and its entry in the partition's
        ``lingering`` (a read appends it first). Caller holds ``q.batch_lock``."""
        q.deadline_ms = self.log.clock.monotonic_ms() + self.config.linger_ms
        q.partition.lingering[q] = q.flush_lingering
        q.room = q.batch_bytes_max  # send() may add records inline (add_rare undoes it)

    def _wake_flusher(self, q: PartitionQueue) -> None:
        """After a batch opened: start the flusher, or wake it if it would sleep past
        the new deadline."""
        if self.flusher is None:
            self.start_flusher()
        with self.wakeup:
            if q.deadline_ms < self.flusher_wake_ms:
                self.wakeup.notify()

    def drain(self, q: PartitionQueue, expired_ms: float | None = None) -> None:
        """Append q's lingering batch now (if it has one; with ``expired_ms``, only if
        its deadline is not after that) and resolve its futures. Takes q's locks."""
        with q.batch_lock:
            if not q.keys or (expired_ms is not None and q.deadline_ms > expired_ms):
                return
            taken = self.take_batch(q)
        self.append_batches(q, [taken])

    def take_batch(self, q: PartitionQueue, locked: bool = False) -> tuple:
        """Remove q's open batch (caller holds ``q.batch_lock``; the batch has records)
        and take ``q.lock`` (unless ``locked``) for ``append_batches``, before the batch
        lock is released: whoever takes a batch later appends it later."""
        now_ms = self.log.clock.monotonic_ms()
        q.stats.queued(now_ms - (q.deadline_ms - self.config.linger_ms), now_ms)
        taken = q.take()
        if not locked:
            q.lock.acquire()
        return taken

    def append_batches(self, q: PartitionQueue, taken: list[tuple]) -> None:
        """Append batches ``take_batch`` took, in order (after any ``q.ready`` holds: they
        were taken before), then release ``q.lock``."""
        try:
            self.append_ready_locked(q)
            for batch in taken:
                self.append_batch(q, batch)
        finally:
            q.lock.release()

    def append_batch(self, q: PartitionQueue, taken: tuple) -> None:
        """Append one taken batch and resolve its futures. Caller holds ``q.lock``."""
        keys, values, headers, timestamps, pending, callbacks = taken
        try:
            result = self.append_columns(q, keys, values, headers, timestamps)
        except InvalidRecordError:
            # One bad record must fail only its own future: append them one by one.
            pending.outcomes = outcomes = [
                self.deliver_one(q, keys[i], values[i], headers[i] if headers else None,
                                 timestamps[i])
                for i in range(len(keys))
            ]
            failed = sum(1 for _metadata, exc in outcomes if exc is not None)
            q.stats.errors += failed
            q.sent += len(keys) - failed
        except EventLogError as exc:
            pending.exception = exc
            q.stats.errors += len(keys)
        except Exception as exc:  # never let a batch vanish with its futures unresolved
            pending.exception = unexpected(q, len(keys), exc)
            q.stats.errors += len(keys)
        else:
            pending.base_offset = result.base_offset
            pending.append_time = result.log_append_time_ms
        pending.finish(callbacks)

    # -- the flusher -----------------------------------------------------------------

    def start_flusher(self) -> None:
        with self.wakeup:
            if self.flusher is None and not self.closed:
                self.flusher = threading.Thread(target=self._flush_loop,
                                                name="eventlog-producer", daemon=True)
                self.flusher.start()

    def _flush_loop(self) -> None:
        clock = self.log.clock
        real_clock = isinstance(clock, SystemClock)
        while True:
            with self.wakeup:
                if self.closed:
                    return
                earliest = min((q.deadline_ms for q in list(self.queues.values()) if q.keys),
                               default=None)
                now = clock.monotonic_ms()
                if earliest is None:
                    self.flusher_wake_ms = math.inf
                    self.wakeup.wait()
                    self.flusher_wake_ms = 0.0
                    continue
                if earliest > now:
                    # A manual clock moves without notice: look again every millisecond.
                    wait_ms = earliest - now if real_clock else min(earliest - now, 1.0)
                    self.flusher_wake_ms = earliest
                    self.wakeup.wait(wait_ms / 1000.0)
                    self.flusher_wake_ms = 0.0
                    continue
            try:
                self.drain_expired(clock.monotonic_ms())
            except Exception:  # drain fails the batch's futures; the thread must live on
                log.exception("the producer's flusher thread failed; it carries on")

    def drain_expired(self, now_ms: float) -> None:
        for q in list(self.queues.values()):
            if q.keys and q.deadline_ms <= now_ms:
                self.drain(q, now_ms)

    def flush_all(self) -> None:
        """Append every queue's lingering batch, and wait for any batch another thread
        (the flusher, a full batch's sender) took before this call and is still
        appending: ``flush()`` returns only when every record sent before it is
        delivered. A taker takes ``q.lock`` before it releases ``q.batch_lock``, or
        leaves the batch in ``q.ready``; so passing through the batch lock, then
        appending what ``q.ready`` holds under ``q.lock``, waits out exactly those."""
        for q in list(self.queues.values()):
            if q.keys:
                self.drain(q)
            with q.batch_lock:  # a batch taken before this is in q.ready, or appending
                pass
            self.append_ready(q)

    def pending_count(self) -> int:
        return sum(len(q.keys) for q in list(self.queues.values()))

    # -- closing ---------------------------------------------------------------------

    def shutdown(self) -> None:
        """Deliver what is held (or fail it loudly if the log is closed), stop the flusher."""
        with self.queues_lock:
            self.routes.clear()  # every send now takes the path that checks ``closed``
        with self.wakeup:
            self.closed = True
            self.wakeup.notify_all()
        if self.pending_count():
            if self.log.closed:
                self.fail_all(ClosedError("the EventLog was closed before these records were "
                                          "delivered; close the producer before the log"))
            else:
                self.flush_all()
        for q in list(self.queues.values()):
            # A send that found its route before close() may have added one (a batch
            # opened after this raises ClosedError instead).
            self.drain(q)
        if self.flusher is not None and self.flusher is not threading.current_thread():
            self.flusher.join()

    def fail_all(self, exc: EventLogError) -> None:
        failed = 0
        for q in list(self.queues.values()):
            with q.batch_lock:
                keys, _values, _headers, _ts, pending, callbacks = q.take()
            if keys:
                pending.exception = exc
                pending.finish(callbacks)
                failed += len(keys)
                with q.lock:
                    q.stats.errors += len(keys)
        if failed:
            log.error("%d record(s) were not delivered: %s", failed, exc)

    def check(self) -> None:
        """Assert the invariants of every queue, the routes and the closed state.

        Call it when no thread is sending (a test's scenario is over). Takes each
        queue's lock in turn. O(partitions sent to + records lingering).
        """
        with self.queues_lock:
            queues = dict(self.queues)
            routes = dict(self.routes)
        known = {id(q) for q in queues.values()}
        for part, q in queues.items():
            assert (q.partition.topic, q.partition.index) == (part.topic, part.index)
            with q.batch_lock, q.lock:
                q.check(self.config.enable_idempotence)
        for topic, route in routes.items():
            assert [q.partition.index for q in route] == list(range(len(route))), topic
            assert all(q.partition.topic == topic and id(q) in known for q in route), topic
        assert (self.producer_id >= 0) == (self.producer_epoch >= 0), (
            self.producer_id, self.producer_epoch)
        if self.closed:
            assert not routes, "a closed producer keeps routes"
            assert self.pending_count() == 0, "a closed producer holds records"
            flusher = self.flusher
            if flusher is not None and flusher is not threading.current_thread():
                assert not flusher.is_alive(), "the flusher outlived close()"


def finalize(state: State) -> None:
    """Run when the Producer is garbage-collected or at interpreter exit."""
    if not state.closed:
        if state.pending_count():
            log.warning("a Producer was not closed; delivering its %d held record(s)",
                        state.pending_count())
        state.shutdown()
