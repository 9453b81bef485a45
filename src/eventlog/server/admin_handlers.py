"""The topic and config handlers: CreateTopics, DeleteTopics, CreatePartitions,
DescribeConfigs."""

from __future__ import annotations

import uuid
from typing import Any

from .. import errors
from ..config import TopicConfig
from .common import (
    INVALID_CONFIG,
    INVALID_PARTITIONS,
    INVALID_REPLICATION_FACTOR,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    NONE,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
    HandlerBase,
    topic_id,
)

__all__ = ["TopicHandlers"]


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



class TopicHandlers(HandlerBase):
    """Topics and their configs, over the log's public API."""

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

