"""Readers in other processes and ``eventlog verify``: ``python -m benchmarks.operations``.

1. **Tailing**: a writer appends records (batches of ``--batch`` records, 16-byte
   keys, 100-byte values) while a consumer reads them, in the writer's process (a
   thread, the in-process consumer) and in another process (``read_only=True``).
   Rate = records / (time from the writer's first append to the last record read).
   Also the catch-up rate: the same consumers reading an existing 10^6-record log.
2. **Latency**: the writer appends one record per millisecond, each carrying the
   time it was appended; the reader notes when it got it. p50 / p99 / max.
3. **verify**: ``eventlog verify`` of a 10^6-record log (``verify_log`` over every
   partition, and the command as a subprocess) vs SQLite's ``PRAGMA
   integrity_check`` on the same rows in ``(offset INTEGER PRIMARY KEY, key BLOB,
   value BLOB, ts INTEGER)``; both files in the page cache.

Writes ``benchmarks/results/operations.json`` and prints a table. Medians of
``--runs`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import eventlog
from eventlog import TopicPartition

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def rows(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    return [(b"user-%011d" % (i % 10_000), (b'{"n": %d, "pad": "' % i).ljust(99, b"x") + b"}")
            for i in range(start, start + n)]


WRITER = r"""
import sys, time, eventlog
path, n, batch, pace_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
log = eventlog.open(path)
p = log.partition("t", 0)
payload = [(b"user-%011d" % (i % 10_000), (b'{"n": %d, "pad": "' % i).ljust(99, b"x") + b"}")
           for i in range(batch)]
print("start %r" % time.time(), flush=True)
done = 0
while done < n:
    if pace_ms:
        time.sleep(pace_ms / 1000)
        p.append([(b"k", repr(time.time()).encode())])
        done += 1
    else:
        p.append(payload)
        done += batch
log.close()
"""


def _consume(consumer: eventlog.Consumer, n: int, *, latency: bool) -> tuple[float, list[float]]:
    got = 0
    lat: list[float] = []
    while got < n:
        for r in consumer.poll(timeout_ms=100, max_records=5000):
            got += 1
            if latency:
                lat.append(time.time() - float(r.value))
    return time.time(), lat


def tail_in_process(n: int, batch: int, pace_ms: float) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as d, eventlog.open(d) as log:
        p = log.create_topic("t").partition(0)
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([TopicPartition("t", 0)])
        payload = rows(batch)
        started = time.time()

        def write() -> None:
            done = 0
            while done < n:
                if pace_ms:
                    time.sleep(pace_ms / 1000)
                    p.append([(b"k", repr(time.time()).encode())])
                    done += 1
                else:
                    p.append(payload)
                    done += batch

        t = threading.Thread(target=write)
        t.start()
        end, lat = _consume(consumer, n, latency=bool(pace_ms))
        t.join()
        consumer.close()
        return n / (end - started), lat


def tail_other_process(n: int, batch: int, pace_ms: float) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as d:
        with eventlog.open(d) as log:
            log.create_topic("t")
        reader = eventlog.open(d, read_only=True)
        consumer = reader.consumer(auto_offset_reset="earliest")
        consumer.assign([TopicPartition("t", 0)])
        writer = subprocess.Popen([sys.executable, "-c", WRITER, d, str(n), str(batch),
                                   str(pace_ms)], env=ENV, stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        started = float(writer.stdout.readline().split()[1])
        end, lat = _consume(consumer, n, latency=bool(pace_ms))
        writer.wait()
        consumer.close()
        reader.close()
        return n / (end - started), lat


def catch_up(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        with eventlog.open(d) as log:
            p = log.create_topic("t").partition(0)
            data = rows(1000)
            for _ in range(n // 1000):
                p.append(data)
            rates = []
            for view in (log, eventlog.open(d, read_only=True)):
                consumer = view.consumer(auto_offset_reset="earliest")
                consumer.assign([TopicPartition("t", 0)])
                t0 = time.perf_counter()
                _consume(consumer, n, latency=False)
                rates.append(n / (time.perf_counter() - t0))
                consumer.close()
                if view is not log:
                    view.close()
        return rates[0], rates[1]


def verify_vs_sqlite(n: int, batch: int) -> dict[str, float]:
    from eventlog.storage.verifier import verify_log

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "log")
        with eventlog.open(path) as log:
            p = log.create_topic("t").partition(0)
            for start in range(0, n, batch):
                p.append(rows(batch, start))
        db = os.path.join(d, "rows.sqlite")
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (offset INTEGER PRIMARY KEY, key BLOB, value BLOB, ts INTEGER)")
        now = int(time.time() * 1000)
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                        ((i, k, v, now) for i, (k, v) in enumerate(rows(n))))
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        out: dict[str, float] = {}
        with eventlog.open(path, read_only=True) as reader:
            t0 = time.perf_counter()
            for part in reader.partitions():
                assert not verify_log(part.log).damage
            out["verify_log_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "eventlog", "verify", path], env=ENV, check=True,
                       capture_output=True)
        out["eventlog_verify_cli_s"] = time.perf_counter() - t0
        con = sqlite3.connect(db)
        con.execute("SELECT count(*) FROM t").fetchone()  # warm the page cache
        t0 = time.perf_counter()
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        out["sqlite_integrity_check_s"] = time.perf_counter() - t0
        con.close()
        if shutil.which("sqlite3"):
            t0 = time.perf_counter()
            subprocess.run(["sqlite3", db, "PRAGMA integrity_check"], check=True,
                           capture_output=True)
            out["sqlite3_cli_integrity_check_s"] = time.perf_counter() - t0
        out["log_bytes"] = sum(f.stat().st_size for f in Path(path).rglob("*.log"))
        out["sqlite_bytes"] = os.path.getsize(db)
        return out


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.operations")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--records", type=int, default=200_000, help="records tailed per run")
    ap.add_argument("--batch", type=int, default=100, help="records per append when tailing")
    ap.add_argument("--latency-records", type=int, default=2000)
    ap.add_argument("--verify-records", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "operations.json")
    args = ap.parse_args(argv)
    result: dict[str, object] = {"runs": args.runs, "records": args.records,
                                 "batch": args.batch}
    inproc = [tail_in_process(args.records, args.batch, 0)[0] for _ in range(args.runs)]
    other = [tail_other_process(args.records, args.batch, 0)[0] for _ in range(args.runs)]
    result["tail_rate_in_process"] = _median(inproc)
    result["tail_rate_other_process"] = _median(other)
    ups = [catch_up(1_000_000) for _ in range(args.runs)]
    result["catch_up_rate_in_process"] = _median([u[0] for u in ups])
    result["catch_up_rate_read_only"] = _median([u[1] for u in ups])
    lat_in: list[float] = []
    lat_other: list[float] = []
    for _ in range(args.runs):
        lat_in += tail_in_process(args.latency_records, 1, 1.0)[1]
        lat_other += tail_other_process(args.latency_records, 1, 1.0)[1]
    for name, lat in (("in_process", lat_in), ("other_process", lat_other)):
        result[f"latency_{name}_ms"] = {"p50": _pct(lat, 0.5) * 1000,
                                        "p99": _pct(lat, 0.99) * 1000,
                                        "max": max(lat) * 1000, "samples": len(lat)}
    verify = {}
    for batch in (1000, 1):
        n = args.verify_records if batch > 1 else args.verify_records // 10
        runs = [verify_vs_sqlite(n, batch) for _ in range(args.runs)]
        verify[f"{n}_records_batch_{batch}"] = {
            k: _median([r[k] for r in runs]) for k in runs[0]}
    result["verify"] = verify
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
