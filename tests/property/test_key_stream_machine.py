"""Per-key streams against a dict-of-lists model (hypothesis stateful testing).

An event topic takes conditional appends of one to three keys at once, with the
right expected versions or a stale one (which must append nothing), and races of
three threads for the same version of one key (exactly one must win). A compacted
snapshot topic takes snapshots of keys and is compacted. The log is reopened at
random. After every step each key's records (``read_key``, whole and sliced) must be
the model's list, ``key_version`` its length, and a snapshot topic key's records
must end with its latest snapshot and be a subsequence of the snapshots taken.
"""

from __future__ import annotations

import shutil
import tempfile
import threading

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import eventlog
from eventlog.errors import KeyVersionConflictError
from eventlog.testing.clock import ManualClock

KEYS = [b"a", b"b", b"c", b"d"]


def _is_subsequence(part: list[bytes], whole: list[bytes]) -> bool:
    it = iter(whole)
    return all(item in it for item in part)


class KeyStreamMachine(RuleBasedStateMachine):
    @initialize()
    def open_log(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="key-stream-machine-")
        self.clock = ManualClock()
        self.log = eventlog.open(self.directory, clock=self.clock)
        self.log.create_topic("events", retention_ms=-1, segment_bytes=300)
        self.log.create_topic("snapshots", cleanup_policy="compact", segment_bytes=200,
                              min_cleanable_dirty_ratio=0.0)
        self.model: dict[bytes, list[bytes]] = {k: [] for k in KEYS}
        self.snapshots: dict[bytes, list[bytes]] = {k: [] for k in KEYS}
        self.counter = 0

    @property
    def events(self) -> eventlog.Partition:
        return self.log.topic("events").partition(0)

    @property
    def snaps(self) -> eventlog.Partition:
        return self.log.topic("snapshots").partition(0)

    def _value(self) -> bytes:
        self.counter += 1
        return b"v%d" % self.counter

    @rule(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True),
          per_key=st.integers(1, 2), stale=st.none() | st.integers(0, 2),
          extra=st.none() | st.sampled_from(KEYS))
    def conditional_append(self, keys: list[bytes], per_key: int, stale: int | None,
                           extra: bytes | None) -> None:
        records = [(k, self._value()) for k in keys for _ in range(per_key)]
        expected = {k: len(self.model[k]) for k in keys}
        if extra is not None:
            expected[extra] = len(self.model[extra])  # a key checked but not written
        if stale is not None:
            victim = keys[stale % len(keys)]
            expected[victim] += 1 if expected[victim] == 0 else -1
            end = self.events.end_offset
            try:
                self.events.append(records, expected_key_versions=expected)
            except KeyVersionConflictError as e:
                assert e.expected == expected[e.key] and e.actual == len(self.model[e.key])
            else:
                raise AssertionError("a stale expected version was accepted")
            assert self.events.end_offset == end
            return
        self.events.append(records, expected_key_versions=expected)
        for k, v in records:
            self.model[k].append(v)

    @rule(key=st.sampled_from(KEYS))
    def race(self, key: bytes) -> None:
        version = self.events.key_version(key)
        values = [self._value() for _ in range(3)]
        won: list[bytes] = []
        start = threading.Barrier(3)

        def writer(value: bytes) -> None:
            start.wait()
            try:
                self.events.append([(key, value)], expected_key_versions={key: version})
            except KeyVersionConflictError:
                return
            won.append(value)

        threads = [threading.Thread(target=writer, args=(v,)) for v in values]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, won
        self.model[key].append(won[0])

    @rule(key=st.sampled_from(KEYS))
    def snapshot(self, key: bytes) -> None:
        value = b"%s@%d" % (key, len(self.model[key]))
        self.snaps.append([(key, value)])
        self.snapshots[key].append(value)

    @rule()
    def compact_snapshots(self) -> None:
        self.snaps.roll()
        self.snaps.compact()

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = eventlog.open(self.directory, clock=self.clock)

    @rule(key=st.sampled_from(KEYS), start=st.integers(0, 6), limit=st.none() | st.integers(0, 4))
    def read_slice(self, key: bytes, start: int, limit: int | None) -> None:
        got = [r.value for r in self.events.read_key(key, from_version=start, limit=limit)]
        want = self.model[key][start:] if limit is None else self.model[key][start:start + limit]
        assert got == want

    @invariant()
    def streams_match_the_model(self) -> None:
        for key in KEYS:
            records = self.events.read_key(key)
            assert [r.value for r in records] == self.model[key]
            assert all(r.key == key for r in records)
            assert self.events.key_version(key) == len(self.model[key])
            snaps = [r.value for r in self.snaps.read_key(key)]
            assert self.snaps.key_version(key) == len(snaps)
            if self.snapshots[key]:
                assert snaps[-1] == self.snapshots[key][-1]
                assert _is_subsequence(snaps, self.snapshots[key])
            else:
                assert snaps == []

    def teardown(self) -> None:
        log = getattr(self, "log", None)
        if log is not None:
            log.close()
            shutil.rmtree(self.directory, ignore_errors=True)


KeyStreamMachine.TestCase.settings = settings(
    KeyStreamMachine.TestCase.settings, stateful_step_count=25
)
test_key_streams = KeyStreamMachine.TestCase
