"""``eventlog serve`` (the Kafka protocol server over a data directory) and
``eventlog demo`` (a short tour on a temporary directory)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .registry import Subparsers, command

__all__ = ["add_server"]


@command
def add_server(sub: Subparsers) -> None:
    demo = sub.add_parser("demo", help="run a short demo on a temporary directory")
    demo.set_defaults(run=run_demo)
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
    serve.set_defaults(run=run_serve)


def run_demo(args: argparse.Namespace) -> int:
    from eventlog.demo import run

    run()
    return 0


def run_serve(args: argparse.Namespace) -> int:
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
