"""aiokafka.producer.producer: ``AIOKafkaProducer`` and the ``_missing`` default marker
(an ``acks`` left unset) that code written for aiokafka imports from here."""

from __future__ import annotations

from .. import AIOKafkaProducer, _missing

__all__ = ["AIOKafkaProducer", "_missing"]
