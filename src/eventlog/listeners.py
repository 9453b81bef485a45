"""Listener decorators, as Spring Kafka's ``@KafkaListener`` and FastStream's
``@broker.subscriber``: ``@app.listener("user-changes", group_id="search-sync")``.

    app = ListenerApp(log)

    @app.listener("user-changes", group_id="search-sync")
    def index(value: bytes) -> None: ...

    app.process()   # test mode: handle what is there, then return
    app.run()       # until app.stop() (from another thread) or Ctrl-C

Each listener has a consumer of its own in its group (``auto_offset_reset="earliest"``,
no auto-commit). A record's offset is committed after the function returned. A
function that raises is called again up to ``retries`` times, waiting ``backoff_ms``
(times ``backoff_multiplier`` after each attempt) on the log's clock; then the record
goes to the dead-letter topic ``TOPIC.DLT`` (same partition, key, value and headers,
plus the error in ``kafka_dlt-*`` headers, as Spring's DeadLetterPublishingRecoverer
writes them) and its offset is committed. With ``dead_letter=False`` the error is
raised out of ``process()``/``run()`` instead, the record uncommitted.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import traceback
from collections.abc import Callable
from typing import Any

from .consumer import Consumer
from .errors import InvalidConfigError
from .group import OffsetAndMetadata
from .log import EventLog
from .producer import Producer
from .records import ConsumerRecord, TopicPartition

__all__ = ["Listener", "ListenerApp", "dead_letter_suffix"]

dead_letter_suffix = ".DLT"
process_rounds_max = 10_000  # process(): polling rounds before it gives up on going idle


class Listener:
    """One decorated function and its consumer (made by ``ListenerApp.listener``)."""

    def __init__(self, app: ListenerApp, fn: Callable[..., Any], topics: tuple[str, ...],
                 group_id: str, retries: int, backoff_ms: float, backoff_multiplier: float,
                 dead_letter: bool, pass_record: bool, config: dict[str, Any]) -> None:
        self.app = app
        self.fn = fn
        self.topics = topics
        self.group_id = group_id
        self.retries = retries
        self.backoff_ms = backoff_ms
        self.backoff_multiplier = backoff_multiplier
        self.dead_letter = dead_letter
        self.pass_record = pass_record
        self.config = config
        self.is_async = inspect.iscoroutinefunction(fn)
        self.consumer: Consumer | None = None
        self.handled = 0
        self.dead_lettered = 0

    def _consumer(self) -> Consumer:
        if self.consumer is None:
            cfg = {"auto_offset_reset": "earliest", **self.config, "enable_auto_commit": False}
            self.consumer = Consumer(self.app.log, *self.topics, group_id=self.group_id, **cfg)
        return self.consumer

    def poll(self, timeout_ms: float) -> int:
        """Handle one poll's records; returns how many."""
        consumer = self._consumer()
        records = consumer.poll(timeout_ms)
        for record in records:
            self._handle(record)
            consumer.commit({TopicPartition(record.topic, record.partition):
                             OffsetAndMetadata(record.offset + 1)})
        return len(records)

    def _call(self, record: ConsumerRecord) -> None:
        arg = record if self.pass_record else record.value
        if self.is_async:
            self.app._loop().run_until_complete(self.fn(arg))
        else:
            result = self.fn(arg)
            if inspect.isawaitable(result):
                self.app._loop().run_until_complete(result)

    def _handle(self, record: ConsumerRecord) -> None:
        delay = self.backoff_ms
        attempt = 0
        while True:
            try:
                self._call(record)
                self.handled += 1
                return
            except Exception as exc:
                if attempt >= self.retries:
                    if not self.dead_letter:
                        raise
                    self.app._dead_letter(record, exc)
                    self.dead_lettered += 1
                    return
            attempt += 1
            self.app._backoff(delay)
            delay *= self.backoff_multiplier

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None

    def __repr__(self) -> str:
        return (f"Listener({getattr(self.fn, '__name__', self.fn)!r}, topics={self.topics}, "
                f"group_id={self.group_id!r})")


def _check_number(name: str, value: Any, low: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise InvalidConfigError(f"listener(): {name} must be a number >= {low}, got {value!r}")


class ListenerApp:
    """Listeners over one EventLog; see the module docstring."""

    def __init__(self, log: EventLog) -> None:
        if not isinstance(log, EventLog):
            raise InvalidConfigError(f"ListenerApp needs an EventLog, got {type(log).__name__}")
        self.log = log
        self.listeners: list[Listener] = []
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._event_loop: asyncio.AbstractEventLoop | None = None

    def listener(self, *topics: str, group_id: str, retries: int = 2,
                 backoff_ms: float = 1000, backoff_multiplier: float = 2.0,
                 dead_letter: bool = True, record: bool = False,
                 **consumer_config: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorate a function (sync or ``async def``) to be called with each record's
        value (``record=True``: the ConsumerRecord) of ``topics`` in ``group_id``.
        ``consumer_config``: the Consumer's other configs (deserializers, ...).
        Returns the function unchanged. InvalidConfigError for bad arguments."""
        if not topics or not all(isinstance(t, str) and t for t in topics):
            raise InvalidConfigError("listener() needs one or more topic names")
        if not isinstance(group_id, str) or not group_id:
            raise InvalidConfigError(f"listener(): group_id must be a non-empty str, "
                                     f"got {group_id!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidConfigError(f"listener(): retries must be an int >= 0, got {retries!r}")
        _check_number("backoff_ms", backoff_ms, 0)
        _check_number("backoff_multiplier", backoff_multiplier, 1)
        if "enable_auto_commit" in consumer_config:
            raise InvalidConfigError("listener(): offsets are committed after the function "
                                     "returns; enable_auto_commit cannot be set")

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(fn):
                raise InvalidConfigError(f"listener() decorates a function, got {fn!r}")
            self.listeners.append(Listener(self, fn, topics, group_id, retries, backoff_ms,
                                           backoff_multiplier, dead_letter, record,
                                           dict(consumer_config)))
            return fn
        return decorate

    # ------------------------------------------------------------------ running

    def process(self) -> int:
        """Test mode: handle every record there is now (and what handling produces for
        other listeners), then return how many were handled or dead-lettered."""
        total = 0
        idle_rounds = 0
        for _ in range(process_rounds_max):
            n = sum(listener.poll(0) for listener in self.listeners)
            total += n
            idle_rounds = 0 if n else idle_rounds + 1
            # two quiet rounds: every consumer joined (the first poll joins) and found nothing
            if idle_rounds >= 2 and all(self._caught_up(lst) for lst in self.listeners):
                return total
        raise InvalidConfigError(f"process() did not go idle in {process_rounds_max} rounds")

    def _caught_up(self, listener: Listener) -> bool:
        c = listener.consumer
        if c is None:
            return False
        return all(c.position(tp) >= self.log.partition(tp.topic, tp.partition).end_offset
                   for tp in c.assignment())

    def run(self, poll_timeout_ms: float = 100) -> None:
        """Handle records until ``stop()`` is called (from another thread or a
        listener) or the process is interrupted; then close the consumers."""
        self._stop.clear()
        try:
            while not self._stop.is_set():
                busy = sum(listener.poll(0) for listener in self.listeners)
                if not busy and not self._stop.is_set():
                    version = self.log.data_version
                    self.log.wait_for_data(version, poll_timeout_ms)
        finally:
            self.close()

    def stop(self) -> None:
        """Make ``run()`` return after the record it is handling."""
        self._stop.set()
        if not self.log.closed:
            self.log.wake_waiters()

    def close(self) -> None:
        """Close the listeners' consumers and the dead-letter producer."""
        for listener in self.listeners:
            listener.close()
        if self._producer is not None:
            self._producer.close()
            self._producer = None
        if self._event_loop is not None:
            self._event_loop.close()
            self._event_loop = None

    def __enter__(self) -> ListenerApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._event_loop is None:
            self._event_loop = asyncio.new_event_loop()
        return self._event_loop

    def _backoff(self, delay_ms: float) -> None:
        with self._cond:
            self.log.clock.wait(self._cond, delay_ms)

    def _dead_letter(self, record: ConsumerRecord, exc: BaseException) -> None:
        dlt = record.topic + dead_letter_suffix
        source = self.log.topic(record.topic)
        if dlt not in self.log.topics():
            self.log.create_topic(dlt, source.num_partitions, exist_ok=True)
        partition = record.partition % self.log.topic(dlt).num_partitions
        if self._producer is None:
            self._producer = Producer(self.log, linger_ms=0)
        headers = [
            *record.headers,
            ("kafka_dlt-exception-fqcn",
             f"{type(exc).__module__}.{type(exc).__qualname__}".encode()),
            ("kafka_dlt-exception-message", str(exc).encode()),
            ("kafka_dlt-exception-stacktrace",
             "".join(traceback.format_exception(exc)).encode()),
            ("kafka_dlt-original-topic", record.topic.encode()),
            ("kafka_dlt-original-partition", str(record.partition).encode()),
            ("kafka_dlt-original-offset", str(record.offset).encode()),
            ("kafka_dlt-original-timestamp", str(record.timestamp_ms).encode()),
        ]
        raw = self.log.topic(record.topic).partition(record.partition).read(record.offset, 1)
        key, value = (raw[0].key, raw[0].value) if raw and raw[0].offset == record.offset \
            else (record.key, record.value)
        self._producer.send(dlt, value, key, partition=partition, headers=headers,
                            timestamp_ms=record.timestamp_ms).result()
