"""A Prometheus exporter for an EventLog and its clients (the ``prometheus`` extra:
``pip install 'eventlog-embedded[prometheus]'``).

``start_http_server(log, port)`` serves ``/metrics`` on 127.0.0.1; or register
``EventLogCollector(log)`` in your own prometheus_client registry. Each scrape reads
``log.metrics()`` and the ``metrics()`` of every open producer and consumer of the
log, so nothing is counted between scrapes beyond what the clients keep anyway.

Names: Kafka's metric name with ``-`` as ``_``, prefixed by ``eventlog_log_``,
``eventlog_producer_`` or ``eventlog_consumer_``; Kafka's ``*-total`` metrics are
Prometheus counters (``..._total``), the rest gauges. Per-partition log metrics carry
``topic`` and ``partition`` labels; client metrics a ``client_id`` label (and
``group_id`` for consumers). Every consumer group's committed offsets and lag, from
the committed offsets as lag exporters compute them (so also for groups whose
consumers run elsewhere or not at all), are ``eventlog_consumergroup_lag``,
``eventlog_consumergroup_committed_offset`` (labels ``group``, ``topic``,
``partition``) and ``eventlog_consumergroup_members`` (label ``group``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from ..log import EventLog
from .groups import describe_groups

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client import start_http_server as _start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "eventlog.metrics.prometheus needs prometheus-client: "
        "pip install 'eventlog-embedded[prometheus]'"
    ) from exc

__all__ = ["EventLogCollector", "start_http_server"]


def _prom_name(prefix: str, name: str) -> str:
    return f"{prefix}_{name.replace('-', '_')}"


def _family(prefix: str, name: str, labels: list[str]) -> Metric:
    if name.endswith("-total"):
        return CounterMetricFamily(_prom_name(prefix, name[: -len("-total")]),
                                   f"{name} (docs/operations.md)", labels=labels)
    return GaugeMetricFamily(_prom_name(prefix, name), f"{name} (docs/operations.md)",
                             labels=labels)


def _add(family: Metric, labels: list[str], value: Any) -> None:
    family.add_metric(labels, float(value))  # type: ignore[attr-defined]


def _client_labels(client: Any) -> tuple[str, list[str], list[str]]:
    """(prefix, label names, label values) of a Producer or Consumer."""
    config = client.config
    if hasattr(client, "group_id"):  # a Consumer
        client_id = config.client_id or getattr(client, "_client_id", "")
        return "eventlog_consumer", ["client_id", "group_id"], [client_id,
                                                                client.group_id or ""]
    metrics_id = config.client_id or f"producer-{client.metrics()['producer_id']}"
    return "eventlog_producer", ["client_id"], [metrics_id]


class EventLogCollector:
    """A prometheus_client collector of one EventLog's metrics and its clients'.

    ``clients``: the producers and consumers to export; None (the default) means
    every open producer and consumer of the log, as it is at each scrape. Closed
    clients are skipped. Thread-safe (scrapes run on the exporter's thread).
    """

    def __init__(self, log: EventLog, clients: Iterable[Any] | None = None) -> None:
        self._log = log
        self._clients: weakref.WeakSet[Any] | None = (
            None if clients is None else weakref.WeakSet(clients))

    def add(self, client: Any) -> None:
        """Export ``client`` too (when the collector was given explicit clients)."""
        if self._clients is None:
            self._clients = weakref.WeakSet()
        self._clients.add(client)

    def _current_clients(self) -> list[Any]:
        source = self._log._clients if self._clients is None else self._clients
        return [c for c in list(source) if hasattr(c, "metrics") and not c.closed]

    def collect(self) -> Iterator[Metric]:
        if self._log.closed:
            return
        yield from self._log_families(self._log.metrics())
        yield from self._group_families(describe_groups(self._log))
        families: dict[str, Metric] = {}
        for client in self._current_clients():
            prefix, names, values = _client_labels(client)
            for name, value in client.metrics().items():
                if not isinstance(value, (int, float)) or name in ("producer_id",):
                    continue
                key = f"{prefix}:{name}"
                if key not in families:
                    families[key] = _family(prefix, name.replace("_", "-"), names)
                _add(families[key], values, value)
        yield from families.values()

    @staticmethod
    def _group_families(descriptions: list[Any]) -> Iterator[Metric]:
        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily("eventlog_consumergroup_lag",
                                "log end offset minus the group's committed offset",
                                labels=labels)
        committed = GaugeMetricFamily("eventlog_consumergroup_committed_offset",
                                      "the group's committed offset", labels=labels)
        members = GaugeMetricFamily("eventlog_consumergroup_members",
                                    "members of the group now", labels=["group"])
        for d in descriptions:
            members.add_metric([d.group_id], float(len(d.members)))
            for o in d.offsets:
                if o.committed_offset is None:
                    continue
                where = [d.group_id, o.topic_partition.topic, str(o.topic_partition.partition)]
                lag.add_metric(where, float(o.lag))
                committed.add_metric(where, float(o.committed_offset))
        yield from (lag, committed, members)

    @staticmethod
    def _log_families(metrics: dict[str, Any]) -> Iterator[Metric]:
        partitions = metrics.get("partitions", {})
        for name, value in metrics.items():
            if name == "partitions":
                continue
            family = _family("eventlog_log", name, [])
            _add(family, [], value)
            yield family
        names = sorted({n for m in partitions.values() for n in m})
        for name in names:
            family = GaugeMetricFamily(_prom_name("eventlog_log_partition", name),
                                       f"{name} of one partition (docs/operations.md)",
                                       labels=["topic", "partition"])
            for tp, m in sorted(partitions.items()):
                family.add_metric([tp.topic, str(tp.partition)], float(m[name]))
            yield family


def start_http_server(log: EventLog, port: int, addr: str = "127.0.0.1",
                      clients: Iterable[Any] | None = None) -> Any:
    """Serve ``/metrics`` for ``log`` (and its clients) on ``addr:port`` from a daemon
    thread; returns prometheus_client's server (``.shutdown()`` stops it) and the
    collector's registry as ``(server, registry)``. Port 0 lets the OS choose one
    (``server.server_port``)."""
    registry = CollectorRegistry()
    registry.register(EventLogCollector(log, clients))
    started = _start_http_server(port, addr=addr, registry=registry)
    server = started[0] if isinstance(started, tuple) else started
    return server, registry

