"""ProducerConfig: the producer's configs, Kafka's names in snake_case and Kafka's defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import client_config
from ..errors import InvalidConfigError
from ..storage.batch import COMPRESSION_CODES

__all__ = ["ProducerConfig"]


@dataclass(frozen=True)
class ProducerConfig:
    """Producer configs: Kafka's names in snake_case, Kafka's defaults.

    ``acks``: 0, 1 or "all" (-1). With one in-process replica 1 and "all" both
    mean "appended"; with the log's fsync="always" that also means fsynced. With
    0 the metadata's offset is -1, as Kafka reports it.
    ``linger_ms`` / ``batch_size``: see the module docstring.
    ``enable_idempotence``: None means on unless ``acks`` is not "all".
    ``max_request_size``: the largest record (key + value + headers) accepted.
    ``retries`` / ``retry_backoff_ms`` / ``delivery_timeout_ms``: storage errors
    (disk full) are retried with the same sequence until one of these runs out.
    ``partitioner``: None (murmur2 + uniform sticky), "round_robin", an object
    with ``partition(topic, key, value, num_partitions)`` or such a callable.
    ``partitioner_ignore_keys``: spread keyed records like keyless ones.
    """

    acks: int | str = "all"
    linger_ms: int = 5  # Kafka 4's default (KIP-1030); see docs/configuration.md
    batch_size: int = 16384
    compression_type: str = "none"
    enable_idempotence: bool | None = None
    max_in_flight_requests_per_connection: int = 5
    max_request_size: int = 1_048_576
    retries: int = 2_147_483_647
    retry_backoff_ms: int = 100
    delivery_timeout_ms: int = 120_000
    key_serializer: Any = None
    value_serializer: Any = None
    partitioner: Any = None
    partitioner_ignore_keys: bool = False
    client_id: str = ""
    transactional_id: str | None = None
    transaction_timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        spelled = self.acks.strip().lower() if isinstance(self.acks, str) else self.acks
        acks = {"all": -1, "-1": -1, "1": 1, "0": 0, -1: -1, 1: 1, 0: 0}.get(spelled)  # type: ignore[call-overload]
        if acks is None or isinstance(self.acks, bool):
            raise InvalidConfigError(f"acks must be 0, 1 or 'all', got {self.acks!r}")
        object.__setattr__(self, "acks", acks)
        for name in ("linger_ms", "retries", "retry_backoff_ms"):
            _require_int(name, getattr(self, name), 0)
        for name in ("batch_size", "max_request_size", "delivery_timeout_ms",
                     "max_in_flight_requests_per_connection"):
            _require_int(name, getattr(self, name), 1)
        if self.compression_type not in COMPRESSION_CODES:
            raise InvalidConfigError(
                f"unknown compression_type {self.compression_type!r}; supported: "
                f"{', '.join(COMPRESSION_CODES)}"
            )
        idempotent = self.enable_idempotence
        if idempotent is True and acks != -1:
            raise InvalidConfigError(
                "enable_idempotence=True requires acks='all' (Kafka's rule); "
                f"got acks={self.acks!r}"
            )
        if idempotent is None:
            idempotent = acks == -1
        if idempotent and self.max_in_flight_requests_per_connection > 5:
            raise InvalidConfigError(
                "enable_idempotence requires max_in_flight_requests_per_connection <= 5, got "
                f"{self.max_in_flight_requests_per_connection}"
            )
        object.__setattr__(self, "enable_idempotence", bool(idempotent))
        _require_int("transaction_timeout_ms", self.transaction_timeout_ms, 1)
        if self.transactional_id is not None:
            if type(self.transactional_id) is not str or not self.transactional_id:
                raise InvalidConfigError(
                    f"transactional_id must be a non-empty str, got {self.transactional_id!r}")
            if not idempotent:
                raise InvalidConfigError(
                    "transactional_id requires idempotence (Kafka's rule): drop "
                    "enable_idempotence=False and use acks='all'"
                )

    @classmethod
    def from_kwargs(cls, config: dict[str, Any]) -> ProducerConfig:
        """Build from keyword configs: snake_case or Kafka's dotted names, string values
        parsed as Kafka does (config.client_config).

        Cost: O(configs given).
        Thread safety: any thread; the result is immutable.
        Raises: InvalidConfigError for an unknown name (suggesting the closest known
            one) or a bad value, naming the config and what it accepts.
        """
        return cls(**client_config(config, cls, "producer", _KAFKA_PRODUCER_ALIASES))


_KAFKA_PRODUCER_ALIASES = {"partitioner.class": "partitioner"}


def _require_int(name: str, value: Any, minimum: int) -> None:
    if type(value) is not int or value < minimum:
        raise InvalidConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
