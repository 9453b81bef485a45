"""The log cleaner against a plain-list model (hypothesis stateful testing).

The model is the list of records a compacted log must hold: (offset, key, value)
in offset order, plus the delete horizon of each tombstone once a cleaning has kept
it. Keyed appends, tombstones, rolls, clock moves, reopenings (clean and after a
kill) and cleanings run in random order. At each cleaning the model predicts
whether it is due (KAFKA_SEMANTICS 6.2: dirty ratio, or a passed delete horizon)
and what it leaves: below the first uncleanable offset, the latest record of each
key, unless it is a tombstone past its horizon (6.3, 6.4); everything at or above
it untouched. After every step the log must hold exactly the model's records, at
their offsets, in order, with the same end offset and log start offset 0, and its
own ``check()`` must pass.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from crashsim import abandon  # tests/ is on sys.path (its conftest.py)
from eventlog.config import TopicConfig
from eventlog.storage import batch as codec
from eventlog.storage.compaction import SegmentInfo, cleanable_range, compaction_due
from eventlog.storage.partition_log import PartitionLog
from eventlog.testing.clock import ManualClock

START_MS = 1_700_000_000_000
KEYS = [b"a", b"b", b"c", b"d", b"e", b"f"]


@dataclass
class Rec:
    offset: int
    key: bytes
    value: bytes | None
    headers: tuple
    horizon: int | None = None  # a tombstone's delete horizon, once a cleaning kept it




_rows = st.lists(
    st.tuples(st.sampled_from(KEYS), st.none() | st.binary(max_size=8)), min_size=1, max_size=4
)
_headers = st.lists(st.tuples(st.just("h"), st.none() | st.binary(max_size=3)), max_size=1)


class CleanerMachine(RuleBasedStateMachine):
    in_memory = True

    @initialize(
        ratio=st.sampled_from([0.0, 0.3, 0.7]),
        lag=st.sampled_from([0, 150]),
        delete_retention=st.sampled_from([0, 200]),
        segment_bytes=st.sampled_from([300, 900]),
    )
    def open_log(self, ratio: float, lag: int, delete_retention: int, segment_bytes: int) -> None:
        self.clock = ManualClock(START_MS)
        self.config = TopicConfig(
            segment_bytes=segment_bytes, index_interval_bytes=64, cleanup_policy="compact",
            min_cleanable_dirty_ratio=ratio, min_compaction_lag_ms=lag,
            delete_retention_ms=delete_retention,
        )
        self.directory = None if self.in_memory else tempfile.mkdtemp(prefix="cleaner-machine-")
        self.log = self._open(clean=False)
        self.lock = threading.Lock()
        self.model: list[Rec] = []
        self.checkpoint = -1
        self.end = 0

    def _open(self, *, clean: bool) -> PartitionLog:
        return PartitionLog(self.directory, self.config, now_ms=self.clock.time_ms(),
                            clean_shutdown=clean)

    def teardown(self) -> None:
        log = getattr(self, "log", None)
        if log is not None:
            log.close()
        if getattr(self, "directory", None):
            shutil.rmtree(self.directory, ignore_errors=True)

    # ------------------------------------------------------------------ rules

    @rule(rows=_rows, compression=st.sampled_from(sorted(codec.COMPRESSION_CODES.values())),
          headers=st.none() | _headers)
    def append(self, rows: list[tuple[bytes, bytes | None]], compression: int,
               headers: list[tuple] | None) -> None:
        now = self.clock.time_ms()
        per_record = None if headers is None else [tuple(headers)] * len(rows)
        header = self.log.append([now] * len(rows), [k for k, _ in rows],
                                 [v for _, v in rows], per_record, now_ms=now,
                                 attributes=compression)
        assert header.base_offset == self.end
        for key, value in rows:
            self.model.append(Rec(self.end, key, value, tuple(headers or ())))
            self.end += 1

    @rule()
    def roll(self) -> None:
        self.log.roll(self.clock.time_ms())

    @rule(ms=st.integers(1, 400))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def compact(self) -> None:
        now = self.clock.time_ms()
        infos = [SegmentInfo(s.base_offset, s.next_offset, s.size, s.first_max_timestamp,
                             s.max_timestamp) for s in self.log.segments]
        cleanable = cleanable_range(
            infos, checkpoint=self.checkpoint, log_start_offset=0, now_ms=now,
            min_compaction_lag_ms=self.config.min_compaction_lag_ms,
        )
        due = compaction_due(
            cleanable, infos, now_ms=now,
            min_cleanable_dirty_ratio=self.config.min_cleanable_dirty_ratio,
            max_compaction_lag_ms=self.config.max_compaction_lag_ms,
        ) is not None or any(r.horizon is not None and r.horizon <= now for r in self.model)
        stats = self.log.clean(now, commit_lock=self.lock)
        assert stats.cleaned == due, (stats, cleanable)
        if due:
            self._clean_model(cleanable.first_uncleanable, now)
            self.checkpoint = cleanable.first_uncleanable
        assert self.log.cleaner_checkpoint == self.checkpoint

    def _clean_model(self, end: int, now: int) -> None:
        latest = {r.key: r.offset for r in self.model if r.offset < end}
        kept = []
        for r in self.model:
            if r.offset < end:
                if r.offset < latest[r.key]:
                    continue
                if r.value is None:
                    if r.horizon is not None and now >= r.horizon:
                        continue
                    if r.horizon is None:
                        r.horizon = now + self.config.delete_retention_ms
            kept.append(r)
        self.model = kept

    # ------------------------------------------------------------------ invariants

    @invariant()
    def log_checks_itself(self) -> None:
        self.log.check()

    @invariant()
    def records_match_the_model(self) -> None:
        got = []
        for _header, cols in self.log.read(0, 10**6):
            headers = cols.headers or [()] * len(cols.offsets)
            got.extend(zip(cols.offsets, cols.keys, cols.values, map(tuple, headers)))
        assert got == [(r.offset, r.key, r.value, r.headers) for r in self.model]
        assert self.log.end_offset == self.end
        assert self.log.start_offset == 0

    @invariant()
    def reads_from_any_offset_start_at_the_next_record(self) -> None:
        offsets = [r.offset for r in self.model]
        for start in range(0, self.end, 7):
            batches = self.log.read(start, 1)
            first = next((o for _h, c in batches for o in c.offsets if o >= start), None)
            assert first == next((o for o in offsets if o >= start), None)


class FileCleanerMachine(CleanerMachine):
    """On files: also close and reopen, and kill and reopen (the checkpoint, the
    cleaned segments and the delete horizons must all survive)."""

    in_memory = False

    @rule()
    def close_and_reopen(self) -> None:
        self.log.close()
        self.log = self._open(clean=True)

    @rule()
    def crash_and_reopen(self) -> None:
        abandon(self.log)
        self.log = self._open(clean=False)


_machine_settings = settings(stateful_step_count=30)
CleanerMachine.TestCase.settings = _machine_settings
FileCleanerMachine.TestCase.settings = _machine_settings

TestCleanerInMemory = CleanerMachine.TestCase
TestCleanerOnFiles = FileCleanerMachine.TestCase
