"""The durable path: one ``send()`` per record under ``fsync="always"``, beside SQLite.

``python -m benchmarks.durable [--records N] [--runs R] [--dir DIR]`` prints, medians
of R interleaved runs, records acknowledged per second and, for eventlog, records
per fdatasync (the group commit's batching: the ideal is the number of threads):

* eventlog, ``fsync="always"``, ``linger_ms=0``, one ``send().result()`` per record:
  1 thread; 4 threads through one shared producer; 4 threads with a producer each;
* SQLite (WAL, ``synchronous=FULL``), one INSERT and COMMIT per record: 1 thread;
  4 threads with a connection each.

For eventlog it also prints the median fdatasync and the median time between two
(the disk idle while the senders work and hand over the GIL): with four threads
that, not the fsync, is what keeps the rate below four times one thread's; and the
4-threads-over-1 ratio of each run, since the runs interleave.

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
from eventlog.storage.files import Files

VALUE = b"v" * 100


class CountingFiles(Files):
    """The operating system's calls, counting fdatasyncs and timing them: how long
    each took, and how long the disk had nothing to do between two (the senders'
    work and hand-overs under the GIL, which the group commit waits for)."""

    def __init__(self) -> None:
        self.fdatasyncs = 0
        self.durations: list[int] = []  # ns
        self.gaps: list[int] = []  # ns from the end of one to the start of the next
        self._ended = 0

    def reset(self) -> None:
        self.fdatasyncs = 0
        self.durations.clear()
        self.gaps.clear()
        self._ended = 0

    def fdatasync(self, fd: int) -> None:
        self.fdatasyncs += 1  # one runs at a time per partition: no lock needed
        started = time.perf_counter_ns()
        if self._ended:
            self.gaps.append(started - self._ended)
        super().fdatasync(fd)
        self._ended = time.perf_counter_ns()
        self.durations.append(self._ended - started)


def _median_us(values: list[int]) -> float:
    return statistics.median(values) / 1000 if values else float("nan")


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


def eventlog_rate(root: str, threads: int, per_thread: int, *,
                  shared: bool) -> tuple[float, float, float, float]:
    """Records per second, records per fdatasync while they were sent, and the
    median fdatasync and time between two (µs)."""
    path = tempfile.mkdtemp(dir=root)
    files = CountingFiles()
    try:
        with eventlog.open(path, fsync="always", files=files) as log:
            log.create_topic("t")
            files.reset()
            producers = [log.producer(linger_ms=0) for _ in range(1 if shared else threads)]

            def work(i: int, n: int) -> None:
                producer = producers[0 if shared else i]
                key = b"k%d" % i
                for _ in range(n):
                    producer.send("t", VALUE, key=key).result()

            rate = _threads(threads, per_thread, work)
            per_sync = threads * per_thread / max(files.fdatasyncs, 1)
            for p in producers:
                p.close()
            return rate, per_sync, _median_us(files.durations), _median_us(files.gaps)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sqlite_rate(root: str, threads: int, per_thread: int
                ) -> tuple[float, float, float, float]:
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

        nan = float("nan")
        return _threads(threads, per_thread, work), nan, nan, nan
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="records per thread")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=".", help="where the logs and databases go")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    root = tempfile.mkdtemp(prefix="durable-bench-", dir=args.dir)
    cases: dict[str, Callable[[], tuple[float, float, float, float]]] = {
        "eventlog fsync=always, 1 thread": lambda: eventlog_rate(
            root, 1, args.records, shared=True),
        "eventlog fsync=always, 4 threads, 1 shared producer": lambda: eventlog_rate(
            root, 4, args.records, shared=True),
        "eventlog fsync=always, 4 threads, a producer each": lambda: eventlog_rate(
            root, 4, args.records, shared=False),
        "sqlite synchronous=FULL, 1 thread": lambda: sqlite_rate(root, 1, args.records),
        "sqlite synchronous=FULL, 4 threads": lambda: sqlite_rate(root, 4, args.records),
    }
    results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in cases}
    try:
        for _ in range(args.runs):
            for name, case in cases.items():
                results[name].append(case())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    medians = {name: tuple(statistics.median(v[i] for v in values) for i in range(4))
               for name, values in results.items()}
    one = medians["eventlog fsync=always, 1 thread"][0]
    four = medians["eventlog fsync=always, 4 threads, 1 shared producer"][0]
    sqlite_one = medians["sqlite synchronous=FULL, 1 thread"][0]
    print(f"load average before: {load:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(f"{'case':<55} {'records/s':>10} {'vs 1 thread':>12} {'vs sqlite 1':>12} "
          f"{'per fsync':>10} {'fsync us':>9} {'between us':>11}")
    for name, (rate, per_sync, sync_us, gap_us) in medians.items():
        counted = per_sync == per_sync  # NaN: not counted (SQLite)
        extra = (f"{per_sync:>10.2f} {sync_us:>9.0f} {gap_us:>11.0f}" if counted else "")
        print(f"{name:<55} {rate:>10,.0f} {rate / one:>11.2f}x {rate / sqlite_one:>11.2f}x "
              f"{extra}")
    ratios = sorted(f / o for (f, *_), (o, *_) in zip(
        results["eventlog fsync=always, 4 threads, 1 shared producer"],
        results["eventlog fsync=always, 1 thread"]))
    print(f"4 threads (1 shared producer) over 1 thread, run by run: "
          f"{' '.join(f'{r:.2f}x' for r in ratios)} (of the medians: {four / one:.2f}x)")

if __name__ == "__main__":
    main()
