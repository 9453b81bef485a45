"""The Kafka protocol server: an asyncio event loop in a thread of its own.

One connection is served one request at a time, in order (as Kafka's broker
does: a client's next request on a connection waits for the previous answer).
The answers to requests that arrived together are written together, in one
write (the answers before a request that may wait, a long-poll Fetch, JoinGroup
or SyncGroup, are written before it is served). A frame is a 4-byte big-endian
size and that many bytes. A frame that cannot
be decoded, or is larger than ``max_request_bytes``, closes its connection with
a logged reason; nothing is changed by it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import threading

from ..broker import Broker
from ..errors import ClosedError, InvalidConfigError
from .groups import WireGroupCoordinator
from .handlers import API_VERSIONS, UNSUPPORTED_VERSION, Handlers, api_versions_body
from .inbox import Inbox
from .protocol import (
    FrameError,
    api_versions_key,
    build,
    encode_response,
    parse_request,
    peek_header,
    request_class,
    response_class,
)

__all__ = ["Server"]

_log = logging.getLogger("eventlog.server")
_size = struct.Struct(">i")
# Requests whose answer may wait (a long poll, a rebalance): the answers to the requests
# before them are written first. The others are answered as soon as they are served, but
# requests that arrived together are answered together, in one write: a client that
# pipelines requests (librdkafka sends Metadata and FindCoordinator back to back) gets
# every answer before it acts on the first.
_waiting_apis = frozenset({1, 11, 14})  # Fetch, JoinGroup, SyncGroup
# ApiVersions answers by version, correlation id 0: the same for every connection, and
# encoding its list of request types is the slowest of a client's first requests
_api_versions_answers: dict[int, bytes] = {}

socket_request_max_bytes = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes
connections_max_idle_ms = 600_000  # Kafka's connections.max.idle.ms
max_connections_default = 1000
sweep_interval_s = 0.1  # how often group session and rebalance timeouts are applied


class _IdleTimer:
    """Closes a connection that has sent nothing for ``idle_ms`` while no request of
    it was being served (Kafka's connections.max.idle.ms). One timer per connection,
    moved on only when it fires: a request costs two attribute stores, not a timer."""

    __slots__ = ("busy", "handle", "idle_s", "last", "loop", "where", "writer")

    def __init__(self, loop: asyncio.AbstractEventLoop, idle_ms: int,
                 writer: Inbox, where: str) -> None:
        self.loop = loop
        self.idle_s = idle_ms / 1000.0
        self.writer = writer
        self.where = where
        self.busy = False
        self.last = loop.time()
        self.handle = loop.call_at(self.last + self.idle_s, self._fire)

    def rest(self) -> None:
        """The connection waits for its next request from now on."""
        self.busy = False
        self.last = self.loop.time()

    def _fire(self) -> None:
        due = self.last + self.idle_s
        if self.busy or due > self.loop.time():
            self.handle = self.loop.call_at(
                self.loop.time() + self.idle_s if self.busy else due, self._fire)
            return
        _log.info("connection from %s closed: idle for %d ms (connections.max.idle.ms)",
                  self.where, round(self.idle_s * 1000))
        self.writer.close()

    def cancel(self) -> None:
        self.handle.cancel()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    """A Kafka-protocol endpoint for one EventLog. Use ``eventlog.serve(log)``.

    A context manager; ``close()`` stops it (idempotent). Closing the log closes
    the server first.
    """

    def __init__(
        self,
        log: Broker,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        advertised_host: str | None = None,
        max_request_bytes: int = socket_request_max_bytes,
        idle_timeout_ms: int = connections_max_idle_ms,
        max_connections: int = max_connections_default,
        min_session_timeout_ms: int = 6_000,
        max_session_timeout_ms: int = 1_800_000,
    ) -> None:
        if type(port) is not int or not 0 <= port <= 65535:
            raise InvalidConfigError(f"port must be an int in [0, 65535], got {port!r}")
        for name, value in (("max_request_bytes", max_request_bytes),
                            ("idle_timeout_ms", idle_timeout_ms),
                            ("max_connections", max_connections)):
            if type(value) is not int or value < 1:
                raise InvalidConfigError(f"{name} must be an int >= 1, got {value!r}")
        if log.closed:
            raise ClosedError("the EventLog is closed; open it before serving it")
        if not _is_loopback(host):
            _log.warning(
                "serving %s on %s, which is not a loopback address: any host that can reach "
                "it can read and write every topic (there is no authentication)",
                log.path or "an in-memory log", host,
            )
        self.log = log
        self.host = host
        self.max_request_bytes = max_request_bytes
        self.idle_timeout_ms = idle_timeout_ms
        self.max_connections = max_connections
        self._advertised = advertised_host or (
            socket.gethostname() if host in ("", "0.0.0.0", "::") else host
        )
        self._port = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._connections: set[Inbox] = set()
        self.groups = WireGroupCoordinator(
            log.clock.monotonic_ms, min_session_timeout_ms=min_session_timeout_ms,
            max_session_timeout_ms=max_session_timeout_ms,
        )
        self.handlers = Handlers(log, self._advertised, lambda: self._port, self.groups)
        self.handlers.wait_for_data = self._wait_for_data
        self._parked: list[tuple[int, asyncio.Future]] = []
        self._want_data = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        started = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(port, started, failure), daemon=True,
            name=f"eventlog-server:{host}:{port}",
        )
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        self._watcher = threading.Thread(target=self._watch, daemon=True,
                                         name=f"eventlog-server-data:{self._port}")
        self._watcher.start()
        log.register_client(self)
        _log.info("serving %s at %s", log.path or "an in-memory log", self.bootstrap_servers)

    # ------------------------------------------------------------------ public

    @property
    def port(self) -> int:
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for a client's ``bootstrap.servers``."""
        host = self._advertised
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self._port}"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop accepting, close every connection, stop the loop. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                future.result(timeout=10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._want_data.set()
        if not self.log.closed:
            self.log.wake_waiters()
        self._watcher.join()
        self._loop.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.bootstrap_servers
        return f"Server({self.log!r}, {state})"

    # ------------------------------------------------------------------ loop

    def _run(self, port: int, started: threading.Event, failure: list[BaseException]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                self._loop.create_server(
                    lambda: Inbox(self._loop, self._connection, self.max_request_bytes),
                    self.host, port)
            )
            self._port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            failure.append(OSError(exc.errno, f"cannot listen on {self.host}:{port}: "
                                              f"{exc.strerror or exc}"))
            started.set()
            self._loop.close()
            return
        started.set()
        sweeper = self._loop.create_task(self._sweep())
        try:
            self._loop.run_forever()
        finally:
            sweeper.cancel()
            pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                self._loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True))

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        self.groups.close()
        for writer in list(self._connections):
            writer.close()
        for _version, fut in self._parked:
            if not fut.done():
                fut.set_result(False)
        self._parked.clear()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(sweep_interval_s)
            try:
                self.groups.sweep()
            except Exception:  # a bug here must not stop the timeouts of every group
                _log.exception("group sweep failed")

    # ------------------------------------------------------------------ data waits

    async def _wait_for_data(self, version: int, timeout_ms: float) -> bool:
        """Wait until the log's data version moves from ``version`` (an append), or
        ``timeout_ms`` passes. One watcher thread waits in ``EventLog.wait_for_data``
        for every parked fetch."""
        if self.log.data_version != version:
            return True
        future = self._loop.create_future()
        self._parked.append((version, future))
        self._want_data.set()
        try:
            return await asyncio.wait_for(future, timeout_ms / 1000.0)
        except asyncio.TimeoutError:
            return False
        finally:
            self._parked = [(v, f) for v, f in self._parked if f is not future]

    def _watch(self) -> None:
        log = self.log
        while True:
            self._want_data.wait()
            if self._closed or log.closed:
                return
            version = log.data_version
            self._want_data.clear()
            if self._parked:
                version = min(v for v, _f in list(self._parked))
                log.wait_for_data(version, None)
            if self._closed or log.closed:
                return
            try:
                self._loop.call_soon_threadsafe(self._wake_parked)
            except RuntimeError:  # the loop closed meanwhile
                return

    def _wake_parked(self) -> None:
        current = self.log.data_version
        still = False
        for version, fut in self._parked:
            if version != current:
                if not fut.done():
                    fut.set_result(True)
            else:
                still = True
        if still:
            self._want_data.set()

    # ------------------------------------------------------------------ connections

    async def _connection(self, inbox: Inbox) -> None:
        peer = inbox.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if len(self._connections) >= self.max_connections:
            _log.warning("connection from %s refused: %d connections are open "
                         "(max_connections)", where, len(self._connections))
            inbox.close()
            return
        self._connections.add(inbox)
        host = peer[0] if isinstance(peer, tuple) else ""
        answers: list[bytes] = []  # answers not yet written
        idle = _IdleTimer(self._loop, self.idle_timeout_ms, inbox, where)
        try:
            while True:
                size = inbox.frame_size()
                if size is not None:
                    if size < 0 or size > self.max_request_bytes:
                        _log.warning("connection from %s closed: request of %d bytes is over "
                                     "max_request_bytes=%d (socket.request.max.bytes)",
                                     where, size, self.max_request_bytes)
                        return
                    if inbox.pending() >= 4 + size:
                        frame = inbox.take(size)
                        if answers and len(frame) >= 2 and frame[1] in _waiting_apis \
                                and frame[0] == 0:
                            await self._write(inbox, answers)
                        idle.busy = True
                        try:
                            response = await self._handle(frame, host)
                        except FrameError as exc:
                            _log.warning("connection from %s closed: malformed request: %s",
                                         where, exc)
                            return
                        if response is not None:
                            answers.append(response)
                        continue
                # every request that had arrived is answered: send the answers at once
                if answers:
                    await self._write(inbox, answers)
                if inbox.eof:
                    pending = inbox.pending()
                    if inbox.error is not None:
                        _log.info("connection from %s lost: %s", where, inbox.error)
                    elif 0 < pending < 4:
                        _log.warning("connection from %s closed: it ended inside a size "
                                     "prefix", where)
                    elif pending:
                        _log.warning("connection from %s closed: truncated request (%d of %d "
                                     "bytes)", where, pending - 4, size)
                    return
                idle.rest()
                await inbox.wait()
        except (ConnectionError, OSError) as exc:
            _log.info("connection from %s lost: %s", where, exc)
        except asyncio.CancelledError:
            pass
        except Exception:  # a defect in a handler: that connection ends, the server goes on
            _log.exception("connection from %s closed: internal error serving its request",
                           where)
        finally:
            idle.cancel()
            self._connections.discard(inbox)
            inbox.close()

    @staticmethod
    async def _write(inbox: Inbox, answers: list[bytes]) -> None:
        inbox.write(answers[0] if len(answers) == 1 else b"".join(answers))
        answers.clear()
        await inbox.drain()

    async def _handle(self, frame: bytes, host: str) -> bytes | None:
        api_key, version, correlation_id = peek_header(frame)
        supported = API_VERSIONS.get(api_key)
        if supported is None or not supported[1] <= version <= supported[2]:
            return self._unsupported(api_key, version, correlation_id, frame)
        if api_key == api_versions_key:  # every connection's first request: the same answer
            cached = _api_versions_answers.get(version)
            if cached is None:
                body = build(response_class(api_key, version), api_versions_body(0))
                cached = _api_versions_answers[version] = encode_response(api_key, version, 0,
                                                                       body)
            return cached[:4] + _size.pack(correlation_id) + cached[8:]
        header, request = parse_request(frame, api_key, version)
        handler = self.handlers.table[api_key]
        try:
            values = await handler(header, request, version, host)
        except ClosedError as exc:
            raise FrameError(f"the log is closed: {exc}") from exc
        if values is None:
            return None  # acks=0
        body = build(response_class(api_key, version), values)
        return encode_response(api_key, version, correlation_id, body)

    def _unsupported(self, api_key: int, version: int, correlation_id: int,
                     frame: bytes) -> bytes:
        """Kafka's answer to a request it cannot serve: UNSUPPORTED_VERSION where the
        response has an error code; for ApiVersions, the v0 answer listing the
        supported versions, so the client can retry with one of them (KIP-511)."""
        name = API_VERSIONS.get(api_key, (f"api key {api_key}",))[0]
        _log.warning("unsupported request %s v%d (correlation id %d): answered "
                     "UNSUPPORTED_VERSION", name, version, correlation_id)
        if api_key == 18:
            body = build(response_class(18, 0), api_versions_body(UNSUPPORTED_VERSION))
            return encode_response(18, 0, correlation_id, body)
        try:
            request_class(api_key, version)
            cls = response_class(api_key, version)
        except Exception:
            raise FrameError(
                f"{name} v{version} is not a request this server knows; no answer can be "
                "encoded for it"
            ) from None
        body = build(cls, {"error_code": UNSUPPORTED_VERSION})
        return encode_response(api_key, version, correlation_id, body)
