"""log.metrics(), the Prometheus exporter and ``eventlog metrics DIR``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

import eventlog
from eventlog.records import TopicPartition
from eventlog.testing import ManualClock

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")


def test_sizes_segments_and_offsets_per_partition_and_in_total(tmp_path):
    with eventlog.open(tmp_path, clock=ManualClock()) as log:
        log.create_topic("t", partitions=2, segment_bytes=4096)
        part = log.topic("t").partition(0)
        for _ in range(50):
            part.append([(None, b"x" * 200)])
        m = log.metrics()
        p0 = m["partitions"][TopicPartition("t", 0)]
        p1 = m["partitions"][TopicPartition("t", 1)]
        assert p0["log-size"] == part.size_bytes
        assert p0["num-log-segments"] == len(part._log.segments) > 1
        assert (p0["log-start-offset"], p0["log-end-offset"]) == (0, 50)
        assert p1 == {"log-size": 0, "num-log-segments": 1, "log-start-offset": 0,
                      "log-end-offset": 0}
        assert m["log-size"] == part.size_bytes
        assert m["num-log-segments"] == p0["num-log-segments"] + 1
        assert m["topic-count"] == 1
        assert m["partition-count"] == 2
        assert m["recovery-clean-shutdown"] == 1  # a new directory needs no recovery


def test_retention_and_cleaner_runs_are_counted():
    clock = ManualClock()
    with eventlog.open(clock=clock) as log:
        log.create_topic("old", retention_ms=1_000, segment_bytes=1024)
        log.create_topic("keys", cleanup_policy="compact", segment_bytes=1024,
                         min_cleanable_dirty_ratio=0.01)
        old, keys = log.topic("old").partition(0), log.topic("keys").partition(0)
        for i in range(40):
            old.append([(None, b"x" * 100)])
            keys.append([(b"k%d" % (i % 2), b"y" * 100)])
        clock.advance(10_000)
        deleted = log.run_retention()
        removed = log.run_compaction()
        m = log.metrics()
    assert deleted > 0
    assert removed > 0
    assert m["retention-runs-total"] == 1
    assert m["retention-segments-deleted-total"] == deleted
    assert m["cleaner-runs-total"] == 1
    assert m["cleaner-partitions-cleaned-total"] == 1
    assert m["cleaner-records-removed-total"] == removed
    assert m["cleaner-bytes-read-total"] > m["cleaner-bytes-written-total"] > 0
    assert m["max-clean-time-secs"] == 0.0  # the manual clock did not move during the run
    assert m["partitions"][TopicPartition("old", 0)]["log-start-offset"] > 0


def test_recovery_after_a_crash_is_reported(tmp_path):
    log = eventlog.open(tmp_path)
    log.create_topic("t")
    log.topic("t").partition(0).append([(None, b"v")])
    log.topic("t").partition(0).flush()
    # a crash: no clean close (release the lock as the dying process would)
    log._dir.release()
    with eventlog.open(tmp_path) as again:
        m = again.metrics()
    assert m["recovery-clean-shutdown"] == 0
    assert m["recovery-segments-checked"] >= 1
    assert m["recovery-batches-checked"] >= 1
    assert m["recovery-bytes-truncated"] == 0


def test_metrics_of_a_closed_log_raise_closed_error():
    log = eventlog.open()
    log.close()
    with pytest.raises(eventlog.errors.ClosedError):
        log.metrics()


def test_prometheus_exporter_serves_log_and_client_metrics():
    pytest.importorskip("prometheus_client")
    from eventlog.metrics.prometheus import start_http_server

    with eventlog.open(clock=ManualClock()) as log:
        log.create_topic("t")
        producer = log.producer(linger_ms=0, client_id="app")
        producer.send("t", b"v")
        consumer = log.consumer("t", group_id="billing", auto_offset_reset="earliest")
        consumer.poll(timeout_ms=0)
        server, _registry = start_http_server(log, 0)
        try:
            url = f"http://127.0.0.1:{server.server_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
        finally:
            server.shutdown()
        consumer.close()
    assert 'eventlog_log_partition_log_end_offset{partition="0",topic="t"} 1.0' in text
    assert 'eventlog_producer_record_send_total{client_id="app"} 1.0' in text
    assert "# TYPE eventlog_producer_record_send_total counter" in text
    assert "eventlog_consumer_records_consumed_total{" in text
    assert 'group_id="billing"' in text


def test_prometheus_exports_every_groups_lag_from_its_committed_offsets():
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry, generate_latest

    from eventlog.metrics.prometheus import EventLogCollector

    with eventlog.open(clock=ManualClock()) as log:
        log.create_topic("t", partitions=2)
        registry = CollectorRegistry()
        registry.register(EventLogCollector(log, clients=()))
        before = generate_latest(registry).decode()
        assert log.topics(include_internal=True) == ["t"]  # a scrape created nothing
        log.topic("t").partition(0).append([(None, b"v")] * 5)
        consumer = log.consumer("t", group_id="billing", auto_offset_reset="earliest",
                                enable_auto_commit=False)
        consumer.poll(timeout_ms=0, max_records=2)
        consumer.commit()
        consumer.close()
        text = generate_latest(registry).decode()
    assert "eventlog_consumergroup_lag{" not in before
    assert 'eventlog_consumergroup_lag{group="billing",partition="0",topic="t"} 3.0' in text
    assert ('eventlog_consumergroup_committed_offset{group="billing",partition="0",topic="t"}'
            ' 2.0') in text
    assert 'eventlog_consumergroup_members{group="billing"} 0.0' in text


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(SRC)}
    return subprocess.run([sys.executable, "-m", "eventlog", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_metrics_command_prints_a_table_and_json(tmp_path):
    with eventlog.open(tmp_path) as log:
        log.create_topic("orders", partitions=2)
        log.topic("orders").partition(1).append([(None, b"v")] * 3)
    table = _run_cli("metrics", str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert "num-log-segments" in table.stdout
    assert [line.split() for line in table.stdout.splitlines() if line.startswith("orders-1")
            ] == [["orders-1", table.stdout.split("orders-1")[1].split()[0], "1", "0", "3"]]
    as_json = _run_cli("metrics", str(tmp_path), "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["partitions"]["orders-1"]["log-end-offset"] == 3
    assert data["partition-count"] == 2


def test_metrics_command_names_a_missing_directory(tmp_path):
    result = _run_cli("metrics", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "no data directory" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nope").exists()


def test_metrics_command_on_a_directory_another_process_has_open(tmp_path):
    """Until read-only readers exist (eventlog.open(..., read_only=True)) the command
    says in one line that the directory is in use; once they do, it reads it."""
    import inspect

    with eventlog.open(tmp_path) as log:
        log.create_topic("orders")
        log.topic("orders").partition(0).append([(None, b"v")] * 2)
        result = _run_cli("metrics", str(tmp_path), "--json")
    read_only = "read_only" in inspect.signature(eventlog.open).parameters
    if read_only:
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["partitions"]["orders-0"]["log-end-offset"] == 2
    else:
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1
        assert "eventlog metrics:" in result.stderr
        assert "Traceback" not in result.stderr
