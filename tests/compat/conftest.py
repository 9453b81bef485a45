"""Client-level suites run three times: (a) on eventlog.compat in process, (b) on the real
library against a Kafka-protocol broker (noida-db on 127.0.0.1), where (b) is the
reference, and (c) on the real library against ``eventlog.serve()`` (the wire server, on
an in-memory log with the system clock, one for the session).

(b) and (c) are skipped with a reason when the library, noida-db or the server extra is
missing, except under CI (CI=true), where .ci/run installs them and a missing one fails
the run.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compat_env import Env

import eventlog
import eventlog.compat
from eventlog.testing import ManualClock

broker_start_timeout_s = 20.0


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI; .ci/run must install it")
    pytest.skip(f"{what} is not installed here (pip install confluent-kafka kafka-python "
                "noida-db)")


def _noida_binary() -> Path:
    try:
        import noida_db  # type: ignore[import-not-found]
    except ImportError:
        _missing("noida-db")
    folder = Path(noida_db.__file__).parent
    binary = folder / "noida-db"
    if not binary.exists():
        found = shutil.which("noida-db")
        if found is None:
            _missing("the noida-db binary")
        return Path(found)
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A noida-db Kafka broker on 127.0.0.1 for the session; yields "127.0.0.1:PORT"."""
    binary = _noida_binary()
    port = _free_port()
    data = tmp_path_factory.mktemp("noida")
    log_file = (data / "noida.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "start", "--only", "kafka", "--kafka-port", str(port),
         "--host", "127.0.0.1", "--data-dir", str(data / "data")],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + broker_start_timeout_s
        while True:  # readiness of an external process: the port accepting connections
            if proc.poll() is not None:
                raise RuntimeError(f"noida-db exited with {proc.returncode}; see {data}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"noida-db did not open port {port}") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


@pytest.fixture(scope="session")
def served_log() -> Iterator[eventlog.EventLog]:
    """An in-memory log (system clock, topics created on first use as Kafka's brokers do)
    that ``eventlog_server`` serves."""
    with eventlog.open(None, auto_create_topics=True) as log:
        yield log


@pytest.fixture(scope="session")
def eventlog_server(served_log: eventlog.EventLog) -> Iterator[str]:
    """``eventlog.serve()`` of ``served_log`` on 127.0.0.1 for the session; yields
    "127.0.0.1:PORT"."""
    try:
        from eventlog.server import server as _server  # noqa: F401  (the extra's imports)
    except ImportError:
        _missing("the server extra (kio, crc32c)")
    with eventlog.serve(served_log, "127.0.0.1", 0) as server:
        yield server.bootstrap_servers
    served_log.check()


def _served_env(request: pytest.FixtureRequest, module: Any) -> Env:
    bootstrap = request.getfixturevalue("eventlog_server")
    return Env("served", module, bootstrap, request.getfixturevalue("served_log"))


def _real_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(name)


def _eventlog_env(module_name: str) -> Iterator[Env]:
    log = eventlog.open(None, clock=ManualClock(), auto_create_topics=True)
    name = f"compat-{uuid.uuid4().hex[:8]}"
    eventlog.compat.register(name, log)
    try:
        yield Env("eventlog", importlib.import_module(module_name), f"eventlog://{name}", log)
    finally:
        eventlog.compat.unregister(name)
        log.close()


@pytest.fixture(params=["eventlog", "real", "served"])
def ck(request: pytest.FixtureRequest) -> Iterator[Env]:
    """confluent_kafka: eventlog.compat's, the real one on noida-db, on eventlog serve."""
    if request.param == "eventlog":
        yield from _eventlog_env("eventlog.compat.confluent_kafka")
    else:
        module = _real_module("confluent_kafka")
        importlib.import_module("confluent_kafka.admin")
        yield (Env("real", module, request.getfixturevalue("kafka_broker"))
               if request.param == "real" else _served_env(request, module))


@pytest.fixture(params=["eventlog", "real", "served"])
def kp(request: pytest.FixtureRequest) -> Iterator[Env]:
    """kafka-python: eventlog.compat's, the real one on noida-db, on eventlog serve."""
    if request.param == "eventlog":
        yield from _eventlog_env("eventlog.compat.kafka")
    else:
        module = _real_module("kafka")
        importlib.import_module("kafka.admin")
        importlib.import_module("kafka.errors")
        yield (Env("real", module, request.getfixturevalue("kafka_broker"))
               if request.param == "real" else _served_env(request, module))


@pytest.fixture(params=["eventlog", "real", "served"])
def ak(request: pytest.FixtureRequest) -> Iterator[Env]:
    """aiokafka: eventlog.compat's, the real one on noida-db, on eventlog serve."""
    if request.param == "eventlog":
        yield from _eventlog_env("eventlog.compat.aiokafka")
    else:
        module = _real_module("aiokafka")
        importlib.import_module("aiokafka.errors")
        yield (Env("real", module, request.getfixturevalue("kafka_broker"))
               if request.param == "real" else _served_env(request, module))
