"""EventLog.close() closes its clients first, outside the log's lock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import eventlog
from eventlog.errors import ClosedError

join_timeout_s = 5.0  # the closes take milliseconds; this only bounds a hang


class Client:
    """A registered client whose close() uses the log, as a server finishing a request
    does, and may register another client or fail."""

    def __init__(self, log: eventlog.EventLog, *, then_register: Client | None = None,
                 fail: bool = False, register: bool = True) -> None:
        self.log = log
        self.then_register = then_register
        self.fail = fail
        self.closed = 0
        if register:
            log.register_client(self)

    def close(self) -> None:
        if self.fail:
            self.fail = False
            raise RuntimeError("close failed")
        self.log.create_topic(f"made-while-closing-{id(self)}")  # the log still works
        if self.then_register is not None:
            self.log.register_client(self.then_register)
        self.closed += 1


def test_clients_use_the_log_while_it_closes_and_late_clients_are_closed(
    tmp_path: Path,
) -> None:
    log = eventlog.open(tmp_path / "d")
    late = Client(log, register=False)  # registered by first's close()
    first = Client(log, then_register=late)
    log.close()
    assert (first.closed, late.closed) == (1, 1)
    assert log.closed
    with pytest.raises(ClosedError):
        log.topics()
    log.close()  # idempotent: the clients are not closed twice
    assert (first.closed, late.closed) == (1, 1)
    with eventlog.open(tmp_path / "d") as again:
        assert len(again.topics()) == 2


def test_a_failed_client_close_leaves_the_log_open_and_close_can_be_retried(
    tmp_path: Path,
) -> None:
    log = eventlog.open(tmp_path / "d")
    client = Client(log, fail=True)
    with pytest.raises(RuntimeError, match="close failed"):
        log.close()
    assert not log.closed
    log.create_topic("after")
    log.close()
    assert log.closed and client.closed == 1


def test_a_close_in_another_thread_returns_once_the_log_is_closed(tmp_path: Path) -> None:
    """A second close() meanwhile waits for the first: when it returns, the directory
    is released and can be opened again."""
    log = eventlog.open(tmp_path / "d")
    in_close = threading.Event()
    may_finish = threading.Event()
    second_waits = threading.Event()

    class WaitedEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            second_waits.set()
            return super().wait(timeout)

    class Slow:
        def close(self) -> None:
            log._close_done = WaitedEvent()  # what a second close() waits on
            in_close.set()
            assert may_finish.wait(join_timeout_s)

    slow = Slow()
    log.register_client(slow)
    first = threading.Thread(target=log.close, daemon=True)
    first.start()
    assert in_close.wait(join_timeout_s)
    reopened: list[bool] = []

    def second_close() -> None:
        log.close()
        with eventlog.open(tmp_path / "d") as again:  # released by the time it returns
            again.check()
            reopened.append(True)

    second = threading.Thread(target=second_close, daemon=True)
    second.start()
    assert second_waits.wait(join_timeout_s)  # the second close waits for the first
    assert reopened == []
    may_finish.set()
    second.join(join_timeout_s)
    first.join(join_timeout_s)
    assert reopened == [True] and not first.is_alive()
    assert log.closed


def test_a_client_closing_the_log_again_does_not_wait_for_itself(tmp_path: Path) -> None:
    log = eventlog.open(tmp_path / "d")

    class Reentrant:
        calls = 0

        def close(self) -> None:
            Reentrant.calls += 1
            log.close()  # the same thread: returns at once

    client = Reentrant()  # registered clients are weakly held
    log.register_client(client)
    closer = threading.Thread(target=log.close, daemon=True)
    closer.start()
    closer.join(join_timeout_s)
    assert not closer.is_alive(), "close() re-entered from a client's close() hung"
    assert log.closed and Reentrant.calls == 1
