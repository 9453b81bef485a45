"""Configuration: frozen dataclasses with Kafka's names in snake_case.

Each field's default is Kafka's, unless the comment says why not. Every value
is validated when the dataclass is built, so a bad config fails at the call
that supplied it, with a message naming the field and the accepted range, and
nothing is changed.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidConfigError

__all__ = ["FSYNC_POLICIES", "TopicConfig", "client_config"]

FSYNC_POLICIES = ("never", "interval", "always")

# Limits, with units last in the name.
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
segment_bytes_min = 14  # Kafka's LogConfig minimum: one header's worth (we need a header more)
segment_bytes_max = 2**31 - 1  # positions in the .index are int32, as in Kafka
max_message_bytes_max = 2**31 - 1
compaction_lag_ms_max = 2**63 - 1  # Kafka's max.compaction.lag.ms default, Long.MAX_VALUE


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidConfigError(message)


def _int_field(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfigError(
            f"{name} must be an int, got {type(value).__name__} {value!r}"
        )
    return value


frame_records_max = 65535  # records per frame of a framed batch (TopicConfig.frame_records)


@dataclass(frozen=True)
class TopicConfig:
    """Per-topic configuration (Kafka's topic configs, snake_case).

    ``segment_bytes``: roll to a new segment when the next batch would overflow
    this many bytes (Kafka default 1 GiB). Files grow in chunks, so a large value
    costs nothing for a small log.
    ``segment_ms``: roll when the segment's first batch is older than this.
    ``retention_ms`` / ``retention_bytes``: delete whole old segments past these
    limits (-1: no limit), Kafka's ``cleanup.policy=delete``.
    ``max_message_bytes``: the largest batch a partition accepts (Kafka's
    1048588 = 1 MiB + 12 bytes of log overhead).
    ``index_interval_bytes``: bytes of log between two sparse index entries.
    ``message_timestamp_type``: ``"CreateTime"`` keeps the producer's timestamp,
    ``"LogAppendTime"`` stamps the append time.
    ``cleanup_policy``: ``"delete"`` (retention), ``"compact"`` (the log cleaner
    keeps at least the latest record of each key; keyless records are rejected) or
    ``"compact,delete"`` (both). See storage/cleaner.py and docs/storage.md.
    ``delete_retention_ms``: how long a tombstone (a key with value None) stays
    after the first cleaning that kept it.
    ``min_compaction_lag_ms``: a record stays uncompacted at least this long.
    ``max_compaction_lag_ms``: a dirty record is compacted at most this long after
    it was written (once its segment has rolled), whatever the dirty ratio.
    ``min_cleanable_dirty_ratio``: clean when dirty bytes exceed this share of the
    log (below the active segment).
    ``frame_records`` (not Kafka's): 0 (the default) writes each batch's records as
    columns; N >= 1 writes an uncompressed batch of more than N records in frames of
    N, so that a read of one record (``Partition.read(offset, max_records=1)``)
    decodes one frame instead of the whole batch, at the price of some appends and
    bulk reads of such batches (docs/storage.md, "Framed records"; 16 suits topics
    read at random offsets).
    """

    segment_bytes: int = GIB
    segment_ms: int = 7 * 24 * 3600 * 1000
    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_bytes: int = -1
    max_message_bytes: int = 1_048_588
    index_interval_bytes: int = 4096
    message_timestamp_type: str = "CreateTime"
    cleanup_policy: str = "delete"
    delete_retention_ms: int = 24 * 3600 * 1000
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = compaction_lag_ms_max
    min_cleanable_dirty_ratio: float = 0.5
    frame_records: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name != "message_timestamp_type" and f.name != "cleanup_policy":
                if f.name == "min_cleanable_dirty_ratio":
                    v = self.min_cleanable_dirty_ratio
                    _require(
                        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
                        f"min_cleanable_dirty_ratio must be a number in [0, 1], got {v!r}",
                    )
                    continue
                _int_field(f.name, getattr(self, f.name))
        _require(
            segment_bytes_min <= self.segment_bytes <= segment_bytes_max,
            f"segment_bytes must be in [{segment_bytes_min}, {segment_bytes_max}], "
            f"got {self.segment_bytes}",
        )
        _require(self.segment_ms >= 1, f"segment_ms must be >= 1, got {self.segment_ms}")
        _require(
            self.retention_ms >= -1,
            f"retention_ms must be -1 (no limit) or >= 0, got {self.retention_ms}",
        )
        _require(
            self.retention_bytes >= -1,
            f"retention_bytes must be -1 (no limit) or >= 0, got {self.retention_bytes}",
        )
        _require(
            0 <= self.max_message_bytes <= max_message_bytes_max,
            f"max_message_bytes must be in [0, {max_message_bytes_max}], "
            f"got {self.max_message_bytes}",
        )
        self._check_layout()
        _require(
            self.message_timestamp_type in ("CreateTime", "LogAppendTime"),
            "message_timestamp_type must be 'CreateTime' or 'LogAppendTime', "
            f"got {self.message_timestamp_type!r}",
        )
        policies = (
            self.cleanup_policy.replace(" ", "").split(",")
            if isinstance(self.cleanup_policy, str)
            else None
        )
        _require(
            policies is not None and bool(policies) and set(policies) <= {"delete", "compact"},
            "cleanup_policy must be 'delete', 'compact' or 'compact,delete', "
            f"got {self.cleanup_policy!r}",
        )
        _require(
            self.delete_retention_ms >= 0,
            f"delete_retention_ms must be >= 0, got {self.delete_retention_ms}",
        )
        _require(
            self.min_compaction_lag_ms >= 0,
            f"min_compaction_lag_ms must be >= 0, got {self.min_compaction_lag_ms}",
        )
        _require(
            1 <= self.max_compaction_lag_ms <= compaction_lag_ms_max,
            f"max_compaction_lag_ms must be in [1, {compaction_lag_ms_max}], "
            f"got {self.max_compaction_lag_ms}",
        )
        _require(  # Kafka's LogConfig.validate
            self.min_compaction_lag_ms <= self.max_compaction_lag_ms,
            f"min_compaction_lag_ms ({self.min_compaction_lag_ms}) must not exceed "
            f"max_compaction_lag_ms ({self.max_compaction_lag_ms})",
        )

    def _check_layout(self) -> None:
        """The configs of how batches are laid out and indexed (``__post_init__``'s)."""
        _require(
            self.index_interval_bytes >= 0,
            f"index_interval_bytes must be >= 0, got {self.index_interval_bytes}",
        )
        _require(
            0 <= self.frame_records <= frame_records_max,
            f"frame_records must be 0 (batches as columns) or in [1, {frame_records_max}], "
            f"got {self.frame_records}",
        )

    @property
    def compacted(self) -> bool:
        """True if ``cleanup_policy`` includes ``compact``."""
        return "compact" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @classmethod
    def _check_names(cls, values: Mapping[str, Any]) -> None:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidConfigError(
                f"unknown topic config {', '.join(unknown)}; "
                f"known configs: {', '.join(sorted(known))}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TopicConfig:
        """Build from keyword configs, rejecting unknown names with the list of known ones.

        Cost: O(configs given).
        Thread safety: any thread; the result is immutable.
        Raises: InvalidConfigError for an unknown name or a value out of range.
        """
        cls._check_names(values)
        return cls(**values)

    def replace(self, **changes: Any) -> TopicConfig:
        """A copy with some fields changed, validated like a new config.

        Cost: O(fields).
        Thread safety: any thread; ``self`` is not changed.
        Raises: InvalidConfigError for an unknown name or a value out of range.
        """
        self._check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, as ``create_topic(**config)`` takes them.

        Cost: O(fields).
        Thread safety: any thread.
        Raises: nothing.
        """
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------
# Client configs as Kafka users write them

# Kafka's Java class names for what eventlog has built in, so a producer or consumer
# properties file can be passed as it is.
_KAFKA_CLASS_NAMES = {
    "org.apache.kafka.common.serialization.StringSerializer": "str",
    "org.apache.kafka.common.serialization.StringDeserializer": "str",
    "org.apache.kafka.common.serialization.ByteArraySerializer": "bytes",
    "org.apache.kafka.common.serialization.ByteArrayDeserializer": "bytes",
    "org.apache.kafka.clients.consumer.RangeAssignor": "range",
    "org.apache.kafka.clients.consumer.RoundRobinAssignor": "roundrobin",
    "org.apache.kafka.clients.consumer.StickyAssignor": "sticky",
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
    "org.apache.kafka.clients.producer.RoundRobinPartitioner": "round_robin",
}


def client_config(
    values: Mapping[str, Any], cls: type, what: str, aliases: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``values`` with Kafka's spellings turned into the fields of dataclass ``cls``.

    A name may be Kafka's dotted property (``"linger.ms"``) or its snake_case
    field (``linger_ms``); ``aliases`` maps other Kafka names to fields
    (``"partitioner.class"``). A string value of a bool, int or number field is
    parsed as Kafka's ConfigDef parses it: booleans ``"true"``/``"false"`` in any
    case, integers in decimal, surrounding spaces ignored; a comma-separated
    string of a list field becomes a list; Kafka's class names of the built-in
    serializers, assignors and partitioners become their eventlog names. Other
    values pass unchanged, for ``cls`` to validate.

    Raises InvalidConfigError, naming the setting and changing nothing, for an
    unknown name (with the closest known name), a name given twice (dotted and
    snake_case), or a string that does not parse.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    aliases = aliases or {}
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in values.items():
        if not isinstance(name, str):
            raise InvalidConfigError(f"{what} config names must be str, got {name!r}")
        field = aliases.get(name) or name.replace(".", "_")
        if field not in fields:
            unknown.append(name)
            continue
        if field in out:
            raise InvalidConfigError(
                f"{what} config {field} is given twice, as {spelled[field]!r} and {name!r}; "
                "pass one"
            )
        spelled[field] = name
        out[field] = _parse_value(name, value, str(fields[field].type))
    if unknown:
        raise InvalidConfigError(_unknown_message(what, unknown, [*fields, *aliases]))
    return out


def _unknown_message(what: str, unknown: list[str], known: list[str]) -> str:
    candidates = sorted({*known, *(k.replace("_", ".") for k in known)})
    parts = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        if not close:
            close = difflib.get_close_matches(name.replace(".", "_"), known, n=1, cutoff=0.6)
        parts.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return (
        f"unknown {what} config {', '.join(parts)}; known configs (snake_case or Kafka's "
        f"dotted names): {', '.join(sorted(known))}"
    )


def _parse_value(name: str, value: Any, annotation: str) -> Any:
    """A string ``value`` of the field typed ``annotation`` parsed as Kafka would."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in _KAFKA_CLASS_NAMES:
        return _KAFKA_CLASS_NAMES[text]
    if annotation.startswith("bool"):
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise InvalidConfigError(f"{name} must be true or false, got {value!r}")
    if annotation == "int":
        try:
            return int(text, 10)
        except ValueError:
            raise InvalidConfigError(f"{name} must be an integer, got {value!r}") from None
    if annotation.startswith("float"):
        try:
            return float(text)
        except ValueError:
            raise InvalidConfigError(f"{name} must be a number, got {value!r}") from None
    if annotation == "Any" and "," in text:  # Kafka's LIST type: comma-separated
        return [_KAFKA_CLASS_NAMES.get(item.strip(), item.strip())
                for item in text.split(",") if item.strip()]
    return value
