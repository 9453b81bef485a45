"""The Kafka wire protocol over an EventLog: unmodified Kafka clients produce, consume
in groups and commit against it, sharing the log with in-process producers and consumers.

    with eventlog.open("data") as log, eventlog.serve(log) as server:
        confluent_kafka.Producer({"bootstrap.servers": server.bootstrap_servers})

Needs the ``server`` extra (``pip install 'eventlog-embedded[server]'``, Python 3.11+:
the protocol types come from kio). See docs/server.md.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from ..broker import Broker

if TYPE_CHECKING:
    from .server import Server

__all__ = ["serve"]

install_hint = (
    "the Kafka protocol server needs the 'server' extra on Python 3.11 or later: "
    "pip install 'eventlog-embedded[server]'"
)


def serve(log: Broker, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Server:
    """Serve ``log`` (an open EventLog) to Kafka clients at ``host:port``; returns the Server.

    ``port=0`` lets the OS choose (see ``server.bootstrap_servers``). Binds
    127.0.0.1 by default and logs a warning for a non-loopback address: there is
    no authentication. ``options``: ``advertised_host``, ``max_request_bytes``
    (100 MiB), ``idle_timeout_ms`` (600000), ``max_connections`` (1000),
    ``min_session_timeout_ms`` (6000), ``max_session_timeout_ms`` (1800000).
    The server runs an asyncio loop in a thread of its own; close it with
    ``close()`` or a ``with`` block (closing the log closes it too).

    Cost: binds the socket and starts the server's thread and loop; returns once it
    accepts connections (a few ms; the protocol modules are imported on the first call).
    Thread safety: any thread; each call starts a server of its own, all sharing the log.
    Raises: ImportError (with the install command) without the server extra,
      OSError if the address cannot be bound, InvalidConfigError for bad options.
    """
    try:
        _import_kio_without_hypothesis()
        from .server import Server
    except ImportError as exc:
        raise ImportError(f"{install_hint} ({exc})") from exc
    return Server(log, host, port, **options)


def _import_kio_without_hypothesis() -> None:
    """Import kio's types with hypothesis hidden, unless the process imported it already.

    kio registers a hypothesis strategy for each of its types whenever it can import
    hypothesis, which made the first ``serve()`` of a process (and ``eventlog serve``)
    0.5-1.5 s slower wherever hypothesis is installed; the server never uses those
    strategies. A process that imported hypothesis first (a test run) keeps them.
    """
    if "hypothesis" in sys.modules or "kio.static" in sys.modules:
        return
    sys.modules["hypothesis"] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        importlib.import_module("kio.static.primitive")
    finally:
        if "hypothesis" in sys.modules and sys.modules["hypothesis"] is None:
            del sys.modules["hypothesis"]
