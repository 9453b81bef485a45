"""aiokafka.consumer.consumer: ``AIOKafkaConsumer`` where aiokafka defines it."""

from __future__ import annotations

from .. import AIOKafkaConsumer

__all__ = ["AIOKafkaConsumer"]
