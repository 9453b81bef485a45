"""confluent_kafka.admin: AdminClient, NewTopic, NewPartitions, with concurrent futures.

Every operation completes before the call returns, so each future is already done.
"""

from __future__ import annotations

import concurrent.futures
import enum
from collections.abc import Iterable, Mapping
from typing import Any

from ... import errors as el_errors
from ...log import EventLog
from ._common import Options, cluster_metadata, kafka_error_for, log_from
from ._types import ClusterMetadata, ConfigError, KafkaError, KafkaException, error

__all__ = [
    "AdminClient",
    "ConsumerGroupDescription",
    "ConsumerGroupListing",
    "ConsumerGroupState",
    "ListConsumerGroupsResult",
    "MemberAssignment",
    "MemberDescription",
    "NewPartitions",
    "NewTopic",
]


class NewTopic:
    """A topic to create: name, partitions (-1: the log's default), replication factor
    (-1 or 1 in process) and Kafka's dotted topic configs."""

    def __init__(self, topic: str, num_partitions: int = -1, replication_factor: int = -1,
                 replica_assignment: list | None = None, config: Mapping[str, str] | None = None
                 ) -> None:
        if not isinstance(topic, str):
            raise TypeError(f"NewTopic topic must be a str, got {topic!r}")
        self.topic = topic
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignment = replica_assignment
        self.config = dict(config or {})

    def __repr__(self) -> str:
        return f"NewTopic(topic={self.topic},num_partitions={self.num_partitions})"


class NewPartitions:
    """Grow ``topic`` to ``new_total_count`` partitions."""

    def __init__(self, topic: str, new_total_count: int,
                 replica_assignment: list | None = None) -> None:
        self.topic = topic
        self.new_total_count = new_total_count
        self.replica_assignment = replica_assignment

    def __repr__(self) -> str:
        return f"NewPartitions(topic={self.topic},new_total_count={self.new_total_count})"


class ConsumerGroupState(enum.Enum):
    UNKNOWN = 0
    PREPARING_REBALANCING = 1
    COMPLETING_REBALANCING = 2
    STABLE = 3
    DEAD = 4
    EMPTY = 5


_STATES = {"Stable": ConsumerGroupState.STABLE, "Empty": ConsumerGroupState.EMPTY,
           "Dead": ConsumerGroupState.DEAD,
           "PreparingRebalance": ConsumerGroupState.PREPARING_REBALANCING,
           "CompletingRebalance": ConsumerGroupState.COMPLETING_REBALANCING}


class ConsumerGroupListing:
    def __init__(self, group_id: str, is_simple_consumer_group: bool,
                 state: ConsumerGroupState) -> None:
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.state = state


class ListConsumerGroupsResult:
    def __init__(self, valid: list[ConsumerGroupListing], errors: list) -> None:
        self.valid = valid
        self.errors = errors


class MemberAssignment:
    def __init__(self, topic_partitions: list) -> None:
        self.topic_partitions = topic_partitions


class MemberDescription:
    def __init__(self, member_id: str, client_id: str, host: str,
                 assignment: MemberAssignment, group_instance_id: str | None) -> None:
        self.member_id = member_id
        self.client_id = client_id
        self.host = host
        self.assignment = assignment
        self.group_instance_id = group_instance_id


class ConsumerGroupDescription:
    def __init__(self, group_id: str, is_simple_consumer_group: bool,
                 members: list[MemberDescription], partition_assignor: str,
                 state: ConsumerGroupState) -> None:
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.members = members
        self.partition_assignor = partition_assignor
        self.state = state


def _done(value: Any = None, exc: BaseException | None = None) -> concurrent.futures.Future:
    f: concurrent.futures.Future = concurrent.futures.Future()
    if exc is None:
        f.set_result(value)
    else:
        f.set_exception(exc)
    return f


def _state(name: Any) -> ConsumerGroupState:
    return _STATES.get(getattr(name, "value", str(name)), ConsumerGroupState.UNKNOWN)


def topic_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Kafka's dotted topic configs as eventlog's TopicConfig fields (values parsed)."""
    out: dict[str, Any] = {}
    for name, value in config.items():
        field = name.replace(".", "_")
        if field == "min_cleanable_dirty_ratio":
            out[field] = float(value)
        elif field in ("message_timestamp_type", "cleanup_policy"):
            out[field] = str(value)
        else:
            try:
                out[field] = int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"topic config {name!r} must be an integer, got {value!r}"
                                  ) from None
    return out


class AdminClient:
    """``confluent_kafka.admin.AdminClient(conf)`` on the EventLog ``bootstrap.servers``
    selects. Operations return ``{name: concurrent.futures.Future}``, already done."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        opts = Options(conf, kwargs, "AdminClient")
        self._log: EventLog
        self._log, self._host = log_from(opts)
        opts.take("client.id")
        opts.finish()

    def create_topics(self, new_topics: list[NewTopic], operation_timeout: float = 0,
                      request_timeout: float = -1, validate_only: bool = False
                      ) -> dict[str, concurrent.futures.Future]:
        if not isinstance(new_topics, list) or not all(isinstance(t, NewTopic)
                                                        for t in new_topics):
            raise TypeError("create_topics() expects a list of NewTopic")
        out = {}
        for nt in new_topics:
            out[nt.topic] = self._create(nt, validate_only)
        return out

    def _create(self, nt: NewTopic, validate_only: bool) -> concurrent.futures.Future:
        if nt.replication_factor not in (-1, 1) or nt.replica_assignment:
            return _done(exc=KafkaException(error(
                KafkaError.INVALID_REPLICATION_FACTOR,  # type: ignore[attr-defined]
                f"replication factor {nt.replication_factor}: an in-process log has one "
                "replica (use -1 or 1)")))
        partitions = nt.num_partitions
        if partitions == -1:
            partitions = 1  # Kafka's num.partitions default
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            return _done(exc=KafkaException(error(
                KafkaError.INVALID_PARTITIONS,  # type: ignore[attr-defined]
                f"num_partitions must be -1 or >= 1, got {nt.num_partitions!r}")))
        try:
            config = topic_config(nt.config)
        except ConfigError as exc:
            return _done(exc=KafkaException(error(KafkaError.INVALID_CONFIG, str(exc))))  # type: ignore[attr-defined]
        if nt.topic in self._log.topics(include_internal=True):
            return _done(exc=KafkaException(error(
                KafkaError.TOPIC_ALREADY_EXISTS,  # type: ignore[attr-defined]
                f"Topic '{nt.topic}' already exists.")))
        if validate_only:
            return _done(None)
        try:
            self._log.create_topic(nt.topic, partitions, **config)
        except el_errors.InvalidConfigError as exc:
            code = KafkaError.INVALID_CONFIG if nt.config else KafkaError.TOPIC_EXCEPTION  # type: ignore[attr-defined]
            return _done(exc=KafkaException(error(code, str(exc))))
        except el_errors.EventLogError as exc:
            return _done(exc=KafkaException(kafka_error_for(exc)))
        return _done(None)

    def delete_topics(self, topics: list[str], operation_timeout: float = 0,
                      request_timeout: float = -1) -> dict[str, concurrent.futures.Future]:
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise TypeError("delete_topics() expects a list of topic names")
        out = {}
        for name in topics:
            try:
                self._log.delete_topic(name)
            except el_errors.EventLogError as exc:
                out[name] = _done(exc=KafkaException(kafka_error_for(exc)))
            else:
                out[name] = _done(None)
        return out

    def create_partitions(self, new_partitions: list[NewPartitions],
                          operation_timeout: float = 0, request_timeout: float = -1,
                          validate_only: bool = False) -> dict[str, concurrent.futures.Future]:
        if not isinstance(new_partitions, list) or not all(
                isinstance(p, NewPartitions) for p in new_partitions):
            raise TypeError("create_partitions() expects a list of NewPartitions")
        out = {}
        for np_ in new_partitions:
            try:
                current = self._log.topic(np_.topic).num_partitions
                if np_.new_total_count <= current:
                    raise KafkaException(error(
                        KafkaError.INVALID_PARTITIONS,  # type: ignore[attr-defined]
                        f"Topic currently has {current} partitions, which is higher than or "
                        f"equal to the requested {np_.new_total_count}."))
                if not validate_only:
                    self._log.create_partitions(np_.topic, np_.new_total_count)
            except KafkaException as exc:
                out[np_.topic] = _done(exc=exc)
            except el_errors.EventLogError as exc:
                out[np_.topic] = _done(exc=KafkaException(kafka_error_for(exc)))
            else:
                out[np_.topic] = _done(None)
        return out

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        return cluster_metadata(self._log, self._host, topic)

    def list_consumer_groups(self, request_timeout: float | None = None,
                             states: Iterable[ConsumerGroupState] | None = None
                             ) -> concurrent.futures.Future:
        wanted = set(states or ())
        listings = []
        for g in self._log.list_groups():
            state = _state(g.state)
            if wanted and state not in wanted:
                continue
            listings.append(ConsumerGroupListing(g.group_id, g.protocol_type == "", state))
        return _done(ListConsumerGroupsResult(listings, []))

    def describe_consumer_groups(self, group_ids: list[str],
                                 request_timeout: float | None = None
                                 ) -> dict[str, concurrent.futures.Future]:
        from ._types import TopicPartition

        out = {}
        for gid in group_ids:
            try:
                d = self._log.describe_group(gid)
            except el_errors.EventLogError as exc:
                out[gid] = _done(exc=KafkaException(kafka_error_for(exc)))
                continue
            members = [
                MemberDescription(
                    m.member_id, m.client_id, getattr(m, "host", "/127.0.0.1"),
                    MemberAssignment([TopicPartition(tp[0], tp[1])
                                      for tp in sorted(m.assignment)]),
                    m.group_instance_id)
                for m in d.members
            ]
            out[gid] = _done(ConsumerGroupDescription(
                gid, d.protocol_type == "", members, d.protocol or "", _state(d.state)))
        return out
