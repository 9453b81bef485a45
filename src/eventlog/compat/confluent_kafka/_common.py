"""Config parsing, log selection, metadata and error translation shared by the clients."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ... import errors as el_errors
from ...log import EventLog
from .. import resolve_log
from ._types import (
    ClusterMetadata,
    ConfigError,
    KafkaError,
    KafkaException,
    PartitionMetadata,
    TopicMetadata,
    error,
)

# Options that only tune the network, batching or buffering of a remote client. They are
# accepted and ignored: in process there is no socket and every append happens at once.
NETWORK_PREFIXES = ("socket.", "ssl.", "ssl_", "sasl.", "reconnect.", "metadata.",
                    "topic.metadata.", "api.version.", "broker.", "log.", "oauthbearer.",
                    "enable.ssl.", "enable.sasl.", "retry.backoff.", "queued.", "fetch.",
                    "connections.", "client.dns.", "https.", "test.mock.")
NETWORK_OPTIONS = frozenset({
    "security.protocol", "client.rack", "debug", "log_level", "log_cb",
    "statistics.interval.ms", "request.timeout.ms", "max.partition.fetch.bytes",
    "receive.message.max.bytes", "max.in.flight", "max.in.flight.requests.per.connection",
    "check.crcs", "allow.auto.create.topics",
    "message.copy.max.bytes", "internal.termination.signal", "enable.metrics.push",
    "topic.blacklist", "plugin.library.paths", "coordinator.query.interval.ms",
    "socket_timeout_ms", "error_cb", "throttle_cb", "stats_cb", "logger", "oauth_cb",
    "client.software.name", "client.software.version", "enabled_events",
})


def is_network_option(name: str) -> bool:
    return name in NETWORK_OPTIONS or name.startswith(NETWORK_PREFIXES)


class Options:
    """A config dict being consumed: each ``take`` removes a key; ``finish`` refuses leftovers."""

    def __init__(self, conf: Mapping[str, Any] | None, kwargs: Mapping[str, Any], what: str
                 ) -> None:
        if conf is not None and not isinstance(conf, Mapping):
            raise TypeError(f"{what} expects a dict of configuration properties, got {conf!r}")
        self.what = what
        self.values: dict[str, Any] = {**(conf or {}), **kwargs}
        for key in self.values:
            if not isinstance(key, str):
                raise ConfigError(f"configuration property names are str, got {key!r}")
        # topic-level settings nested under "default.topic.config" move to the top
        nested = self.values.pop("default.topic.config", None)
        if isinstance(nested, Mapping):
            for k, v in nested.items():
                self.values.setdefault(k, v)

    def take(self, *names: str, default: Any = None) -> Any:
        found = default
        for name in names:
            if name in self.values:
                found = self.values.pop(name)
        return found

    def take_bool(self, name: str, default: bool) -> bool:
        value = self.take(name, default=default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f'configuration property "{name}" must be true or false, got {value!r}')

    def take_int(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.take(name, default=default)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                f'configuration property "{name}" must be an int >= {minimum}, got {value!r}'
            )
        return value

    def take_callable(self, name: str) -> Callable[..., Any] | None:
        value = self.take(name)
        if value is not None and not callable(value):
            raise ConfigError(f'configuration property "{name}" must be callable, got {value!r}')
        return value

    def finish(self, refused: Mapping[str, str] | None = None) -> None:
        """Ignore networking options; refuse everything else left, naming it."""
        for name in sorted(self.values):
            if refused and name in refused:
                raise ConfigError(
                    f'configuration property "{name}" is not supported in process: '
                    f"{refused[name]}"
                )
            if not is_network_option(name):
                raise ConfigError(
                    f'No such configuration property: "{name}" ({self.what} in process; '
                    "see docs/compat.md for the supported options)"
                )
        self.values.clear()


def log_from(opts: Options) -> tuple[EventLog, str]:
    servers = opts.take("bootstrap.servers", "metadata.broker.list")
    try:
        log = resolve_log(servers)
    except (LookupError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    if log.closed:
        raise ConfigError("the EventLog selected by bootstrap.servers is closed")
    return log, (servers if isinstance(servers, str) and servers else "eventlog")


def cluster_metadata(log: EventLog, host: str, topic: str | None) -> ClusterMetadata:
    names = [topic] if topic is not None else log.topics()
    topics: dict[str, TopicMetadata] = {}
    for name in names:
        try:
            n = log.topic(name).num_partitions
        except el_errors.UnknownTopicError:
            topics[name] = TopicMetadata(name, {}, error(KafkaError.UNKNOWN_TOPIC_OR_PART))  # type: ignore[attr-defined]
            continue
        topics[name] = TopicMetadata(name, {i: PartitionMetadata(i) for i in range(n)})
    return ClusterMetadata(topics, host)


_TRANSLATIONS: tuple[tuple[type[BaseException], int], ...] = (
    (el_errors.UnknownPartitionError, -190),
    (el_errors.InvalidTopicError, 17),
    (el_errors.UnknownTopicError, 3),
    (el_errors.RecordTooLargeError, 10),
    (el_errors.RebalanceInProgressError, 27),
    (el_errors.UnknownMemberError, 25),
    (el_errors.IllegalGenerationError, 22),
    (el_errors.FencedInstanceIdError, 82),
    (el_errors.CommitFailedError, 22),
    (el_errors.TopicExistsError, 36),
    (el_errors.NoOffsetForPartitionError, -140),
    (el_errors.OffsetOutOfRangeError, 1),
    (el_errors.IllegalStateError, -172),
    (el_errors.InvalidConfigError, -186),
    (el_errors.ClosedError, -197),
    (el_errors.EventLogError, -196),
)


def kafka_error_for(exc: BaseException) -> KafkaError:
    code = -196
    cause = exc.__cause__
    for kind, c in _TRANSLATIONS:
        if isinstance(exc, kind):
            code = c
            if kind is el_errors.CommitFailedError and isinstance(cause, el_errors.GroupError):
                code = kafka_error_for(cause).code()
            break
    return error(code, str(exc), fatal=code == 82)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise eventlog's errors as KafkaException(KafkaError) with the closest code."""
    try:
        yield
    except KafkaException:
        raise
    except el_errors.EventLogError as exc:
        raise KafkaException(kafka_error_for(exc)) from exc


def timeout_ms(timeout: Any, what: str = "timeout") -> float | None:
    """confluent-kafka's seconds (None or negative: forever) as ms (None: forever)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {timeout!r}")
    if timeout < 0:
        return None
    return float(timeout) * 1000.0


def to_bytes(obj: Any, what: str) -> bytes | None:
    if obj is None or type(obj) is bytes:
        return obj
    if isinstance(obj, str):
        return obj.encode("utf-8")
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(f"{what} must be bytes, str or None, got {type(obj).__name__}")
