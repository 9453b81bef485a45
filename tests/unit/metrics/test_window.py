"""metrics/window.py: windowed differences and maxima, one step at a time."""

from __future__ import annotations

import math

from eventlog.metrics.window import Window, WindowedMax, average, max_of, rate_per_s


def test_window_baseline_moves_once_the_next_snapshot_is_a_horizon_old():
    w = Window(0.0, 1, window_ms=30_000, samples_kept=2)
    assert w.deltas(0.0, (5,)) == (0.0, (5,))  # no time passed: a rate of 0
    assert w.deltas(10_000.0, (10,)) == (10_000.0, (10,))  # too soon for a snapshot
    w.check()
    assert w.deltas(30_000.0, (30,)) == (30_000.0, (30,))  # snapshot at 30 s
    assert w.deltas(59_999.0, (40,)) == (59_999.0, (40,))
    # at 60 s a snapshot is taken; the 30 s one is not yet 60 s old: baseline stays 0
    assert w.deltas(60_000.0, (50,)) == (60_000.0, (50,))
    # at 90 s the 30 s snapshot is 60 s old: it becomes the baseline
    assert w.deltas(90_000.0, (80,)) == (60_000.0, (50,))
    w.check()


def test_a_rarely_read_window_covers_the_time_since_the_previous_reading():
    w = Window(0.0, 1)
    # the first reading an hour after the start covers the hour
    assert w.deltas(3_600_000.0, (3600,)) == (3_600_000.0, (3600,))
    # the next ones cover the time since the previous reading
    assert w.deltas(3_700_000.0, (3700,)) == (100_000.0, (100,))
    assert w.deltas(3_800_000.0, (3700,)) == (100_000.0, (0,))
    w.check()


def test_windowed_max_forgets_buckets_older_than_the_horizon():
    m = WindowedMax(window_ms=1_000, samples_kept=2)
    assert math.isnan(m.value(0.0))
    m.record(5.0, 0.0)
    m.record(3.0, 500.0)
    m.record(2.0, 1_000.0)  # a new bucket
    m.check()
    assert m.value(1_500.0) == 5.0
    assert m.value(2_000.0) == 2.0  # the first bucket is 2 s old
    assert math.isnan(m.value(3_000.0))
    m.record(1.0, 3_000.0)
    m.check()
    assert m.value(3_000.0) == 1.0


def test_helpers():
    assert rate_per_s(10, 2_000.0) == 5.0
    assert rate_per_s(10, 0.0) == 0.0
    assert math.isnan(average(1.0, 0))
    assert average(6.0, 3) == 2.0
    assert max_of([math.nan, 1.0, 3.0]) == 3.0
    assert math.isnan(max_of([math.nan]))
