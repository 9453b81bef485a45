"""The Kafka client modules against eventlog's own API, as ratios in one run.

``python -m benchmarks.compat [--records N] [--runs R]`` prints, medians of R runs:

* produce and consume throughput through ``eventlog.compat.confluent_kafka``,
  ``eventlog.compat.kafka``, ``eventlog.compat.aiokafka`` and eventlog's
  Producer/Consumer (issue 12's goal: the compat modules at >= 0.8x the native API).
  Each client runs with its library's defaults (librdkafka lingers 5 ms,
  kafka-python and aiokafka 0) and its produce is compared with the native API at the
  same ``linger_ms``; kafka-python also runs with ``linger_ms=5``. Its consume is
  compared with the native consumer reading records batched alike: aiokafka's sends of
  one loop iteration are appended together, so its consume is compared with the
  native row at linger 5 (batches of 16 KB), not with linger 0's batches of one.

The 50 ms test (1,000 records through a group of two) is timed by
``benchmarks/compat_group.py``.

Everything runs in process on an in-memory log with a ManualClock; rates are per
second of the process's CPU time. Each timed loop starts from a collected heap, with
the produce loop's input freed before the consume loop.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import statistics
import time
from collections.abc import Callable

import eventlog
from eventlog.testing import ManualClock, use_eventlog

VALUE = b"v" * 100
# Rates are per second of this process's CPU time (all its threads), not of the wall
# clock: on a machine shared with other work the wall clock mostly measures the others,
# and these loops never wait (the log is in memory, the clock manual).
_cpu = time.process_time


def _start() -> float:
    """The start of a timed loop: the garbage of what ran before collected first, so
    that each loop pays for the collections its own objects cause (the garbage
    collector's full passes cost in proportion to everything alive in the process)."""
    gc.collect()
    return _cpu()


def _keys(n: int) -> list[bytes]:
    return [b"user-%011d" % (i % 1000) for i in range(n)]


def native(n: int, linger_ms: int = 5) -> tuple[float, float]:
    log = eventlog.open(None, clock=ManualClock())
    log.create_topic("t", 1)
    keys = _keys(n)
    producer = log.producer(linger_ms=linger_ms)
    start = _start()
    for key in keys:
        producer.send("t", VALUE, key)
    producer.flush()
    produce = n / (_cpu() - start)
    keys.clear()  # the produce loop's input is not kept alive through the consume loop
    consumer = log.consumer("t", group_id="g", auto_offset_reset="earliest")
    start = _start()
    got = 0
    while got < n:
        got += len(consumer.poll(0))
    consume = n / (_cpu() - start)
    log.close()
    return produce, consume


def confluent(n: int, batch: int = 0) -> tuple[float, float]:
    """confluent-kafka's loops: ``poll()`` per message, or with ``batch``
    ``consume(batch)``."""
    keys = _keys(n)
    with use_eventlog() as clients:
        ck = clients.confluent_kafka
        clients.log.create_topic("t", 1)
        producer = ck.Producer({})
        start = _start()
        for key in keys:
            producer.produce("t", VALUE, key)
        producer.flush()
        produce = n / (_cpu() - start)
        keys.clear()
        consumer = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
        consumer.subscribe(["t"])
        start = _start()
        got = 0
        while got < n:
            if batch:
                got += sum(1 for m in consumer.consume(batch, 0) if m.error() is None)
                continue
            msg = consumer.poll(0)
            if msg is not None and msg.error() is None:
                got += 1
        consume = n / (_cpu() - start)
        consumer.close()
    return produce, consume


def kafka_python(n: int, linger_ms: int = 0) -> tuple[float, float]:
    keys = _keys(n)
    with use_eventlog() as clients:
        kp = clients.kafka
        clients.log.create_topic("t", 1)
        producer = kp.KafkaProducer(linger_ms=linger_ms)
        start = _start()
        for key in keys:
            producer.send("t", VALUE, key)
        producer.flush()
        produce = n / (_cpu() - start)
        keys.clear()
        consumer = kp.KafkaConsumer("t", group_id="g", auto_offset_reset="earliest")
        start = _start()
        got = 0
        while got < n:
            got += sum(map(len, consumer.poll(0).values()))
        consume = n / (_cpu() - start)
        consumer.close()
    return produce, consume


def aiokafka(n: int) -> tuple[float, float]:
    keys = _keys(n)
    with use_eventlog() as clients:
        ak = clients.aiokafka
        clients.log.create_topic("t", 1)

        async def run() -> tuple[float, float]:
            producer = ak.AIOKafkaProducer()
            await producer.start()
            start = _start()
            for key in keys:
                await producer.send("t", VALUE, key)
            await producer.flush()
            produce = n / (_cpu() - start)
            await producer.stop()
            keys.clear()
            consumer = ak.AIOKafkaConsumer("t", group_id="g", auto_offset_reset="earliest")
            await consumer.start()
            start = _start()
            got = 0
            while got < n:
                got += sum(map(len, (await consumer.getmany(timeout_ms=0)).values()))
            consume = n / (_cpu() - start)
            await consumer.stop()
            return produce, consume

        return asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compat", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.records
    # (name, run, the native rows its produce and its consume are compared with): the
    # produce with the native API at the library's linger, the consume with the native
    # consumer reading records batched alike (a consume costs more per record in batches
    # of one than in batches of 16 KB)
    linger5, linger0 = "eventlog native, linger 5", "eventlog native, linger 0"
    systems: list[tuple[str, Callable[[int], tuple[float, float]], str, str]] = [
        (linger5, native, "", ""),
        (linger0, functools.partial(native, linger_ms=0), "", ""),
        ("compat confluent_kafka", confluent, linger5, linger5),
        ("compat confluent, consume(500)", functools.partial(confluent, batch=500),
         linger5, linger5),
        ("compat kafka-python", kafka_python, linger0, linger0),
        ("compat kafka-python, linger 5", functools.partial(kafka_python, linger_ms=5),
         linger5, linger5),
        # aiokafka at linger_ms 0 appends the sends of one loop iteration together (as
        # aiokafka's sender does), so its records are read in batches of 16 KB
        ("compat aiokafka", aiokafka, linger0, linger5),
    ]
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in systems}
    for _ in range(args.runs):  # interleaved, so a change in the machine's load hits all
        for name, fn, _, _ in systems:
            figures[name].append(fn(n))
    medians = {name: (statistics.median(p for p, _ in runs), statistics.median(c for _, c in runs))
               for name, runs in figures.items()}
    print(f"{'system':<32}{'produce/s':>11}{'ratio':>7}{'consume/s':>11}{'ratio':>7}")
    for name, _, produce_base, consume_base in systems:
        p, c = medians[name]
        p_base = medians[produce_base or name][0]
        c_base = medians[consume_base or name][1]
        print(f"{name:<32}{p:>11,.0f}{p / p_base:>7.2f}{c:>11,.0f}{c / c_base:>7.2f}")

if __name__ == "__main__":
    main()
