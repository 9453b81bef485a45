"""The request handlers of one server: the dispatch table, and the cluster calls.

One handler per Kafka API: requests in (kio dataclasses), plain response fields out.
Every handler is written once for all the versions it supports; fields a version
lacks are read with ``getattr(request, name, default)`` and the response is fitted
to the version by ``protocol.build``. Handlers reach the log only through
eventlog's public API (EventLog, Topic, Partition, eventlog.group). They are
grouped by job, one module each: topics (admin_handlers), records
(data_handlers), consumer groups (group_handlers), transactions (txn_handlers).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .. import errors
from ..broker import Broker
from .admin_handlers import TopicHandlers
from .common import (
    INVALID_TOPIC_EXCEPTION,
    NONE,
    UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
    UNSUPPORTED_VERSION,
    cluster_id,
    node_id,
    topic_id,
)
from .data_handlers import DataHandlers
from .group_handlers import GroupHandlers
from .groups import WireGroupCoordinator
from .txn_handlers import TxnHandlers

__all__ = ["API_VERSIONS", "UNSUPPORTED_VERSION", "Handlers", "api_versions_body", "topic_id"]

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
    24: ("AddPartitionsToTxn", 0, 3),
    25: ("AddOffsetsToTxn", 0, 3),
    26: ("EndTxn", 0, 3),
    28: ("TxnOffsetCommit", 0, 3),
    32: ("DescribeConfigs", 1, 4),
    37: ("CreatePartitions", 0, 3),
    42: ("DeleteGroups", 0, 2),
    60: ("DescribeCluster", 0, 1),
    71: ("GetTelemetrySubscriptions", 0, 0),
}


class Handlers(TopicHandlers, DataHandlers, GroupHandlers, TxnHandlers):
    """The request handlers of one server over one EventLog."""

    def __init__(self, log: Broker, host: str, port_ref: Callable[[], int],
                 groups: WireGroupCoordinator) -> None:
        self.log = log
        self.host = host
        self._port = port_ref
        self.groups = groups
        TxnHandlers.__init__(self, log)
        self.table: dict[int, Callable[[Any, Any, int, str], Awaitable[Any]]] = {
            0: self.produce, 1: self.fetch, 2: self.list_offsets, 3: self.metadata,
            8: self.offset_commit, 9: self.offset_fetch, 10: self.find_coordinator,
            11: self.join_group, 12: self.heartbeat, 13: self.leave_group,
            14: self.sync_group, 15: self.describe_groups, 16: self.list_groups,
            18: self.api_versions, 19: self.create_topics, 20: self.delete_topics,
            22: self.init_producer_id, 24: self.add_partitions_to_txn,
            25: self.add_offsets_to_txn, 26: self.end_txn, 28: self.txn_offset_commit,
            32: self.describe_configs,
            37: self.create_partitions, 42: self.delete_groups, 60: self.describe_cluster,
            71: self.get_telemetry_subscriptions,
        }

    @property
    def port(self) -> int:
        return self._port()

    def _broker(self) -> dict[str, Any]:
        return {"node_id": node_id, "broker_id": node_id, "host": self.host, "port": self.port,
                "rack": None}

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


def api_versions_body(code: int) -> dict[str, Any]:
    return {"error_code": code, "api_keys": [
        {"api_key": k, "min_version": lo, "max_version": hi}
        for k, (_name, lo, hi) in sorted(API_VERSIONS.items())
    ]}


