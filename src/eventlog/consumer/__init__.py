"""The consumer client: reads records at its own position, alone (``assign``) or in a group.

``eventlog.consumer`` is where :class:`Consumer`, :class:`ConsumerConfig`,
:class:`ConsumerRebalanceListener` and :class:`OffsetAndTimestamp` come from; the
modules of this package are its parts (see ``facade`` for the theory of operation).
"""

from .facade import (
    Consumer,
    ConsumerConfig,
    ConsumerRebalanceListener,
    OffsetAndMetadata,
    OffsetAndTimestamp,
)

__all__ = [
    "Consumer",
    "ConsumerConfig",
    "ConsumerRebalanceListener",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
]
