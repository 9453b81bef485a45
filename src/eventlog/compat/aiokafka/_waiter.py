"""Parking a coroutine until a log gets new data: eventlog.aio's waiter (one helper
thread per log, never a thread per call)."""

from __future__ import annotations

from ...aio import DataWaiter, waiter_for

__all__ = ["DataWaiter", "waiter_for"]
