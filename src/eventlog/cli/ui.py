"""``eventlog ui DIR [--port N] [--allow-writes]``: the web console (eventlog.console)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .common import open_for_reading, open_for_writing
from .registry import Subparsers, command

__all__ = ["add_ui"]


@command
def add_ui(sub: Subparsers) -> None:
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
                    help="allow resetting a group's offsets from the page (dry run first); "
                         "needs the directory to itself")
    ui.set_defaults(run=run_ui)


def run_ui(args: argparse.Namespace) -> int:
    from eventlog.console import serve_console

    # Read-only, the console works beside the application that writes DIR; an offset
    # reset is a commit, which only the process holding the directory may make.
    log = (open_for_writing(args.dir, "serve a console that resets offsets")
           if args.allow_writes else open_for_reading(args.dir))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with log:
        try:
            console = serve_console(log, port=args.port, allow_writes=args.allow_writes)
        except OSError as exc:
            print(f"eventlog ui: cannot listen on 127.0.0.1:{args.port}: {exc}",
                  file=sys.stderr)
            return 2
        with console:
            mode = "read-write" if args.allow_writes else "read-only"
            print(f"eventlog console ({mode}) of {args.dir} at {console.url}", flush=True)
            stop.wait()
    return 0
