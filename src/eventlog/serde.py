"""Serializers and deserializers by name: "bytes", "str", "json", "msgpack".

A producer's ``key_serializer`` / ``value_serializer`` and a consumer's
``key_deserializer`` / ``value_deserializer`` take one of these names or any
callable. ``None`` passes through both ways, as Kafka's serializers do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack

from .errors import InvalidConfigError

__all__ = ["resolve_deserializer", "resolve_serializer"]

Serializer = Callable[[Any], "bytes | None"]
Deserializer = Callable[["bytes | None"], Any]


def _bytes_ser(obj: Any) -> bytes | None:
    if obj is None or type(obj) is bytes:
        return obj
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"the 'bytes' serializer takes bytes, got {type(obj).__name__}")


def _str_ser(obj: Any) -> bytes | None:
    if obj is None:
        return None
    if not isinstance(obj, str):
        raise TypeError(f"the 'str' serializer takes str, got {type(obj).__name__}")
    return obj.encode("utf-8")


def _json_ser(obj: Any) -> bytes | None:
    return None if obj is None else json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _msgpack_ser(obj: Any) -> bytes | None:
    return None if obj is None else msgpack.packb(obj, use_bin_type=True)


def _bytes_de(data: bytes | None) -> Any:
    return data


def _str_de(data: bytes | None) -> Any:
    return None if data is None else data.decode("utf-8")


def _json_de(data: bytes | None) -> Any:
    return None if data is None else json.loads(data)


def _msgpack_de(data: bytes | None) -> Any:
    return None if data is None else msgpack.unpackb(data, raw=False)


SERIALIZERS: dict[str, Serializer] = {
    "bytes": _bytes_ser,
    "str": _str_ser,
    "json": _json_ser,
    "msgpack": _msgpack_ser,
}
DESERIALIZERS: dict[str, Deserializer] = {
    "bytes": _bytes_de,
    "str": _str_de,
    "json": _json_de,
    "msgpack": _msgpack_de,
}


def _resolve(spec: Any, table: dict[str, Any], what: str) -> Any:
    if spec is None:
        return None
    if isinstance(spec, str):
        try:
            return table[spec]
        except KeyError:
            raise InvalidConfigError(
                f"unknown {what} {spec!r}; use a callable or one of {', '.join(table)}"
            ) from None
    if callable(spec):
        return spec
    raise InvalidConfigError(
        f"{what} must be a callable or one of {', '.join(table)}, got {type(spec).__name__}"
    )


def resolve_serializer(spec: Any, what: str = "serializer") -> Serializer | None:
    """The serializer named by ``spec`` (a name or a callable), or None for none."""
    return _resolve(spec, SERIALIZERS, what)


def resolve_deserializer(spec: Any, what: str = "deserializer") -> Deserializer | None:
    """The deserializer named by ``spec`` (a name or a callable), or None for none."""
    return _resolve(spec, DESERIALIZERS, what)
