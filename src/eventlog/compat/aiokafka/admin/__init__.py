"""aiokafka.admin: ``AIOKafkaAdminClient`` and ``NewTopic``/``NewPartitions``."""

from __future__ import annotations

from ...kafka.admin import NewPartitions, NewTopic
from .client import AIOKafkaAdminClient

__all__ = ["AIOKafkaAdminClient", "NewPartitions", "NewTopic"]
