"""``python -m eventlog``: ``demo`` (a short tour on a temporary directory), ``serve``
(the Kafka protocol server over a data directory, or over memory), ``metrics`` (a
data directory's metrics) and ``ui`` (the web console)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eventlog")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run a short demo on a temporary directory")
    serve = sub.add_parser(
        "serve", help="serve a data directory to Kafka clients (needs the 'server' extra)",
        description="Serve the event log in DIR (in memory without DIR) over Kafka's wire "
                    "protocol until interrupted (Ctrl-C or SIGTERM).",
    )
    serve.add_argument("dir", nargs="?", default=None,
                       help="data directory (created if missing); omit to keep it in memory")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; others are warned about)")
    serve.add_argument("--port", type=int, default=9092,
                       help="port to listen on (default 9092; 0: chosen by the OS)")
    serve.add_argument("--auto-create-topics", action="store_true",
                       help="create unknown topics on produce or metadata requests, as "
                            "Kafka's auto.create.topics.enable does")
    serve.add_argument("--partitions", type=int, default=1,
                       help="partitions of auto-created topics (default 1)")
    _add_operations_commands(sub)
    args = parser.parse_args(argv)
    if args.command in ("metrics", "ui"):
        return _operations(args)
    if args.command == "demo":
        from .demo import run

        run()
    elif args.command == "serve":
        return _serve(args)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import eventlog
    from eventlog.errors import EventLogError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        log = eventlog.open(args.dir, auto_create_topics=args.auto_create_topics,
                            num_partitions=args.partitions)
    except EventLogError as exc:
        print(f"eventlog serve: {exc}", file=sys.stderr)
        return 1
    with log:
        try:
            server = eventlog.serve(log, args.host, args.port)
        except (ImportError, OSError, EventLogError) as exc:
            print(f"eventlog serve: {exc}", file=sys.stderr)
            return 1
        with server:
            where = args.dir or "an in-memory log"
            print(f"eventlog serving {where} at {server.bootstrap_servers}", flush=True)
            stop.wait()
    return 0


def _add_operations_commands(sub: Any) -> None:
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
    ui = sub.add_parser(
        "ui", help="serve a web console of topics, groups, lag and records",
        description="Serve a web console of the data directory DIR on 127.0.0.1 until "
                    "interrupted: topics, consumer groups with lag, a record browser. "
                    "Read-only unless --allow-writes.",
    )
    ui.add_argument("dir", help="data directory")
    ui.add_argument("--port", type=int, default=8080,
                    help="port on 127.0.0.1 (default 8080; 0: chosen by the OS)")
    ui.add_argument("--allow-writes", action="store_true",
                    help="allow resetting a group's offsets from the page (dry run first)")


def _operations(args: argparse.Namespace) -> int:
    """``eventlog metrics`` and ``eventlog ui``: errors as one line, exit code 2."""
    from eventlog.errors import EventLogError

    try:
        log = _open_for_reading(args.dir)
    except (EventLogError, OSError) as exc:
        print(f"eventlog {args.command}: {exc}", file=sys.stderr)
        return 2
    with log:
        if args.command == "metrics":
            return _print_metrics(log, args)
        return _run_console(log, args)


def _open_for_reading(path: str) -> Any:
    """Open ``path`` read-only where this eventlog supports read-only readers (then it
    works while another process has the directory open), else as its only user."""
    import os

    import eventlog
    from eventlog.errors import InvalidConfigError

    if not os.path.isdir(path):
        raise FileNotFoundError(f"no data directory at {path!r}; give an existing one")
    try:
        return eventlog.open(path, read_only=True)
    except (TypeError, InvalidConfigError):  # no read-only readers in this version
        return eventlog.open(path)


def _print_metrics(log: Any, args: argparse.Namespace) -> int:
    import json

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


def _run_console(log: Any, args: argparse.Namespace) -> int:
    from eventlog.console import serve_console

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        console = serve_console(log, port=args.port, allow_writes=args.allow_writes)
    except OSError as exc:
        print(f"eventlog ui: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    with console:
        mode = "read-write" if args.allow_writes else "read-only"
        print(f"eventlog console ({mode}) of {args.dir} at {console.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
