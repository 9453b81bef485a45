"""ConsoleServer: the web console over an EventLog, on 127.0.0.1 (stdlib http.server).

Security: it listens on the loopback interface only; it answers only requests whose
Host header names that address (so a web page elsewhere cannot reach it through DNS
rebinding); it is read-only unless ``allow_writes``; its one write (an offset reset)
is a POST carrying the server's CSRF token (random per server, compared in constant
time) and runs as a dry run unless the form says ``execute``; every page forbids
scripts, frames and foreign resources (Content-Security-Policy).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import EventLogError, InvalidConfigError, UnknownTopicError
from ..log import EventLog
from . import pages
from .resets import execute_reset, plan_reset
from .views import RecordQuery, browse, group_rows, parse_time_ms, topic_rows, total_lag

__all__ = ["ConsoleServer", "LagHistory", "serve_console"]

refresh_s_default = 5  # group pages reload every 5 s (Kafka UI polls about as often)
lag_samples_max = 720  # an hour of history at one sample per 5 s
form_bytes_max = 16_384  # the largest POST body accepted (the reset form is < 1 KiB)
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class LagHistory:
    """Total lag of each group over time: ``sample()`` adds one point per group.
    Thread-safe. Memory: at most ``samples_max`` points per group."""

    def __init__(self, samples_max: int = lag_samples_max) -> None:
        self._lock = threading.Lock()
        self._samples: dict[str, deque[tuple[float, int]]] = {}
        self.samples_max = samples_max

    def sample(self, log: EventLog) -> None:
        now_ms = float(log.clock.time_ms())
        rows = group_rows(log)
        with self._lock:
            for d in rows:
                points = self._samples.setdefault(d.group_id, deque(maxlen=self.samples_max))
                points.append((now_ms, total_lag(d)))

    def of(self, group_id: str) -> list[tuple[float, int]]:
        with self._lock:
            return list(self._samples.get(group_id, ()))


shutdown_poll_s = 0.05


class ConsoleServer:
    """The console over ``log`` at ``url`` until ``close()``. A context manager.

    ``port`` 0 lets the OS choose (see ``port``). ``sample_interval_s``: how often the
    lag history is sampled in the background (None: only when a group page is shown,
    as tests do). Raises OSError if the port is taken.
    """

    def __init__(self, log: EventLog, *, port: int = 0, allow_writes: bool = False,
                 refresh_s: int = refresh_s_default,
                 sample_interval_s: float | None = refresh_s_default) -> None:
        if type(port) is not int or not 0 <= port <= 65535:
            raise InvalidConfigError(f"port must be 0..65535, got {port!r}")
        self.log = log
        self.allow_writes = allow_writes
        self.refresh_s = refresh_s
        self.csrf_token = secrets.token_urlsafe(32)
        self.lag = LagHistory()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._stop = threading.Event()
        # serve_forever notices shutdown() once per poll interval: 0.5 s by default,
        # which every close() (and so every test of the console) would wait out.
        self._threads = [threading.Thread(target=self._httpd.serve_forever,
                                          kwargs={"poll_interval": shutdown_poll_s},
                                          name="eventlog-console", daemon=True)]
        if sample_interval_s is not None:
            self._threads.append(threading.Thread(
                target=self._sample_loop, args=(sample_interval_s,),
                name="eventlog-console-lag", daemon=True))
        for t in self._threads:
            t.start()

    def _sample_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                if not self.log.closed:
                    self.lag.sample(self.log)
            except EventLogError:
                pass  # a log closing under the console: the next round stops

    def close(self) -> None:
        """Stop serving and sampling. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for t in self._threads:
            t.join()

    def __enter__(self) -> ConsoleServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def allowed_hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}


def serve_console(log: EventLog, *, port: int = 0, allow_writes: bool = False,
                  **options: Any) -> ConsoleServer:
    """Start a ConsoleServer over ``log`` (an open EventLog) and return it."""
    return ConsoleServer(log, port=port, allow_writes=allow_writes, **options)


class _Response(Exception):
    """A response other than the page: an error status with its message."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _one(params: dict[str, list[str]], name: str, default: str | None = None) -> str:
    values = params.get(name)
    if not values:
        if default is None:
            raise _Response(HTTPStatus.BAD_REQUEST, f"missing parameter {name!r}")
        return default
    return values[0]


def _int(params: dict[str, list[str]], name: str, default: int) -> int:
    text = _one(params, name, str(default)).strip() or str(default)
    try:
        return int(text)
    except ValueError:
        raise _Response(HTTPStatus.BAD_REQUEST,
                        f"{name} must be an integer, got {text!r}") from None


def _handler_for(console: ConsoleServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        server_console = console

    return Handler


class _Handler(BaseHTTPRequestHandler):
    server_console: ConsoleServer
    server_version = "eventlog-console"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the console is a tool, not a web server's access log."""

    # -- dispatch -----------------------------------------------------------------

    def do_GET(self) -> None:
        self._respond(self._get)

    def do_POST(self) -> None:
        self._respond(self._post)

    def _respond(self, route: Callable[[], tuple[str, str]]) -> None:
        console = self.server_console
        try:
            if self.headers.get("Host", "") not in console.allowed_hosts():
                raise _Response(HTTPStatus.FORBIDDEN,
                                "this console answers only at " + console.url)
            content_type, body = route()
            status = HTTPStatus.OK
        except _Response as exc:
            status, content_type = exc.status, "text/html"
            body = pages.error_page(exc.status, str(exc), writable=console.allow_writes)
        except (EventLogError, KeyError, IndexError) as exc:
            status, content_type = HTTPStatus.BAD_REQUEST, "text/html"
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            body = pages.error_page(status, str(message), writable=console.allow_writes)
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _get(self) -> tuple[str, str]:
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        console = self.server_console
        log, writable = console.log, console.allow_writes
        if url.path == "/":
            return "text/html", pages.topics_page(topic_rows(log), writable=writable)
        if url.path == "/topic":
            name = _one(params, "name")
            rows = [t for t in topic_rows(log) if t.name == name]
            if not rows:
                raise _Response(HTTPStatus.NOT_FOUND, f"no topic {name!r}")
            return "text/html", pages.topic_page(rows[0], writable=writable)
        if url.path == "/groups":
            console.lag.sample(log)
            return "text/html", pages.groups_page(group_rows(log), writable=writable,
                                                  refresh_s=console.refresh_s)
        if url.path == "/group":
            return "text/html", self._group_page(_one(params, "id"))
        if url.path == "/records":
            return "text/html", self._records_page(params)
        if url.path.startswith("/api/"):
            return "application/json", json.dumps(self._api(url.path, params))
        raise _Response(HTTPStatus.NOT_FOUND, f"no page {url.path!r}")

    def _group_page(self, group_id: str) -> str:
        console = self.server_console
        console.lag.sample(console.log)
        d = console.log.describe_group(group_id)
        return pages.group_page(
            d, console.lag.of(group_id), writable=console.allow_writes,
            csrf=console.csrf_token, refresh_s=console.refresh_s,
            topics=sorted({o.topic_partition.topic for o in d.offsets}
                          | {tp.topic for m in d.members for tp in m.assignment}),
        )

    def _records_page(self, params: dict[str, list[str]]) -> str:
        mode = _one(params, "mode", "newest")
        value = _one(params, "value", "").strip()
        limit = _int(params, "limit", 20)
        base = {"topic": _one(params, "topic"), "partition": _int(params, "partition", 0),
                "limit": limit, "fmt": _one(params, "format", "text")}
        if mode == "newest":
            query = RecordQuery(**base, newest=int(value) if value.isdigit() else limit)
        elif mode == "offset":
            query = RecordQuery(**base, newest=None, offset=_int(params, "value", 0))
        elif mode == "time":
            query = RecordQuery(**base, newest=None, time_ms=parse_time_ms(value))
        else:
            raise _Response(HTTPStatus.BAD_REQUEST,
                            f"mode must be newest, offset or time; got {mode!r}")
        records, start, end = browse(self.server_console.log, query)
        return pages.records_page(query, records, start, end, mode=mode, value=value,
                                  writable=self.server_console.allow_writes)

    def _api(self, path: str, params: dict[str, list[str]]) -> Any:
        log = self.server_console.log
        if path == "/api/topics":
            return [{"name": t.name, "internal": t.internal, "partitions": [
                vars(p) for p in t.partitions]} for t in topic_rows(log)]
        if path == "/api/groups":
            return [_group_json(d) for d in group_rows(log)]
        if path == "/api/lag":
            group_id = _one(params, "group")
            return [{"time_ms": t, "lag": lag} for t, lag in self.server_console.lag.of(group_id)]
        raise _Response(HTTPStatus.NOT_FOUND, f"no API {path!r}")

    # -- the one write --------------------------------------------------------------

    def _post(self) -> tuple[str, str]:
        console = self.server_console
        if urlsplit(self.path).path != "/reset":
            raise _Response(HTTPStatus.NOT_FOUND, f"no form {self.path!r}")
        if not console.allow_writes:
            raise _Response(HTTPStatus.FORBIDDEN,
                            "this console is read-only; start it with --allow-writes to "
                            "reset offsets")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= form_bytes_max:
            raise _Response(HTTPStatus.BAD_REQUEST, "the form is empty or too large")
        form = parse_qs(self.rfile.read(length).decode("utf-8", errors="replace"))
        token = _one(form, "csrf", "")
        if not hmac.compare_digest(token.encode(), console.csrf_token.encode()):
            raise _Response(HTTPStatus.FORBIDDEN,
                            "the form's CSRF token is missing or stale; reload the group "
                            "page and submit again")
        group, topic = _one(form, "group"), _one(form, "topic")
        strategy, value = _one(form, "strategy"), _one(form, "value", "")
        try:
            rows = plan_reset(console.log, group, topic, strategy, value or None)
        except UnknownTopicError as exc:
            raise _Response(HTTPStatus.BAD_REQUEST, str(exc.args[0])) from None
        execute = _one(form, "execute", "") == "1"
        if execute:
            execute_reset(console.log, group, rows)
        return "text/html", pages.reset_page(group, topic, strategy, value, rows,
                                             executed=execute, csrf=console.csrf_token)


def _group_json(d: Any) -> dict[str, Any]:
    return {
        "group_id": d.group_id, "state": str(d.state), "generation": d.generation,
        "members": [{"member_id": m.member_id, "client_id": m.client_id,
                     "assignment": [[tp.topic, tp.partition] for tp in m.assignment]}
                    for m in d.members],
        "offsets": [{"topic": o.topic_partition.topic,
                     "partition": o.topic_partition.partition,
                     "committed": o.committed_offset, "end_offset": o.end_offset,
                     "lag": o.lag} for o in d.offsets],
        "total_lag": total_lag(d),
    }
