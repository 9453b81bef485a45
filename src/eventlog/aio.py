"""asyncio clients: ``AsyncProducer`` and ``AsyncConsumer`` over an EventLog.

The same producer and consumer as the sync API (same configs, records, errors and
semantics), with awaitable ``send``/``send_batch``/``flush``, ``poll``/``getmany``/
``getone``, ``commit`` and ``close``, ``async for`` and ``async with``.

Theory of operation
-------------------
Every call does its work synchronously on the loop's thread: appends, fetches and
group steps are in-process and never block on I/O. Only *waiting* awaits. A poll
that finds nothing parks its coroutine on a future that one helper thread per log
(started when a coroutine first waits, gone when none does) resolves through the
loop's ``call_soon_threadsafe`` as soon as the log gets an append or a group change;
there is no thread per call. A waiting poll re-checks its group every
``heartbeat_interval_ms``, and its timeout is measured on the log's clock: on a
``ManualClock`` with autojump, a wait that nothing ends within a brief real-time
grace jumps the clock to its deadline, as the sync consumer's poll does.

Cancellation: a poll is cancelled only while it is parked, before it has taken any
record, so positions, commits and the group are as if it had returned nothing. ``send``
never waits (it appends the record's batch before it returns); cancelling the future
``send_nowait`` returned does not unsend its record, which is delivered as a sync
``send()`` whose future nobody reads.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .consumer import Consumer
from .errors import ClosedError, InvalidConfigError
from .log import EventLog
from .producer import BatchMetadata, DeliveryFuture, Producer
from .records import ConsumerRecord, RecordMetadata, TopicPartition

__all__ = ["AsyncConsumer", "AsyncProducer", "DataWaiter", "waiter_for"]

autojump_grace_s = 0.0005  # a ManualClock wait's real-time grace before it jumps
manual_recheck_s = 0.01  # a ManualClock(autojump=False) wait re-reads the clock this often


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class DataWaiter:
    """Futures that complete when a log's data version moves (an append or a group
    change), resolved by one daemon thread per log that runs only while some wait."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._pending: list[tuple[asyncio.AbstractEventLoop, asyncio.Future, int]] = []
        self._thread: threading.Thread | None = None

    def wait(self, version: int) -> asyncio.Future:
        """A future that completes once the log's data version differs from ``version``
        (at once if it already does, or the log is closed)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            if self._log.closed or self._log.data_version != version:
                fut.set_result(None)
                return fut
            # forget the futures of waits that timed out or were cancelled meanwhile
            self._pending = [p for p in self._pending if not p[1].done()]
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


_waiters: weakref.WeakKeyDictionary[EventLog, DataWaiter] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def waiter_for(log: EventLog) -> DataWaiter:
    """The log's DataWaiter (one per log)."""
    with _registry_lock:
        w = _waiters.get(log)
        if w is None:
            w = _waiters[log] = DataWaiter(log)
        return w


async def park(log: EventLog, version: int, wait_ms: float) -> None:
    """Wait on the running loop until the log's data version moves from ``version`` or
    ``wait_ms`` passes on the log's clock (at most; callers loop and re-check)."""
    if wait_ms <= 0:
        return
    fut = waiter_for(log).wait(version)
    clock = log.clock
    autojump = getattr(clock, "autojump", None)  # a ManualClock (eventlog.testing)
    if autojump is None:
        try:
            await asyncio.wait_for(fut, wait_ms / 1000.0)
        except asyncio.TimeoutError:
            pass
        return
    start = clock.monotonic_ms()
    try:
        await asyncio.wait_for(fut, autojump_grace_s if autojump else manual_recheck_s)
        return
    except asyncio.TimeoutError:
        pass
    if autojump:
        moved = clock.monotonic_ms() - start
        if moved < wait_ms:
            clock.advance(wait_ms - moved)


class AsyncProducer:
    """``AsyncProducer(log, **config)``: eventlog's Producer (same configs) for asyncio.

    ``await send(...)`` gives the record's RecordMetadata once it is appended (at once
    with the default ``linger_ms=0``); ``await send_batch(...)`` a BatchMetadata.
    """

    def __init__(self, log: EventLog, **config: Any) -> None:
        self._producer = Producer(log, **config)
        self._log = log

    @property
    def producer(self) -> Producer:
        """The sync Producer underneath."""
        return self._producer

    async def send(self, topic: str, value: Any = None, key: Any = None, *,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: Any = None) -> RecordMetadata:
        """Send one record (as ``Producer.send``) and return its RecordMetadata.

        Awaiting the delivery appends a lingering record's batch at once (as the sync
        future's ``result()`` does): it never waits out ``linger_ms``. Use
        ``send_nowait`` to let records linger and batch. Raises as ``Producer.send``.
        """
        future = self._producer.send(topic, value, key, partition=partition,
                                     timestamp_ms=timestamp_ms, headers=headers)
        return future.result()

    def send_nowait(self, topic: str, value: Any = None, key: Any = None, *,
                    partition: int | None = None, timestamp_ms: int | None = None,
                    headers: Any = None) -> asyncio.Future:
        """Send one record; an asyncio future of its RecordMetadata, done when its
        batch is appended (after ``linger_ms``, a full batch, or ``flush()``).
        Raises as ``Producer.send`` for a record refused before it is sent."""
        future = self._producer.send(topic, value, key, partition=partition,
                                     timestamp_ms=timestamp_ms, headers=headers)
        return _as_asyncio(future)

    async def send_batch(self, topic: str, records: Iterable[Sequence[Any]], *,
                         partition: int | None = None,
                         timestamp_ms: int | None = None) -> BatchMetadata:
        """``Producer.send_batch``: appended before this returns; nothing if it raises."""
        return self._producer.send_batch(topic, records, partition=partition,
                                         timestamp_ms=timestamp_ms)

    async def flush(self, timeout: float | None = None) -> None:
        """Append every lingering record (in this thread: appends never wait on I/O)."""
        self._producer.flush(timeout)

    def partitions_for(self, topic: str) -> list[int]:
        return self._producer.partitions_for(topic)

    @property
    def closed(self) -> bool:
        return self._producer.closed

    async def close(self, timeout: float | None = None) -> None:
        """Flush and close (idempotent)."""
        self._producer.close(timeout)

    async def __aenter__(self) -> AsyncProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Async{self._producer!r}"


def _as_asyncio(future: DeliveryFuture) -> asyncio.Future:
    loop = asyncio.get_running_loop()
    out: asyncio.Future = loop.create_future()

    def settle(f: DeliveryFuture) -> None:
        if out.done():
            return
        exc = f.exception()
        if exc is not None:
            out.set_exception(exc)
        else:
            out.set_result(f.result())

    if future.done():
        settle(future)
        return out

    def wake(f: DeliveryFuture) -> None:  # in whichever thread appended the batch
        try:
            loop.call_soon_threadsafe(settle, f)
        except RuntimeError:  # the loop was closed meanwhile
            pass

    future.add_done_callback(wake)
    return out


_FORWARDED = frozenset({
    "subscribe", "unsubscribe", "subscription", "assign", "assignment", "seek",
    "seek_to_beginning", "seek_to_end", "position", "committed", "pause", "resume",
    "paused", "beginning_offsets", "end_offsets", "offsets_for_times", "commit_async",
    "group_id", "member_id", "generation", "closed", "config", "check",
})


class AsyncConsumer:
    """``AsyncConsumer(log, *topics, group_id=None, **config)``: eventlog's Consumer
    (same configs and semantics) for asyncio.

    Awaitable: ``poll`` (a list, as ``Consumer.poll``), ``getmany`` (a dict by
    partition), ``getone``, ``commit``, ``close``. ``async for`` yields records and
    ends after ``consumer_timeout_ms`` without one (never, if None) or at ``close()``.
    The calls that never wait (``subscribe``, ``assign``, ``seek``, ``position``,
    ``committed``, ``pause``, ``assignment``, ...) are the sync consumer's, unchanged.
    """

    def __init__(self, log: EventLog, *topics: str, group_id: str | None = None,
                 **config: Any) -> None:
        self._consumer = Consumer(log, *topics, group_id=group_id, **config)
        self._log = log
        self._iter_idle_since: float | None = None

    @property
    def consumer(self) -> Consumer:
        """The sync Consumer underneath (use it from the loop's thread only)."""
        return self._consumer

    def __getattr__(self, name: str) -> Any:
        if name in _FORWARDED:
            return getattr(self._consumer, name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    async def poll(self, timeout_ms: float = 0, max_records: int | None = None
                   ) -> list[ConsumerRecord]:
        """As ``Consumer.poll``: records, waiting (parked on the loop) up to
        ``timeout_ms`` on the log's clock for some."""
        if not isinstance(timeout_ms, (int, float)) or isinstance(timeout_ms, bool) \
                or timeout_ms < 0:
            raise InvalidConfigError(f"timeout_ms must be a number >= 0, got {timeout_ms!r}")
        c = self._consumer
        clock = self._log.clock
        deadline = clock.monotonic_ms() + timeout_ms
        heartbeat = c.config.heartbeat_interval_ms
        while True:
            version = self._log.data_version
            records = c.poll(0, max_records)
            remaining = deadline - clock.monotonic_ms()
            if records or remaining <= 0:
                return records
            await park(self._log, version, min(remaining, heartbeat))
            if c.closed:  # closed by another task while this one was parked
                return []

    async def getmany(self, timeout_ms: float = 0, max_records: int | None = None
                      ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """``poll``'s records by partition (aiokafka's shape)."""
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        for r in await self.poll(timeout_ms, max_records):
            tp = TopicPartition(r.topic, r.partition)
            batch = out.get(tp)
            if batch is None:
                out[tp] = [r]
            else:
                batch.append(r)
        return out

    async def getone(self, timeout_ms: float | None = None) -> ConsumerRecord:
        """The next record, waiting for one (up to ``timeout_ms``: then
        EventLogTimeoutError). ClosedError once the consumer is closed."""
        from .errors import EventLogTimeoutError

        clock = self._log.clock
        deadline = None if timeout_ms is None else clock.monotonic_ms() + timeout_ms
        while True:
            wait = self._consumer.config.heartbeat_interval_ms if deadline is None \
                else max(0.0, deadline - clock.monotonic_ms())
            records = await self.poll(wait, 1)
            if records:
                return records[0]
            if self._consumer.closed:
                raise ClosedError("the consumer is closed")
            if deadline is not None and clock.monotonic_ms() >= deadline:
                raise EventLogTimeoutError(f"no record within {timeout_ms} ms")

    async def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        """As ``Consumer.commit`` (in process: it never waits)."""
        self._consumer.commit(offsets)

    async def close(self) -> None:
        """As ``Consumer.close``: commits (with auto-commit), leaves the group; a poll
        parked in another task returns what it has (nothing)."""
        self._consumer.close()

    def __aiter__(self) -> AsyncConsumer:
        return self

    async def __anext__(self) -> ConsumerRecord:
        c = self._consumer
        clock = self._log.clock
        timeout = c.config.consumer_timeout_ms
        if self._iter_idle_since is None:
            self._iter_idle_since = clock.monotonic_ms()
        while not c.closed:
            if timeout is None:
                wait = float(c.config.heartbeat_interval_ms)
            else:
                wait = max(0.0, self._iter_idle_since + timeout - clock.monotonic_ms())
            records = await self.poll(wait, 1)
            if records:
                self._iter_idle_since = clock.monotonic_ms()
                return records[0]
            if timeout is not None and clock.monotonic_ms() - self._iter_idle_since >= timeout:
                break
        self._iter_idle_since = None
        raise StopAsyncIteration

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Async{self._consumer!r}"
