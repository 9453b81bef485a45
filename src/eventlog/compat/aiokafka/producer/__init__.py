"""aiokafka.producer: the producer class where aiokafka keeps it."""

from __future__ import annotations

from .. import AIOKafkaProducer

__all__ = ["AIOKafkaProducer"]
