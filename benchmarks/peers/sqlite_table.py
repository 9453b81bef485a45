"""SQLite (stdlib ``sqlite3``) as a log: one table, the offset is the rowid.

Schema: ``log("offset" INTEGER PRIMARY KEY, key BLOB, value BLOB, ts INTEGER)`` in
WAL mode. ``synchronous=NORMAL`` (fsync only at checkpoints) unless a workload asks
for ``FULL`` (fsync at every commit). Offsets start at 1 (SQLite's rowids).
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from time import perf_counter

from ..child import call, kill_when_ready, read_status_kb, ready
from ..harness import Case
from ..scratch import make_dir, remove_dir, scratch_dir
from ..workloads import Dataset, make_dataset

__all__ = [
    "append_batch",
    "append_one",
    "build",
    "fsync_full",
    "insert_one_txn",
    "random_reads",
    "read_after_inserts",
    "read_seq",
    "reopen_clean",
    "reopen_killed",
    "rss_read",
]

_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS log ("offset" INTEGER PRIMARY KEY, '
    "key BLOB, value BLOB, ts INTEGER NOT NULL)"
)
_INSERT = "INSERT INTO log (key, value, ts) VALUES (?, ?, ?)"
_SELECT_ALL = 'SELECT "offset", key, value, ts FROM log ORDER BY "offset"'
_SELECT_ONE = 'SELECT "offset", key, value, ts FROM log WHERE "offset" = ?'
_SELECT_LAST = 'SELECT "offset", key, value, ts FROM log ORDER BY "offset" DESC LIMIT 1'
_FETCH_ROWS = 1_000
_MODULE = __name__


def connect(path: Path | str, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open (creating) the log table; transactions are explicit (BEGIN/COMMIT)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(_SCHEMA)
    return conn


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def insert_batches(conn: sqlite3.Connection, batches: list[list[tuple[bytes, bytes]]]) -> None:
    """One transaction and one ``executemany`` per batch."""
    for batch in batches:
        ts = _now_ms()
        conn.execute("BEGIN")
        conn.executemany(_INSERT, [(key, value, ts) for key, value in batch])
        conn.execute("COMMIT")


# -- append --------------------------------------------------------------------------


def _time_batches(batches: list, synchronous: str) -> float:
    with scratch_dir("sqlite") as folder:
        conn = connect(folder / "log.db", synchronous)
        try:
            start = perf_counter()
            insert_batches(conn, batches)
            return perf_counter() - start
        finally:
            conn.close()


def append_batch() -> Case:
    return Case(
        "sqlite WAL executemany",
        setup=lambda data: data.batches(),
        run=lambda batches: _time_batches(batches, "NORMAL"),
        note="one transaction per 1,000; synchronous=NORMAL",
        share="sqlite executemany",
    )


def fsync_full() -> Case:
    return Case(
        "sqlite synchronous=FULL",
        setup=lambda data: data.batches(),
        run=lambda batches: _time_batches(batches, "FULL"),
        note="fsync at each commit of 1,000",
    )


def _insert_one_by_one(conn: sqlite3.Connection, data: Dataset) -> float:
    """One INSERT per record in one transaction; the seconds it took."""
    execute = conn.execute
    start = perf_counter()
    execute("BEGIN")
    for key, value in data.records:
        execute(_INSERT, (key, value, _now_ms()))
    execute("COMMIT")
    return perf_counter() - start


def _time_one_by_one(data: Dataset) -> float:
    with scratch_dir("sqlite") as folder:
        conn = connect(folder / "log.db")
        try:
            return _insert_one_by_one(conn, data)
        finally:
            conn.close()


def _time_one_txn_sized(data: Dataset) -> dict[str, float]:
    with scratch_dir("sqlite") as folder:
        conn = connect(folder / "log.db")
        try:
            elapsed = _insert_one_by_one(conn, data)
        finally:
            conn.close()  # checkpoints the WAL into log.db and removes it
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return {
        "records/s": len(data) / max(elapsed, 1e-9),
        "bytes on disk per record": size / len(data),
    }


def insert_one_txn() -> Case:
    return Case(
        "sqlite WAL insert (one txn)",
        run=_time_one_txn_sized,
        note="one INSERT per record, one commit at the end; bytes: the closed database",
    )


def append_one() -> Case:
    return Case(
        "sqlite WAL insert (one txn)",
        run=_time_one_by_one,
        note="one INSERT per record, one commit at the end",
    )


# -- read ----------------------------------------------------------------------------


def _build_in_scratch(data: Dataset) -> tuple[Path, sqlite3.Connection, int]:
    folder = make_dir("sqlite")
    conn = connect(folder / "log.db")
    insert_batches(conn, data.batches())
    return folder, conn, len(data)


def _read_all(state: tuple[Path, sqlite3.Connection, int]) -> float:
    _, conn, expected = state
    start = perf_counter()
    cursor = conn.execute(_SELECT_ALL)
    count = 0
    while rows := cursor.fetchmany(_FETCH_ROWS):
        count += len(rows)
    elapsed = perf_counter() - start
    if count != expected:
        raise RuntimeError(f"read {count} rows, expected {expected}")
    return elapsed


def _drop(state: tuple[Path, sqlite3.Connection, int]) -> None:
    folder, conn, _ = state
    conn.close()
    remove_dir(folder)


def read_seq() -> Case:
    return Case(
        "sqlite SELECT by offset",
        setup=_build_in_scratch,
        run=_read_all,
        teardown=_drop,
        note="rows as tuples, fetchmany(1000)",
    )


def _build_one_by_one(data: Dataset) -> tuple[Path, sqlite3.Connection, int]:
    folder = make_dir("sqlite")
    conn = connect(folder / "log.db")
    _insert_one_by_one(conn, data)
    return folder, conn, len(data)


def read_after_inserts() -> Case:
    return Case(
        "sqlite SELECT by offset (after one-txn inserts)",
        setup=_build_one_by_one,
        run=_read_all,
        teardown=_drop,
        note="the rows insert_one_txn writes; fetchmany(1000)",
    )


def random_reads(conn: sqlite3.Connection, offsets: list[int]) -> float:
    """Seconds to fetch one row at each of ``offsets`` (rowids, from 1)."""
    execute = conn.execute
    start = perf_counter()
    for offset in offsets:
        if execute(_SELECT_ONE, (offset,)).fetchone() is None:
            raise RuntimeError(f"no row at offset {offset}")
    return perf_counter() - start


# -- reopen and memory (run in fresh interpreters) -------------------------------------


def build(path: str, records: int, seed: int, key_mode: str, hang: bool = False) -> dict:
    """Child side: write ``records`` rows to ``path``; with ``hang``, wait to be killed."""
    data = make_dataset(min(records, 100_000), key_mode=key_mode, seed=seed)
    conn = connect(Path(path) / "log.db")
    written = 0
    batches = data.cycle_batches()
    while written < records:
        batch = next(batches)[: records - written]
        insert_batches(conn, [batch])
        written += len(batch)
    if hang:
        ready({"records": written})
        while True:
            time.sleep(60)
    conn.close()
    return {"records": written}


def open_and_read_last(path: str) -> dict:
    """Child side: time opening the database and reading its last row."""
    start = perf_counter()
    conn = sqlite3.connect(str(Path(path) / "log.db"), isolation_level=None)
    row = conn.execute(_SELECT_LAST).fetchone()
    elapsed = perf_counter() - start
    conn.close()
    return {"ms": elapsed * 1e3, "last_offset": row[0] if row else None}


def _reopen_case(system: str, killed: bool) -> Case:
    def setup(data: Dataset) -> tuple[Path, int]:
        folder = make_dir("sqlite-reopen")
        kwargs = {"path": str(folder), "records": len(data), "seed": data.seed}
        kwargs["key_mode"] = data.key_mode
        if killed:
            kill_when_ready(_MODULE, "build", hang=True, **kwargs)
        else:
            call(_MODULE, "build", **kwargs)
        return folder, len(data)

    def run(state: tuple[Path, int]) -> dict[str, float]:
        folder, records = state
        copy = make_dir("sqlite-copy")
        try:
            # A fresh copy per run: the first open after a kill recovers the WAL.
            shutil.copytree(folder, copy, dirs_exist_ok=True)
            out = call(_MODULE, "open_and_read_last", path=str(copy))
        finally:
            remove_dir(copy)
        if out["last_offset"] != records:
            raise RuntimeError(f"last offset {out['last_offset']}, expected {records}")
        return {"open + read last, ms": out["ms"]}

    return Case(system, setup=setup, run=run, teardown=lambda s: remove_dir(s[0]), warmup=False)


def reopen_clean() -> Case:
    return _reopen_case("sqlite, clean close", killed=False)


def reopen_killed() -> Case:
    return _reopen_case("sqlite, after kill -9", killed=True)


def read_all_rss(path: str) -> dict:
    """Child side: peak RSS growth while reading every row (none kept)."""
    before = read_status_kb("VmRSS")
    anon_before = read_status_kb("RssAnon")
    conn = sqlite3.connect(str(Path(path) / "log.db"), isolation_level=None)
    cursor = conn.execute(_SELECT_ALL)
    count = 0
    while rows := cursor.fetchmany(_FETCH_ROWS):
        count += len(rows)
    peak = read_status_kb("VmHWM")
    anon_after = read_status_kb("RssAnon")
    conn.close()
    return {
        "peak RSS increase, MB": (peak - before) / 1024,
        "anon RSS increase, MB": (anon_after - anon_before) / 1024,
        "records": count,
    }


def rss_read() -> Case:
    def setup(data: Dataset) -> Path:
        folder = make_dir("sqlite-rss")
        call(
            _MODULE,
            "build",
            path=str(folder),
            records=len(data),
            seed=data.seed,
            key_mode=data.key_mode,
        )
        return folder

    def run(folder: Path) -> dict[str, float]:
        out = call(_MODULE, "read_all_rss", path=str(folder))
        out.pop("records")
        return out

    return Case("sqlite reader", setup=setup, run=run, teardown=remove_dir, warmup=False)
