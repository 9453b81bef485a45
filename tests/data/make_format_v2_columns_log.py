"""Writes tests/data/format_v2_columns_log and its .json: a data directory whose
batches of many records are in the five-column form of format 2 (before framed
records, batch.py's attribute bit 9), kept so that every later version is tested
against files its predecessors wrote.

It was run once, with the code of commit d51adea (the last to write batches of more
than 32 records in the column form):
``PYTHONPATH=<that tree>/src python tests/data/make_format_v2_columns_log.py``. Run
today, it writes framed batches, so it is a record of how the fixture was made, not a
way to remake it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import eventlog
from eventlog.testing import ManualClock

HERE = Path(__file__).parent
OUT = HERE / "format_v2_columns_log"


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    clock = ManualClock(1_700_000_000_000)
    log = eventlog.open(str(OUT), clock=clock)
    log.create_topic("many", partitions=1)
    log.create_topic("z-lz4", partitions=1)
    p = log.partition("many", 0)
    for size in (1000, 33, 32, 100, 1000, 1, 64):
        clock.advance(1)
        base = p.end_offset
        p.append([
            (None if (base + i) % 11 == 0 else b"k%d" % (base + i),
             None if (base + i) % 13 == 0 else b"v%d" % (base + i))
            for i in range(size)
        ])
    clock.advance(1)
    p.append([(b"h%d" % i, b"with headers %d" % i, [("n", b"%d" % i)] if i % 3 else [])
              for i in range(80)])
    p.append([(b"c%d" % i, b"compressed %d" % i) for i in range(120)], compression="gzip")
    zp = log.producer(linger_ms=0, compression_type="lz4")
    zp.send_batch("z-lz4", [(b"z%d" % i, b"compressible " * 10 + b"%d" % i)
                            for i in range(200)], partition=0)
    zp.close()
    expected = {}
    for topic in log.topics():
        part = log.partition(topic, 0)
        expected[topic] = [
            [r.offset, r.timestamp_ms, _hex(r.key), _hex(r.value),
             [[k, _hex(v)] for k, v in r.headers]]
            for r in part.iter()
        ]
    log.close()
    (HERE / "format_v2_columns_log.json").write_text(json.dumps(expected, indent=0) + "\n")
    print({k: len(v) for k, v in expected.items()}, file=sys.stderr)


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


if __name__ == "__main__":
    main()
