"""Issue 12's 50 ms test, timed: produce 1,000 records and consume them in a group of two.

``python -m benchmarks.compat_group [--runs R]`` prints the medians of R runs of the same
code (tests/compat/group_of_two.py) on

* ``eventlog.compat.confluent_kafka`` in process, as the pytest test
  ``test_a_group_of_two_consumes_1000_records[eventlog]``: the test's time as pytest
  reports it (setup + call + teardown: the log, the topic, produce, the group join, the
  consume, the close), the issue's goal being <= 50 ms;
* the real confluent-kafka against the librdkafka mock cluster, noida-db and
  ``eventlog serve`` (a process of its own), timed around the same code plus the topic's
  creation (the broker's start-up left out).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from benchmarks.server import QUIET, _create_topic, eventlog_serve, mock, noida

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/compat/test_confluent_kafka.py::test_a_group_of_two_consumes_1000_records"


class _Durations:
    """A pytest plugin that sums each test's setup, call and teardown times."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.append(report.nodeid)


def pytest_test_ms(runs: int) -> list[float]:
    """The [eventlog] test's time, per run of pytest (in this process; the first run,
    which imports the test modules, is left out)."""
    out: list[float] = []
    for i in range(runs + 1):
        timer = _Durations()
        code = pytest.main([f"{ROOT / TEST}[eventlog]", "-q", "-p", "no:cacheprovider",
                            "-p", "no:randomly", "--no-header", "--no-summary", "-W",
                            "ignore::DeprecationWarning"], plugins=[timer])
        if code != 0 or timer.failed:
            raise RuntimeError(f"the test failed (pytest exit code {code})")
        if i:
            out.extend(s * 1000 for s in timer.seconds.values())
    return out


def real_ms(broker: Callable[[Path], AbstractContextManager[str]], runs: int) -> list[float]:
    """The same code on the real confluent-kafka against ``broker``."""
    import confluent_kafka

    sys.path.insert(0, str(ROOT / "tests" / "compat"))
    from group_of_two import group_of_two

    out = []
    with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp)) as bootstrap:
        for _ in range(runs):
            topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
            start = time.perf_counter()
            _create_topic(bootstrap, topic, 2)
            got = group_of_two(confluent_kafka, bootstrap, topic, group, **QUIET)
            out.append((time.perf_counter() - start) * 1000)
            if len(set(got[0]) | set(got[1])) != 1000:
                raise RuntimeError(f"read {len(set(got[0]) | set(got[1]))} of 1000 records")
    return out


def _peers() -> Iterator[tuple[str, Callable[[Path], AbstractContextManager[str]]]]:
    yield "confluent-kafka + librdkafka mock", mock
    yield "confluent-kafka + noida-db", noida
    yield "confluent-kafka + eventlog serve", eventlog_serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compat_group",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    results: list[tuple[str, list[float]]] = [
        ("eventlog.compat (pytest test time)", pytest_test_ms(args.runs))]
    for name, broker in _peers():
        try:
            results.append((name, real_ms(broker, args.runs)))
        except (RuntimeError, ImportError) as exc:
            print(f"{name}: skipped ({exc})")
    base = statistics.median(results[0][1])
    print(f"{'1,000 records, a group of 2':<38}{'median ms':>10}{'min ms':>9}{'x eventlog':>11}")
    for name, ms in results:
        median: Any = statistics.median(ms)
        print(f"{name:<38}{median:>10.1f}{min(ms):>9.1f}{median / base:>11.1f}")


if __name__ == "__main__":
    main()
