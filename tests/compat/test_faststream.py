"""FastStream on eventlog: an application written for Kafka (FastStream's KafkaBroker,
aiokafka underneath) runs unmodified through ``use_eventlog``, in the style of
FastStream's ``TestKafkaBroker`` tests but through the whole client stack: aiokafka's
producer and consumer (eventlog.compat's), a consumer group, commits.

Skipped when FastStream is not installed, except under CI, where the server-test extra
installs it.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

import eventlog
from eventlog.testing import ManualClock, assert_produced, records, use_eventlog

if importlib.util.find_spec("faststream") is None:
    if os.environ.get("CI") == "true":
        pytest.fail("faststream is missing in CI; the server-test extra installs it",
                    pytrace=False)
    pytest.skip("faststream is not installed here (pip install 'faststream[kafka]')",
                allow_module_level=True)

wait_s = 30.0  # a safety net for a broken run, never reached by a passing one


@pytest.fixture
def fresh_imports() -> Iterator[None]:
    """FastStream binds ``aiokafka`` when imported: import it (and the app) inside the
    use_eventlog block, and put back whatever was imported before afterwards."""
    owned = ("faststream", "faststream_app")
    saved: dict[str, ModuleType] = {n: m for n, m in sys.modules.items()
                                    if n.split(".")[0] in owned}
    for n in saved:
        del sys.modules[n]
    try:
        yield
    finally:
        for n in [n for n in sys.modules if n.split(".")[0] in owned]:
            del sys.modules[n]
        sys.modules.update(saved)


def test_a_faststream_app_runs_unmodified_on_eventlog(fresh_imports: None) -> None:
    log = eventlog.open(None, clock=ManualClock(), auto_create_topics=True)
    with use_eventlog(log) as clients:
        app = importlib.import_module("faststream_app")
        ak = clients.aiokafka

        async def main() -> list[dict]:
            async with app.broker:
                await app.broker.start()
                await app.broker.publish({"id": 1, "qty": 2}, "orders")
                await app.broker.publish({"id": 2, "qty": 5}, "orders", key=b"k2")
                invoices = ak.AIOKafkaConsumer("invoices", group_id="audit",
                                               auto_offset_reset="earliest")
                await invoices.start()
                got = [await asyncio.wait_for(invoices.getone(), wait_s) for _ in range(2)]
                await invoices.stop()
            return [json.loads(r.value) for r in got]

        got = asyncio.run(main())
    assert got == [{"order": 1, "amount": 6}, {"order": 2, "amount": 15}]
    assert app.billed == [{"id": 1, "qty": 2}, {"id": 2, "qty": 5}]
    assert_produced(log, "invoices", [b'{"order":1,"amount":6}', b'{"order":2,"amount":15}'])
    assert [r.key for r in records(log, "orders")] == [None, b"k2"]
    # the subscriber's group committed what it handled
    with log.consumer(group_id="billing") as billing:
        committed = billing.committed(eventlog.TopicPartition("orders", 0))
    assert committed == 2
    log.close()
