"""Writes tests/data/format_v1_log and its expected.json: a data directory in the batch
format of magic 1 (before the framed batches of magic 2), kept so that every later
version is tested against files its predecessors wrote.

It was run once, at commit 31f09ac (the last to write magic 1):
``PYTHONPATH=src python tests/data/make_format_v1_log.py``. Run today, it writes the
current format, so it is a record of how the fixture was made, not a way to remake it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import eventlog
from eventlog.testing import ManualClock

HERE = Path(__file__).parent
OUT = HERE / "format_v1_log"


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    clock = ManualClock(1_700_000_000_000)
    log = eventlog.open(str(OUT), clock=clock)
    log.create_topic("one", partitions=1)
    log.create_topic("many", partitions=1)
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        log.create_topic(f"z-{codec}", partitions=1)
    log.create_topic("compacted", partitions=1, cleanup_policy="compact",
                     segment_bytes=4096, min_cleanable_dirty_ratio=0.01)
    one = log.producer(linger_ms=0)
    for i in range(300):
        clock.advance(1)
        headers = [("h", b"%d" % i)] if i % 7 == 0 else None
        key = None if i % 11 == 0 else b"k%03d" % (i % 40)
        value = None if i % 13 == 0 else b"v%05d" % i
        one.send("one", value, key=key, headers=headers, partition=0)
    one.flush()
    p = log.partition("many", 0)
    for b in range(5):
        clock.advance(1)
        p.append([(b"m%d-%d" % (b, i), b"value-%d-%d" % (b, i)) for i in range(50)])
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        zp = log.producer(linger_ms=0, compression_type=codec)
        for _ in range(3):
            clock.advance(1)
            zp.send_batch(f"z-{codec}", [(b"z%d" % i, b"compressible " * 20 + b"%d" % i)
                                         for i in range(40)], partition=0)
        zp.send(f"z-{codec}", b"one record", key=b"single", partition=0)
        zp.close()
    c = log.partition("compacted", 0)
    for i in range(400):
        clock.advance(1)
        c.append([(b"key-%d" % (i % 10), None if i == 395 else b"state-%d" % i)])
    log.create_topic("txn", partitions=1)
    tp = log.producer(transactional_id="fixture", linger_ms=0)
    tp.init_transactions()
    for commit in (True, False, True):
        tp.begin_transaction()
        for i in range(3):
            tp.send("txn", b"t%d" % i, key=b"tk", partition=0)
        tp.commit_transaction() if commit else tp.abort_transaction()
    tp.close()
    clock.advance(60_000)
    log.run_compaction()
    expected = {}
    for topic in log.topics():
        part = log.partition(topic, 0)
        expected[topic] = [
            [r.offset, r.timestamp_ms, _hex(r.key), _hex(r.value),
             [[k, _hex(v)] for k, v in r.headers]]
            for r in part.iter()
        ]
    log.close()
    (HERE / "format_v1_log.json").write_text(json.dumps(expected, indent=0) + "\n")
    print({k: len(v) for k, v in expected.items()}, file=sys.stderr)


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


if __name__ == "__main__":
    main()
