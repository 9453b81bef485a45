"""The producer: Kafka's producer API over the in-process log (the facade is Producer).

Re-exports the names other modules import from ``eventlog.producer``.
"""

from .facade import BatchMetadata, DeliveryFuture, Producer, ProducerConfig
from .facade import _PartitionQueue as _PartitionQueue  # the transactional producer's hooks
from .facade import _State as _State

__all__ = ["BatchMetadata", "DeliveryFuture", "Producer", "ProducerConfig"]
