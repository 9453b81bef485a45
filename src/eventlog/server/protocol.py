"""Framing, request headers and version-independent response building over kio.

kio (Aiven) provides one frozen dataclass per Kafka message and version,
generated from Kafka's own JSON schemas, with a native decoder and an encoder.
The handlers here write each response once, as plain values (ints for
milliseconds, ints for error codes, dicts for nested structs), and
:func:`build` fits them to the dataclass of the version the client asked for:
fields that version lacks are dropped, fields the handler did not give get
their schema default (or the type's zero).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import io
import logging
import struct
import types
import typing
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.serial import entity_reader, entity_writer

__all__ = [
    "FrameError",
    "RequestHeader",
    "build",
    "encode_response",
    "ms",
    "parse_request",
    "request_class",
    "response_class",
]

_log = logging.getLogger("eventlog.server")
api_versions_key = 18
_key_version = struct.Struct(">hhi")
_int32 = struct.Struct(">i")
_epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class FrameError(ValueError):
    """A request frame that cannot be decoded (the connection is closed)."""


class RequestHeader(NamedTuple):
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


@functools.cache
def request_class(api_key: int, version: int) -> Any:
    return load_request_schema(api_key, version)


@functools.cache
def response_class(api_key: int, version: int) -> Any:
    return load_response_schema(api_key, version)


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) of a frame; FrameError if too short."""
    if len(frame) < _key_version.size:
        raise FrameError(f"request of {len(frame)} bytes is shorter than a request header")
    return _key_version.unpack_from(frame, 0)


def parse_request(frame: bytes, api_key: int, version: int) -> tuple[RequestHeader, Any]:
    """Decode the header and the body of a request kio knows at this version."""
    cls = request_class(api_key, version)
    header_cls = RequestHeaderV2 if cls.__flexible__ else RequestHeaderV1
    try:
        header, size = entity_reader(header_cls)(frame, 0)
        body, body_size = entity_reader(cls)(frame, size)
    except Exception as exc:  # kio raises its own errors and ValueError/IndexError
        raise FrameError(
            f"{cls.__name__} v{version} does not decode: {type(exc).__name__}: {exc}"
        ) from exc
    if size + body_size != len(frame):
        # Kafka's broker ignores bytes after the last field, and librdkafka's admin
        # Metadata v12 request carries some: so do we.
        _log.debug("%s v%d: %d bytes after the last field ignored", cls.__name__, version,
                   len(frame) - size - body_size)
    return RequestHeader(api_key, version, header.correlation_id, header.client_id), body


def encode_response(api_key: int, version: int, correlation_id: int, body: Any) -> bytes:
    """The size-prefixed response frame: header v0 or v1 (flexible), then the body.

    ApiVersions responses always use header v0 (KIP-511): a client that sent a
    version the broker does not know must still be able to read the answer.
    """
    buf = io.BytesIO()
    buf.write(b"\0\0\0\0")
    buf.write(_int32.pack(correlation_id))
    if type(body).__flexible__ and api_key != api_versions_key:
        buf.write(b"\0")  # no tagged fields in the response header
    entity_writer(type(body))(buf, body)
    data = buf.getbuffer()
    data[0:4] = _int32.pack(len(data) - 4)
    return bytes(data)


# ---------------------------------------------------------------------------- building


def ms(value: Any) -> int:
    """Milliseconds of a kio timedelta field (or an int)."""
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


class _FieldSpec(NamedTuple):
    name: str
    kind: str  # "entity", "entities", "primitive", "primitives"
    inner: Any
    kafka_type: str
    optional: bool
    has_default: bool


def _unwrap(tp: Any) -> tuple[Any, bool]:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


@functools.cache
def _specs(cls: type) -> tuple[_FieldSpec, ...]:
    out = []
    for f in dataclasses.fields(cls):
        tp, optional = _unwrap(f.type)
        has_default = (f.default is not dataclasses.MISSING
                       or f.default_factory is not dataclasses.MISSING)
        kafka_type = f.metadata.get("kafka_type", "")
        if typing.get_origin(tp) is tuple:
            inner = typing.get_args(tp)[0]
            kind = "entities" if dataclasses.is_dataclass(inner) else "primitives"
        elif dataclasses.is_dataclass(tp):
            inner, kind = tp, "entity"
        else:
            inner, kind = tp, "primitive"
        out.append(_FieldSpec(f.name, kind, inner, kafka_type, optional, has_default))
    return tuple(out)


def build(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of the kio dataclass ``cls`` from plain ``values`` (see the module doc)."""
    kwargs: dict[str, Any] = {}
    for spec in _specs(cls):
        if spec.name in values:
            kwargs[spec.name] = _convert(spec, values[spec.name])
        elif not spec.has_default:
            kwargs[spec.name] = _zero(spec)
    return cls(**kwargs)


def _convert(spec: _FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if spec.kind == "entities":
        return tuple(build(spec.inner, v) if isinstance(v, Mapping) else v for v in value)
    if spec.kind == "entity":
        return build(spec.inner, value) if isinstance(value, Mapping) else value
    if spec.kind == "primitives":
        return tuple(value)
    return _primitive(spec.kafka_type, value)


def _primitive(kafka_type: str, value: Any) -> Any:
    if kafka_type in ("timedelta_i32", "timedelta_i64") and isinstance(value, int):
        return datetime.timedelta(milliseconds=value)
    if kafka_type == "error_code" and not isinstance(value, ErrorCode):
        return ErrorCode(int(value))
    if kafka_type == "datetime_i64" and isinstance(value, int):
        return _epoch + datetime.timedelta(milliseconds=value)
    if kafka_type == "uuid" and isinstance(value, bytes):
        return uuid.UUID(bytes=value)
    return value


_zeros = {
    "string": "", "bytes": b"", "records": b"", "bool": False, "uuid": uuid.UUID(int=0),
    "timedelta_i32": datetime.timedelta(0), "timedelta_i64": datetime.timedelta(0),
    "error_code": ErrorCode.none, "float64": 0.0,
}


def _zero(spec: _FieldSpec) -> Any:
    if spec.kind in ("entities", "primitives"):
        return ()
    if spec.optional:
        return None
    if spec.kind == "entity":
        return build(spec.inner, {})
    return _zeros.get(spec.kafka_type, 0)


def has_field(cls: type, name: str) -> bool:
    return any(s.name == name for s in _specs(cls))
