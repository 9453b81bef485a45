"""confluent_kafka.serialization: serializers, deserializers and their context."""

from __future__ import annotations

import struct
from typing import Any

from ._types import KafkaError, KafkaException

__all__ = [
    "Deserializer",
    "DoubleDeserializer",
    "DoubleSerializer",
    "IntegerDeserializer",
    "IntegerSerializer",
    "MessageField",
    "SerializationContext",
    "SerializationError",
    "Serializer",
    "StringDeserializer",
    "StringSerializer",
]


class MessageField:
    NONE = "none"
    KEY = "key"
    VALUE = "value"


class SerializationContext:
    """What a serializer is told: the topic, which field, and the headers."""

    def __init__(self, topic: str, field: str, headers: Any = None) -> None:
        self.topic = topic
        self.field = field
        self.headers = headers


class SerializationError(KafkaException):
    """A serializer or deserializer failed."""

    def __init__(self, message: Any = None, *args: Any) -> None:
        if not isinstance(message, KafkaError):
            message = KafkaError(KafkaError._VALUE_SERIALIZATION, None if message is None  # type: ignore[attr-defined]
                                 else str(message))
        super().__init__(message, *args)


class KeySerializationError(SerializationError):
    pass


class ValueSerializationError(SerializationError):
    pass


class KeyDeserializationError(SerializationError):
    pass


class ValueDeserializationError(SerializationError):
    pass


class Serializer:
    """Turns an object into bytes: ``serializer(obj, ctx)``."""

    def __call__(self, obj: Any, ctx: SerializationContext | None = None) -> bytes | None:
        raise NotImplementedError


class Deserializer:
    """Turns bytes into an object: ``deserializer(data, ctx)``."""

    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None) -> Any:
        raise NotImplementedError


class StringSerializer(Serializer):
    def __init__(self, codec: str = "utf_8") -> None:
        self.codec = codec

    def __call__(self, obj: Any, ctx: SerializationContext | None = None) -> bytes | None:
        if obj is None:
            return None
        if not isinstance(obj, str):
            raise SerializationError(f"Unsupported type {type(obj)}")
        try:
            return obj.encode(self.codec)
        except Exception as exc:
            raise SerializationError(str(exc)) from exc


class StringDeserializer(Deserializer):
    def __init__(self, codec: str = "utf_8") -> None:
        self.codec = codec

    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None
                 ) -> str | None:
        if value is None:
            return None
        try:
            return value.decode(self.codec)
        except Exception as exc:
            raise SerializationError(str(exc)) from exc


class IntegerSerializer(Serializer):
    """A signed 32-bit big-endian int, as Kafka's IntegerSerializer."""

    def __call__(self, obj: Any, ctx: SerializationContext | None = None) -> bytes | None:
        if obj is None:
            return None
        try:
            return struct.pack(">i", obj)
        except struct.error as exc:
            raise SerializationError(str(exc)) from exc


class IntegerDeserializer(Deserializer):
    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None
                 ) -> int | None:
        if value is None:
            return None
        try:
            return int(struct.unpack(">i", value)[0])
        except struct.error as exc:
            raise SerializationError(str(exc)) from exc


class DoubleSerializer(Serializer):
    """A 64-bit big-endian IEEE 754 double, as Kafka's DoubleSerializer."""

    def __call__(self, obj: Any, ctx: SerializationContext | None = None) -> bytes | None:
        if obj is None:
            return None
        try:
            return struct.pack(">d", obj)
        except struct.error as exc:
            raise SerializationError(str(exc)) from exc


class DoubleDeserializer(Deserializer):
    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None
                 ) -> float | None:
        if value is None:
            return None
        try:
            return float(struct.unpack(">d", value)[0])
        except struct.error as exc:
            raise SerializationError(str(exc)) from exc
