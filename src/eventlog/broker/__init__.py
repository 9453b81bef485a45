"""The broker: topics, their partitions and the data directory, below every client."""

from .core import EventLog, LogRecoveryReport, open

__all__ = ["EventLog", "LogRecoveryReport", "open"]
