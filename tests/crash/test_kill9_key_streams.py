"""kill -9 during multi-key conditional appends (expected_key_versions).

A child appends batches of one to three records, each for another key, from two
threads, each batch checked with ``expected_key_versions`` for all its keys, and
prints each batch it had acknowledged. The parent kills it with SIGKILL at a random
moment, reopens the directory and checks: every acknowledged batch is complete, no
batch is partly visible (a batch's records say how many it had), and each key's
stream read through the rebuilt key index is exactly that key's records in the log.
"""

from __future__ import annotations

import random
import sys
from collections import defaultdict

import pytest
from test_kill9 import kill_at_random, spawn  # tests/crash is on sys.path

import eventlog

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and select() on pipes"),
]

ROUNDS = 4
KEYS = [b"agg-%d" % i for i in range(6)]

CHILD = r"""
import random, sys, threading
import eventlog
from eventlog.errors import KeyVersionConflictError

path, fsync, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
KEYS = [b"agg-%d" % i for i in range(6)]
log = eventlog.open(path, fsync=fsync)
if "t" not in log.topics():
    log.create_topic("t", segment_bytes=16 * 1024, retention_ms=-1)
p = log.partition("t", 0)
out = sys.stdout
lock = threading.Lock()
out.write("ready 0 %d\n" % p.end_offset)
out.flush()

def work(thread):
    rng = random.Random(seed * 10 + thread)
    n = 0
    while True:
        keys = rng.sample(KEYS, rng.randint(1, 3))
        expected = {k: p.key_version(k) for k in keys}
        tx = "%d-%d-%d" % (seed, thread, n)
        n += 1
        records = [(k, b"%s:%d/%d" % (tx.encode(), i, len(keys))) for i, k in enumerate(keys)]
        try:
            p.append(records, expected_key_versions=expected)
        except KeyVersionConflictError:
            continue
        with lock:
            out.write("ack %s\n" % tx)
            out.flush()

threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_kill9_during_conditional_appends(tmp_path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = str(tmp_path / "data")
    rng = random.Random(20261207)
    acked: set[str] = set()
    for round_ in range(ROUNDS):
        child = spawn(str(script), path, ("never", "always")[round_ % 2], round_)
        output = kill_at_random(child, rng, early=False)
        for line in output.decode().split("\n")[:-1]:  # a line without newline: not acked
            words = line.split()
            if words[0] == "ack":
                acked.add(words[1])
        with eventlog.open(path) as log:
            p = log.partition("t", 0)
            parts: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for key in KEYS:
                stream = p.read_key(key)
                assert stream == [r for r in p.iter() if r.key == key]
                assert p.key_version(key) == len(stream)
                for record in stream:
                    tx, _, where = record.value.decode().partition(":")
                    i, n = map(int, where.split("/"))
                    parts[tx].append((i, n))
            for tx, got in parts.items():  # every batch present is whole
                n = got[0][1]
                assert sorted(i for i, _ in got) == list(range(n)), (tx, got)
            missing = acked - parts.keys()
            assert not missing, f"acknowledged batches lost: {sorted(missing)[:5]}"
    assert acked, "no batch was acknowledged in any round"
