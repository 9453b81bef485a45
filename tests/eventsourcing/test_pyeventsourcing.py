"""pyeventsourcing's own abstract test cases, run against eventlog's persistence module.

Each case is subclassed only to construct our recorder (or to point the environment at
our factory); every test method runs as pyeventsourcing wrote it, except where a method
is skipped below with the semantic reason (also in docs/event-sourcing.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest.importorskip(
    "eventsourcing",
    reason="pyeventsourcing is not installed: pip install -e '.[eventsourcing]'",
)
pytest.importorskip("Crypto", reason="its cipher tests need pycryptodome: pip install pycryptodome")

# Modules, not their classes: pytest would collect a TestCase named in this module.
from eventsourcing.tests import application as es_application
from eventsourcing.tests import persistence as es_persistence
from eventsourcing.utils import Environment

import eventlog
from eventlog.eventsourcing import (
    EventLogAggregateRecorder,
    EventLogApplicationRecorder,
    EventLogProcessRecorder,
    EventLogTrackingRecorder,
    Factory,
)


class _OnDisk:
    """A fresh data directory and EventLog per test."""

    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="eventlog-es-")
        self.log = eventlog.open(self.data_dir)
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class TestAggregateRecorder(_OnDisk, es_persistence.AggregateRecorderTestCase):
    def create_recorder(self) -> EventLogAggregateRecorder:
        return EventLogAggregateRecorder(self.log, "app.events")


class TestApplicationRecorder(_OnDisk, es_persistence.ApplicationRecorderTestCase):
    def create_recorder(self) -> EventLogApplicationRecorder:
        return EventLogApplicationRecorder(self.log, "app.events")

    @pytest.mark.slow
    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:
        super().test_concurrent_no_conflicts(initial_position)

    @pytest.mark.slow
    def test_concurrent_throughput(self) -> None:
        super().test_concurrent_throughput()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestNonInterleavingNotificationIDs(
    _OnDisk, es_persistence.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> EventLogApplicationRecorder:
        return EventLogApplicationRecorder(self.log, "app.events")


class TestTrackingRecorder(_OnDisk, es_persistence.TrackingRecorderTestCase):
    def create_recorder(self) -> EventLogTrackingRecorder:
        return EventLogTrackingRecorder(self.log, "app.tracking")


class TestProcessRecorder(_OnDisk, es_persistence.ProcessRecorderTestCase):
    def create_recorder(self) -> EventLogProcessRecorder:
        return EventLogProcessRecorder(self.log, "app.events")


class MyTrackingRecorder(EventLogTrackingRecorder):
    pass


class TestFactory(es_persistence.InfrastructureFactoryTestCase[Factory]):
    def expected_factory_class(self) -> type[Factory]:
        return Factory

    def expected_aggregate_recorder_class(self) -> type[EventLogAggregateRecorder]:
        return EventLogAggregateRecorder

    def expected_application_recorder_class(self) -> type[EventLogApplicationRecorder]:
        return EventLogApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[EventLogTrackingRecorder]:
        return EventLogTrackingRecorder

    def tracking_recorder_subclass(self) -> type[EventLogTrackingRecorder]:
        return MyTrackingRecorder

    def expected_process_recorder_class(self) -> type[EventLogProcessRecorder]:
        return EventLogProcessRecorder

    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="eventlog-es-")
        self.env = Environment("TestCase")
        self.env[Factory.PERSISTENCE_MODULE] = "eventlog.eventsourcing"
        self.env[Factory.EVENTLOG_DATA_DIR] = self.data_dir
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class TestExampleApplication(es_application.ExampleApplicationTestCase):
    expected_factory_topic = "eventlog.eventsourcing:Factory"

    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="eventlog-es-")
        self._saved = {k: os.environ.get(k) for k in ("PERSISTENCE_MODULE", "EVENTLOG_DATA_DIR")}
        os.environ["PERSISTENCE_MODULE"] = "eventlog.eventsourcing"
        os.environ["EVENTLOG_DATA_DIR"] = self.data_dir
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.data_dir, ignore_errors=True)


class TestApplication(es_application.ApplicationTestCase):
    """pyeventsourcing's Application tests, with our module as the default persistence."""

    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="eventlog-es-")
        self._saved = {k: os.environ.get(k) for k in ("PERSISTENCE_MODULE", "EVENTLOG_DATA_DIR")}
        os.environ["PERSISTENCE_MODULE"] = "eventlog.eventsourcing"
        os.environ["EVENTLOG_DATA_DIR"] = self.data_dir
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.data_dir, ignore_errors=True)
