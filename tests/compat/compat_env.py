"""The environment a compat test runs in: eventlog.compat in process, or a real client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import eventlog


@dataclass
class Env:
    """One side of a comparison: the client module and how to reach its broker."""

    name: str  # "eventlog" (the compat module), "real" (on noida-db), "served" (on serve())
    module: Any  # confluent_kafka-like or kafka-like
    bootstrap: str
    log: eventlog.EventLog | None = None

    @property
    def real(self) -> bool:
        """The real client library (against noida-db or eventlog serve)."""
        return self.name != "eventlog"

    def topic(self) -> str:
        return f"t-{uuid.uuid4().hex[:12]}"

    def group(self) -> str:
        return f"g-{uuid.uuid4().hex[:12]}"
