"""Random and mutated frames: the server stays up and the log stays valid."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import decode_response, read_frame, request_frame

import eventlog
from eventlog.server.records import encode_batch

BATCH = encode_batch([0, 1], [1, 2], [b"a", None], [b"x", b"y"], [(("h", b"1"),), ()])
SEEDS = [
    request_frame(18, 3, {"client_software_name": "f", "client_software_version": "1"}),
    request_frame(3, 12, {"topics": [{"name": "t"}], "allow_auto_topic_creation": False,
                          "include_topic_authorized_operations": False}),
    request_frame(0, 9, {"acks": 1, "timeout": 100, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": BATCH}]}]}),
    request_frame(1, 11, {"max_wait": 0, "min_bytes": 1, "topics": [
        {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0,
                                       "partition_max_bytes": 1 << 20}]}]}),
    request_frame(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1}]}]}),
]


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[tuple[eventlog.EventLog, Any]]:
    with eventlog.open(None) as log, eventlog.serve(log) as server:
        log.create_topic("t", 2)
        yield log, server


@st.composite
def frames(draw: Any) -> bytes:
    if draw(st.booleans()):
        body = draw(st.binary(max_size=200))
        return struct.pack(">i", len(body)) + body
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(4, len(frame) - 1))
        frame[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        frame = frame[:draw(st.integers(0, len(frame)))]
    return bytes(frame)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames())
def test_server_survives_any_frame(fuzz_server: tuple[eventlog.EventLog, Any],
                                   frame: bytes) -> None:
    log, server = fuzz_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(frame)
        sock.shutdown(socket.SHUT_WR)  # a frame cut short ends here, as a dropped client does
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_frame(18, 0, {}))
        _cid, body = decode_response(read_frame(sock), 18, 0)
        assert body.error_code.value == 0
    log.check()
