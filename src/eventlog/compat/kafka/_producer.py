"""kafka-python's KafkaProducer over an EventLog. With kafka-python's default ``linger_ms``
0 every send is appended before it returns, so the returned future is already done; with
``linger_ms`` > 0 records linger in eventlog's Producer and are appended in batches of up
to ``batch_size`` bytes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from ... import errors as el_errors
from ...producer import Producer as _ElProducer
from ...producer import ProducerConfig
from ...producer.futures import SentFuture
from . import errors as Errors
from ._common import kafka_error_for, refuse_unknown, take_log, translated
from .structs import RecordMetadata, TopicPartition

_new_future = object.__new__

__all__ = ["FutureRecordMetadata", "KafkaProducer"]

log = logging.getLogger("eventlog.compat.kafka")


def _serializer(spec: Any, what: str) -> Callable[[str, list, Any], Any] | None:
    if spec is None:
        return None
    method = getattr(spec, "serialize", None) or getattr(spec, "deserialize", None)
    if callable(method):
        return method
    if callable(spec):
        return lambda topic, headers, data: spec(data)
    raise Errors.ConfigError(f"{what} must be callable or have serialize(), got {spec!r}")


def _send_error(topic: str, exc: el_errors.EventLogError) -> Exception:
    """kafka-python's error for a record eventlog's Producer refused."""
    if isinstance(exc, el_errors.UnknownTopicError):
        return Errors.KafkaTimeoutError(
            f"Failed to update metadata: topic {topic!r} does not exist in the log "
            "(create it, or open the log with auto_create_topics=True)")
    if isinstance(exc, el_errors.RecordTooLargeError):
        return Errors.MessageSizeTooLargeError(str(exc))  # type: ignore[attr-defined]
    if isinstance(exc, el_errors.UnknownPartitionError):
        return Errors.KafkaTimeoutError(str(exc))
    return kafka_error_for(exc)


class FutureRecordMetadata:
    """kafka-python's future of a sent record: ``get``, ``add_callback``, ``add_errback``.

    Done when ``send()`` returns with ``linger_ms`` 0 (kafka-python's default); with
    ``linger_ms`` > 0 when its batch is appended (``get()`` and ``flush()`` append it
    at once). Its RecordMetadata is built when first asked.
    """

    # No __slots__: class-level defaults let send()'s hot path make one with
    # ``object.__new__`` and one or two attribute writes instead of an __init__ call.
    _value: RecordMetadata | None = None
    _exception: BaseException | None = None
    _future: Any = None
    _header_size = -1
    _checked = True

    def __init__(self, value: RecordMetadata | None, exception: BaseException | None,
                 future: Any = None, header_size: int = -1, checked: bool = True) -> None:
        self._value = value
        self._future = future  # eventlog's DeliveryFuture, until value is built
        self._header_size = header_size
        self._exception = exception
        self._checked = checked  # the native future's outcome was looked at

    @property
    def is_done(self) -> bool:
        future = self._future
        return future is None or future.done()

    @property
    def exception(self) -> BaseException | None:
        if not self._checked and self._future.done():
            self._check()
        return self._exception

    def _check(self) -> None:
        exc = self._future.exception()
        self._checked = True
        if exc is not None:
            self._future = None
            self._exception = kafka_error_for(exc)

    @property
    def value(self) -> RecordMetadata | None:
        future = self._future
        if future is not None:
            if not future.done() or self.exception is not None:
                return None
            md = future.result()
            self._future = None
            self._value = RecordMetadata(
                md.topic, md.partition, TopicPartition(md.topic, md.partition), md.offset,
                md.timestamp_ms, None, md.serialized_key_size, md.serialized_value_size,
                self._header_size)
        return self._value

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def retriable(self) -> bool:
        return self.failed() and isinstance(self.exception, Errors.RetriableError)

    def get(self, timeout: float | None = None) -> RecordMetadata:
        if not self._checked:
            self._check()  # waiting appends a lingering batch at once
        if self._exception is not None:
            raise self._exception
        value = self.value
        assert value is not None
        return value

    def _when_done(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` now if done, else when the batch is appended (in that thread)."""
        if self.is_done:
            fn()
        else:
            self._future.add_done_callback(lambda _: fn())

    def add_callback(self, f: Callable[..., Any], *args: Any, **kwargs: Any
                     ) -> FutureRecordMetadata:
        if args or kwargs:
            f = functools.partial(f, *args, **kwargs)

        def call() -> None:
            if self.exception is None:
                try:
                    f(self.value)
                except Exception:
                    log.exception("Error processing callback")
        self._when_done(call)
        return self

    def add_errback(self, f: Callable[..., Any], *args: Any, **kwargs: Any
                    ) -> FutureRecordMetadata:
        if args or kwargs:
            f = functools.partial(f, *args, **kwargs)

        def call() -> None:
            if self.exception is not None:
                try:
                    f(self.exception)
                except Exception:
                    log.exception("Error processing errback")
        self._when_done(call)
        return self

    def add_both(self, f: Callable[..., Any], *args: Any, **kwargs: Any
                 ) -> FutureRecordMetadata:
        self.add_callback(f, *args, **kwargs)
        self.add_errback(f, *args, **kwargs)
        return self


def _as_bytes(data: Any, what: str) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"Unsupported type for serialized {what}: {type(data)}")


class _CallablePartitioner:
    """kafka-python's ``partitioner(key_bytes, all_partitions, available_partitions)``."""

    def __init__(self, fn: Callable[..., int]) -> None:
        self._fn = fn

    def partition(self, topic: str, key: bytes | None, value: bytes | None, n: int) -> int:
        parts = list(range(n))
        return self._fn(key, parts, parts)


_REFUSED = {"transactional_id": "transactions are not implemented; drop transactional_id",
            "transaction_timeout_ms": "transactions are not implemented"}


class KafkaProducer:
    """``kafka.KafkaProducer(**configs)`` on the EventLog ``bootstrap_servers`` selects."""

    def __init__(self, **configs: Any) -> None:
        configs = dict(configs)
        self._log, _ = take_log(configs)
        self._key_ser = _serializer(configs.pop("key_serializer", None), "key_serializer")
        self._value_ser = _serializer(configs.pop("value_serializer", None), "value_serializer")
        acks = configs.pop("acks", -1)
        idempotence = configs.pop("enable_idempotence", True)
        compression = configs.pop("compression_type", None) or "none"
        max_request = configs.pop("max_request_size", 1_048_576)
        partitioner = configs.pop("partitioner", None)
        client_id = configs.pop("client_id", None)
        linger_ms = configs.pop("linger_ms", 0)
        batch_size = configs.pop("batch_size", 16384)
        refuse_unknown(configs, "KafkaProducer", _REFUSED)
        try:
            ProducerConfig(compression_type=compression)
        except el_errors.InvalidConfigError:
            compression = "none"  # a codec eventlog lacks: stored uncompressed (docs/compat.md)
        if acks != -1 and acks != "all":
            idempotence = False  # kafka-python 3 turns idempotence off for acks != all
        el_partitioner = None if partitioner is None else _CallablePartitioner(partitioner)
        try:
            self._producer = _ElProducer(
                self._log, linger_ms=linger_ms, batch_size=batch_size, acks=acks,
                enable_idempotence=bool(idempotence),
                compression_type=compression, max_request_size=max_request,
                partitioner=el_partitioner, client_id=client_id or "",
            )
        except el_errors.InvalidConfigError as exc:
            raise Errors.ConfigError(str(exc)) from None
        self._closed = False
        self._native_send = self._producer.send
        # send()'s fast path: no serializers, not closed
        self._plain = self._key_ser is None and self._value_ser is None

    def send(self, topic: str, value: Any = None, key: Any = None,
             headers: list[tuple[str, bytes]] | None = None, partition: int | None = None,
             timestamp_ms: int | None = None) -> FutureRecordMetadata:
        """Send one record; returns its FutureRecordMetadata (done at once with
        ``linger_ms`` 0).

        Raises IllegalStateError after close(), ValueError without key and value,
        TypeError for bad headers or unserialized values, KafkaTimeoutError for a topic
        that does not exist (the real client waits ``max_block_ms`` for its metadata),
        MessageSizeTooLargeError over ``max_request_size``.
        """
        # The hot path, kept flat: bytes key and value (one may be None), no headers, no
        # serializers; its future's outcome is looked at when asked (a record appended
        # at once, a SentFuture, cannot have failed).
        if (headers is None and self._plain and (
                (type(value) is bytes and (type(key) is bytes or key is None))
                or (value is None and type(key) is bytes))):
            try:
                future = self._native_send(topic, value, key, partition=partition,
                                           timestamp_ms=timestamp_ms)
            except el_errors.EventLogError as exc:
                raise _send_error(topic, exc) from exc
            result = _new_future(FutureRecordMetadata)
            result._future = future
            if type(future) is not SentFuture:  # lingering: looked at when appended
                result._checked = False
            return result
        if self._closed:
            raise Errors.IllegalStateError("KafkaProducer already closed!")
        if value is None and key is None:
            raise ValueError("Need at least one: key or value")
        if headers is None:
            headers = []
        elif not isinstance(headers, list):
            raise TypeError("headers must be list-type")
        elif not all(isinstance(h, tuple) and len(h) == 2 and isinstance(h[0], str)
                     and isinstance(h[1], bytes) for h in headers):
            raise TypeError("All headers items must be (str, bytes) tuples")
        key_b = key if self._key_ser is None else self._key_ser(topic, headers, key)
        value_b = value if self._value_ser is None else self._value_ser(topic, headers, value)
        if type(key_b) is not bytes and key_b is not None:
            key_b = _as_bytes(key_b, "key")
        if type(value_b) is not bytes and value_b is not None:
            value_b = _as_bytes(value_b, "value")
        try:
            future = self._producer.send(topic, value_b, key_b, partition=partition,
                                         timestamp_ms=timestamp_ms, headers=headers or None)
        except el_errors.EventLogError as exc:
            raise _send_error(topic, exc) from exc
        header_size = (sum(len(k.encode()) + len(v) for k, v in headers) if headers else -1)
        if not future.done():  # lingering: its outcome is looked at when it is appended
            return FutureRecordMetadata(None, None, future, header_size, checked=False)
        exc = future.exception()
        if exc is not None:
            return FutureRecordMetadata(None, kafka_error_for(exc))
        return FutureRecordMetadata(None, None, future, header_size)

    def flush(self, timeout: float | None = None) -> None:
        """Append every lingering record (with ``linger_ms`` 0 there are none)."""
        with translated():
            self._producer.flush()

    def partitions_for(self, topic: str) -> set[int]:
        """The partition ids of ``topic``; KafkaTimeoutError if it does not exist."""
        try:
            return set(self._producer.partitions_for(topic))
        except el_errors.UnknownTopicError as exc:
            raise Errors.KafkaTimeoutError(
                f"Failed to update metadata: topic {topic!r} does not exist") from exc

    def bootstrap_connected(self) -> bool:
        return not self._log.closed

    def metrics(self, raw: bool = False) -> dict:
        return {"producer-metrics": dict(self._producer.metrics())}

    def close(self, timeout: float | None = None, null_logger: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._plain = False  # send() takes the path that raises IllegalStateError
        self._producer.close()

    def __enter__(self) -> KafkaProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<eventlog kafka.KafkaProducer>"
