"""eventlog.testing's records / wait_for / assert_produced and the plugin's --eventlog-dir
option and kafka_bootstrap fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eventlog
from eventlog.compat import confluent_kafka as ck
from eventlog.compat import kafka as kp
from eventlog.errors import EventLogTimeoutError, InvalidConfigError, UnknownTopicError
from eventlog.testing import ManualClock, assert_produced, records, use_eventlog, wait_for

SRC = Path(__file__).resolve().parents[2] / "src"


def test_records_lists_every_partition_in_offset_order(log) -> None:
    log.create_topic("t", partitions=2)
    with log.producer() as p:
        p.send("t", b"a", partition=1)
        p.send("t", b"b", key=b"k", partition=0)
        p.send("t", b"c", partition=1)
    got = records(log, "t")
    assert [(r.partition, r.offset, r.key, r.value) for r in got] == [
        (0, 0, b"k", b"b"), (1, 0, None, b"a"), (1, 1, None, b"c")]
    assert [r.value for r in records(log, "t", 1)] == [b"a", b"c"]
    with pytest.raises(InvalidConfigError, match=r"partitions 0\.\.1"):
        records(log, "t", 2)
    with pytest.raises(UnknownTopicError):
        records(log, "missing")


def test_records_sees_a_lingering_producer_batch(log) -> None:
    p = log.producer(linger_ms=60_000)
    p.send("t", b"x")
    assert [r.value for r in records(log, "t")] == [b"x"]
    p.close()


def test_assert_produced_passes_and_fails_with_a_diff(log) -> None:
    with log.producer() as p:
        for v in (b"a", b"b", b"c"):
            p.send("orders", v, key=v.upper())
    assert_produced(log, "orders", [b"a", "b", b"c"])
    assert_produced(log, "orders", [(b"A", b"a"), ("B", "b"), (b"C", b"c")])
    with pytest.raises(AssertionError) as info:
        assert_produced(log, "orders", [b"a", b"x", b"c", b"d"])
    text = str(info.value)
    assert "'orders' holds 3 record(s), expected 4" in text
    assert "- b'x'" in text and "+ b'b'" in text and "- b'd'" in text
    with pytest.raises(AssertionError, match="expected 2"):
        assert_produced(log, "orders", [b"a", b"b"])
    with pytest.raises(AssertionError):
        assert_produced(log, "orders", [b"a", b"c", b"b"])  # order matters in one partition
    with pytest.raises(TypeError, match="not a mix"):
        assert_produced(log, "orders", [b"a", (b"B", b"b"), b"c"])
    with pytest.raises(TypeError, match="bytes, str or None"):
        assert_produced(log, "orders", [1, 2, 3])
    with pytest.raises(TypeError, match="a list"):
        assert_produced(log, "orders", b"abc")


def test_assert_produced_across_partitions_follows_each_partitions_order(log) -> None:
    log.create_topic("t", partitions=2)
    with log.producer() as p:
        p.send("t", b"1", partition=0)
        p.send("t", b"2", partition=1)
        p.send("t", b"3", partition=0)
    assert_produced(log, "t", [b"1", b"2", b"3"])
    assert_produced(log, "t", [b"2", b"1", b"3"])  # a valid interleaving
    with pytest.raises(AssertionError, match="consistent with each partition"):
        assert_produced(log, "t", [b"3", b"2", b"1"])  # partition 0 has 1 before 3
    assert_produced(log, "t", [b"2"], partition=1)


def test_wait_for_advances_the_manual_clock_instead_of_sleeping(log) -> None:
    log.create_topic("t", partitions=2)
    with log.producer() as p:
        for i in range(5):
            p.send("t", str(i).encode(), partition=i % 2)
    consumer = log.consumer("t", group_id="g", auto_offset_reset="earliest")
    before = log.clock.monotonic_ms()
    got = wait_for(consumer, 5, timeout_ms=5_000)
    assert sorted(r.value for r in got) == [b"0", b"1", b"2", b"3", b"4"]
    assert log.clock.monotonic_ms() - before <= 5_000
    before = log.clock.monotonic_ms()
    with pytest.raises(EventLogTimeoutError, match=r"0 of 1 records within 2000 ms"):
        wait_for(consumer, 1, timeout_ms=2_000)
    assert log.clock.monotonic_ms() - before >= 2_000  # log time moved, not the real clock
    consumer.close()


def test_wait_for_with_a_clock_that_does_not_autojump() -> None:
    log = eventlog.open(None, clock=ManualClock(autojump=False), auto_create_topics=True)
    with log.producer() as p:
        p.send("t", b"x")
    consumer = log.consumer("t", group_id="g", auto_offset_reset="earliest")
    assert [r.value for r in wait_for(consumer, 1)] == [b"x"]
    with pytest.raises(EventLogTimeoutError):
        wait_for(consumer, 1, timeout_ms=500)
    consumer.close()
    log.close()


def test_wait_for_compat_consumers(log) -> None:
    with use_eventlog(log):
        p = ck.Producer({"bootstrap.servers": "x"})
        for v in ("a", "b"):
            p.produce("t", v)
        p.flush()
        c = ck.Consumer({"bootstrap.servers": "x", "group.id": "g",
                         "auto.offset.reset": "earliest", "enable.partition.eof": True})
        c.subscribe(["t"])
        msgs = wait_for(c, 2)
        assert [m.value() for m in msgs] == [b"a", b"b"]
        c.close()
        k = kp.KafkaConsumer("t", bootstrap_servers="x", group_id="h",
                             auto_offset_reset="earliest")
        assert [r.value for r in wait_for(k, 2)] == [b"a", b"b"]
        k.close()


def test_wait_for_refuses_bad_arguments(log) -> None:
    consumer = log.consumer()
    for kwargs in ({"n": 0}, {"n": 1.5}, {"n": 1, "timeout_ms": -1},
                   {"n": 1, "step_ms": 0}, {"n": True}):
        with pytest.raises(InvalidConfigError):
            wait_for(consumer, **kwargs)
    with pytest.raises(TypeError, match="eventlog Consumer"):
        wait_for(object(), 1)
    consumer.close()


def _run_pytest(tmp_path: Path, source: str, *extra: str) -> subprocess.CompletedProcess:
    test = tmp_path / "test_app.py"
    test.write_text(textwrap.dedent(source))
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "eventlog.testing.pytest_plugin",
            "-p", "no:cacheprovider", *extra, str(test)]
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)


def test_eventlog_dir_keeps_a_failing_tests_data_only(tmp_path: Path) -> None:
    source = '''
        def test_passes(eventlog_log):
            eventlog_log.producer().send("t", b"ok").result()
            assert eventlog_log.path is not None

        def test_fails(eventlog_log):
            eventlog_log.producer().send("t", b"kept").result()
            assert False, "on purpose"
    '''
    keep = tmp_path / "kept"
    run = _run_pytest(tmp_path, source, "--eventlog-dir", str(keep))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert [p.name for p in keep.iterdir()] == ["test_app.py_test_fails"]
    assert "eventlog data kept for failed tests" in run.stdout
    assert str(keep / "test_app.py_test_fails") in run.stdout
    with eventlog.open(keep / "test_app.py_test_fails") as reopened:
        assert [r.value for r in records(reopened, "t")] == [b"kept"]


def test_without_eventlog_dir_the_log_is_in_memory(tmp_path: Path) -> None:
    run = _run_pytest(tmp_path, '''
        def test_it(eventlog_log):
            assert eventlog_log.path is None
    ''')
    assert run.returncode == 0, run.stdout + run.stderr


def test_kafka_bootstrap_serves_the_log_or_skips_with_the_install_hint(tmp_path: Path) -> None:
    run = _run_pytest(tmp_path, '''
        import socket

        def test_it(kafka_bootstrap, eventlog_log):
            host, port = kafka_bootstrap.split(":")
            assert host == "127.0.0.1"
            socket.create_connection((host, int(port)), timeout=5).close()
    ''', "-rs")
    try:
        import eventlog.server.server  # noqa: F401
    except ImportError:
        assert run.returncode == 0 and "1 skipped" in run.stdout, run.stdout
        assert "pip install 'eventlog-embedded[server]'" in run.stdout
    else:
        assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr


def test_kafka_bootstrap_serves_real_clients(tmp_path: Path) -> None:
    pytest.importorskip("eventlog.server.server", reason="needs the server extra")
    pytest.importorskip("kafka", reason="needs kafka-python")
    run = _run_pytest(tmp_path, '''
        import kafka
        from eventlog.testing import assert_produced

        def test_it(kafka_bootstrap, eventlog_log):
            p = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap)
            p.send("orders", b"over-the-wire").get(timeout=30)
            p.close()
            assert_produced(eventlog_log, "orders", [b"over-the-wire"])
    ''')
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
