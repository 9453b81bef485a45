"""``eventlog metrics DIR [--json | --prometheus]``: a data directory's log metrics."""

from __future__ import annotations

import argparse
import json
import sys

from ..log import EventLog
from .common import open_for_reading
from .registry import Subparsers, command

__all__ = ["add_metrics"]


@command
def add_metrics(sub: Subparsers) -> None:
    metrics = sub.add_parser(
        "metrics", help="print a data directory's metrics (Kafka's names)",
        description="Print the log metrics of the data directory DIR: sizes, segments, "
                    "start and end offsets per partition, retention and cleaner runs, "
                    "recovery (docs/operations.md lists them).",
    )
    metrics.add_argument("dir", help="data directory")
    metrics.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    metrics.add_argument("--prometheus", action="store_true",
                         help="Prometheus' text format (needs the 'prometheus' extra)")
    metrics.set_defaults(run=run_metrics)


def run_metrics(args: argparse.Namespace) -> int:
    with open_for_reading(args.dir) as log:
        return _print_metrics(log, args)


def _print_metrics(log: EventLog, args: argparse.Namespace) -> int:
    metrics = log.metrics()
    if args.prometheus:
        try:
            from prometheus_client import CollectorRegistry, generate_latest

            from eventlog.metrics.prometheus import EventLogCollector
        except ImportError as exc:
            print(f"eventlog metrics: {exc}", file=sys.stderr)
            return 2
        registry = CollectorRegistry()
        registry.register(EventLogCollector(log, clients=()))
        sys.stdout.write(generate_latest(registry).decode())
        return 0
    partitions = metrics.pop("partitions")
    if args.json:
        metrics["partitions"] = {f"{tp.topic}-{tp.partition}": m
                                 for tp, m in sorted(partitions.items())}
        print(json.dumps(metrics, indent=2, sort_keys=False))
        return 0
    width = max(map(len, metrics))
    for name, value in metrics.items():
        print(f"{name:<{width}}  {value:.3f}" if isinstance(value, float)
              else f"{name:<{width}}  {value}")
    columns = ("log-size", "num-log-segments", "log-start-offset", "log-end-offset")
    rows = [(f"{tp.topic}-{tp.partition}", *(str(m[c]) for c in columns))
            for tp, m in sorted(partitions.items())]
    header = ("partition", *columns)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))
    return 0
