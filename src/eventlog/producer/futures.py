"""Delivery futures: what ``send()`` returns, and the shared outcome of a lingering batch.

A future is made once per record, so it is small: a record appended before
``send()`` returned gets a done ``_SentFuture`` (its RecordMetadata built only when
asked); a record that lingers gets a ``_BatchedFuture`` pointing at its batch's
``_PendingBatch``, which is resolved once for all the batch's records. Waiting
makes a condition lazily, under one lock shared by all futures (most futures are
never waited on).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import EventLogTimeoutError
from ..records import RecordMetadata

if TYPE_CHECKING:
    from .queues import PartitionQueue

__all__ = ["DeliveryFuture"]

log = logging.getLogger("eventlog.producer")

_PENDING, _DONE = 0, 1
new_object = object.__new__  # an object without its __init__
new_metadata = partial(tuple.__new__, RecordMetadata)
"""RecordMetadata from a 6-tuple of its fields, without the named tuple's __new__."""


class DeliveryFuture:
    """The result of one ``send()``: resolves to RecordMetadata or fails with the error.

    The ``concurrent.futures.Future`` interface (``result``, ``exception``,
    ``done``, ``add_done_callback``, ``cancel``...), small enough to make one
    per record. Thread-safe.
    """

    # No __slots__: class-level defaults let a completed future be made with two
    # attribute writes (the linger_ms=0 path makes one per record).
    _state = _PENDING
    _value: RecordMetadata | None = None
    _exception: BaseException | None = None
    _callbacks: list[Callable[[DeliveryFuture], None]] | None = None
    _cond: threading.Condition | None = None

    @classmethod
    def completed(cls, value: RecordMetadata | None, exc: BaseException | None = None
                  ) -> DeliveryFuture:
        """A future that is already done, with ``value`` or failed with ``exc``.

        Cost: O(1).
        Thread safety: any thread.
        Raises: nothing.
        """
        future = new_object(cls)
        future._value = value
        if exc is not None:
            future._exception = exc
        future._state = _DONE
        return future

    def done(self) -> bool:
        """True once the record was appended or failed.

        Cost: O(1); never appends a lingering batch.
        Thread safety: any thread; lock-free.
        Raises: nothing.
        """
        return self._state == _DONE

    def running(self) -> bool:
        """Always False: a send is never "running" in the futures sense.

        Cost: O(1).
        Thread safety: any thread.
        Raises: nothing.
        """
        return False

    def cancelled(self) -> bool:
        """Always False: see ``cancel``.

        Cost: O(1).
        Thread safety: any thread.
        Raises: nothing.
        """
        return False

    def cancel(self) -> bool:
        """A send cannot be cancelled once accepted (Kafka's futures can't either): False.

        Cost: O(1).
        Thread safety: any thread.
        Raises: nothing.
        """
        return False

    def _wait(self, timeout: float | None) -> None:
        wait_done(self, timeout)

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Block until delivered; return its metadata or raise its error.

        A lingering record's batch is appended at once rather than waiting out
        ``linger_ms``.
        Cost: O(1) when done; else the append of the record's batch.
        Thread safety: any thread, any number of waiters.
        Raises: the record's delivery error (StorageError, InvalidRecordError,
            ClosedError...); EventLogTimeoutError when ``timeout`` s pass first.
        """
        self._wait(timeout)
        if self._exception is not None:
            raise self._exception
        assert self._value is not None
        return self._value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Block until delivered; return its error, or None if it was appended.

        Cost: as ``result``.
        Thread safety: any thread, any number of waiters.
        Raises: EventLogTimeoutError when ``timeout`` s pass first.
        """
        self._wait(timeout)
        return self._exception

    def add_done_callback(self, fn: Callable[[DeliveryFuture], None]) -> None:
        """Call ``fn(future)`` when done (at once, in this thread, if it already is).

        Otherwise ``fn`` runs in the thread that appends or fails the record; an
        exception in it is logged and does not propagate.
        Cost: O(1).
        Thread safety: any thread; takes the futures' lock briefly.
        Raises: nothing.
        """
        with _future_lock:
            if self._state != _DONE:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        call_quietly(fn, self)

    def _resolve(self, value: RecordMetadata | None, exc: BaseException | None) -> None:
        with _future_lock:
            self._value = value
            self._exception = exc
            self._state = _DONE
            callbacks, self._callbacks = self._callbacks, None
            if self._cond is not None:
                self._cond.notify_all()
        if callbacks:
            for fn in callbacks:
                call_quietly(fn, self)

    def __repr__(self) -> str:
        if self._state == _PENDING:
            return "DeliveryFuture(pending)"
        if self._exception is not None:
            return f"DeliveryFuture(failed: {self._exception!r})"
        return f"DeliveryFuture({self._value})"


def wait_done(owner: Any, timeout: float | None) -> None:
    """Block until ``owner._state`` is done (a future, or a lingering batch's outcome).

    The condition is made lazily, under the lock shared by all futures: most
    futures are never waited on.
    """
    if owner._state == _DONE:
        return
    with _future_lock:
        if owner._cond is None:
            owner._cond = threading.Condition(_future_lock)
        if not owner._cond.wait_for(lambda: owner._state == _DONE, timeout):
            raise EventLogTimeoutError(
                f"the record was not delivered within {timeout} s; call flush() or wait longer"
            )


class PendingBatch:
    """The outcome of one lingering batch, shared by the futures of its records.

    Resolving a batch is O(1) (plus one call per ``on_delivery`` callback):
    each future computes its RecordMetadata from the batch when asked.
    """

    __slots__ = (
        "_cond", "_state", "acks0", "append_time", "base_offset", "done_callbacks", "exception",
        "keys", "outcomes", "partition", "queue", "timestamps", "topic", "values",
    )

    def __init__(self, topic: str, partition: int, acks0: bool) -> None:
        self.topic = topic
        self.partition = partition
        self.acks0 = acks0
        self._state = _PENDING
        self.exception: BaseException | None = None
        self.outcomes: list[tuple[RecordMetadata | None, BaseException | None]] | None = None
        self._cond: threading.Condition | None = None
        self.done_callbacks: list[tuple[DeliveryFuture, Callable[..., None]]] | None = None
        self.base_offset = -1
        self.append_time = -1
        self.keys: list = []
        self.values: list = []
        self.timestamps: list[int] = []
        self.queue: PartitionQueue | None = None  # the queue it lingers in

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def error(self, i: int) -> BaseException | None:
        if self.outcomes is not None:
            return self.outcomes[i][1]
        return self.exception

    def metadata(self, i: int) -> RecordMetadata:
        if self.outcomes is not None:
            md, exc = self.outcomes[i]
            if exc is not None:
                raise exc
            assert md is not None
            return md
        if self.exception is not None:
            raise self.exception
        key, value = self.keys[i], self.values[i]
        return new_metadata((
            self.topic, self.partition, -1 if self.acks0 else self.base_offset + i,
            self.append_time if self.append_time >= 0 else self.timestamps[i],
            -1 if key is None else len(key), -1 if value is None else len(value),
        ))

    def finish(self, callbacks: list | None) -> None:
        """Mark done, wake waiters, then run on_delivery and done callbacks."""
        with _future_lock:
            self._state = _DONE
            done_callbacks, self.done_callbacks = self.done_callbacks, None
            if self._cond is not None:
                self._cond.notify_all()
        if callbacks:
            for i, callback in enumerate(callbacks):
                if callback is not None:
                    exc = self.error(i)
                    call_quietly(callback, exc, None if exc is not None else self.metadata(i))
        if done_callbacks:
            for future, fn in done_callbacks:
                call_quietly(fn, future)


class BatchedFuture(DeliveryFuture):
    """A future whose outcome is that of its record's lingering batch."""

    _batch: PendingBatch
    _index: int

    def done(self) -> bool:
        return self._batch._state == _DONE

    def _wait(self, timeout: float | None) -> None:
        batch = self._batch
        if batch._state != _DONE and batch.queue is not None:
            # Whoever waits for a record needs it appended: do it now rather than
            # wait out linger_ms (and a manual clock would never get there).
            batch.queue.flush_lingering()
        wait_done(batch, timeout)

    def result(self, timeout: float | None = None) -> RecordMetadata:
        self._wait(timeout)
        return self._batch.metadata(self._index)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        return self._batch.error(self._index)

    def add_done_callback(self, fn: Callable[[DeliveryFuture], None]) -> None:
        batch = self._batch
        with _future_lock:
            if batch._state != _DONE:
                if batch.done_callbacks is None:
                    batch.done_callbacks = []
                batch.done_callbacks.append((self, fn))
                return
        call_quietly(fn, self)

    def __repr__(self) -> str:
        if self._batch._state == _PENDING:
            return "DeliveryFuture(pending)"
        exc = self._batch.error(self._index)
        if exc is not None:
            return f"DeliveryFuture(failed: {exc!r})"
        return f"DeliveryFuture({self._batch.metadata(self._index)})"


class SentFuture(DeliveryFuture):
    """The future of a record appended before ``send()`` returned (``linger_ms=0``):
    done from the start. It keeps RecordMetadata's fields as a plain tuple and
    builds the named tuple when asked, which most callers never do."""

    _state = _DONE
    _fields: tuple

    @property  # type: ignore[override]
    def _value(self) -> RecordMetadata:
        return new_metadata(self._fields)


_future_lock = threading.Lock()  # guards the rare waits and callback lists of all futures


def call_quietly(fn: Callable[..., Any], *args: Any) -> None:
    """Run a user callback; an exception in it is logged, as Kafka's producer does."""
    try:
        fn(*args)
    except Exception:
        log.exception("a delivery callback raised; the producer carries on")
