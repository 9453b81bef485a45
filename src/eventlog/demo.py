"""The order-system demo behind ``python -m eventlog demo``.

A shop produces orders keyed by user to a 3-partition topic. Three consumer
groups read every order independently: ``notifications``, ``inventory`` and
``audit-log``. The ``inventory`` group scales from one member to three and back
while orders keep arriving; each rebalance is printed, and at the end every
group is shown to have handled every order exactly once. Then the log is
closed, reopened from disk, and the committed offsets are still there. Last, a
``shipping`` service written with listener decorators (``eventlog.listeners``)
ships every order; those it cannot ship are retried, then dead-lettered to
``orders.DLT``, where a ``support`` listener picks them up.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable

from . import open as open_log
from .consumer import Consumer, ConsumerRebalanceListener
from .listeners import ListenerApp
from .records import TopicPartition

__all__ = ["run"]

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
GROUPS = ("notifications", "inventory", "audit-log")


class _Printer(ConsumerRebalanceListener):
    """Prints each rebalance a member goes through."""

    def __init__(self, name: str, out: Callable[[str], None]) -> None:
        self.name = name
        self.out = out

    def on_partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        if partitions:
            self.out(f"    {self.name}: revoked  {_names(partitions)}")

    def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        self.out(f"    {self.name}: assigned {_names(partitions) or '(nothing)'}")


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}" for tp in partitions)


class _Group:
    """The members of one consumer group and what they handled."""

    def __init__(self, log: object, group_id: str, out: Callable[[str], None]) -> None:
        self.log = log
        self.group_id = group_id
        self.out = out
        self.members: list[Consumer] = []
        self.handled: Counter[int] = Counter()
        self._next_member = 1

    def add_member(self) -> None:
        name = f"{self.group_id}#{self._next_member}"
        self._next_member += 1
        consumer = Consumer(
            self.log,  # type: ignore[arg-type]
            group_id=self.group_id,
            client_id=name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            value_deserializer="json",
            partition_assignment_strategy="range",
        )
        consumer.subscribe(["orders"], listener=_Printer(name, self.out))
        self.members.append(consumer)

    def remove_member(self) -> None:
        consumer = self.members.pop()
        consumer.close()  # commits nothing more: it committed after each batch

    def poll_all(self) -> int:
        """Poll every member once; handle and commit what each got."""
        count = 0
        for consumer in self.members:
            records = consumer.poll(timeout_ms=0)
            for record in records:
                self.handled[record.value["order_id"]] += 1
            if records:
                consumer.commit()
            count += len(records)
        return count

    def drain(self) -> None:
        """Poll until the group is settled and nothing is left to read."""
        idle = 0
        while idle < 3:
            idle = idle + 1 if self.poll_all() == 0 else 0


def run(out: Callable[[str], None] = print) -> dict[str, Counter[int]]:
    """Run the demo, printing to ``out``; returns each group's handled-order counts."""
    with tempfile.TemporaryDirectory() as directory:
        handled = _run_in(directory, out)
    return handled


def _run_in(directory: str, out: Callable[[str], None]) -> dict[str, Counter[int]]:
    log = open_log(directory)
    log.create_topic("orders", partitions=3)
    producer = log.producer(key_serializer="str", value_serializer="json")
    groups = {name: _Group(log, name, out) for name in GROUPS}
    for group in groups.values():
        group.add_member()

    order_id = 0

    def place_orders(count: int) -> None:
        nonlocal order_id
        for _ in range(count):
            order_id += 1
            user = USERS[order_id % len(USERS)]
            producer.send("orders", {"order_id": order_id, "user": user, "total": order_id * 3},
                          key=user)
        out(f"  placed orders up to #{order_id}")

    out(f"eventlog demo: an order system in {directory}")
    out("  topic 'orders': 3 partitions, orders keyed by user (same user, same partition)")
    place_orders(30)
    for group in groups.values():
        group.drain()

    inventory = groups["inventory"]
    for step in ("scale inventory to 2 members", "scale inventory to 3 members"):
        out(f"  -- {step}")
        inventory.add_member()
        place_orders(15)
        for group in groups.values():
            group.drain()
    for step in ("scale inventory back to 2 members", "scale inventory back to 1 member"):
        out(f"  -- {step}")
        inventory.remove_member()
        place_orders(15)
        for group in groups.values():
            group.drain()

    handled = {name: group.handled for name, group in groups.items()}
    for name, counts in handled.items():
        once = all(counts[i] == 1 for i in range(1, order_id + 1)) and len(counts) == order_id
        out(f"  {name:<13} handled {sum(counts.values())} of {order_id} orders, "
            f"{'each exactly once' if once else 'NOT exactly once'}")
    out("  -- closing every consumer")
    for group in groups.values():
        for consumer in list(group.members):
            consumer.close()
    producer.close()
    log.close()

    with open_log(directory) as reopened:
        description = reopened.describe_group("inventory")
        lag = sum(p.lag or 0 for p in description.offsets)
        out(f"  reopened the log from disk: group 'inventory' ({description.state.name}) has "
            f"committed offsets for {len(description.offsets)} partitions, lag {lag}")
        sample = reopened.topic("orders").partition(0).read(0, 1)[0]
        out(f"  first record of orders-0: key={sample.key!r} value={json.loads(sample.value)}")
        _ship(reopened, out)
    return handled


def _ship(log: object, out: Callable[[str], None]) -> None:
    """The shipping service, as listener functions: failures go to orders.DLT."""
    app = ListenerApp(log)  # type: ignore[arg-type]
    shipped: list[int] = []
    escalated: list[str] = []

    @app.listener("orders", group_id="shipping", retries=1, backoff_ms=1)
    def ship(value: bytes) -> None:
        order = json.loads(value)
        if order["user"] == "heidi":
            raise LookupError(f"no address for {order['user']}")
        shipped.append(order["order_id"])

    @app.listener("orders.DLT", group_id="support", record=True)
    def escalate(record: object) -> None:
        headers = dict(record.headers)  # type: ignore[attr-defined]
        escalated.append(headers["kafka_dlt-exception-message"].decode())

    out("  -- shipping, written with @app.listener: failures retried, then to orders.DLT")
    app.process()
    app.close()
    out(f"  shipping shipped {len(shipped)} orders; {len(escalated)} went to orders.DLT "
        f"({escalated[0] if escalated else 'none'}), picked up by support")
