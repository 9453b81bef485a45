"""Shared test settings: hypothesis profiles ("dev" by default, "ci" for many examples),
and the ``clock`` fixture most unit tests take.

Select a profile with the environment variable HYPOTHESIS_PROFILE.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from eventlog.testing import ManualClock

settings.register_profile(
    "dev",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def clock() -> ManualClock:
    """A fresh manual clock (a test module may override it, e.g. without autojump)."""
    return ManualClock()


# Suites that start other processes (Kafka-protocol brokers, real clients, the CLI,
# a browser) count as slow: the quick loop, ``python -m pytest -m "not slow"``, runs
# the in-process side of each comparison; CI runs everything.
_process_suites = ("server", "cli", "browser")
# Single tests of several seconds whose fast variant stays in the quick loop (the
# in-memory state machines; the same crash test with fewer records elsewhere).
_slow_tests = (
    "test_index_buffering.py::test_crash_with_pending_entries_recovers_a_correct_index",
    "test_partition_log_machine.py::TestPartitionLogOnFiles",
    "test_cleaner_machine.py::TestCleanerOnFiles",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = os.path.dirname(__file__)
    for item in items:
        relative = os.path.relpath(str(item.path), tests_dir)
        suite = relative.split(os.sep, 1)[0]
        if suite in _process_suites or any(name in item.nodeid for name in _slow_tests) or (
            suite == "compat" and ("[real" in item.nodeid or "kafka_bootstrap" in item.nodeid)
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def checked_producers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run ``Producer.check()`` on every producer the test made, once the test is over
    (use it with ``pytestmark = pytest.mark.usefixtures("checked_producers")``)."""
    from eventlog.producer import Producer

    made: list[weakref.ref[Producer]] = []
    init = Producer.__init__

    def recording_init(self: Producer, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(weakref.ref(self))  # weak: a test may garbage-collect its producer

    monkeypatch.setattr(Producer, "__init__", recording_init)
    yield
    for ref in made:
        producer = ref()
        if producer is not None:
            producer.check()
