"""The broker: topics, their partitions and the data directory, below every client.

``core`` (the Broker registry), ``partition`` (one append path), ``producer_state``,
``validation``, ``signal``, ``topic``, ``log_dir`` (lock, marker, topics.msgpack),
``maintenance`` (the background thread), ``options`` and ``readonly`` (the view of
another process's log). The public ``eventlog.EventLog`` is in eventlog/log.py.
"""

from .core import Broker, BrokerClient, LayerState, LogRecoveryReport

__all__ = ["Broker", "BrokerClient", "LayerState", "LogRecoveryReport"]
