"""Shared test settings: hypothesis profiles, the slow marks, and the fixtures many suites take.

Profiles: "dev" (the default, what CI runs), "ci" (many examples), and "quick", which
the quick loop ``python -m pytest -m "not slow"`` loads so that each property test
still runs, with a few examples. The environment variable HYPOTHESIS_PROFILE
overrides the choice.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

import eventlog
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
settings.register_profile(
    "quick",
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config: pytest.Config) -> None:
    quick_loop = config.option.markexpr.replace(" ", "") == "notslow"
    if quick_loop and "HYPOTHESIS_PROFILE" not in os.environ:
        settings.load_profile("quick")


@pytest.fixture
def clock() -> ManualClock:
    """A fresh manual clock (a test module may override it, e.g. without autojump)."""
    return ManualClock()


@pytest.fixture(params=["file", "memory"])
def path(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str | None:
    """A data directory to open, or None: each test taking it runs on files and in memory."""
    return os.path.join(tmp_path, "data") if request.param == "file" else None


@pytest.fixture
def elog(path: str | None, clock: ManualClock) -> Iterator[eventlog.EventLog]:
    """A log at ``path`` (on files and in memory) on the ``clock``, closed after the test."""
    with eventlog.open(path, clock=clock) as log:
        yield log


@pytest.fixture
def log(clock: ManualClock) -> Iterator[eventlog.EventLog]:
    """An in-memory log on the ``clock`` that creates topics on first use, closed after
    the test. Modules whose tests need topics made first override it."""
    with eventlog.open(None, clock=clock, auto_create_topics=True) as log_:
        yield log_


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
    "test_index_buffering.py::test_clean_reopen_gives_identical_indexes",
    "test_log_directory.py::test_every_byte_flip_of_a_topics_file",
    "test_log_directory.py::test_a_crash_at_any_step_of_create_or_delete",
    "test_consumer_threads.py::test_four_consumers_two_producers",
    "test_producer.py::test_four_threads_share_one_producer",
    "test_sealed_damage.py::test_the_last_log_cut_inside_its_first_header",
    "test_use_eventlog.py::test_installed_plugin_is_on_by_default",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = os.path.dirname(__file__)
    for item in items:
        relative = os.path.relpath(str(item.path), tests_dir)
        suite = relative.split(os.sep, 1)[0]
        if suite in _process_suites or any(name in item.nodeid for name in _slow_tests) or (
            suite == "compat" and any(mark in item.nodeid for mark in ("[real", "[served",
                                                                   "kafka_bootstrap"))
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
