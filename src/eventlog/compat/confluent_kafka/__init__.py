"""confluent-kafka's API over an in-process EventLog: ``import confluent_kafka`` inside
``eventlog.testing.use_eventlog(log)`` gives this module.

``bootstrap.servers`` selects the log (see :mod:`eventlog.compat`). Differences from
the real client are listed in docs/compat.md and docs/kafka-differences.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import admin, serialization
from ._common import Options
from ._consumer import Consumer
from ._producer import Producer
from ._types import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from .admin import ConsumerGroupState
from .serialization import (
    KeyDeserializationError,
    KeySerializationError,
    MessageField,
    SerializationContext,
    ValueDeserializationError,
    ValueSerializationError,
)

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "Consumer",
    "ConsumerGroupState",
    "DeserializingConsumer",
    "KafkaError",
    "KafkaException",
    "Message",
    "Producer",
    "SerializingProducer",
    "TopicPartition",
    "admin",
    "libversion",
    "serialization",
    "version",
]

__version__ = "2.6.0"


def version() -> tuple[str, int]:
    """The confluent-kafka API version this module follows, as ``(str, int)``."""
    return (__version__, 0x02060000)


def libversion() -> tuple[str, int]:
    return ("eventlog", 0x02060000)


def _serializer(opts: Options, name: str) -> Callable | None:
    fn = opts.take(name)
    if fn is not None and not callable(fn):
        raise TypeError(f'"{name}" must be callable, got {fn!r}')
    return fn


class SerializingProducer(Producer):
    """A Producer that runs ``key.serializer`` / ``value.serializer`` (obj, ctx) first."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        opts = Options(conf, {}, "SerializingProducer")
        self._key_serializer = _serializer(opts, "key.serializer")
        self._value_serializer = _serializer(opts, "value.serializer")
        super().__init__(opts.values)

    def produce(self, topic: str, key: Any = None, value: Any = None, partition: int = -1,
                on_delivery: Callable | None = None, timestamp: int = 0,
                headers: Any = None) -> None:
        if self._key_serializer is not None:
            ctx = SerializationContext(topic, MessageField.KEY, headers)
            try:
                key = self._key_serializer(key, ctx)
            except Exception as exc:
                raise KeySerializationError(exc) from exc
        if self._value_serializer is not None:
            ctx = SerializationContext(topic, MessageField.VALUE, headers)
            try:
                value = self._value_serializer(value, ctx)
            except Exception as exc:
                raise ValueSerializationError(exc) from exc
        super().produce(topic, value, key, partition, on_delivery=on_delivery,
                        timestamp=timestamp, headers=headers)


class DeserializingConsumer(Consumer):
    """A Consumer whose ``poll()`` runs ``key.deserializer`` / ``value.deserializer``."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        opts = Options(conf, {}, "DeserializingConsumer")
        self._key_deserializer = _serializer(opts, "key.deserializer")
        self._value_deserializer = _serializer(opts, "value.deserializer")
        super().__init__(opts.values)

    def poll(self, timeout: float | None = None) -> Message | None:
        msg = super().poll(timeout)
        if msg is None or msg.error() is not None:
            return msg
        headers = msg.headers()
        if self._key_deserializer is not None:
            ctx = SerializationContext(msg.topic() or "", MessageField.KEY, headers)
            try:
                msg.set_key(self._key_deserializer(msg.key(), ctx))
            except Exception as exc:
                raise KeyDeserializationError(exc) from exc
        if self._value_deserializer is not None:
            ctx = SerializationContext(msg.topic() or "", MessageField.VALUE, headers)
            try:
                msg.set_value(self._value_deserializer(msg.value(), ctx))
            except Exception as exc:
                raise ValueDeserializationError(exc) from exc
        return msg

    def consume(self, num_messages: int = 1, timeout: float | None = -1) -> list[Message]:
        raise NotImplementedError("DeserializingConsumer.consume() is not implemented; "
                                  "use poll()")  # as confluent-kafka's
