"""aiokafka.consumer: the consumer class where aiokafka keeps it."""

from __future__ import annotations

from .. import AIOKafkaConsumer

__all__ = ["AIOKafkaConsumer"]
