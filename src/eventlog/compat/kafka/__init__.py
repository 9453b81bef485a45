"""kafka-python's API over an in-process EventLog: ``import kafka`` inside
``eventlog.testing.use_eventlog(log)`` gives this module.

``bootstrap_servers`` selects the log (see :mod:`eventlog.compat`). Differences from the
real client are listed in docs/compat.md and docs/kafka-differences.md.
"""

from __future__ import annotations

from . import admin, errors, structs
from ._consumer import ConsumerRebalanceListener, KafkaConsumer
from ._producer import FutureRecordMetadata, KafkaProducer
from .admin import KafkaAdminClient
from .structs import OffsetAndMetadata, TopicPartition

__version__ = "3.0.12"

__all__ = [
    "ConsumerRebalanceListener",
    "FutureRecordMetadata",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaProducer",
    "OffsetAndMetadata",
    "TopicPartition",
    "admin",
    "errors",
    "structs",
]
