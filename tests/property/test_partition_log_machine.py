"""PartitionLog against a plain-list model (hypothesis stateful testing).

The model keeps every record physically present (offset, key, value, headers,
timestamp) grouped into batches and segments, and predicts what the log must do:
where it rolls (segment_bytes, segment_ms), what retention deletes (KAFKA_SEMANTICS
5.6), what truncate_to and delete_before leave. After every step the log's own
``check()`` runs, and DESIGN invariant 1 is checked: offsets dense from the log start
offset, the end offset the model's, every record the model's.

Runs on files (with clean reopen, crash reopen and torn writes) and in memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from crashsim import abandon  # tests/ is on sys.path (its conftest.py)
from eventlog.config import TopicConfig
from eventlog.errors import OffsetOutOfRangeError
from eventlog.storage import batch as codec
from eventlog.storage.partition_log import PartitionLog
from eventlog.testing.clock import ManualClock

START_MS = 10_000_000


_codecs = st.sampled_from(sorted(codec.COMPRESSION_CODES.values()))  # every codec, per batch


@dataclass
class Batch:
    base: int
    rows: list[tuple]  # (key, value, headers, timestamp)
    has_headers: bool
    attributes: int
    size: int

    @property
    def end(self) -> int:
        return self.base + len(self.rows)

    @property
    def max_ts(self) -> int:
        return max(r[3] for r in self.rows)


@dataclass
class ModelSegment:
    base: int
    batches: list[Batch] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(b.size for b in self.batches)

    @property
    def end(self) -> int:
        return self.batches[-1].end if self.batches else self.base

    @property
    def max_ts(self) -> int:
        return max((b.max_ts for b in self.batches), default=-1)


def encoded_size(base: int, rows: list[tuple], has_headers: bool, attributes: int) -> int:
    return len(
        codec.encode_batch(
            base,
            [r[3] for r in rows],
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows] if has_headers else None,
            attributes=attributes,
        )
    )




_keys = st.none() | st.binary(max_size=12)
_headers = st.lists(
    st.tuples(st.sampled_from(["a", "trace"]), st.none() | st.binary(max_size=4)), max_size=2
).map(tuple)
# Timestamps relative to the clock; round values make the boundaries of segment_ms and
# retention_ms (both strict) come up often.
_round_ms = st.sampled_from([-2000, -1000, -1, 0, 1, 1000, 2000])
_deltas = st.one_of(_round_ms, st.integers(-3000, 3000))
_rows = st.lists(st.tuples(_keys, _keys, _headers, _deltas), min_size=1, max_size=6)


class PartitionLogMachine(RuleBasedStateMachine):
    """The rules every log supports; ``FilePartitionLogMachine`` adds reopening."""

    in_memory = True

    @initialize(
        segment_bytes=st.sampled_from([250, 600, 4000]),
        segment_ms=st.sampled_from([1000, 5000, 10**9]),
        retention_ms=st.sampled_from([-1, 2000, 20_000]),
        retention_bytes=st.sampled_from([-1, 0, 700, 3000]),
        index_interval_bytes=st.sampled_from([0, 150, 4096]),
        fsync=st.sampled_from(["never", "always"]),
    )
    def open_log(self, fsync: str, **config: int) -> None:
        self.config = TopicConfig(**config)
        self.fsync = fsync
        self.clock = ManualClock(start_ms=START_MS)
        self.tmp = None if self.in_memory else tempfile.mkdtemp(prefix="plm-")
        self.directory = None if self.tmp is None else os.path.join(self.tmp, "t-0")
        self.log = self._open(clean=False)
        self.segments = [ModelSegment(0)]
        self.start = 0

    def _open(self, *, clean: bool) -> PartitionLog:
        return PartitionLog(self.directory, self.config, now_ms=self.clock.time_ms(),
                            clean_shutdown=clean, fsync=self.fsync)

    def teardown(self) -> None:
        log = getattr(self, "log", None)
        if log is not None:
            log.close()
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ model helpers

    @property
    def end(self) -> int:
        return self.segments[-1].end

    def visible(self) -> list[tuple[int, tuple]]:
        return [
            (b.base + i, row)
            for seg in self.segments
            for b in seg.batches
            for i, row in enumerate(b.rows)
            if b.base + i >= self.start
        ]

    def _should_roll(self, seg: ModelSegment, size: int, max_ts: int) -> bool:
        if not seg.batches:
            return False
        if seg.size > self.config.segment_bytes - size:
            return True
        return max_ts - seg.batches[0].max_ts > self.config.segment_ms

    # ------------------------------------------------------------------ rules

    @rule(rows=_rows, compression=_codecs)
    def append_batch(self, rows: list[tuple], compression: int) -> None:
        now = self.clock.time_ms()
        rows = [(k, v, h, now + d) for k, v, h, d in rows]
        has_headers = any(r[2] for r in rows)
        attributes = compression
        base = self.end
        size = encoded_size(base, rows, has_headers, attributes)
        header = self.log.append(
            [r[3] for r in rows],
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows] if has_headers else None,
            attributes=attributes,
            now_ms=now,
        )
        assert (header.base_offset, header.last_offset) == (base, base + len(rows) - 1)
        assert header.total_bytes == size
        if self._should_roll(self.segments[-1], size, max(r[3] for r in rows)):
            self.segments.append(ModelSegment(base))
        self.segments[-1].batches.append(Batch(base, rows, has_headers, attributes, size))

    @rule(row=_rows.map(lambda rows: rows[0]), compression=_codecs)
    def append_one(self, row: tuple, compression: int) -> None:
        """A batch of one record in the single-record form (a producer's ``send``)."""
        key, value, headers, delta = row
        now = self.clock.time_ms()
        attributes = compression
        base = self.end
        data, header = codec.encode_one(
            base, now + delta, key, value, headers or None, attributes, -1, -1, -1
        )
        self.log.append_encoded(data, header, now_ms=now)
        if self._should_roll(self.segments[-1], len(data), now + delta):
            self.segments.append(ModelSegment(base))
        row = (key, value, headers, now + delta)
        self.segments[-1].batches.append(Batch(base, [row], bool(headers), attributes, len(data)))

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.start, self.end), label="offset")
        limit = data.draw(st.integers(1, 20), label="max_records")
        got = [
            (o, (k, v, h if h is not None else (), t))
            for header, cols in self.log.read(offset, limit)
            for o, k, v, h, t in zip(
                cols.offsets, cols.keys, cols.values,
                cols.headers if cols.headers is not None else [None] * len(cols.offsets),
                cols.timestamps,
            )
            if o >= offset
        ]
        expected = [(o, row) for o, row in self.visible() if o >= offset]
        want = min(limit, self.end - offset)
        assert len(got) >= want
        assert got == expected[: len(got)]
        assert [o for o, _ in got] == list(range(offset, offset + len(got)))

    @rule(data=st.data())
    def read_out_of_range(self, data: st.DataObject) -> None:
        below = [*range(max(0, self.start - 3), self.start), -1]
        offset = data.draw(st.sampled_from([*below, self.end + 1, self.end + 100]))
        with pytest.raises(OffsetOutOfRangeError):
            self.log.read(offset, 5)

    @rule()
    def roll(self) -> None:
        self.log.roll(self.clock.time_ms())
        if self.segments[-1].batches:
            self.segments.append(ModelSegment(self.end))

    @rule(ms=st.one_of(st.sampled_from([1, 1000, 2000, 5000]), st.integers(1, 8000)))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def retention(self) -> None:
        now = self.clock.time_ms()
        deleted = self.log.apply_retention(now)
        doomed = self._plan_retention(now)
        assert deleted == len(doomed)
        if doomed and len(doomed) == len(self.segments):  # all qualified: roll first
            self.segments.append(ModelSegment(self.end))
        self.segments = self.segments[len(doomed):]
        self.start = max(self.start, self.segments[0].base)

    def _plan_retention(self, now: int) -> list[ModelSegment]:
        """Kafka's rule (KAFKA_SEMANTICS 5.6), written from the spec, not the code."""
        remaining = list(self.segments)
        doomed: list[ModelSegment] = []
        config = self.config

        def delete_while(qualifies) -> None:
            while remaining:
                seg = remaining[0]
                if not seg.batches and len(remaining) == 1:
                    return  # an empty last segment is never deleted
                total = sum(s.size for s in remaining)
                if not qualifies(seg, total):
                    return
                doomed.append(remaining.pop(0))

        delete_while(lambda seg, total: seg.end <= self.start)
        if config.retention_bytes >= 0:
            delete_while(lambda seg, total: total - seg.size >= config.retention_bytes)
        if config.retention_ms >= 0:
            delete_while(lambda seg, total: now - seg.max_ts > config.retention_ms)
        return doomed

    @rule(data=st.data())
    def truncate_to(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.start, self.end), label="truncate_to")
        self.log.truncate_to(offset)
        while len(self.segments) > 1 and self.segments[-1].base >= offset:
            self.segments.pop()
        seg = self.segments[-1]
        kept = [b for b in seg.batches if b.base < offset]
        if kept and kept[-1].end > offset:
            b = kept[-1]
            rows = b.rows[: offset - b.base]
            size = encoded_size(b.base, rows, b.has_headers, b.attributes)
            kept[-1] = Batch(b.base, rows, b.has_headers, b.attributes, size)
        seg.batches = kept
        assert self.end == offset

    @rule(data=st.data())
    def delete_before(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(0, self.end + 2), label="delete_before")
        if offset > self.end:
            with pytest.raises(OffsetOutOfRangeError):
                self.log.delete_before(offset)
            return
        deleted = self.log.delete_before(offset)
        if offset <= self.start:
            assert deleted == 0
            return
        self.start = offset
        count = 0
        while len(self.segments) > 1 and self.segments[1].base <= offset:
            self.segments.pop(0)
            count += 1
        assert deleted == count

    @rule(delta=st.integers(-3500, 3500))
    def offset_for_time(self, delta: int) -> None:
        target = max(0, self.clock.time_ms() + delta)
        expected = next(((o, row[3]) for o, row in self.visible() if row[3] >= target), None)
        assert self.log.offset_for_time(target) == expected

    # ------------------------------------------------------------------ invariants

    @invariant()
    def log_checks_itself(self) -> None:
        self.log.check()

    @invariant()
    def segments_match_the_model(self) -> None:
        assert [s.base_offset for s in self.log.segments] == [s.base for s in self.segments]
        assert [s.size for s in self.log.segments] == [s.size for s in self.segments]
        assert [s.next_offset for s in self.log.segments] == [s.end for s in self.segments]
        assert [s.max_timestamp for s in self.log.segments] == [s.max_ts for s in self.segments]

    @invariant()
    def offsets_dense_from_the_start(self) -> None:
        """DESIGN invariant 1, and every record is the model's."""
        assert (self.log.start_offset, self.log.end_offset) == (self.start, self.end)
        got = [
            (o, k, v, t)
            for _header, cols in self.log.read(self.start, 10**9)
            for o, k, v, t in zip(cols.offsets, cols.keys, cols.values, cols.timestamps)
            if o >= self.start
        ]
        assert [g[0] for g in got] == list(range(self.start, self.end))
        assert got == [(o, row[0], row[1], row[3]) for o, row in self.visible()]


class FilePartitionLogMachine(PartitionLogMachine):
    """On files: also close and reopen, crash and reopen, crash mid-append."""

    in_memory = False

    @rule()
    def close_and_reopen(self) -> None:
        self.log.close()
        self.log = self._open(clean=True)
        report = self.log.recovery
        assert report.clean
        assert (report.batches_checked, report.bytes_truncated) == (0, 0)

    @rule()
    def crash_and_reopen(self) -> None:
        abandon(self.log)
        self.log = self._open(clean=False)
        assert not self.log.recovery.clean
        assert self.log.recovery.bytes_truncated == 0  # the page cache had every byte

    @rule(rows=_rows, fraction=st.floats(0, 1, exclude_max=True))
    def crash_during_append(self, rows: list[tuple], fraction: float) -> None:
        """A process killed mid-copy leaves a prefix of a batch after the last one."""
        now = self.clock.time_ms()
        data = codec.encode_batch(
            self.end, [now] * len(rows), [r[0] for r in rows], [r[1] for r in rows]
        )
        torn = data[: int(len(data) * fraction)]
        seg = self.log.active_segment
        seg._log.ensure(seg.size + len(data))
        seg._log.write(seg.size, torn)
        abandon(self.log)
        self.log = self._open(clean=False)
        assert self.log.recovery.bytes_truncated == len(torn.rstrip(b"\0"))


_machine_settings = settings(stateful_step_count=30)
PartitionLogMachine.TestCase.settings = _machine_settings
FilePartitionLogMachine.TestCase.settings = _machine_settings

TestPartitionLogInMemory = PartitionLogMachine.TestCase
TestPartitionLogOnFiles = FilePartitionLogMachine.TestCase
