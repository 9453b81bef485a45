"""eventlog's pytest plugin (on when eventlog is installed; off with ``-p no:eventlog``).

Fixtures:

* ``eventlog_clock``: a ManualClock (autojump: waits end at once, time moves).
* ``eventlog_log``: an EventLog on that clock, ``auto_create_topics=True`` (as a Kafka
  broker's default), closed after the test. In memory; with ``--eventlog-dir DIR``, in
  ``DIR/<test name>``, kept when the test fails (removed when it passes) so that it can
  be inspected (``eventlog serve DIR/<test name>``, ``eventlog.open(...)``).
* ``kafka_clients``: ``use_eventlog(eventlog_log)`` for the test: ``import
  confluent_kafka`` / ``import kafka`` / ``import aiokafka`` in the code under test give
  eventlog's modules. Yields a KafkaClients (``.log``, ``.bootstrap_servers``, ...).
* ``kafka_bootstrap``: ``eventlog_log`` served over Kafka's wire protocol on 127.0.0.1;
  yields its ``"127.0.0.1:PORT"``. Skips the test (naming the install command) without
  the ``server`` extra.

Helpers for the tests themselves are in :mod:`eventlog.testing`: ``records``,
``wait_for``, ``assert_produced``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..log import EventLog
from ..log import open as open_log
from .clock import ManualClock
from .kafka import KafkaClients, use_eventlog

_report_key = pytest.StashKey[dict[str, pytest.TestReport]]()
_kept_key = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eventlog")
    group.addoption(
        "--eventlog-dir", metavar="DIR", default=None,
        help="keep eventlog_log on disk in DIR/<test name>; a failing test's directory "
             "is kept for inspection, a passing one's removed",
    )


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    item.stash.setdefault(_report_key, {})[report.when] = report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_report_key, {})
    return any(r.failed for r in reports.values())


def _directory_for(root: Path, nodeid: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:200] or "test"
    path = root / name
    if path.exists():
        shutil.rmtree(path)  # a previous run's data for the same test
    return path


@pytest.fixture
def eventlog_clock() -> ManualClock:
    """A ManualClock for the test's log."""
    return ManualClock()


@pytest.fixture
def eventlog_log(request: pytest.FixtureRequest, eventlog_clock: ManualClock
                 ) -> Iterator[EventLog]:
    """An EventLog on ``eventlog_clock`` (in memory, or under ``--eventlog-dir``),
    closed after the test."""
    root = request.config.getoption("eventlog_dir", None)
    path = None if root is None else _directory_for(Path(root), request.node.nodeid)
    log = open_log(path, clock=eventlog_clock, auto_create_topics=True)
    try:
        yield log
    finally:
        log.close()
        if path is not None:
            if _failed(request):
                request.config.stash.setdefault(_kept_key, []).append(
                    f"{request.node.nodeid}: {path}")
            else:
                shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def kafka_clients(eventlog_log: EventLog) -> Iterator[KafkaClients]:
    """Kafka client imports resolve to eventlog's modules on ``eventlog_log``."""
    with use_eventlog(eventlog_log) as clients:
        yield clients


@pytest.fixture
def kafka_bootstrap(eventlog_log: EventLog) -> Iterator[str]:
    """``eventlog_log`` served to real Kafka clients; yields ``"127.0.0.1:PORT"``."""
    from ..server import install_hint, serve

    try:
        from ..server import server as _server  # noqa: F401  (the extra's imports)
    except ImportError as exc:
        pytest.skip(f"kafka_bootstrap: {install_hint} ({exc})")
    with serve(eventlog_log, "127.0.0.1", 0) as server:
        yield server.bootstrap_servers


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    kept = terminalreporter.config.stash.get(_kept_key, [])
    if kept:
        terminalreporter.section("eventlog data kept for failed tests")
        for line in kept:
            terminalreporter.write_line(line)
