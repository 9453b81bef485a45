"""How one connection is served: pipelined requests, their answers' writes, idleness."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from wire import connect, decode_response, read_frame, request_frame

import eventlog
from eventlog.server.inbox import Inbox


class _Transport:
    """A socket transport stand-in that records each write()."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _serve(server: Any, data: bytes) -> list[bytes]:
    """Serve one connection that sends ``data`` at once and then ends; its writes."""
    transport = _Transport()

    async def run() -> None:
        inbox = Inbox(server._loop, server._connection, server.max_request_bytes)
        inbox.connection_made(transport)
        sent = 0
        while sent < len(data):  # as the socket would: the room first, then the bytes
            room = inbox.get_buffer(-1)
            n = min(len(room), len(data) - sent)
            room[:n] = data[sent:sent + n]
            del room
            inbox.buffer_updated(n)
            sent += n
        inbox.eof_received()
        assert inbox.task is not None
        await inbox.task

    asyncio.run_coroutine_threadsafe(run(), server._loop).result(30)
    assert transport.closed
    return transport.writes


def _frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        (size,) = struct.unpack_from(">i", data)
        frames.append(data[4:4 + size])
        data = data[4 + size:]
    return frames


def test_requests_that_arrived_together_are_answered_in_one_write(server: Any) -> None:
    requests = (request_frame(18, 3, {"client_software_name": "t",
                                      "client_software_version": "1"}, correlation_id=1)
                + request_frame(3, 12, {"topics": [], "allow_auto_topic_creation": False,
                                        "include_topic_authorized_operations": False},
                                correlation_id=2)
                + request_frame(10, 2, {"key": "g", "key_type": 0}, correlation_id=3))
    writes = _serve(server, requests)
    assert len(writes) == 1
    answers = _frames(writes[0])
    assert [decode_response(f, k, v)[0] for f, (k, v) in
            zip(answers, [(18, 3), (3, 12), (10, 2)], strict=True)] == [1, 2, 3]
    assert decode_response(answers[2], 10, 2)[1].error_code.value == 0


def test_answers_before_a_request_that_may_wait_are_written_first(
        server: Any, log: eventlog.EventLog) -> None:
    log.create_topic("t")
    fetch = {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
             "isolation_level": 0, "session_id": 0, "session_epoch": -1,
             "topics": [{"topic": "t", "partitions": [{
                 "partition": 0, "fetch_offset": 0, "log_start_offset": -1,
                 "partition_max_bytes": 1 << 20}]}],
             "forgotten_topics_data": []}
    requests = (request_frame(10, 2, {"key": "g", "key_type": 0}, correlation_id=1)
                + request_frame(1, 11, fetch, correlation_id=2))
    writes = _serve(server, requests)
    assert [len(_frames(w)) for w in writes] == [1, 1]  # FindCoordinator's, then Fetch's
    assert decode_response(_frames(writes[0])[0], 10, 2)[0] == 1
    assert decode_response(_frames(writes[1])[0], 1, 11)[0] == 2


def test_api_versions_answers_carry_their_own_correlation_ids(server: Any) -> None:
    with connect(server) as sock:
        for correlation_id in (5, 6, 2**31 - 1):
            sock.sendall(request_frame(18, 3, {"client_software_name": "t",
                                               "client_software_version": "1"},
                                       correlation_id=correlation_id))
            frame = read_frame(sock)
            assert frame is not None
            got, body = decode_response(frame, 18, 3)
            assert got == correlation_id and body.error_code.value == 0
            assert {k.api_key for k in body.api_keys} >= {0, 1, 3, 10, 11, 18}


def test_a_request_served_longer_than_the_idle_timeout_keeps_its_connection(
        log: eventlog.EventLog) -> None:
    log.create_topic("t")
    fetch = {"replica_id": -1, "max_wait": 300, "min_bytes": 1, "max_bytes": 1 << 20,
             "isolation_level": 0, "session_id": 0, "session_epoch": -1,
             "topics": [{"topic": "t", "partitions": [{
                 "partition": 0, "fetch_offset": 0, "log_start_offset": -1,
                 "partition_max_bytes": 1 << 20}]}],
             "forgotten_topics_data": []}
    with eventlog.serve(log, idle_timeout_ms=50) as server, connect(server) as sock:
        sock.settimeout(30)
        sock.sendall(request_frame(1, 11, fetch))  # waits max_wait: no data comes
        frame = read_frame(sock)
        assert frame is not None, "closed as idle while its Fetch was being served"
        assert decode_response(frame, 1, 11)[0] == 7
        assert read_frame(sock) is None  # then idle: closed
