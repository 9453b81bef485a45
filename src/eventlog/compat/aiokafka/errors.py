"""aiokafka.errors: aiokafka's exception classes (kafka-python's, plus aiokafka's own)."""

from __future__ import annotations

from ..kafka.errors import *  # noqa: F403 - aiokafka re-exports kafka-python's classes
from ..kafka.errors import KafkaError


class ConsumerStoppedError(Exception):
    """Raised by ``getone``/``getmany``/``async for`` once the consumer is stopped."""


class IllegalOperation(Exception):
    """The operation needs a configuration the client lacks (e.g. commit without group_id)."""


class RecordTooLargeError(KafkaError):
    pass


class ProducerClosed(KafkaError):
    pass


