"""Event-store workloads: per-key streams against SQLite with an index.

    python -m benchmarks.event_store                   # 10^5 aggregates x 10 events
    python -m benchmarks.event_store --aggregates 10000 --loads 500   # a quick look

- ``load``: the log holds ``aggregates`` x ``events`` events, appended round-robin
  (an aggregate's events are spread over the whole log, as in a live system),
  ``--batch`` per append (default 1: one command's event per append); time
  loading ``loads`` random aggregates: eventlog's ``Partition.read_key(key)`` against
  SQLite's ``SELECT ... WHERE stream_id=? ORDER BY version`` on a table whose primary
  key is ``(stream_id, version)`` (an index), the two taking turns in 10 rounds.
  µs per load.
- ``append``: one event per call with an optimistic-concurrency check: eventlog's
  ``append([...], expected_key_versions={key: n})`` against SQLite's INSERT into the
  same table (the primary key rejects a taken version), one transaction per event,
  WAL with ``synchronous=NORMAL``. Neither fsyncs per event (eventlog ``fsync="never"``:
  an acknowledged event survives a killed process in both). µs per append.
- ``pyeventsourcing`` (if installed): ``insert_events`` of one event and
  ``select_events`` of one aggregate through our recorder, its SQLite recorder and its
  in-memory POPO recorder. µs per call. Ours three times: on disk, in memory, and in
  memory without its cache of decoded events (``cache_events=0``: every select and
  every version check reads the log), the cases' aggregates being few enough for
  the default cache to hold them all.

Ratios are printed against eventlog (``x eventlog`` > 1: that system takes longer).
No figure is asserted; on a shared machine compare within one run.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import eventlog

VALUE = b'{"type": "Deposited", "amount": 100, "note": "0123456789abcdef0123456789"}'
SQL_CREATE = (
    "CREATE TABLE events (stream_id BLOB, version INTEGER, data BLOB, "
    "PRIMARY KEY (stream_id, version))"
)


def _keys(n: int) -> list[bytes]:
    return [b"account-%010d" % i for i in range(n)]


def _timed(fn: Callable[[], object], count: int) -> float:
    """µs per call of ``fn`` over ``count`` calls."""
    started = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - started) / count * 1e6


def _seconds(fn: Callable[[bytes], object], items: list[bytes]) -> float:
    """Seconds taken by ``fn(item)`` for each of ``items``."""
    started = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - started


def bench_load(
    root: Path, aggregates: int, events: int, loads: int, seed: int, batch_records: int,
    index_interval_bytes: int, rounds: int = 10,
) -> dict:
    """µs per load of a random aggregate, eventlog and SQLite taking turns: ``rounds``
    rounds of ``loads // rounds`` loads each (the same picks for both), so that load
    from other jobs on the machine falls on both alike."""
    keys = _keys(aggregates)
    rng = random.Random(seed)
    picks = [rng.choice(keys) for _ in range(loads)]
    out = {}

    db = sqlite3.connect(str(root / "sql.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(SQL_CREATE)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO events VALUES (?, ?, ?)",
        ((key, version, VALUE) for version in range(events) for key in keys),
    )
    db.execute("COMMIT")
    query = "SELECT version, data FROM events WHERE stream_id=? ORDER BY version"
    assert len(db.execute(query, (picks[0],)).fetchall()) == events

    with eventlog.open(str(root / "ev")) as log:
        p = log.create_topic(
            "accounts", retention_ms=-1, index_interval_bytes=index_interval_bytes
        ).partition(0)
        batch: list[tuple[bytes, bytes]] = []
        for _version in range(events):
            for key in keys:
                batch.append((key, VALUE))
                if len(batch) == batch_records:
                    p.append(batch)
                    batch = []
        if batch:
            p.append(batch)
        started = time.perf_counter()
        p.key_version(keys[0])  # builds the key index (once per partition per process)
        out["eventlog index build s"] = time.perf_counter() - started
        assert len(p.read_key(picks[0])) == events
        per_round = max(1, loads // rounds)
        totals = {"eventlog": 0.0, "sqlite": 0.0}
        for start in range(0, loads, per_round):
            chunk = picks[start : start + per_round]
            totals["eventlog"] += _seconds(p.read_key, chunk)
            totals["sqlite"] += _seconds(lambda key: db.execute(query, (key,)).fetchall(), chunk)
        out.update({name: total / loads * 1e6 for name, total in totals.items()})
    db.close()
    return out


def bench_append(root: Path, count: int, aggregates: int, seed: int, rounds: int = 10) -> dict:
    """µs per conditional append, eventlog and SQLite taking turns: ``rounds`` rounds
    of ``count // rounds`` appends each (the same keys for both)."""
    keys = _keys(aggregates)
    rng = random.Random(seed)
    picks = [rng.choice(keys) for _ in range(count)]

    log = eventlog.open(str(root / "ev-append"))
    p = log.create_topic("accounts", retention_ms=-1).partition(0)
    versions = dict.fromkeys(keys, 0)
    p.key_version(keys[0])  # build the (empty) index outside the timed region

    def ev_append(key: bytes) -> None:
        n = versions[key]
        p.append([(key, VALUE)], expected_key_versions={key: n})
        versions[key] = n + 1

    db = sqlite3.connect(str(root / "sql-append.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(SQL_CREATE)
    sql_versions = dict.fromkeys(keys, 0)

    def sql_append(key: bytes) -> None:
        n = sql_versions[key]
        db.execute("BEGIN")
        db.execute("INSERT INTO events VALUES (?, ?, ?)", (key, n, VALUE))
        db.execute("COMMIT")
        sql_versions[key] = n + 1

    totals = {"eventlog": 0.0, "sqlite": 0.0}
    per_round = max(1, count // rounds)
    for start in range(0, count, per_round):
        chunk = picks[start : start + per_round]
        totals["eventlog"] += _seconds(ev_append, chunk)
        totals["sqlite"] += _seconds(sql_append, chunk)
    assert p.key_version(picks[0]) == versions[picks[0]]
    log.close()
    db.close()
    return {name: total / count * 1e6 for name, total in totals.items()}


ES_CASES = (
    ("insert_events", "of one event, the first of its aggregate"),
    ("select_events", "of an aggregate of one event"),
    ("insert_events 2nd", "of one event, the second of its aggregate"),
    ("select_events 2", "of an aggregate of two events"),
)


def bench_pyeventsourcing(root: Path, count: int, rounds: int = 10) -> dict | None:
    """µs per call through each recorder: ``count`` aggregates get their first event
    (one ``insert_events`` each), are selected, get their second and are selected
    again; each case runs in ``rounds`` rounds in which every recorder takes its
    turn over the same aggregates (the order rotating), so that load from other jobs
    falls on all alike. Ours on disk and with the log in memory (POPO's mode;
    SQLite's is a file), and in memory without its event cache."""
    try:
        from eventsourcing.persistence import StoredEvent
        from eventsourcing.popo import POPOApplicationRecorder
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        from eventlog.eventsourcing import EventLogApplicationRecorder
    except ImportError:
        return None
    disk_log, memory_log = eventlog.open(str(root / "es")), eventlog.open(None)
    recorders = {
        "eventlog": EventLogApplicationRecorder(disk_log, "app.events"),
        "eventlog-memory": EventLogApplicationRecorder(memory_log, "app.events"),
        # the same without the recorder's event cache: every select reads the log
        "eventlog-memory-nocache": EventLogApplicationRecorder(
            memory_log, "app.nocache", cache_events=0),
        "sqlite": SQLiteApplicationRecorder(SQLiteDatastore(str(root / "es.db"))),
        "popo": POPOApplicationRecorder(),
    }
    recorders["sqlite"].create_table()
    ids = [uuid.UUID(int=i + 1) for i in range(count)]
    names = list(recorders)
    per_round = max(1, count // rounds)
    out: dict = {}
    for case, _what in ES_CASES:
        version = 2 if case.endswith("2nd") else 1
        events = [[StoredEvent(i, version, "Deposited", VALUE)] for i in ids]
        totals = dict.fromkeys(names, 0.0)
        for n, start in enumerate(range(0, count, per_round)):
            for name in names[n % len(names):] + names[: n % len(names)]:
                recorder = recorders[name]
                if case.startswith("insert"):
                    chunk = events[start : start + per_round]
                    started = time.perf_counter()
                    for batch in chunk:
                        recorder.insert_events(batch)
                else:
                    chunk = ids[start : start + per_round]
                    started = time.perf_counter()
                    for originator_id in chunk:
                        recorder.select_events(originator_id)
                totals[name] += time.perf_counter() - started
        for name in names:
            out[f"{case} {name}"] = totals[name] / count * 1e6
    for name in names:  # every recorder holds what the others hold
        assert len(recorders[name].select_events(ids[-1])) == 2, name
    disk_log.close()
    memory_log.close()
    return out


def bench_memory(root: Path, aggregates: int, events: int) -> dict | None:
    """Python heap held after recording ``aggregates`` x ``events`` events through each
    pyeventsourcing recorder (tracemalloc: our records live in mapped files, the page
    cache's, which tracemalloc does not see; what it sees is the key index)."""
    try:
        from eventsourcing.persistence import StoredEvent
        from eventsourcing.popo import POPOApplicationRecorder

        from eventlog.eventsourcing import EventLogApplicationRecorder
    except ImportError:
        return None
    ids = [uuid.UUID(int=i + 1) for i in range(aggregates)]
    out = {}
    for name in ("eventlog", "popo"):
        log = eventlog.open(str(root / f"mem-{name}")) if name == "eventlog" else None
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        recorder = (
            EventLogApplicationRecorder(log, "app.events") if log is not None
            else POPOApplicationRecorder()
        )
        for version in range(1, events + 1):
            for originator in ids:
                recorder.insert_events([StoredEvent(originator, version, "Deposited", VALUE)])
        out[name] = (tracemalloc.get_traced_memory()[0] - before) / 1e6
        tracemalloc.stop()
        del recorder
        if log is not None:
            log.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aggregates", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10, help="events per aggregate")
    parser.add_argument("--loads", type=int, default=2_000)
    parser.add_argument("--appends", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--batch", type=int, default=1,
        help="events per append while building the load workload's log (1: one per "
        "command, as an application appends; a larger batch makes each event read "
        "decode its whole batch)",
    )
    parser.add_argument(
        "--index-interval-bytes", type=int, default=256,
        help="the event topic's index_interval_bytes (Kafka's default, 4096, makes each "
        "event read walk up to 4 KiB of batch headers)",
    )
    parser.add_argument(
        "--memory-events", type=int, default=0,
        help="also measure the Python heap after this many events through pyeventsourcing "
        "(tracemalloc: slow; 0: skip)",
    )
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="eventlog-bench-es-"))
    try:
        load = bench_load(root, args.aggregates, args.events, args.loads, args.seed, args.batch,
                          args.index_interval_bytes)
        print(f"load one aggregate of {args.events} events among {args.aggregates} "
              f"({args.aggregates * args.events} events, {args.batch} per append), "
              "µs per load:")
        for name in ("eventlog", "sqlite"):
            ratio = load[name] / load["eventlog"]
            print(f"  {name:10s} {load[name]:9.1f}   x eventlog {ratio:.2f}")
        print(f"  (eventlog's key index built in {load['eventlog index build s']:.2f} s, once)")
        append = bench_append(root, args.appends, args.aggregates, args.seed)
        print("conditional append of one event per call (10 interleaved rounds), "
              "µs per append:")
        for name in ("eventlog", "sqlite"):
            ratio = append[name] / append["eventlog"]
            print(f"  {name:10s} {append[name]:9.1f}   x eventlog {ratio:.2f}")
        es = bench_pyeventsourcing(root, min(args.appends, 2_000))
        if es is None:
            print("pyeventsourcing: skipped (not installed: pip install -e '.[eventsourcing]')")
        else:
            print("through pyeventsourcing, µs per call (x eventlog: against ours on disk; "
                  "x memory: against ours in memory):")
            for op, what in ES_CASES:
                print(f"  {op.split()[0]} {what}:")
                base, memory = es[f"{op} eventlog"], es[f"{op} eventlog-memory"]
                for name in ("eventlog", "eventlog-memory", "eventlog-memory-nocache",
                             "sqlite", "popo"):
                    value = es[f"{op} {name}"]
                    print(f"    {name:23s} {value:9.1f}   x eventlog {value / base:5.2f}"
                          f"   x memory {value / memory:5.2f}")
        if args.memory_events:
            aggregates = max(1, args.memory_events // args.events)
            memory = bench_memory(root, aggregates, args.events)
            if memory is not None:
                print(f"Python heap after {aggregates * args.events} events through "
                      "pyeventsourcing, MB:")
                for name, value in memory.items():
                    ratio = value / memory["eventlog"]
                    print(f"  {name:10s} {value:9.1f}   x eventlog {ratio:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
