"""Closing a served log while the server is inside a request that needs the log."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from wire import connect, decode_response, read_frame, request_frame

import eventlog

join_timeout_s = 5.0  # the close takes milliseconds; this only bounds a deadlock


class WatchedLock:
    """The log's RLock, telling when a thread waits for it while another holds it."""

    def __init__(self, lock: Any, contended: threading.Event) -> None:
        self.lock = lock
        self.holder: int | None = None
        self.depth = 0
        self.contended = contended

    def __enter__(self) -> None:
        holder = self.holder
        if holder is not None and holder != threading.get_ident():
            self.contended.set()
        self.lock.acquire()
        self.holder = threading.get_ident()
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.holder = None
        self.lock.release()


def test_close_while_a_request_needs_the_log_lock(tmp_path: Path) -> None:
    """EventLog.close() closes its server; if it held the log's lock meanwhile, a
    request the server is serving (a CreateTopics, which takes that lock) could never
    finish, and the close would hang on it. The request is sent from inside the
    server's close, and close() must still return, with the log closed cleanly."""
    log = eventlog.open(tmp_path / "data")
    server = eventlog.serve(log)
    progressed = threading.Event()  # the request was answered, or waits for the lock
    log._lock = WatchedLock(log._lock, progressed)
    real_close = server.close
    sock = connect(server)
    answers: list[Any] = []

    def read_answer() -> None:
        frame = read_frame(sock)
        if frame is not None:
            answers.append(decode_response(frame, 19, 7)[1])
        progressed.set()

    def close_during_a_request() -> None:
        sock.sendall(request_frame(19, 7, {"topics": [
            {"name": "late", "num_partitions": 1, "replication_factor": 1}]}))
        reader.start()
        assert progressed.wait(join_timeout_s)
        real_close()

    reader = threading.Thread(target=read_answer, daemon=True)
    server.close = close_during_a_request  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def close_log() -> None:
        try:
            log.close()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    closer = threading.Thread(target=close_log, daemon=True)
    try:
        closer.start()
        closer.join(join_timeout_s)
        assert not closer.is_alive(), "EventLog.close() hung on a request the server serves"
        assert errors == []
        assert log.closed and server.closed
        reader.join(join_timeout_s)
        assert not reader.is_alive()
        # the request ran before the server closed: it was answered, and it was done
        assert [t.error_code.value for a in answers for t in a.topics] == [0]
    finally:
        sock.close()
    with eventlog.open(tmp_path / "data") as again:  # a clean shutdown, the topic there
        assert again.topics() == ["late"]
        again.check()
