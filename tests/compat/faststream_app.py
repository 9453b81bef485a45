"""A small FastStream application written for Kafka (aiokafka underneath), as a user
would write it: nothing in it knows about eventlog. test_faststream.py runs it through
``use_eventlog``."""

from __future__ import annotations

from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker

broker = KafkaBroker("localhost:9092")
app = FastStream(broker)
billed: list[dict[str, Any]] = []


@broker.subscriber("orders", group_id="billing", auto_offset_reset="earliest")
@broker.publisher("invoices")
async def bill(order: dict[str, Any]) -> dict[str, Any]:
    """Bill an order: one invoice per order, three per item."""
    billed.append(order)
    return {"order": order["id"], "amount": order["qty"] * 3}
