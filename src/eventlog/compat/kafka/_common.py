"""Config checks, log selection and error translation for the kafka-python clients."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from ... import errors as el_errors
from ...log import EventLog
from .. import resolve_log
from . import errors as Errors

# kafka-python options that only tune the network, batching or metrics: accepted, ignored.
NETWORK_OPTIONS = frozenset({
    "client_rack", "request_timeout_ms", "retry_backoff_ms", "reconnect_backoff_ms",
    "reconnect_backoff_max_ms", "max_in_flight_requests_per_connection", "check_crcs",
    "metadata_max_age_ms", "client_dns_lookup", "receive_buffer_bytes", "send_buffer_bytes",
    "receive_message_max_bytes", "socket_options", "security_protocol", "ssl_context",
    "ssl_check_hostname", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_crlfile",
    "ssl_password", "ssl_ciphers", "api_version", "api_version_auto_timeout_ms",
    "bootstrap_timeout_ms", "connections_max_idle_ms", "metric_reporters",
    "metrics_enabled", "metrics_num_samples", "metrics_sample_window_ms",
    "metric_group_prefix", "selector", "sasl_mechanism", "sasl_plain_username",
    "sasl_plain_password", "sasl_kerberos_name", "sasl_kerberos_service_name",
    "sasl_kerberos_domain_name", "sasl_oauth_token_provider", "proxy_url", "socks5_proxy",
    "kafka_client", "fetch_max_wait_ms", "fetch_min_bytes", "fetch_max_bytes",
    "max_partition_fetch_bytes", "enable_incremental_fetch_sessions", "allow_auto_create_topics",
    "isolation_level", "default_offset_commit_callback", "max_block_ms",
    "retries", "delivery_timeout_ms", "buffer_memory", "client_id",
})


def take_log(configs: dict[str, Any]) -> tuple[EventLog, Any]:
    servers = configs.pop("bootstrap_servers", None)
    try:
        log = resolve_log(servers)
    except (LookupError, ValueError) as exc:
        raise Errors.NoBrokersAvailable(str(exc)) from None
    if log.closed:
        raise Errors.NoBrokersAvailable("the EventLog selected by bootstrap_servers is closed")
    return log, servers


def refuse_unknown(configs: Mapping[str, Any], what: str,
                   refused: Mapping[str, str] | None = None) -> None:
    for name in sorted(configs):
        if refused and name in refused:
            raise Errors.ConfigError(f"{what} config {name!r} is not supported in process: "
                                     f"{refused[name]}")
        if name not in NETWORK_OPTIONS:
            raise Errors.ConfigError(
                f"Unrecognized configs: {name!r} ({what} in process; see docs/compat.md)"
            )


_TRANSLATIONS: tuple[tuple[type[BaseException], Any], ...] = (
    (el_errors.InvalidTopicError, Errors.InvalidTopicError),  # type: ignore[attr-defined]
    (el_errors.UnknownTopicError, Errors.UnknownTopicOrPartitionError),  # type: ignore[attr-defined]
    (el_errors.UnknownPartitionError, Errors.UnknownTopicOrPartitionError),  # type: ignore[attr-defined]
    (el_errors.RecordTooLargeError, Errors.MessageSizeTooLargeError),  # type: ignore[attr-defined]
    (el_errors.RebalanceInProgressError, Errors.RebalanceInProgressError),  # type: ignore[attr-defined]
    (el_errors.CommitFailedError, Errors.CommitFailedError),
    (el_errors.UnknownMemberError, Errors.UnknownMemberIdError),  # type: ignore[attr-defined]
    (el_errors.IllegalGenerationError, Errors.IllegalGenerationError),  # type: ignore[attr-defined]
    (el_errors.FencedInstanceIdError, Errors.FencedInstanceIdError),  # type: ignore[attr-defined]
    (el_errors.TopicExistsError, Errors.TopicAlreadyExistsError),  # type: ignore[attr-defined]
    (el_errors.NoOffsetForPartitionError, Errors.NoOffsetForPartitionError),
    (el_errors.OffsetOutOfRangeError, Errors.OffsetOutOfRangeError),  # type: ignore[attr-defined]
    (el_errors.IllegalStateError, Errors.IllegalStateError),
    (el_errors.InvalidConfigError, Errors.IllegalArgumentError),
    (el_errors.ClosedError, Errors.IllegalStateError),
    (el_errors.EventLogTimeoutError, Errors.KafkaTimeoutError),
    (el_errors.EventLogError, Errors.KafkaError),
)


def kafka_error_for(exc: BaseException) -> Errors.KafkaError:
    for kind, cls in _TRANSLATIONS:
        if isinstance(exc, kind):
            return cls(str(exc))
    return Errors.KafkaError(str(exc))


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise eventlog's errors as kafka.errors classes, chained."""
    try:
        yield
    except Errors.KafkaError:
        raise
    except el_errors.EventLogError as exc:
        raise kafka_error_for(exc) from exc
