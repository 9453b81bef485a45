"""kafka.admin: KafkaAdminClient, NewTopic, NewPartitions (kafka-python 3's result dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import errors as el_errors
from ..confluent_kafka._types import ConfigError as _ConfluentConfigError
from ..confluent_kafka.admin import topic_config
from . import errors as Errors
from ._common import kafka_error_for, refuse_unknown, take_log

__all__ = ["KafkaAdminClient", "NewPartitions", "NewTopic"]


class NewTopic:
    """A topic to create (kafka-python's deprecated class; a name or a dict works too)."""

    def __init__(self, name: str, num_partitions: int = -1, replication_factor: int = -1,
                 replica_assignments: Any = None, topic_configs: Mapping[str, Any] | None = None
                 ) -> None:
        self.name = name
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignments = replica_assignments or {}
        self.topic_configs = dict(topic_configs or {})


class NewPartitions:
    def __init__(self, total_count: int, new_assignments: Any = None) -> None:
        self.total_count = total_count
        self.new_assignments = new_assignments


def _error_entry(name: str, exc: BaseException | None) -> dict[str, Any]:
    code = 0 if exc is None else getattr(exc, "errno", -1)
    return {"name": name, "error_code": code,
            "error_message": None if exc is None else str(exc)}


class KafkaAdminClient:
    """``kafka.admin.KafkaAdminClient(**configs)`` on the EventLog ``bootstrap_servers``
    selects. Operations complete before they return."""

    def __init__(self, **configs: Any) -> None:
        configs = dict(configs)
        self._log, _ = take_log(configs)
        configs.pop("client_id", None)
        refuse_unknown(configs, "KafkaAdminClient")

    def _raise_or_keep(self, entries: list[dict[str, Any]], errors: list[BaseException],
                       raise_errors: bool) -> None:
        if raise_errors and errors:
            raise errors[0]

    def create_topics(self, new_topics: Any, timeout_ms: float | None = None,
                      validate_only: bool = False, raise_errors: bool = True,
                      wait_for_metadata: bool = False) -> dict[str, Any]:
        """Create topics (NewTopic objects, names, or {name: options}). Raises
        TopicAlreadyExistsError etc. with ``raise_errors`` (the default)."""
        specs: list[tuple[str, int, int, dict[str, Any]]] = []
        if isinstance(new_topics, Mapping):
            for name, o in new_topics.items():
                specs.append((name, o.get("num_partitions", -1), o.get("replication_factor", -1),
                              dict(o.get("configs") or o.get("topic_configs") or {})))
        else:
            for t in new_topics:
                if isinstance(t, str):
                    specs.append((t, -1, -1, {}))
                else:
                    specs.append((t.name, t.num_partitions, t.replication_factor,
                                  dict(t.topic_configs)))
        entries, errors = [], []
        for name, partitions, rf, configs in specs:
            exc: BaseException | None = None
            try:
                if rf not in (-1, 1):
                    raise Errors.InvalidReplicationFactorError(  # type: ignore[attr-defined]
                        f"replication factor {rf}: an in-process log has one replica")
                if name in self._log.topics(include_internal=True):
                    raise Errors.TopicAlreadyExistsError(  # type: ignore[attr-defined]
                        f"Topic '{name}' already exists.")
                n = 1 if partitions == -1 else partitions
                if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                    raise Errors.InvalidPartitionsError(  # type: ignore[attr-defined]
                        f"num_partitions must be -1 or >= 1, got {partitions!r}")
                try:
                    config = topic_config(configs)
                except _ConfluentConfigError as e:
                    raise Errors.InvalidConfigurationError(str(e)) from None  # type: ignore[attr-defined]
                if not validate_only:
                    try:
                        self._log.create_topic(name, n, **config)
                    except el_errors.InvalidConfigError as e:
                        cls = (Errors.InvalidConfigurationError if config  # type: ignore[attr-defined]
                               else Errors.InvalidTopicError)  # type: ignore[attr-defined]
                        raise cls(str(e)) from e
                    except el_errors.EventLogError as e:
                        raise kafka_error_for(e) from e
            except Errors.KafkaError as e:
                exc = e
                errors.append(e)
            entry = _error_entry(name, exc)
            entry.update(num_partitions=partitions, replication_factor=1)
            entries.append(entry)
        self._raise_or_keep(entries, errors, raise_errors)
        return {"topics": entries}

    def delete_topics(self, topics: list[str], timeout_ms: float | None = None,
                      raise_errors: bool = True) -> dict[str, Any]:
        entries, errors = [], []
        for name in topics:
            exc: BaseException | None = None
            try:
                self._log.delete_topic(name)
            except el_errors.EventLogError as e:
                exc = kafka_error_for(e)
                errors.append(exc)
            entries.append(_error_entry(name, exc))
        self._raise_or_keep(entries, errors, raise_errors)
        return {"topics": entries}

    def create_partitions(self, topic_partitions: Mapping[str, Any],
                          timeout_ms: float | None = None, validate_only: bool = False,
                          raise_errors: bool = True) -> dict[str, Any]:
        """Grow topics: ``{name: NewPartitions(total) | total}``."""
        entries, errors = [], []
        for name, spec in topic_partitions.items():
            total = spec.total_count if isinstance(spec, NewPartitions) else spec
            exc: BaseException | None = None
            try:
                current = self._log.topic(name).num_partitions
                if total <= current:
                    raise Errors.InvalidPartitionsError(  # type: ignore[attr-defined]
                        f"Topic currently has {current} partitions, which is higher than or "
                        f"equal to the requested {total}.")
                if not validate_only:
                    self._log.create_partitions(name, total)
            except el_errors.EventLogError as e:
                exc = kafka_error_for(e)
            except Errors.KafkaError as e:
                exc = e
            if exc is not None:
                errors.append(exc)
            entries.append(_error_entry(name, exc))
        self._raise_or_keep(entries, errors, raise_errors)
        return {"results": entries}

    def list_topics(self) -> list[str]:
        return self._log.topics()

    def describe_topics(self, topics: list[str] | None = None) -> list[dict[str, Any]]:
        out = []
        for name in (self._log.topics() if topics is None else topics):
            try:
                n = self._log.topic(name).num_partitions
            except el_errors.UnknownTopicError:
                out.append({"name": name, "error_code": 3, "partitions": []})
                continue
            out.append({"name": name, "error_code": 0, "is_internal": False, "partitions": [
                {"partition_index": i, "leader_id": 0, "replica_nodes": [0], "isr_nodes": [0],
                 "error_code": 0} for i in range(n)]})
        return out

    def list_groups(self, broker_ids: Any = None, states_filter: Any = None,
                    types_filter: Any = None) -> list[dict[str, Any]]:
        return [{"group_id": g.group_id, "protocol_type": g.protocol_type,
                 "group_state": str(g.state)} for g in self._log.list_groups()
                if not states_filter or str(g.state) in states_filter]

    def list_consumer_groups(self, broker_ids: Any = None, states_filter: Any = None
                             ) -> list[tuple[str, str]]:
        """kafka-python 2.x's shape: ``[(group_id, protocol_type)]``."""
        return [(g["group_id"], g["protocol_type"])
                for g in self.list_groups(states_filter=states_filter)]

    def close(self) -> None:
        """Nothing to release."""
