"""config.py: TopicConfig defaults (Kafka's), validation and round trips."""

from __future__ import annotations

import dataclasses

import pytest

from eventlog.config import FSYNC_POLICIES, TopicConfig
from eventlog.errors import EventLogError, InvalidConfigError


def test_defaults_are_kafkas() -> None:
    c = TopicConfig()
    assert c.segment_bytes == 1024**3  # log.segment.bytes
    assert c.segment_ms == 7 * 24 * 3600 * 1000  # log.roll.ms: 7 days
    assert c.retention_ms == 604_800_000  # 7 days
    assert c.retention_bytes == -1
    assert c.max_message_bytes == 1_048_588
    assert c.index_interval_bytes == 4096
    assert c.message_timestamp_type == "CreateTime"
    assert c.cleanup_policy == "delete"
    assert c.delete_retention_ms == 86_400_000
    assert c.min_compaction_lag_ms == 0
    assert c.min_cleanable_dirty_ratio == 0.5
    assert not c.compacted
    assert not c.log_append_time
    assert FSYNC_POLICIES == ("never", "interval", "always")


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TopicConfig().retention_ms = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("segment_bytes", 13, "segment_bytes must be in [14, 2147483647], got 13"),
        ("segment_bytes", 2**31, "segment_bytes must be in [14, 2147483647]"),
        ("segment_bytes", 1.5, "segment_bytes must be an int, got float"),
        ("segment_bytes", True, "segment_bytes must be an int, got bool"),
        ("segment_ms", 0, "segment_ms must be >= 1, got 0"),
        ("retention_ms", -2, "retention_ms must be -1 (no limit) or >= 0, got -2"),
        ("retention_ms", None, "retention_ms must be an int, got NoneType"),
        ("retention_bytes", -2, "retention_bytes must be -1 (no limit) or >= 0, got -2"),
        ("max_message_bytes", -1, "max_message_bytes must be in [0, 2147483647], got -1"),
        ("index_interval_bytes", -1, "index_interval_bytes must be >= 0, got -1"),
        ("message_timestamp_type", "createtime", "message_timestamp_type must be 'CreateTime'"),
        ("cleanup_policy", "delete,archive", "cleanup_policy must be 'delete', 'compact'"),
        ("cleanup_policy", "", "cleanup_policy must be"),
        ("cleanup_policy", 1, "cleanup_policy must be"),
        ("delete_retention_ms", -1, "delete_retention_ms must be >= 0, got -1"),
        ("min_compaction_lag_ms", -1, "min_compaction_lag_ms must be >= 0"),
        ("min_cleanable_dirty_ratio", 1.5, "min_cleanable_dirty_ratio must be a number in [0, 1]"),
        ("min_cleanable_dirty_ratio", "0.5", "min_cleanable_dirty_ratio must be a number"),
    ],
)
def test_invalid_values_name_the_field_and_the_range(field, value, fragment) -> None:
    with pytest.raises(InvalidConfigError) as info:
        TopicConfig(**{field: value})
    assert fragment in str(info.value)
    with pytest.raises(InvalidConfigError) as info:
        TopicConfig().replace(**{field: value})
    assert fragment in str(info.value)


def test_invalid_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        TopicConfig(retention_ms=-2)
    assert issubclass(InvalidConfigError, EventLogError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("segment_bytes", 14),
        ("retention_ms", -1),
        ("retention_ms", 0),
        ("retention_bytes", -1),
        ("retention_bytes", 0),
        ("max_message_bytes", 0),
        ("index_interval_bytes", 0),
        ("message_timestamp_type", "LogAppendTime"),
        ("cleanup_policy", "compact"),
        ("cleanup_policy", "compact,delete"),
        ("cleanup_policy", "delete, compact"),
        ("min_cleanable_dirty_ratio", 1),
    ],
)
def test_boundary_values_are_accepted(field, value) -> None:
    assert getattr(TopicConfig(**{field: value}), field) == value


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(InvalidConfigError) as info:
        TopicConfig.from_mapping({"retention.ms": 5, "segment_bytes": 100})
    message = str(info.value)
    assert "unknown topic config retention.ms" in message
    assert "retention_ms" in message  # the list of known names helps fix the typo
    with pytest.raises(InvalidConfigError, match="unknown topic config bogus, zzz"):
        TopicConfig().replace(zzz=1, bogus=2)


def test_replace_and_round_trip() -> None:
    base = TopicConfig(retention_ms=10)
    changed = base.replace(segment_bytes=1000, message_timestamp_type="LogAppendTime")
    assert base.segment_bytes == 1024**3  # unchanged: a copy
    assert (changed.segment_bytes, changed.retention_ms) == (1000, 10)
    assert changed.log_append_time
    assert TopicConfig(**changed.to_dict()) == changed
    assert TopicConfig.from_mapping(changed.to_dict()) == changed
    assert TopicConfig(cleanup_policy="compact,delete").compacted
