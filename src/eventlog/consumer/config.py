"""ConsumerConfig: the consumer's configs, Kafka's names and defaults, checked when built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import client_config
from ..errors import InvalidConfigError

__all__ = ["ConsumerConfig", "is_int"]

_OFFSET_RESETS = ("earliest", "latest", "none")


def is_int(value: Any) -> bool:
    """An int, and not a bool."""
    return type(value) is int


@dataclass(frozen=True)
class ConsumerConfig:
    """Consumer configs: Kafka's names in snake_case and Kafka's defaults.

    ``auto_offset_reset``: where to start when nothing is committed or the position
    is out of range: "earliest", "latest" or "none" (raise).
    ``enable_auto_commit`` / ``auto_commit_interval_ms``: at the start of a poll
    once the interval passed, before a rebalance revokes, and on close, commit the
    positions (everything earlier polls returned).
    ``fetch_min_bytes`` / ``fetch_max_wait_ms``: once some records are fetched, poll
    waits up to ``fetch_max_wait_ms`` (and never past its timeout) for at least
    ``fetch_min_bytes``, counted as Kafka's fetch counts them: bytes of stored
    batches. ``max_partition_fetch_bytes``: bytes decoded per partition read (at
    least one batch). ``fetch_max_bytes``: bytes fetched per poll (at least one batch).
    ``consumer_timeout_ms``: iteration stops after this long without a record
    (None: iterate until closed).
    ``isolation_level``: "read_uncommitted" (Kafka's default: every record, up to
    the log end) or "read_committed": up to the last stable offset, without the
    records of aborted transactions (docs/transactions.md).
    ``partition_assignment_strategy``: assignor names ("range", "roundrobin",
    "sticky", "cooperative-sticky") or objects, in order of preference.

    Building one checks every field: InvalidConfigError names the bad one. Frozen,
    so any thread may read it.
    """

    group_id: str | None = None
    client_id: str | None = None
    group_instance_id: str | None = None
    key_deserializer: Any = None
    value_deserializer: Any = None
    auto_offset_reset: str = "latest"
    enable_auto_commit: bool = True
    auto_commit_interval_ms: int = 5_000
    max_poll_records: int = 500
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 3_000
    fetch_min_bytes: int = 1
    fetch_max_wait_ms: int = 500
    fetch_max_bytes: int = 52_428_800
    max_partition_fetch_bytes: int = 1_048_576
    partition_assignment_strategy: Any = ("range", "cooperative-sticky")
    consumer_timeout_ms: float | None = None
    exclude_internal_topics: bool = True
    isolation_level: str = "read_uncommitted"

    def __post_init__(self) -> None:
        for name in ("group_id", "client_id", "group_instance_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidConfigError(f"{name} must be None or a non-empty str, got {value!r}")
        if self.auto_offset_reset not in _OFFSET_RESETS:
            raise InvalidConfigError(
                f"auto_offset_reset must be one of {', '.join(_OFFSET_RESETS)}, "
                f"got {self.auto_offset_reset!r}"
            )
        for name, minimum in (
            ("auto_commit_interval_ms", 0), ("max_poll_records", 1),
            ("max_poll_interval_ms", 1), ("session_timeout_ms", 1),
            ("heartbeat_interval_ms", 1), ("fetch_min_bytes", 0), ("fetch_max_wait_ms", 0),
            ("fetch_max_bytes", 1), ("max_partition_fetch_bytes", 1),
        ):
            value = getattr(self, name)
            if not is_int(value) or value < minimum:
                raise InvalidConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
        if self.isolation_level not in ("read_uncommitted", "read_committed"):
            raise InvalidConfigError(
                "isolation_level must be 'read_uncommitted' or 'read_committed', got "
                f"{self.isolation_level!r}"
            )
        self._check_relations()

    def _check_relations(self) -> None:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise InvalidConfigError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be lower than "
                f"session_timeout_ms ({self.session_timeout_ms})"
            )
        timeout = self.consumer_timeout_ms
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
        ):
            raise InvalidConfigError(f"consumer_timeout_ms must be None or >= 0, got {timeout!r}")
        for name in ("enable_auto_commit", "exclude_internal_topics"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidConfigError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.group_instance_id is not None and self.group_id is None:
            raise InvalidConfigError("group_instance_id needs a group_id")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ConsumerConfig:
        """Build from keyword configs: snake_case or Kafka's dotted names, string values
        parsed as Kafka does (config.client_config).

        Cost: O(configs given); no I/O.
        Thread safety: any thread; pure, builds a new frozen object.
        Raises: InvalidConfigError for an unknown name (suggesting the closest known
            one and listing the rest) or an invalid value.
        """
        return cls(**client_config(values, cls, "consumer"))
