"""The Kafka client modules against eventlog's own API, as ratios in one run.

``python -m benchmarks.compat [--records N] [--runs R]`` prints, medians of R runs:

* produce and consume throughput through ``eventlog.compat.confluent_kafka``,
  ``eventlog.compat.kafka`` and eventlog's Producer/Consumer (issue 12's goal: the
  compat modules at >= 0.8x the native API);
* the time of a test that produces 1,000 records and consumes them in a group of two
  through ``eventlog.compat.confluent_kafka`` (goal: <= 50 ms).

Everything runs in process on an in-memory log with a ManualClock.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import eventlog
from eventlog.testing import ManualClock, use_eventlog

VALUE = b"v" * 100


def _keys(n: int) -> list[bytes]:
    return [b"user-%011d" % (i % 1000) for i in range(n)]


def native(n: int) -> tuple[float, float]:
    log = eventlog.open(None, clock=ManualClock())
    log.create_topic("t", 1)
    keys = _keys(n)
    producer = log.producer(linger_ms=0)
    start = time.perf_counter()
    for key in keys:
        producer.send("t", VALUE, key)
    produce = n / (time.perf_counter() - start)
    consumer = log.consumer("t", group_id="g", auto_offset_reset="earliest")
    start = time.perf_counter()
    got = 0
    while got < n:
        got += len(consumer.poll(0))
    consume = n / (time.perf_counter() - start)
    log.close()
    return produce, consume


def confluent(n: int) -> tuple[float, float]:
    keys = _keys(n)
    with use_eventlog() as clients:
        ck = clients.confluent_kafka
        clients.log.create_topic("t", 1)
        producer = ck.Producer({})
        start = time.perf_counter()
        for key in keys:
            producer.produce("t", VALUE, key)
        producer.flush()
        produce = n / (time.perf_counter() - start)
        consumer = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
        consumer.subscribe(["t"])
        start = time.perf_counter()
        got = 0
        while got < n:
            msg = consumer.poll(0)
            if msg is not None and msg.error() is None:
                got += 1
        consume = n / (time.perf_counter() - start)
        consumer.close()
    return produce, consume


def kafka_python(n: int) -> tuple[float, float]:
    keys = _keys(n)
    with use_eventlog() as clients:
        kp = clients.kafka
        clients.log.create_topic("t", 1)
        producer = kp.KafkaProducer()
        start = time.perf_counter()
        for key in keys:
            producer.send("t", VALUE, key)
        producer.flush()
        produce = n / (time.perf_counter() - start)
        consumer = kp.KafkaConsumer("t", group_id="g", auto_offset_reset="earliest")
        start = time.perf_counter()
        got = 0
        while got < n:
            got += sum(map(len, consumer.poll(0).values()))
        consume = n / (time.perf_counter() - start)
        consumer.close()
    return produce, consume


def group_of_two_ms() -> float:
    start = time.perf_counter()
    with use_eventlog() as clients:
        ck = clients.confluent_kafka
        clients.log.create_topic("t", 2)
        producer = ck.Producer({})
        for i in range(1000):
            producer.produce("t", VALUE, b"k%d" % i)
        producer.flush()
        conf = {"group.id": "g", "auto.offset.reset": "earliest"}
        members = [ck.Consumer(conf), ck.Consumer(conf)]
        for m in members:
            m.subscribe(["t"])
        got = 0
        while got < 1000:
            for m in members:
                got += sum(1 for msg in m.consume(500, 0) if msg.error() is None)
        for m in members:
            m.close()
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compat", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.records
    systems: list[tuple[str, Callable[[int], tuple[float, float]]]] = [
        ("eventlog Producer/Consumer", native), ("compat confluent_kafka", confluent),
        ("compat kafka (kafka-python)", kafka_python)]
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in systems}
    group_ms: list[float] = []
    for _ in range(args.runs):  # interleaved, so a change in the machine's load hits all
        for name, fn in systems:
            figures[name].append(fn(n))
        group_ms.append(group_of_two_ms())
    medians = {name: (statistics.median(p for p, _ in runs), statistics.median(c for _, c in runs))
               for name, runs in figures.items()}
    base = medians[systems[0][0]]
    print(f"{'system':<28}{'produce/s':>12}{'ratio':>8}{'consume/s':>12}{'ratio':>8}")
    for name, (p, c) in medians.items():
        print(f"{name:<28}{p:>12,.0f}{p / base[0]:>8.2f}{c:>12,.0f}{c / base[1]:>8.2f}")
    print(f"1,000 records through a group of 2 (confluent_kafka): "
          f"{statistics.median(group_ms):.1f} ms (min {min(group_ms):.1f})")


if __name__ == "__main__":
    main()
