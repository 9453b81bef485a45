"""The web console in a real headless browser (Debian's ``chromium``): the pages as
chromium parses them (``--dump-dom``), and a screenshot. CI installs chromium
(.ci/run); elsewhere these tests skip, saying why, when it is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

import eventlog
from eventlog.console import serve_console
from eventlog.testing import ManualClock

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH (apt-get install chromium; .ci/run installs it as root)",
)
SCRIPT = b"<script>document.title='pwned'</script><img src=x onerror=alert(1)>"


def chromium(tmp_path, *args: str) -> str:
    """Run headless chromium with ``args``; returns its stdout."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.insert(2, "--no-sandbox")  # chromium refuses to run as root with it
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def console() -> Iterator:
    with eventlog.open(clock=ManualClock()) as log:
        log.create_topic("orders", partitions=2)
        producer = log.producer(linger_ms=0)
        producer.send("orders", SCRIPT, key=SCRIPT, partition=0)
        for n in range(5):
            producer.send("orders", b'{"order": %d}' % n, key=b"user-%d" % (n % 2))
        producer.close()
        consumer = log.consumer("orders", group_id="billing", auto_offset_reset="earliest",
                                enable_auto_commit=False)
        consumer.poll(timeout_ms=0, max_records=2)
        consumer.commit()
        with serve_console(log, sample_interval_s=None) as server:
            yield server
        consumer.close()


def test_records_render_as_text_never_as_markup(console, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", console.url + "records?topic=orders&partition=0")
    assert "<title>Records of orders-0 · eventlog</title>" in dom  # no script renamed it
    body = dom.split("<body>", 1)[1]
    assert "<script" not in body
    assert "<img" not in body
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x " \
           "onerror=alert(1)&gt;" in body
    assert re.search(r'<table id="records">.*</table>', body, re.S)


def test_group_page_shows_members_lag_and_the_lag_chart(console, tmp_path):
    chromium(tmp_path, "--dump-dom", console.url + "group?id=billing")  # a first sample
    console.log.clock.advance(5_000)
    dom = chromium(tmp_path, "--dump-dom", console.url + "group?id=billing")
    assert '<b id="state">Stable</b>' in dom
    assert '<table id="members">' in dom
    assert re.search(r'<svg id="lag-chart"[^>]*>.*<polyline', dom, re.S)
    lag = int(re.search(r'<b id="total-lag">(\d+)</b>', dom).group(1))
    offsets = console.log.describe_group("billing").offsets
    assert lag == sum(o.lag for o in offsets if o.lag is not None) > 0


def test_topics_page_screenshot(console, tmp_path):
    shot = tmp_path / "topics.png"
    chromium(tmp_path, "--window-size=1000,500", f"--screenshot={shot}", console.url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
