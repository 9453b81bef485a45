"""Closing the log while a server thread waits for the log's lock must not deadlock.

``EventLog.close()`` closes its clients (a served log's Server among them) first.
It used to do that while holding the log lock, and a request being handled on the
server's thread (CreateTopics here) may need that lock: the server waited for the
lock, close waited for the server. The test would hang there, so close runs in a
thread of its own that must finish within a deadline.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from wire import connect, request_frame

import eventlog


def _waits_in_create_topic(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "create_topic":
            return True
        frame = frame.f_back
    return False


def test_close_while_a_request_waits_for_the_log_lock(tmp_path: Path) -> None:
    log = eventlog.open(tmp_path / "data")
    server = log.serve()
    real_close = server.close
    outcome: list[BaseException | None] = []
    sock = connect(server)

    def close_once_a_request_needs_the_lock() -> None:
        # called by log.close() (the server is one of the log's clients): a CreateTopics
        # request arrives now, and its handler needs the log lock
        sock.sendall(request_frame(19, 7, {"topics": [
            {"name": "late", "num_partitions": 1, "replication_factor": 1}]}))
        end = time.monotonic() + 30
        while not (_waits_in_create_topic(server._thread) or "late" in log._topics):
            assert time.monotonic() < end, "the CreateTopics request never reached create_topic"
            time.sleep(0.001)  # polling a condition, not synchronising on time
        real_close()

    server.close = close_once_a_request_needs_the_lock  # type: ignore[method-assign]

    def close() -> None:
        try:
            log.close()
            outcome.append(None)
        except BaseException as exc:  # reported by the test's thread
            outcome.append(exc)

    closer = threading.Thread(target=close, daemon=True)
    closer.start()
    closer.join(60)
    sock.close()
    assert not closer.is_alive(), "EventLog.close() deadlocked with the server's thread"
    assert outcome == [None]
    assert log.closed and server.closed
    with eventlog.open(tmp_path / "data") as reopened:  # the request's topic was made
        assert "late" in reopened.topics()
