"""aiokafka.admin.client: ``AIOKafkaAdminClient`` over an EventLog, kafka-python's admin
calls made awaitable. ``create_topics`` answers as aiokafka does, with a response whose
``to_object()["topic_errors"]`` lists each topic's error code (0: created)."""

from __future__ import annotations

from typing import Any

from ...kafka.admin import KafkaAdminClient

__all__ = ["AIOKafkaAdminClient"]

_IGNORED = ("loop", "request_timeout_ms", "connections_max_idle_ms", "retry_backoff_ms",
            "metadata_max_age_ms", "api_version", "security_protocol", "ssl_context",
            "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
            "sasl_kerberos_service_name", "sasl_kerberos_domain_name",
            "sasl_oauth_token_provider")


class CreateTopicsResponse:
    """What ``create_topics`` returns: ``to_object()`` as aiokafka's protocol response."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.topic_errors = [(e["name"], e["error_code"], e["error_message"]) for e in entries]

    def to_object(self) -> dict[str, Any]:
        return {"throttle_time_ms": 0, "topic_errors": [
            {"topic": name, "error_code": code, "error_message": message}
            for name, code, message in self.topic_errors]}


class AIOKafkaAdminClient:
    """``aiokafka.admin.AIOKafkaAdminClient(**configs)`` on the log ``bootstrap_servers``
    selects; every call completes before its coroutine returns."""

    def __init__(self, **configs: Any) -> None:
        configs = dict(configs)
        for name in _IGNORED:
            configs.pop(name, None)
        self._admin = KafkaAdminClient(**configs)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        self._admin.close()

    async def create_topics(self, new_topics: list[Any], timeout_ms: int | None = None,
                            validate_only: bool = False) -> CreateTopicsResponse:
        found = self._admin.create_topics(new_topics, timeout_ms, validate_only,
                                          raise_errors=False)
        return CreateTopicsResponse(found["topics"])

    async def delete_topics(self, topics: list[str], timeout_ms: int | None = None) -> Any:
        return self._admin.delete_topics(topics, timeout_ms)

    async def create_partitions(self, topic_partitions: dict[str, Any],
                                timeout_ms: int | None = None,
                                validate_only: bool = False) -> Any:
        return self._admin.create_partitions(topic_partitions, timeout_ms, validate_only)

    async def list_topics(self) -> list[str]:
        return self._admin.list_topics()

    async def describe_topics(self, topics: list[str] | None = None) -> list[dict[str, Any]]:
        return self._admin.describe_topics(topics)

    async def list_consumer_groups(self, broker_ids: Any = None) -> Any:
        return self._admin.list_consumer_groups(broker_ids)
