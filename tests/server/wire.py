"""Raw protocol frames for the tests: requests encoded with kio, responses decoded."""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_reader, entity_writer

from eventlog.server.protocol import build


def request_frame(api_key: int, version: int, values: dict[str, Any],
                  correlation_id: int = 7) -> bytes:
    cls = load_request_schema(api_key, version)
    header_cls = HeaderV2 if cls.__flexible__ else HeaderV1
    buf = io.BytesIO()
    entity_writer(header_cls)(buf, header_cls(
        request_api_key=api_key, request_api_version=version, correlation_id=correlation_id,
        client_id="tests"))
    entity_writer(cls)(buf, build(cls, values))
    data = buf.getvalue()
    return struct.pack(">i", len(data)) + data


def connect(server: Any) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_frame(sock: socket.socket) -> bytes | None:
    """One response frame, or None if the server closed the connection."""
    head = _recv(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    return _recv(sock, size)


def _recv(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def decode_response(frame: bytes, api_key: int, version: int) -> tuple[int, Any]:
    cls = load_response_schema(api_key, version)
    (correlation_id,) = struct.unpack_from(">i", frame, 0)
    pos = 4 + (1 if cls.__flexible__ and api_key != 18 else 0)
    body, _size = entity_reader(cls)(frame, pos)
    return correlation_id, body


def call(server: Any, api_key: int, version: int, values: dict[str, Any]) -> Any:
    with connect(server) as sock:
        sock.sendall(request_frame(api_key, version, values))
        frame = read_frame(sock)
        assert frame is not None, "the server closed the connection"
        correlation_id, body = decode_response(frame, api_key, version)
        assert correlation_id == 7
        return body
