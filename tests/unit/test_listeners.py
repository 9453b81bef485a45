"""eventlog.listeners: @app.listener functions, commits, retries, the dead-letter topic."""

from __future__ import annotations

import threading

import pytest

import eventlog
from eventlog.errors import InvalidConfigError
from eventlog.listeners import ListenerApp
from eventlog.testing import assert_produced, records


def produce(log: eventlog.EventLog, topic: str, *values: bytes) -> None:
    with log.producer(linger_ms=0) as p:
        for v in values:
            p.send(topic, v, key=b"k")


def test_a_listener_gets_values_and_commits_after_each(log) -> None:
    produce(log, "user-changes", b"a", b"b")
    seen = []
    with ListenerApp(log) as app:
        @app.listener("user-changes", group_id="search-sync")
        def index(value: bytes) -> None:
            seen.append(value)
        assert index.__name__ == "index"  # the function is returned unchanged
        assert app.process() == 2
        assert seen == [b"a", b"b"]
        assert log.describe_group("search-sync").offsets[0].committed_offset == 2
        produce(log, "user-changes", b"c")
        assert app.process() == 1 and seen[-1] == b"c"


def test_async_listener_and_records_and_chained_listeners(log) -> None:
    produce(log, "orders", b"o-1")
    got = []
    with ListenerApp(log) as app:
        producer = log.producer(linger_ms=0)

        @app.listener("orders", group_id="billing", record=True)
        async def bill(record) -> None:
            got.append((record.topic, record.offset))
            producer.send("invoices", b"inv-for-" + record.value).result()

        @app.listener("invoices", group_id="mail")
        def mail(value: bytes) -> None:
            got.append(value)

        assert app.process() == 2  # the invoice produced while processing is handled too
        producer.close()
    assert got == [("orders", 0), b"inv-for-o-1"]


def test_retries_with_backoff_then_the_dead_letter_topic(log) -> None:
    produce(log, "payments", b"bad", b"good")
    calls = []
    with ListenerApp(log) as app:
        @app.listener("payments", group_id="ledger", retries=2, backoff_ms=1000)
        def book(value: bytes) -> None:
            calls.append((value, log.clock.monotonic_ms()))
            if value == b"bad":
                raise ValueError("cannot book 'bad'")

        start = log.clock.monotonic_ms()
        assert app.process() == 2
    bad = [t - start for v, t in calls if v == b"bad"]
    assert len(bad) == 3 and bad[1] - bad[0] >= 1000 and bad[2] - bad[1] >= 2000
    assert [v for v, _ in calls][-1] == b"good"
    assert_produced(log, "payments.DLT", [(b"k", b"bad")])
    (dead,) = records(log, "payments.DLT")
    headers = dict(dead.headers)
    assert headers["kafka_dlt-exception-fqcn"] == b"builtins.ValueError"
    assert headers["kafka_dlt-exception-message"] == b"cannot book 'bad'"
    assert b"ValueError" in headers["kafka_dlt-exception-stacktrace"]
    assert headers["kafka_dlt-original-topic"] == b"payments"
    assert headers["kafka_dlt-original-offset"] == b"0"
    assert log.describe_group("ledger").offsets[0].committed_offset == 2


def test_without_dead_letter_the_error_is_raised_and_nothing_committed(log) -> None:
    produce(log, "t", b"x")
    app = ListenerApp(log)

    @app.listener("t", group_id="g", retries=0, dead_letter=False)
    def fail(value: bytes) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        app.process()
    app.close()
    assert "t.DLT" not in log.topics()
    assert [o.committed_offset for o in log.describe_group("g").offsets
            if o.committed_offset is not None] == []


def test_run_until_stop_from_another_thread() -> None:
    log = eventlog.open(None, auto_create_topics=True)
    app = ListenerApp(log)
    done = threading.Event()

    @app.listener("t", group_id="g")
    def handle(value: bytes) -> None:
        if value == b"last":
            done.set()

    runner = threading.Thread(target=app.run)
    runner.start()
    produce(log, "t", b"first", b"last")
    assert done.wait(30)
    app.stop()
    runner.join(30)
    assert not runner.is_alive()
    assert log.describe_group("g").offsets[0].committed_offset == 2
    log.close()


def test_bad_arguments_are_refused(log) -> None:
    app = ListenerApp(log)
    for args, kwargs in (((), {"group_id": "g"}), (("t",), {"group_id": ""}),
                         (("t",), {"group_id": "g", "retries": -1}),
                         (("t",), {"group_id": "g", "backoff_multiplier": 0.5}),
                         (("t",), {"group_id": "g", "enable_auto_commit": True})):
        with pytest.raises(InvalidConfigError):
            app.listener(*args, **kwargs)
    with pytest.raises(InvalidConfigError):
        ListenerApp("not a log")  # type: ignore[arg-type]
    assert app.listeners == []
