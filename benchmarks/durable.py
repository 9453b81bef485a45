"""The durable path: one ``send()`` per record under ``fsync="always"``, beside SQLite.

``python -m benchmarks.durable [--records N] [--runs R] [--dir DIR]`` prints, medians
of R interleaved runs, records acknowledged per second:

* eventlog, ``fsync="always"``, ``linger_ms=0``, one ``send().result()`` per record:
  1 thread; 4 threads through one shared producer; 4 threads with a producer each;
* SQLite (WAL, ``synchronous=FULL``), one INSERT and COMMIT per record: 1 thread;
  4 threads with a connection each.

The issue's targets: eventlog 1 thread >= 2x SQLite 1 thread; 4 threads >= 3x one
thread (the group commit: senders waiting on the same fsync share it).
Both write to ``--dir`` (default: a temporary directory under the current one, so
the figures are those of the disk the project lives on, not of a tmpfs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable

import eventlog

VALUE = b"v" * 100


def _threads(count: int, per_thread: int, work: Callable[[int, int], None]) -> float:
    """Run ``work(thread, n)`` in ``count`` threads; returns records per second."""
    barrier = threading.Barrier(count + 1)

    def run(i: int) -> None:
        barrier.wait()
        work(i, per_thread)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return count * per_thread / (time.perf_counter() - start)


def eventlog_rate(root: str, threads: int, per_thread: int, *, shared: bool) -> float:
    path = tempfile.mkdtemp(dir=root)
    try:
        with eventlog.open(path, fsync="always") as log:
            log.create_topic("t")
            producers = [log.producer(linger_ms=0) for _ in range(1 if shared else threads)]

            def work(i: int, n: int) -> None:
                producer = producers[0 if shared else i]
                key = b"k%d" % i
                for _ in range(n):
                    producer.send("t", VALUE, key=key).result()

            rate = _threads(threads, per_thread, work)
            for p in producers:
                p.close()
            return rate
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sqlite_rate(root: str, threads: int, per_thread: int) -> float:
    path = tempfile.mkdtemp(dir=root)
    try:
        db = os.path.join(path, "db.sqlite")
        setup = sqlite3.connect(db)
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (k BLOB, v BLOB)")
        setup.commit()
        setup.close()

        def work(i: int, n: int) -> None:
            conn = sqlite3.connect(db, timeout=60, isolation_level=None)
            conn.execute("PRAGMA synchronous=FULL")
            key = b"k%d" % i
            for _ in range(n):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?, ?)", (key, VALUE))
                conn.execute("COMMIT")
            conn.close()

        return _threads(threads, per_thread, work)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="records per thread")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=".", help="where the logs and databases go")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="durable-bench-", dir=args.dir)
    cases: dict[str, Callable[[], float]] = {
        "eventlog fsync=always, 1 thread": lambda: eventlog_rate(
            root, 1, args.records, shared=True),
        "eventlog fsync=always, 4 threads, 1 shared producer": lambda: eventlog_rate(
            root, 4, args.records, shared=True),
        "eventlog fsync=always, 4 threads, a producer each": lambda: eventlog_rate(
            root, 4, args.records, shared=False),
        "sqlite synchronous=FULL, 1 thread": lambda: sqlite_rate(root, 1, args.records),
        "sqlite synchronous=FULL, 4 threads": lambda: sqlite_rate(root, 4, args.records),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for _ in range(args.runs):
            for name, case in cases.items():
                results[name].append(case())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in results.items()}
    one = medians["eventlog fsync=always, 1 thread"]
    sqlite_one = medians["sqlite synchronous=FULL, 1 thread"]
    print(f"{'case':<55} {'records/s':>10} {'vs 1 thread':>12} {'vs sqlite 1':>12}")
    for name, rate in medians.items():
        print(f"{name:<55} {rate:>10,.0f} {rate / one:>11.2f}x {rate / sqlite_one:>11.2f}x")


if __name__ == "__main__":
    main()
