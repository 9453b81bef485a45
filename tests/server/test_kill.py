"""kill -9 of the serving process mid-produce: every acknowledged record is there after."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import eventlog

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("confluent_kafka") is None,
                    reason="confluent-kafka is not installed (pip install confluent-kafka)")
def test_kill_9_mid_produce_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    import confluent_kafka

    data = tmp_path / "data"
    with eventlog.open(data) as log:
        log.create_topic("t", 3)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "eventlog", "serve", str(data), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("eventlog serving"), line
        bootstrap = line.rsplit(" ", 1)[1].strip()
        producer = confluent_kafka.Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1,
            "enable.idempotence": True, "message.timeout.ms": 5000,
            "partitioner": "murmur2_random",
        })
        acked: dict[bytes, bytes] = {}

        def delivered(err: object, msg: object) -> None:
            if err is None:
                acked[msg.key()] = msg.value()  # type: ignore[attr-defined]

        i = 0
        end = time.monotonic() + 30
        while len(acked) < 2000 and time.monotonic() < end:
            if i - len(acked) < 1000:  # keep about 1000 in flight
                producer.produce("t", key=b"k%d" % i, value=b"v%d" % i, on_delivery=delivered)
                i += 1
                producer.poll(0)
            else:
                producer.poll(0.01)
        assert len(acked) >= 2000
        os.kill(proc.pid, signal.SIGKILL)  # with produce requests in flight
        proc.wait(30)
        producer.poll(0.5)  # collect the acknowledgements that arrived before the kill
        producer.purge()
        snapshot = dict(acked)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    with eventlog.open(data) as log:
        assert not log.recovery.clean
        log.check()
        stored = {r.key: r.value for p in log.topic("t").partitions for r in p.read(0, 10**6)}
    missing = [k for k, v in snapshot.items() if stored.get(k) != v]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
