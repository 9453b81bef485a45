"""storage/retention.py: the pure retention plan, case by case (KAFKA_SEMANTICS 5.6)."""

from __future__ import annotations

import pytest

from eventlog.storage.retention import RetentionPlan, SegmentSummary, plan_retention

DAY_MS = 24 * 3600 * 1000
NOW = 100 * DAY_MS


def seg(base: int, end: int, *, size: int = 100, max_ts: int = NOW, created: int = 0):
    return SegmentSummary(base, end, size, max_ts, created)


def plan(segments, *, retention_ms=-1, retention_bytes=-1, log_start=None, hw=None, now=NOW):
    return plan_retention(
        segments,
        now_ms=now,
        retention_ms=retention_ms,
        retention_bytes=retention_bytes,
        log_start_offset=segments[0].base_offset if log_start is None else log_start,
        high_watermark=segments[-1].next_offset if hw is None else hw,
    )


def test_nothing_configured_deletes_nothing() -> None:
    segments = [seg(0, 10, max_ts=0), seg(10, 20, max_ts=0)]
    assert plan(segments) == RetentionPlan((), roll_first=False)


def test_time_deletes_the_expired_prefix_strictly_older_than_retention() -> None:
    segments = [
        seg(0, 10, max_ts=NOW - 3 * DAY_MS),
        seg(10, 20, max_ts=NOW - 2 * DAY_MS - 1),
        seg(20, 30, max_ts=NOW - 2 * DAY_MS),  # exactly retention_ms old: kept (strict >)
        seg(30, 40, max_ts=NOW),
    ]
    assert plan(segments, retention_ms=2 * DAY_MS) == RetentionPlan((0, 10), roll_first=False)


def test_time_stops_at_the_first_segment_that_does_not_qualify() -> None:
    # The third segment is old again (non-monotonic timestamps), but retention stops at
    # the second, as Kafka's deletableSegments does.
    segments = [
        seg(0, 10, max_ts=0),
        seg(10, 20, max_ts=NOW),
        seg(20, 30, max_ts=0),
        seg(30, 40, max_ts=NOW),
    ]
    assert plan(segments, retention_ms=DAY_MS).delete_base_offsets == (0,)


def test_time_judges_a_segment_by_its_largest_timestamp() -> None:
    # Old data survives while its segment also holds newer data (KAFKA_SEMANTICS 5.7).
    segments = [seg(0, 10, max_ts=NOW - DAY_MS // 2), seg(10, 20, max_ts=NOW)]
    assert plan(segments, retention_ms=DAY_MS).delete_base_offsets == ()


@pytest.mark.parametrize(
    ("retention_bytes", "deleted"),
    [
        (1000, ()),
        (300, ()),  # total 300 - 100 = 200 < 300
        (200, (0,)),  # 300 - 100 >= 200; then 200 - 100 < 200
        (150, (0,)),
        (101, (0,)),
        (100, (0, 10)),
        (0, (0, 10, 20)),  # everything: roll first
    ],
)
def test_size_deletes_while_the_rest_stays_at_or_over_the_limit(retention_bytes, deleted):
    segments = [seg(0, 10), seg(10, 20), seg(20, 30)]
    result = plan(segments, retention_bytes=retention_bytes)
    assert result.delete_base_offsets == deleted
    assert result.roll_first == (len(deleted) == 3)


def test_size_uses_each_segment_size() -> None:
    segments = [seg(0, 10, size=500), seg(10, 20, size=50), seg(20, 30, size=50)]
    # 600 - 500 = 100 >= 100: delete; 100 - 50 = 50 < 100: stop.
    assert plan(segments, retention_bytes=100).delete_base_offsets == (0,)


def test_segments_below_the_log_start_offset_go() -> None:
    segments = [seg(0, 10), seg(10, 20), seg(20, 30)]
    assert plan(segments, log_start=15).delete_base_offsets == (0,)
    assert plan(segments, log_start=20).delete_base_offsets == (0, 10)
    assert plan(segments, log_start=9).delete_base_offsets == ()


def test_roll_first_when_every_segment_qualifies() -> None:
    segments = [seg(0, 10, max_ts=0), seg(10, 20, max_ts=0)]
    assert plan(segments, retention_ms=DAY_MS) == RetentionPlan((0, 10), roll_first=True)
    one = [seg(0, 10, max_ts=0)]  # the active segment too: Kafka rolls, then deletes it
    assert plan(one, retention_ms=DAY_MS) == RetentionPlan((0,), roll_first=True)


def test_an_empty_last_segment_is_never_deleted() -> None:
    segments = [seg(0, 10, max_ts=0), seg(10, 10, size=0, max_ts=-1, created=0)]
    assert plan(segments, retention_ms=DAY_MS) == RetentionPlan((0,), roll_first=False)
    assert plan(segments, retention_bytes=0) == RetentionPlan((0,), roll_first=False)
    only = [seg(5, 5, size=0, max_ts=-1, created=0)]
    assert plan(only, retention_ms=0, retention_bytes=0, log_start=5) == RetentionPlan((), False)


def test_a_segment_without_timestamps_ages_from_its_creation() -> None:
    fresh = [seg(0, 10, max_ts=-1, created=NOW), seg(10, 20, max_ts=NOW)]
    assert plan(fresh, retention_ms=DAY_MS).delete_base_offsets == ()
    stale = [seg(0, 10, max_ts=-1, created=0), seg(10, 20, max_ts=NOW)]
    assert plan(stale, retention_ms=DAY_MS).delete_base_offsets == (0,)


def test_only_segments_below_the_high_watermark_go() -> None:
    segments = [seg(0, 10, max_ts=0), seg(10, 20, max_ts=0)]
    assert plan(segments, retention_ms=DAY_MS, hw=15).delete_base_offsets == (0,)
    assert plan(segments, retention_ms=DAY_MS, hw=5).delete_base_offsets == ()


def test_the_passes_combine_into_one_prefix() -> None:
    segments = [
        seg(0, 10, max_ts=NOW),  # below the log start
        seg(10, 20, max_ts=NOW),  # too much data
        seg(20, 30, max_ts=0),  # too old
        seg(30, 40, max_ts=NOW),
    ]
    result = plan(segments, retention_ms=DAY_MS, retention_bytes=150, log_start=12)
    assert result == RetentionPlan((0, 10, 20), roll_first=False)
