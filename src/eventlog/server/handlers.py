"""One handler per Kafka API: requests in (kio dataclasses), plain response fields out.

Every handler is written once for all the versions it supports; fields a version
lacks are read with ``getattr(request, name, default)`` and the response is fitted
to the version by ``protocol.build``. Handlers reach the log only through
eventlog's public API (EventLog, Topic, Partition, eventlog.group).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .. import errors
from ..config import TopicConfig
from ..group import (
    OffsetAndMetadata,
    coordinator_for,
    delete_group,
    describe_group,
    list_groups,
)
from ..records import TopicPartition
from .groups import Errors, WireGroupCoordinator
from .protocol import ms
from .records import (
    WireFormatError,
    attr_compression_mask,
    attr_log_append_time,
    decode_batches,
    encode_batch,
)

__all__ = ["API_VERSIONS", "Handlers", "api_versions_body", "topic_id"]

_log = logging.getLogger("eventlog.server")

# Kafka error codes used below (org.apache.kafka.common.protocol.Errors)
UNKNOWN_SERVER_ERROR = -1
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
INVALID_COMMIT_OFFSET_SIZE = 28
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REQUEST = 42
INVALID_CONFIG = 40
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
KAFKA_STORAGE_ERROR = 56
UNKNOWN_TOPIC_ID = 100
INVALID_RECORD = 87

# api key -> (name, min version, max version) this server answers
API_VERSIONS: dict[int, tuple[str, int, int]] = {
    0: ("Produce", 3, 10),
    1: ("Fetch", 4, 16),
    2: ("ListOffsets", 1, 9),
    3: ("Metadata", 0, 12),
    8: ("OffsetCommit", 2, 9),
    9: ("OffsetFetch", 1, 9),
    10: ("FindCoordinator", 0, 6),
    11: ("JoinGroup", 0, 9),
    12: ("Heartbeat", 0, 4),
    13: ("LeaveGroup", 0, 5),
    14: ("SyncGroup", 0, 5),
    15: ("DescribeGroups", 0, 5),
    16: ("ListGroups", 0, 4),
    18: ("ApiVersions", 0, 4),
    19: ("CreateTopics", 2, 7),
    20: ("DeleteTopics", 1, 6),
    22: ("InitProducerId", 0, 4),
    32: ("DescribeConfigs", 1, 4),
    37: ("CreatePartitions", 0, 3),
    42: ("DeleteGroups", 0, 2),
    60: ("DescribeCluster", 0, 1),
    71: ("GetTelemetrySubscriptions", 0, 0),
}

node_id = 0
cluster_id = "eventlog"
_topic_namespace = uuid.UUID("7a1e5b1c-0c5e-4e4b-9e0f-6576656e746c")


def topic_id(name: str) -> uuid.UUID:
    """A topic's id, derived from its name (eventlog topics have no stored id)."""
    return uuid.uuid5(_topic_namespace, name)


def _error_for(exc: BaseException) -> int:
    if isinstance(exc, errors.OutOfOrderSequenceError):
        return OUT_OF_ORDER_SEQUENCE_NUMBER
    if isinstance(exc, errors.InvalidProducerEpochError):
        return INVALID_PRODUCER_EPOCH
    if isinstance(exc, errors.RecordTooLargeError):
        return MESSAGE_TOO_LARGE
    if isinstance(exc, (errors.InvalidRecordError, WireFormatError)):
        return INVALID_RECORD if not isinstance(exc, WireFormatError) else CORRUPT_MESSAGE
    if isinstance(exc, (errors.UnknownTopicError, errors.UnknownPartitionError)):
        return UNKNOWN_TOPIC_OR_PARTITION
    if isinstance(exc, errors.OffsetOutOfRangeError):
        return OFFSET_OUT_OF_RANGE
    if isinstance(exc, errors.StorageError):
        return KAFKA_STORAGE_ERROR
    return UNKNOWN_SERVER_ERROR


def _config_value(name: str, raw: str | None) -> Any:
    """A Kafka topic config string as TopicConfig's type for ``name``."""
    default = getattr(TopicConfig(), name, None)
    if raw is None or default is None or isinstance(default, str):
        return raw
    if isinstance(default, bool):
        return raw.lower() == "true"
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


class Handlers:
    """The request handlers of one server over one EventLog."""

    def __init__(self, log: Any, host: str, port_ref: Callable[[], int],
                 groups: WireGroupCoordinator) -> None:
        self.log = log
        self.host = host
        self._port = port_ref
        self.groups = groups
        self._producer_ids = itertools.count(log.clock.time_ms() * 1000)
        self.table: dict[int, Callable[[Any, Any, int, str], Awaitable[Any]]] = {
            0: self.produce, 1: self.fetch, 2: self.list_offsets, 3: self.metadata,
            8: self.offset_commit, 9: self.offset_fetch, 10: self.find_coordinator,
            11: self.join_group, 12: self.heartbeat, 13: self.leave_group,
            14: self.sync_group, 15: self.describe_groups, 16: self.list_groups,
            18: self.api_versions, 19: self.create_topics, 20: self.delete_topics,
            22: self.init_producer_id, 32: self.describe_configs,
            37: self.create_partitions, 42: self.delete_groups, 60: self.describe_cluster,
            71: self.get_telemetry_subscriptions,
        }

    @property
    def port(self) -> int:
        return self._port()

    def _broker(self) -> dict[str, Any]:
        return {"node_id": node_id, "broker_id": node_id, "host": self.host, "port": self.port,
                "rack": None}

    def _topic_by_id(self, tid: Any) -> str | None:
        for name in self.log.topics(include_internal=True):
            if topic_id(name) == tid:
                return name
        return None

    # ------------------------------------------------------------------ cluster

    async def api_versions(self, header: Any, req: Any, version: int, host: str) -> Any:
        return api_versions_body(NONE)

    async def metadata(self, header: Any, req: Any, version: int, host: str) -> Any:
        log = self.log
        requested = req.topics
        if requested is None or (version == 0 and not requested):
            names = log.topics()
        else:
            names = [t.name for t in requested]
        allow_create = getattr(req, "allow_auto_topic_creation", True)
        topics = []
        for name in names:
            if name is None:
                topics.append({"error_code": UNKNOWN_TOPIC_ID, "name": None})
                continue
            try:
                topic = log.topic_for_produce(name) if allow_create else log.topic(name)
            except errors.InvalidConfigError:
                topics.append({"error_code": INVALID_TOPIC_EXCEPTION, "name": name})
                continue
            except errors.UnknownTopicError:
                topics.append({"error_code": UNKNOWN_TOPIC_OR_PARTITION, "name": name,
                               "topic_id": uuid.UUID(int=0)})
                continue
            topics.append({
                "error_code": NONE, "name": name, "topic_id": topic_id(name),
                "is_internal": name.startswith("__"),
                "partitions": [
                    {"error_code": NONE, "partition_index": p.index, "leader_id": node_id,
                     "leader_epoch": 0, "replica_nodes": [node_id], "isr_nodes": [node_id]}
                    for p in topic.partitions
                ],
            })
        return {"brokers": [self._broker()], "cluster_id": cluster_id,
                "controller_id": node_id, "topics": topics}

    async def describe_cluster(self, header: Any, req: Any, version: int, host: str) -> Any:
        return {"error_code": NONE, "cluster_id": cluster_id, "controller_id": node_id,
                "brokers": [self._broker()]}

    async def find_coordinator(self, header: Any, req: Any, version: int, host: str) -> Any:
        found = {"node_id": node_id, "host": self.host, "port": self.port, "error_code": NONE,
                 "error_message": None}
        if version >= 4:
            return {"coordinators": [{"key": k, **found} for k in req.coordinator_keys]}
        return found

    async def get_telemetry_subscriptions(self, header: Any, req: Any, version: int,
                                          host: str) -> Any:
        # No metrics are wanted: an empty subscription, so the client pushes nothing.
        client = req.client_instance_id
        if client is None or client.int == 0:
            client = uuid.uuid4()
        return {"error_code": NONE, "client_instance_id": client, "subscription_id": 0,
                "push_interval": 300_000, "telemetry_max_bytes": 1_048_576,
                "delta_temporality": True, "requested_metrics": []}

    async def init_producer_id(self, header: Any, req: Any, version: int, host: str) -> Any:
        if req.transactional_id is not None:
            _log.info("InitProducerId for transactional id %r refused: transactions are not "
                      "supported", req.transactional_id)
            return {"error_code": 48, "producer_id": -1, "producer_epoch": -1}  # INVALID_TXN
        return {"error_code": NONE, "producer_id": next(self._producer_ids), "producer_epoch": 0}

    # ------------------------------------------------------------------ topics

    async def create_topics(self, header: Any, req: Any, version: int, host: str) -> Any:
        results = []
        for t in req.topics:
            results.append(self._create_topic(t, bool(getattr(req, "validate_only", False))))
        return {"topics": results}

    def _create_topic(self, t: Any, validate_only: bool) -> dict[str, Any]:
        name = t.name
        count = t.num_partitions if t.num_partitions != -1 else 1
        out: dict[str, Any] = {"name": name, "topic_id": topic_id(name), "error_code": NONE,
                               "error_message": None, "num_partitions": count,
                               "replication_factor": 1}
        if t.assignments:
            return {**out, "error_code": INVALID_REQUEST,
                    "error_message": "manual replica assignments are not supported"}
        if t.replication_factor not in (-1, 1):
            return {**out, "error_code": INVALID_REPLICATION_FACTOR,
                    "error_message": f"replication factor {t.replication_factor}: this "
                                     "server has one broker, use 1 or -1"}
        try:
            config = {c.name.replace(".", "_"): _config_value(c.name.replace(".", "_"),
                                                              c.value)
                      for c in t.configs}
            TopicConfig.from_mapping(config)
        except (errors.InvalidConfigError, ValueError, TypeError) as exc:
            return {**out, "error_code": INVALID_CONFIG, "error_message": str(exc)}
        if validate_only:
            if name in self.log.topics(include_internal=True):
                return {**out, "error_code": TOPIC_ALREADY_EXISTS,
                        "error_message": f"topic {name!r} already exists"}
            return out
        try:
            self.log.create_topic(name, count, **config)
        except errors.TopicExistsError as exc:
            return {**out, "error_code": TOPIC_ALREADY_EXISTS, "error_message": str(exc)}
        except errors.InvalidConfigError as exc:
            code = INVALID_PARTITIONS if "partitions" in str(exc) else INVALID_TOPIC_EXCEPTION
            if "config" in str(exc).lower():
                code = INVALID_CONFIG
            return {**out, "error_code": code, "error_message": str(exc)}
        return out

    async def delete_topics(self, header: Any, req: Any, version: int, host: str) -> Any:
        if version >= 6:
            wanted = [(t.name if t.name is not None else self._topic_by_id(t.topic_id),
                       t.topic_id) for t in req.topics]
        else:
            wanted = [(name, None) for name in req.topic_names]
        responses = []
        for name, tid in wanted:
            entry: dict[str, Any] = {"name": name, "topic_id": tid or uuid.UUID(int=0),
                                     "error_code": NONE}
            if name is None:
                entry["error_code"] = UNKNOWN_TOPIC_ID
            elif name.startswith("__"):
                entry.update(error_code=INVALID_REQUEST,
                             error_message=f"internal topic {name!r} cannot be deleted")
            else:
                try:
                    self.log.delete_topic(name)
                except errors.UnknownTopicError:
                    entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
            responses.append(entry)
        return {"responses": responses}

    async def create_partitions(self, header: Any, req: Any, version: int, host: str) -> Any:
        results = []
        for t in req.topics:
            entry: dict[str, Any] = {"name": t.name, "error_code": NONE, "error_message": None}
            try:
                topic = self.log.topic(t.name)
                if t.count <= topic.num_partitions:
                    entry.update(error_code=INVALID_PARTITIONS, error_message=(
                        f"topic {t.name!r} has {topic.num_partitions} partitions; "
                        f"the count can only grow (got {t.count})"))
                elif not req.validate_only:
                    self.log.create_partitions(t.name, t.count)
            except errors.UnknownTopicError as exc:
                entry.update(error_code=UNKNOWN_TOPIC_OR_PARTITION, error_message=str(exc))
            except errors.InvalidConfigError as exc:
                entry.update(error_code=INVALID_PARTITIONS, error_message=str(exc))
            results.append(entry)
        return {"results": results}

    async def describe_configs(self, header: Any, req: Any, version: int, host: str) -> Any:
        results = []
        for r in req.resources:
            entry: dict[str, Any] = {"error_code": NONE, "error_message": None,
                                     "resource_type": r.resource_type,
                                     "resource_name": r.resource_name, "configs": []}
            if r.resource_type == 2:  # topic
                try:
                    config = self.log.topic(r.resource_name).config.to_dict()
                except errors.UnknownTopicError as exc:
                    entry.update(error_code=UNKNOWN_TOPIC_OR_PARTITION, error_message=str(exc))
                else:
                    keys = set(r.configuration_keys or ())
                    entry["configs"] = [
                        {"name": k.replace("_", "."), "value": str(v), "read_only": False,
                         "config_source": 5, "is_sensitive": False}
                        for k, v in sorted(config.items())
                        if not keys or k.replace("_", ".") in keys
                    ]
            elif r.resource_type != 4:  # broker configs: none to show
                entry.update(error_code=INVALID_REQUEST,
                             error_message=f"resource type {r.resource_type} is not supported")
            results.append(entry)
        return {"results": results}

    # ------------------------------------------------------------------ produce

    async def produce(self, header: Any, req: Any, version: int, host: str) -> Any:
        if req.transactional_id is not None:
            code = 53  # TRANSACTIONAL_ID_AUTHORIZATION_FAILED: transactions are not supported
        elif req.acks not in (-1, 0, 1):
            code = INVALID_REQUIRED_ACKS
        else:
            code = NONE
        responses = []
        for t in req.topic_data:
            parts = []
            for p in t.partition_data:
                if code:
                    parts.append({"index": p.index, "error_code": code, "base_offset": -1})
                else:
                    parts.append(self._produce_partition(t.name, p.index, p.records))
            responses.append({"name": t.name, "partition_responses": parts})
        if req.acks == 0:
            return None
        return {"responses": responses}

    def _produce_partition(self, topic_name: str, index: int, records: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"index": index, "error_code": NONE, "base_offset": -1,
                               "log_append_time": -1, "log_start_offset": -1}
        try:
            partition = self.log.topic_for_produce(topic_name).partition(index)
            batches = decode_batches(records or b"")
            first = None
            append_time = -1
            for b in batches:
                if b.is_control or b.attributes & 0x10:
                    raise errors.InvalidRecordError("transactional batches are not supported")
                if not b.timestamps:
                    continue
                result = partition.append_columns(
                    b.keys, b.values, b.headers,
                    [ts if ts >= 0 else self.log.clock.time_ms() for ts in b.timestamps],
                    # stored with the producer's codec, as Kafka's compression.type=producer
                    attributes=b.attributes & attr_compression_mask,
                    producer_id=b.producer_id, producer_epoch=b.producer_epoch,
                    base_sequence=b.base_sequence,
                )
                if first is None:
                    first = result.base_offset
                    append_time = result.log_append_time_ms
            out.update(base_offset=-1 if first is None else first,
                       log_append_time=append_time, log_start_offset=partition.start_offset)
        except (errors.EventLogError, WireFormatError) as exc:
            code = _error_for(exc)
            _log.info("produce to %s-%d refused (error %d): %s", topic_name, index, code, exc)
            out.update(error_code=code, error_message=str(exc))
        return out

    # ------------------------------------------------------------------ fetch

    async def fetch(self, header: Any, req: Any, version: int, host: str) -> Any:
        max_wait = ms(req.max_wait)
        min_bytes = max(req.min_bytes, 0)
        max_bytes = getattr(req, "max_bytes", 2**31 - 1)
        deadline = self.log.clock.monotonic_ms() + max_wait
        while True:
            seen = self.log.data_version
            responses, size = self._fetch_once(req, version, max_bytes)
            remaining = deadline - self.log.clock.monotonic_ms()
            if size >= min_bytes or (size > 0 and min_bytes <= 1) or remaining <= 0:
                break
            if not await self.wait_for_data(seen, remaining):
                responses, size = self._fetch_once(req, version, max_bytes)
                break
        return {"error_code": NONE, "session_id": 0, "responses": responses}

    wait_for_data: Callable[[int, float], Awaitable[bool]]  # set by the server

    def _fetch_once(self, req: Any, version: int, max_bytes: int) -> tuple[list, int]:
        responses = []
        total = 0
        for t in req.topics:
            if version >= 13:
                name = self._topic_by_id(t.topic_id)
                key: dict[str, Any] = {"topic_id": t.topic_id}
            else:
                name = t.topic
                key = {"topic": name}
            parts = []
            for p in t.partitions:
                entry, size = self._fetch_partition(name, p, max(0, max_bytes - total),
                                                    first=total == 0, by_id=version >= 13)
                total += size
                parts.append(entry)
            responses.append({**key, "partitions": parts})
        return responses, total

    def _fetch_partition(self, name: str | None, p: Any, budget: int, *, first: bool,
                         by_id: bool) -> tuple[dict[str, Any], int]:
        entry: dict[str, Any] = {"partition_index": p.partition, "error_code": NONE,
                                 "high_watermark": -1, "last_stable_offset": -1,
                                 "log_start_offset": -1, "aborted_transactions": None,
                                 "preferred_read_replica": -1, "records": None}
        if name is None:
            entry["error_code"] = UNKNOWN_TOPIC_ID if by_id else UNKNOWN_TOPIC_OR_PARTITION
            return entry, 0
        try:
            partition = self.log.topic(name).partition(p.partition)
            end = partition.end_offset
            entry.update(high_watermark=end, last_stable_offset=end,
                         log_start_offset=partition.start_offset)
            offset = p.fetch_offset
            if offset > end or offset < partition.start_offset:
                entry["error_code"] = OFFSET_OUT_OF_RANGE
                return entry, 0
            limit = min(p.partition_max_bytes, budget)
            if offset == end or (limit <= 0 and not first):
                entry["records"] = b""
                return entry, 0
            chunks = []
            size = 0
            log_append = partition.config.log_append_time
            attrs = attr_log_append_time if log_append else 0
            for header, cols in partition.read_columns(offset, 100_000, max(limit, 1)):
                # sent with the codec the batch is stored with: compressed as produced
                data = encode_batch(cols.offsets, cols.timestamps, cols.keys, cols.values,
                                    cols.headers,
                                    attributes=attrs | header.attributes & attr_compression_mask)
                if chunks and size + len(data) > limit:
                    break
                chunks.append(data)
                size += len(data)
                if size >= limit:
                    break  # Kafka returns at least one batch, even above the limit
            entry["records"] = b"".join(chunks)
            return entry, size
        except errors.EventLogError as exc:
            entry["error_code"] = _error_for(exc)
            return entry, 0

    async def list_offsets(self, header: Any, req: Any, version: int, host: str) -> Any:
        topics = []
        for t in req.topics:
            parts = []
            for p in t.partitions:
                entry: dict[str, Any] = {"partition_index": p.partition_index,
                                         "error_code": NONE, "timestamp": -1, "offset": -1,
                                         "leader_epoch": 0}
                try:
                    partition = self.log.topic(t.name).partition(p.partition_index)
                    ts = p.timestamp
                    if ts == -1:
                        entry["offset"] = partition.end_offset
                    elif ts == -2:
                        entry["offset"] = partition.start_offset
                    elif ts == -3:  # max timestamp (KIP-734): the last record's offset
                        last = partition.end_offset - 1
                        if last >= partition.start_offset:
                            rec = partition.read(last, 1)
                            if rec:
                                entry.update(offset=rec[0].offset, timestamp=rec[0].timestamp_ms)
                    elif ts < 0:
                        entry["error_code"] = UNSUPPORTED_VERSION
                    else:
                        found = partition.offset_and_timestamp_for_time(ts)
                        if found is not None:
                            entry.update(offset=found[0], timestamp=found[1])
                except errors.EventLogError as exc:
                    entry["error_code"] = _error_for(exc)
                parts.append(entry)
            topics.append({"name": t.name, "partitions": parts})
        return {"topics": topics}

    # ------------------------------------------------------------------ groups

    async def join_group(self, header: Any, req: Any, version: int, host: str) -> Any:
        session = ms(req.session_timeout)
        rebalance = ms(getattr(req, "rebalance_timeout", req.session_timeout))
        if rebalance < 0:
            rebalance = session
        result = await self.groups.join(
            req.group_id, req.member_id, getattr(req, "group_instance_id", None),
            req.protocol_type, [(p.name, bytes(p.metadata)) for p in req.protocols],
            session, rebalance, client_id=header.client_id or "", client_host=host,
            require_member_id=version >= 4,
        )
        return result

    async def sync_group(self, header: Any, req: Any, version: int, host: str) -> Any:
        return await self.groups.sync(
            req.group_id, req.generation_id, req.member_id,
            getattr(req, "group_instance_id", None),
            {a.member_id: bytes(a.assignment) for a in req.assignments},
        )

    async def heartbeat(self, header: Any, req: Any, version: int, host: str) -> Any:
        return {"error_code": self.groups.heartbeat(
            req.group_id, req.generation_id, req.member_id,
            getattr(req, "group_instance_id", None))}

    async def leave_group(self, header: Any, req: Any, version: int, host: str) -> Any:
        if version < 3:
            return {"error_code": self.groups.leave(req.group_id, req.member_id, None)}
        members = []
        for m in req.members:
            code = self.groups.leave(req.group_id, m.member_id, m.group_instance_id)
            members.append({"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                            "error_code": code})
        return {"error_code": NONE, "members": members}

    async def offset_commit(self, header: Any, req: Any, version: int, host: str) -> Any:
        generation = getattr(req, "generation_id_or_member_epoch",
                             getattr(req, "generation_id", -1))
        code = self.groups.check_commit(req.group_id, generation, req.member_id,
                                        getattr(req, "group_instance_id", None))
        results: dict[tuple[str, int], int] = {}
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for t in req.topics:
            for p in t.partitions:
                key = (t.name, p.partition_index)
                if code:
                    results[key] = code
                    continue
                try:
                    self.log.topic(t.name).partition(p.partition_index)
                except errors.EventLogError:
                    results[key] = UNKNOWN_TOPIC_OR_PARTITION
                    continue
                if p.committed_offset < 0:
                    results[key] = INVALID_COMMIT_OFFSET_SIZE
                    continue
                offsets[TopicPartition(*key)] = OffsetAndMetadata(
                    p.committed_offset, p.committed_metadata or "")
                results[key] = NONE
        if offsets:
            try:
                coordinator_for(self.log).commit_offsets(req.group_id, "", -1, None, offsets)
            except errors.GroupError as exc:
                # An in-process group of that id has members: its commits are fenced.
                _log.info("OffsetCommit for group %s refused: %s", req.group_id, exc)
                for tp in offsets:
                    results[tp] = Errors.UNKNOWN_MEMBER_ID
            except errors.InvalidConfigError as exc:
                _log.info("OffsetCommit for group %s refused: %s", req.group_id, exc)
                for tp in offsets:
                    results[tp] = 12  # OFFSET_METADATA_TOO_LARGE
        return {"topics": [
            {"name": t.name, "partitions": [
                {"partition_index": p.partition_index,
                 "error_code": results[(t.name, p.partition_index)]}
                for p in t.partitions]}
            for t in req.topics
        ]}

    def _committed(self, group_id: str, topics: Any) -> list[dict[str, Any]]:
        coordinator = coordinator_for(self.log)
        if topics is None:
            wanted = [po.topic_partition for po in describe_group(self.log, group_id).offsets
                      if po.committed_offset is not None]
        else:
            wanted = [TopicPartition(t.name, i) for t in topics for i in t.partition_indexes]
        found = coordinator.committed(group_id, wanted)
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for tp in wanted:
            c = found.get(tp)
            by_topic.setdefault(tp.topic, []).append({
                "partition_index": tp.partition,
                "committed_offset": -1 if c is None else c.offset,
                "committed_leader_epoch": -1,
                "metadata": "" if c is None else c.metadata, "error_code": NONE,
            })
        if topics is not None:
            for t in topics:
                by_topic.setdefault(t.name, [])
        return [{"name": name, "partitions": parts} for name, parts in by_topic.items()]

    async def offset_fetch(self, header: Any, req: Any, version: int, host: str) -> Any:
        if version >= 8:
            return {"groups": [
                {"group_id": g.group_id, "topics": self._committed(g.group_id, g.topics),
                 "error_code": NONE}
                for g in req.groups
            ]}
        return {"topics": self._committed(req.group_id, req.topics), "error_code": NONE}

    async def list_groups(self, header: Any, req: Any, version: int, host: str) -> Any:
        wanted = {s.lower() for s in getattr(req, "states_filter", ()) or ()}
        seen = {}
        for g in list_groups(self.log):
            seen[g.group_id] = (str(g.state), "consumer")
        for g in self.groups.groups.values():
            seen[g.group_id] = (g.state, g.protocol_type or "")
        return {"error_code": NONE, "groups": [
            {"group_id": gid, "protocol_type": kind, "group_state": state}
            for gid, (state, kind) in sorted(seen.items())
            if gid and (not wanted or state.lower() in wanted)
        ]}

    async def describe_groups(self, header: Any, req: Any, version: int, host: str) -> Any:
        out = []
        for gid in req.groups:
            g = self.groups.groups.get(gid)
            if g is not None and g.members:
                out.append({
                    "error_code": NONE, "group_id": gid, "group_state": g.state,
                    "protocol_type": g.protocol_type or "", "protocol_data": g.protocol or "",
                    "members": [
                        {"member_id": m.member_id, "group_instance_id": m.instance_id,
                         "client_id": m.client_id, "client_host": m.client_host,
                         "member_metadata": m.metadata(g.protocol),
                         "member_assignment": m.assignment}
                        for m in g.members.values()
                    ],
                })
                continue
            d = describe_group(self.log, gid)
            out.append({"error_code": NONE, "group_id": gid, "group_state": str(d.state),
                        "protocol_type": d.protocol_type, "protocol_data": d.protocol or "",
                        "members": [
                            {"member_id": m.member_id, "group_instance_id": m.instance_id,
                             "client_id": m.client_id, "client_host": "in-process",
                             "member_metadata": b"", "member_assignment": b""}
                            for m in d.members
                        ]})
        return {"groups": out}

    async def delete_groups(self, header: Any, req: Any, version: int, host: str) -> Any:
        results = []
        for gid in req.groups_names:
            g = self.groups.groups.get(gid)
            if g is not None and g.members:
                results.append({"group_id": gid, "error_code": Errors.NON_EMPTY_GROUP})
                continue
            if describe_group(self.log, gid).state.value == "Dead":
                results.append({"group_id": gid, "error_code": Errors.GROUP_ID_NOT_FOUND})
                continue
            try:
                delete_group(self.log, gid)
                self.groups.groups.pop(gid, None)
                results.append({"group_id": gid, "error_code": NONE})
            except errors.IllegalStateError:
                results.append({"group_id": gid, "error_code": Errors.NON_EMPTY_GROUP})
        return {"results": results}


def api_versions_body(code: int) -> dict[str, Any]:
    return {"error_code": code, "api_keys": [
        {"api_key": k, "min_version": lo, "max_version": hi}
        for k, (_name, lo, hi) in sorted(API_VERSIONS.items())
    ]}


