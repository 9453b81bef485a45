"""EventLog.close() closes its clients first, outside the log's lock."""

from __future__ import annotations

from pathlib import Path

import pytest

import eventlog
from eventlog.errors import ClosedError


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
