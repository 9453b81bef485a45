"""The producer: Kafka's producer API over the in-process log (the facade is Producer).

``facade`` is the Producer; ``accumulator`` its lingering batches and flusher,
``sender`` its appends with sequence numbers and retries, ``bulk`` send_batch,
``futures`` what send() returns, ``queues`` the per-partition state, ``config``
ProducerConfig. Other modules import Producer, ProducerConfig and DeliveryFuture
from here.
"""

from . import accumulator, queues
from .bulk import BatchMetadata
from .config import ProducerConfig
from .facade import Producer
from .futures import DeliveryFuture

# What the transactional producer builds on (transactions.py subclasses the state).
_State = accumulator.State
_PartitionQueue = queues.PartitionQueue

__all__ = ["BatchMetadata", "DeliveryFuture", "Producer", "ProducerConfig"]
