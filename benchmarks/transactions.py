"""Transactions (issue 14): what a transaction costs the producer and the reader.

Three workloads of ``python -m benchmarks`` (``--only txn_batch txn_one txn_read``):

* ``txn_batch``: ``send_batch`` of 1,000 records, each call in a transaction of its
  own, beside the same ``send_batch`` without one (target: >= 0.7x);
* ``txn_one``: transactions of one record (``begin``, one ``send``, ``commit``),
  with ``fsync="never"`` (target: >= 20k commits/s) and ``fsync="always"``, beside
  SQLite's one-row transactions under ``synchronous=FULL``. The figure is records
  (= commits) per second;
* ``txn_read``: a whole 3-partition topic written in transactions of 100 records,
  every tenth one aborted, polled by a read_uncommitted and by a read_committed
  consumer (target: read_committed >= 0.9x). Both figures are the log's records
  per second, markers and aborted records included: the read_committed consumer
  passes over the same log and returns 90% of it.

``python -m benchmarks.transactions`` runs the three at 10^5 records (one-record
transactions: 10^4 and 500 with fsync) and prints the ratios against the targets.
The two reads there poll ONE log, their runs interleaved (15 of each by default),
so that a change in the shared machine's load hits both; ``--only-read`` measures
just that pair.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
from collections.abc import Callable
from time import perf_counter
from typing import Any

from .eventlog_bench import TOPIC, _guarded, open_log
from .harness import Case, Settings, failed, progress
from .results import Result
from .scratch import make_dir, remove_dir, scratch_dir
from .workloads import Dataset, make_dataset

__all__ = [
    "ABORT_EVERY",
    "READ_TXN_RECORDS",
    "batch_plain",
    "batch_transactional",
    "one_eventlog",
    "one_sqlite",
    "run_txn_read",
]

READ_TXN_RECORDS = 100  # records per transaction of the txn_read log
ABORT_EVERY = 10  # every tenth transaction of the txn_read log is aborted
_POLL_RECORDS = 500
WORKLOAD_READ = "txn_read"


# -- txn_batch ------------------------------------------------------------------------


def _time_batches(data: Dataset, transactional: bool) -> float:
    with scratch_dir("eventlog-txn") as folder:
        log = open_log(folder)
        try:
            topic = log.create_topic(TOPIC, partitions=3)
            if transactional:
                producer = log.producer(transactional_id="bench")
                producer.init_transactions()
            else:
                producer = log.producer()
            start = perf_counter()
            for batch in data.batches():
                if transactional:
                    producer.begin_transaction()
                producer.send_batch(TOPIC, batch)
                if transactional:
                    producer.commit_transaction()
            producer.flush()
            elapsed = perf_counter() - start
            producer.close()
            held = sum(p.end_offset - p.start_offset for p in topic.partitions)
            markers = held - len(data)  # one per partition of each transaction
            if transactional and (not 0 < markers <= 3 * len(data.batches()) or any(
                    p.last_stable_offset != p.end_offset for p in topic.partitions)):
                raise RuntimeError(f"{markers} markers or a transaction left open")
            if not transactional and markers:
                raise RuntimeError(f"topic holds {held} records, expected {len(data)}")
            return elapsed
        finally:
            log.close()


def batch_plain() -> Case:
    return Case(
        "eventlog send_batch",
        run=_guarded(lambda data: _time_batches(data, False)),
        reference=True,
        note="1,000 records per call, no transaction",
    )


def batch_transactional() -> Case:
    return Case(
        "eventlog send_batch in a txn",
        run=_guarded(lambda data: _time_batches(data, True)),
        note="one transaction per 1,000-record call (3 partitions, 3 markers each)",
    )


# -- txn_one --------------------------------------------------------------------------


def _time_one(data: Dataset, fsync: str) -> float:
    with scratch_dir("eventlog-txn1") as folder:
        log = open_log(folder, fsync=fsync)
        try:
            log.create_topic(TOPIC, partitions=1)
            producer = log.producer(transactional_id="bench", linger_ms=0)
            producer.init_transactions()
            begin, send = producer.begin_transaction, producer.send
            commit = producer.commit_transaction
            start = perf_counter()
            for key, value in data.records:
                begin()
                send(TOPIC, value, key=key)
                commit()
            elapsed = perf_counter() - start
            producer.close()
            return elapsed
        finally:
            log.close()


def one_eventlog(fsync: str, *, reference: bool = False) -> Case:
    return Case(
        f"eventlog 1-record txn fsync={fsync}",
        run=_guarded(lambda data: _time_one(data, fsync)),
        reference=reference,
        max_records=None if fsync == "never" else (200, 1_000),
        note="begin, send, commit per record"
        + ("" if fsync == "never" else "; an fsync per state record, record and marker"),
    )


def _time_sqlite_one(data: Dataset) -> float:
    with scratch_dir("sqlite-txn1") as folder:
        conn = sqlite3.connect(folder / "log.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE log (k BLOB, v BLOB)")
            execute = conn.execute
            start = perf_counter()
            for key, value in data.records:
                execute("BEGIN")
                execute("INSERT INTO log VALUES (?, ?)", (key, value))
                execute("COMMIT")
            return perf_counter() - start
        finally:
            conn.close()


def one_sqlite() -> Case:
    return Case(
        "sqlite 1-row txn synchronous=FULL",
        run=_time_sqlite_one,
        max_records=(200, 1_000),
        note="WAL; BEGIN, INSERT, COMMIT per record",
    )


# -- txn_read -------------------------------------------------------------------------


class _TxnLog:
    """A log whose 3-partition topic holds ``data`` in transactions of 100 records,
    every tenth aborted; closed and removed by ``drop``."""

    def __init__(self, data: Dataset) -> None:
        self.folder = make_dir("eventlog-txnread")
        self.log = None
        try:
            self.log = open_log(self.folder)
            topic = self.log.create_topic(TOPIC, partitions=3)
            producer = self.log.producer(transactional_id="bench")
            producer.init_transactions()
            records = data.records
            for n, i in enumerate(range(0, len(records), READ_TXN_RECORDS)):
                producer.begin_transaction()
                producer.send_batch(TOPIC, records[i:i + READ_TXN_RECORDS])
                if n % ABORT_EVERY == ABORT_EVERY - 1:
                    producer.abort_transaction()
                else:
                    producer.commit_transaction()
            producer.close()
            self.partitions = topic.partitions
            self.records = len(records)
        except BaseException:
            self.drop()
            raise

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            if self.log is not None:
                self.log.close()
        remove_dir(self.folder)


def _time_read(built: _TxnLog, isolation: str) -> float:
    from eventlog import TopicPartition

    consumer = built.log.consumer(isolation_level=isolation, auto_offset_reset="earliest")
    try:
        tps = [TopicPartition(TOPIC, p.index) for p in built.partitions]
        consumer.assign(tps)
        ends = {tp: p.end_offset for tp, p in zip(tps, built.partitions)}
        count = empty = 0
        start = perf_counter()
        while empty < 50 and any(consumer.position(tp) < end for tp, end in ends.items()):
            got = len(consumer.poll(timeout_ms=0, max_records=_POLL_RECORDS))
            count += got
            empty = 0 if got else empty + 1
        elapsed = perf_counter() - start
    finally:
        consumer.close()
    # Transactions of 100 cycle through the 3 partitions; a tenth of them aborted.
    if isolation == "read_committed":
        transactions = -(-built.records // READ_TXN_RECORDS)
        aborted = sum(min(READ_TXN_RECORDS, built.records - i * READ_TXN_RECORDS)
                      for i in range(ABORT_EVERY - 1, transactions, ABORT_EVERY))
        expected = built.records - aborted
    else:
        expected = built.records
    if count != expected:
        raise RuntimeError(f"{isolation} polled {count} records, expected {expected}")
    return elapsed


_READ_NOTE = ("3 partitions, txns of 100, 10% aborted; rate over the whole log; "
              "ONE log, the two levels' runs interleaved")


def run_txn_read(settings: Settings, data: Dataset) -> list[Result]:
    """The ``txn_read`` workload: at each size, both isolation levels poll one log,
    their runs alternating (the order flipping each round), so that the machine's
    load falls on both alike, as in ``python -m benchmarks.transactions``."""
    results: list[Result] = []
    for size in settings.sizes:
        sized = data.head(size)
        systems = {level: f"eventlog poll {level}" for level in ("read_uncommitted",
                                                                 "read_committed")}
        started = perf_counter()
        try:
            rates = _interleaved_rates(sized, settings.runs)
        except Exception as exc:
            found = [Result(WORKLOAD_READ, system, size, metric="", status=failed(exc),
                            note=_READ_NOTE, reference=level == "read_uncommitted")
                     for level, system in systems.items()]
        else:
            found = [Result(WORKLOAD_READ, system, size, records=size, values=rates[level],
                            note=_READ_NOTE, reference=level == "read_uncommitted")
                     for level, system in systems.items()]
        progress(found, perf_counter() - started)
        results += found
    return results


def _interleaved_rates(data: Dataset, runs: int) -> dict[str, list[float]]:
    """Each isolation level's records/s over ``runs`` alternating runs on one log."""
    built = _TxnLog(data)
    try:
        rates: dict[str, list[float]] = {"read_uncommitted": [], "read_committed": []}
        for isolation in rates:
            _time_read(built, isolation)  # warm-up
        for n in range(runs):
            order = list(rates) if n % 2 == 0 else list(rates)[::-1]
            for isolation in order:
                rates[isolation].append(len(data) / _time_read(built, isolation))
    finally:
        built.drop()
    return rates


# -- standalone -----------------------------------------------------------------------


def _median_rate(case: Case, data: Dataset, runs: int) -> float:
    state = case.setup(data)
    try:
        case.run(state)  # warm-up
        return statistics.median(len(data) / case.run(state) for _ in range(runs))
    finally:
        case.teardown(state)


def _interleaved_reads(data: Dataset, runs: int) -> tuple[float, float, list[float]]:
    """Median rates of read_uncommitted and read_committed over ONE log, their runs
    alternating (the order flips each round), so a change in the machine's load hits
    both; with the ratio of each round's pair."""
    rates = _interleaved_rates(data, runs)
    plain, committed = rates["read_uncommitted"], rates["read_committed"]
    pairs = [c / u for u, c in zip(plain, committed)]
    return statistics.median(plain), statistics.median(committed), pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--one-records", type=int, default=10_000)
    parser.add_argument("--fsync-records", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--read-runs", type=int, default=15,
                        help="interleaved runs of each read isolation level")
    parser.add_argument("--only-read", action="store_true",
                        help="measure only the read_committed / read_uncommitted pair")
    args = parser.parse_args(argv)
    data = make_dataset(args.records)
    rows: list[tuple[str, Callable[[], float]]] = [
        ("send_batch", lambda: _median_rate(batch_plain(), data, args.runs)),
        ("send_batch in txn", lambda: _median_rate(batch_transactional(), data, args.runs)),
        ("1-record txn never", lambda: _median_rate(
            one_eventlog("never"), data.head(args.one_records), args.runs)),
        ("1-record txn always", lambda: _median_rate(
            one_eventlog("always"), data.head(args.fsync_records), args.runs)),
        ("sqlite 1-row FULL", lambda: _median_rate(
            one_sqlite(), data.head(args.fsync_records), args.runs)),
    ]
    rates: dict[str, Any] = {}
    print(f"load average at the start: {_load()}", flush=True)
    for name, measure in [] if args.only_read else rows:
        rates[name] = measure()
        print(f"{name:<22} {rates[name]:>12,.0f} records/s", flush=True)
    plain, committed, pairs = _interleaved_reads(data, args.read_runs)
    print(f"{'read_uncommitted':<22} {plain:>12,.0f} records/s")
    print(f"{'read_committed':<22} {committed:>12,.0f} records/s"
          f"  (medians of {args.read_runs} interleaved runs of each)")
    if not args.only_read:
        _print_ratios(rates)
    print(f"read_committed / read_uncommitted: {committed / plain:.2f}x (target >= 0.9x; "
          f"each round's pair {min(pairs):.2f}-{max(pairs):.2f}x)")
    print(f"load average at the end: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _print_ratios(rates: dict[str, Any]) -> None:
    batch_ratio = rates["send_batch in txn"] / rates["send_batch"]
    print(f"txn batch / plain batch:          {batch_ratio:.2f}x (target >= 0.7x)")
    print(f"1-record commits/s, fsync=never:  {rates['1-record txn never']:,.0f}"
          " (target >= 20,000)")
    print(f"fsync=always / sqlite FULL:       "
          f"{rates['1-record txn always'] / rates['sqlite 1-row FULL']:.2f}x")


if __name__ == "__main__":
    main()
