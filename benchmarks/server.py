"""The Kafka protocol server against the librdkafka mock cluster and noida-db, in one run.

``python -m benchmarks.server [--records N] [--partitions P]`` prints, for each broker,
with confluent-kafka as the client of all three (issue 11's figures):

* produce: ``Producer.produce()`` of N 100-byte records then ``flush()``, records/s;
* consume: a fresh group's consumer reading them all (the group join included), records/s;
* group formation: from ``subscribe()`` to the first record, ms;
* for eventlog, start-up: from ``log.serve()`` on a log holding one record to a fresh
  group's first record, ms (the issue's goal: <= 100 ms).

eventlog runs as ``python -m eventlog serve DIR`` and noida-db as its binary, each a
process of its own over a temporary directory, so neither shares the client's GIL;
the mock cluster lives in the client process, as it always does. The mock keeps only
about 40k records per partition: its consume figure counts the records it kept.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import eventlog

VALUE = b"v" * 100
QUIET = {"log_level": 3}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen) -> None:
    end = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"the broker did not start (exit code {proc.poll()})") from None
            time.sleep(0.005)


@contextmanager
def _process_on_port(argv: list[str], port: int, env: dict[str, str] | None = None
                     ) -> Iterator[str]:
    """Run ``argv`` (a broker listening on ``port``), yield its bootstrap address once
    the port accepts, and terminate it afterwards."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(60)


def eventlog_serve(tmp: Path) -> contextlib.AbstractContextManager[str]:
    port = _free_port()
    src = Path(eventlog.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return _process_on_port([sys.executable, "-m", "eventlog", "serve", str(tmp / "eventlog"),
                             "--port", str(port)], port, env)


def noida(tmp: Path) -> contextlib.AbstractContextManager[str]:
    spec = importlib.util.find_spec("noida_db")
    if spec is None or spec.origin is None:
        raise RuntimeError("noida-db is not installed (pip install noida-db)")
    binary = Path(spec.origin).parent / "noida-db"
    port = _free_port()
    return _process_on_port([str(binary), "start", "--only", "kafka", "--kafka-port",
                             str(port), "--host", "127.0.0.1", "--data-dir",
                             str(tmp / "noida")], port)


@contextmanager
def mock(_tmp: Path) -> Iterator[str]:
    from confluent_kafka import Producer

    owner = Producer({"test.mock.num.brokers": 1, **QUIET})
    brokers = owner.list_topics(timeout=10).brokers.values()
    try:
        yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    finally:
        owner.flush(5)


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    try:
        for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            f.result(30)
    except Exception:  # the mock has no CreateTopics: it auto-creates on produce
        pass


def produce(bootstrap: str, topic: str, n: int) -> float:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **QUIET,
                  "queue.buffering.max.messages": 2_000_000,
                  "queue.buffering.max.kbytes": 2_000_000})
    start = time.perf_counter()
    for _ in range(n):
        p.produce(topic, VALUE)
        p.poll(0) if _ % 100_000 == 0 else None
    left = p.flush(300)
    elapsed = time.perf_counter() - start
    if left:
        raise RuntimeError(f"{left} records were not delivered")
    return n / elapsed


def consume(bootstrap: str, topic: str, n: int) -> tuple[float, float, int]:
    """(records/s, ms from subscribe to the first record, records read)."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 10, "heartbeat.interval.ms": 100, **QUIET,
                  # the mock answers a fetch with up to ~110 MB, past the 100 MB default
                  "receive.message.max.bytes": 1_000_000_000})
    start = time.perf_counter()
    c.subscribe([topic])
    first = None
    got = 0
    idle = 0
    while got < n and idle < 20:
        msgs = c.consume(10_000, 0.1)
        if not msgs:
            idle += 1 if first is not None else 0
            continue
        idle = 0
        if first is None:
            first = time.perf_counter()
        got += sum(1 for m in msgs if m.error() is None)
    elapsed = time.perf_counter() - start - 0.1 * idle  # less the idle polls at the end
    c.close()
    return got / elapsed, ((first or start) - start) * 1000, got


def startup_ms(**conf: object) -> tuple[float, float, float]:
    """From log.serve() (in process, a log with one record) to a fresh group's first record:
    (total, serve() returning, the group's assignment reaching the consumer), in ms.

    Where the rest goes (librdkafka 2.16's debug log, docs/performance.md): a partition
    without a committed offset is reset to ``auto.offset.reset`` through a ListOffsets
    sent 100 ms later, always (librdkafka's rd_kafka_offset_reset() delays the query
    100 ms when the reset has an error, and "no committed offset" is the error
    ``_NO_OFFSET``); and in about half of the runs the join waits 45-50 ms more, when the
    coordinator connection's first Metadata asked for no topics (a race between two
    client threads) and the consumer must connect to the broker itself, which
    librdkafka spaces by half of ``reconnect.backoff.ms``. Both are the client's own
    timers: ``conf`` passes client settings through.
    """
    from confluent_kafka import Consumer

    with eventlog.open(None) as log:
        log.create_topic("ready", partitions=1)
        with log.producer() as producer:
            producer.send("ready", b"x")
        start = time.perf_counter()
        assigned: list[float] = []
        with log.serve() as server:
            served = time.perf_counter()
            c = Consumer({"bootstrap.servers": server.bootstrap_servers, "group.id": "fresh",
                          "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10,
                          "heartbeat.interval.ms": 100, **QUIET, **conf})
            c.subscribe(["ready"], on_assign=lambda *_: assigned.append(time.perf_counter()))
            while True:
                m = c.poll(0.005)
                if m is not None and m.error() is None:
                    break
            elapsed = (time.perf_counter() - start) * 1000
            c.close()
    return elapsed, (served - start) * 1000, (assigned[0] - start) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=1)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, broker in (("eventlog serve", eventlog_serve), ("noida-db", noida),
                             ("librdkafka mock", mock)):
            try:
                with broker(Path(tmp)) as bootstrap:
                    _create_topic(bootstrap, "bench", args.partitions)
                    rate = produce(bootstrap, "bench", args.records)
                    crate, join_ms, got = consume(bootstrap, "bench", args.records)
                results[name] = {"produce": rate, "consume": crate, "join_ms": join_ms,
                                 "consumed": got}
                print(f"{name}: {results[name]}", flush=True)
            except RuntimeError as exc:
                print(f"{name}: skipped ({exc})")
    # the first serve() in a process also imports the protocol schemas: both are shown
    results.setdefault("eventlog serve", {})["first_startup_ms"] = startup_ms()[0]
    runs = sorted(startup_ms() for _ in range(5))
    quick = sorted(startup_ms(**{"reconnect.backoff.ms": 10}) for _ in range(5))
    ev = results["eventlog serve"]
    ev["startup_ms"], ev["served_ms"], ev["assigned_ms"] = runs[len(runs) // 2]
    ev["startup_min_ms"], ev["startup_max_ms"] = runs[0][0], runs[-1][0]
    ev["startup_quick_ms"] = quick[len(quick) // 2][0]
    print(f"{args.records} records of {len(VALUE)} bytes, {args.partitions} partition(s)")
    print(f"{'broker':18} {'produce/s':>11} {'consume/s':>11} {'read':>9} {'join ms':>8}"
          f" {'produce x':>10} {'consume x':>10}")
    for name, r in results.items():
        if "produce" not in r:
            continue
        print(f"{name:18} {r['produce']:11,.0f} {r['consume']:11,.0f} {r['consumed']:9,.0f}"
              f" {r['join_ms']:8.0f} {ev['produce'] / r['produce']:10.2f}"
              f" {ev['consume'] / r['consume']:10.2f}")
    print(f"eventlog: log.serve() to a fresh group's first record: {ev['startup_ms']:.0f} ms"
          f" (median of 5; {ev['startup_min_ms']:.0f}-{ev['startup_max_ms']:.0f} ms)"
          f" (serve() returned at {ev['served_ms']:.1f} ms, the assignment came at "
          f"{ev['assigned_ms']:.0f} ms; {ev['first_startup_ms']:.0f} ms for the first serve() "
          f"in a process; {ev['startup_quick_ms']:.0f} ms with reconnect.backoff.ms=10)")
    print("(x: eventlog's rate over that broker's; >= 1.0 is the goal)")


if __name__ == "__main__":
    main()


