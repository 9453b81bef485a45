"""Fixtures of the Kafka protocol server tests: a served log, and the real clients.

The tests skip (with the reason) when kio or a client library is not installed;
.ci/run installs them all, so in CI they run.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import eventlog

if importlib.util.find_spec("kio") is None or importlib.util.find_spec("cramjam") is None:
    # test_server_extra.py reports the skip and its reason
    collect_ignore_glob = ["test_[!s]*.py"]


@pytest.fixture
def log(tmp_path: Any) -> Iterator[eventlog.EventLog]:
    with eventlog.open(tmp_path / "data") as log:
        yield log


@pytest.fixture
def server(log: eventlog.EventLog) -> Iterator[Any]:
    with eventlog.serve(log) as server:
        yield server
    log.check()


@pytest.fixture(autouse=True)
def _server_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="eventlog.server")
