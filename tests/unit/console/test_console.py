"""The web console over HTTP: pages, escaping, the record browser, lag, and offset resets
(read-only by default, dry run then execute, CSRF token, refused while members are active)."""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

import eventlog
from eventlog.console import serve_console
from eventlog.records import TopicPartition
from eventlog.testing import ManualClock

SCRIPT = b"<script>document.title='pwned'</script>"


@pytest.fixture
def log() -> Iterator[eventlog.EventLog]:
    with eventlog.open(clock=ManualClock()) as log_:
        log_.create_topic("orders", partitions=2)
        producer = log_.producer(linger_ms=0)
        producer.send("orders", SCRIPT, key=SCRIPT, partition=0,
                      headers=[("<b>h</b>", b"<i>")])
        producer.send("orders", b'{"total": 12, "items": ["a"]}', key=b"k1", partition=0)
        producer.send("orders", b"\x00\xff\x10", key=None, partition=0)
        producer.close()
        yield log_


def get(console, path: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(console.url + path.lstrip("/"), timeout=30) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def post(console, form: dict[str, str]) -> tuple[int, str]:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(console.url + "reset", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_topics_and_topic_pages_show_partitions_offsets_and_sizes(log):
    with serve_console(log, sample_interval_s=None) as console:
        status, body, headers = get(console, "/")
        assert status == 200
        assert 'href="/topic?name=orders"' in body
        assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'none'
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        status, body, _ = get(console, "/topic?name=orders")
    assert status == 200
    rows = re.findall(r"<tr><td class=\"n\">(\d+)</td><td class=\"n\">(\d+)</td>"
                      r"<td class=\"n\">(\d+)</td>", body)
    assert rows == [("0", "0", "3"), ("1", "0", "0")]
    assert "segment_bytes" in body


def test_every_value_from_records_is_escaped(log):
    with serve_console(log, sample_interval_s=None) as console:
        status, body, _ = get(console, "/records?topic=orders&partition=0")
    assert status == 200
    assert "<script>" not in body
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in body
    assert "&lt;b&gt;h&lt;/b&gt;: &lt;i&gt;" in body
    assert "<b>h</b>" not in body


def test_record_browser_formats_json_pretty_and_bytes_as_hex(log):
    with serve_console(log, sample_interval_s=None) as console:
        _, as_json, _ = get(console, "/records?topic=orders&partition=0&format=json")
        _, as_hex, _ = get(console, "/records?topic=orders&partition=0&format=hex")
    assert "{\n  &quot;items&quot;: [\n    &quot;a&quot;\n  ],\n  &quot;total&quot;: 12\n}" \
        in as_json
    assert "<pre>00 ff 10</pre>" in as_hex
    assert "<pre>6b 31</pre>" in as_hex  # the key k1


def test_record_browser_newest_from_offset_and_from_time(log):
    with serve_console(log, sample_interval_s=None) as console:
        _, newest, _ = get(console, "/records?topic=orders&partition=0&mode=newest&value=1")
        _, offset, _ = get(console, "/records?topic=orders&partition=0&mode=offset&value=1"
                                    "&limit=1")
        _, when, _ = get(console, "/records?topic=orders&partition=0&mode=time"
                                  "&value=2100-01-01T00:00:00Z")
        status, bad, _ = get(console, "/records?topic=orders&partition=0&mode=time&value=soon")
        missing, _, _ = get(console, "/records?topic=nope")
    offsets = lambda page: re.findall(r'<tr><td class="n">(\d+)</td>', page)  # noqa: E731
    assert offsets(newest) == ["2"]
    assert offsets(offset) == ["1"]
    assert offsets(when) == []  # nothing that late
    assert status == 400
    assert "ISO 8601" in bad
    assert missing == 400


def _group_with_lag(log, group: str = "billing", *, close: bool = True):
    consumer = log.consumer("orders", group_id=group, auto_offset_reset="earliest",
                            enable_auto_commit=False)
    consumer.poll(timeout_ms=0, max_records=1)
    consumer.commit()
    if close:
        consumer.close()
    return consumer


def test_groups_and_group_pages_show_state_members_assignment_and_lag(log):
    consumer = _group_with_lag(log, close=False)
    with serve_console(log, sample_interval_s=None, refresh_s=3) as console:
        _, groups, _ = get(console, "/groups")
        _, group, _ = get(console, "/group?id=billing")
        _, api, _ = get(console, "/api/groups")
    consumer.close()
    assert '<meta http-equiv="refresh" content="3">' in groups  # refreshing
    assert 'href="/group?id=billing"' in groups
    assert '<b id="state">Stable</b>' in group
    assert '<b id="total-lag">2</b>' in group
    assert "orders-0, orders-1" in group  # the member's assignment
    assert '<td>orders-0</td><td class="n">1</td><td class="n">3</td><td class="n">2</td>' \
        in group
    (described,) = json.loads(api)
    assert described["total_lag"] == 2
    assert described["members"][0]["assignment"] == [["orders", 0], ["orders", 1]]


def test_lag_chart_draws_the_sampled_history(log):
    _group_with_lag(log)
    with serve_console(log, sample_interval_s=None) as console:
        _, first, _ = get(console, "/group?id=billing")
        log.clock.advance(5_000)
        log.topic("orders").partition(0).append([(None, b"more")] * 4)
        _, second, _ = get(console, "/group?id=billing")
        _, history, _ = get(console, "/api/lag?group=billing")
    assert "needs two samples" in first
    assert '<svg id="lag-chart"' in second
    points = re.search(r'points="([^"]+)"', second).group(1).split()
    assert len(points) == 2
    assert [p["lag"] for p in json.loads(history)] == [2, 6]


def test_read_only_console_refuses_resets_and_shows_no_form(log):
    _group_with_lag(log)
    with serve_console(log, sample_interval_s=None) as console:
        _, page, _ = get(console, "/group?id=billing")
        status, body = post(console, {"csrf": console.csrf_token, "group": "billing",
                                      "topic": "orders", "strategy": "to-earliest"})
    assert 'id="reset"' not in page
    assert status == 403
    assert "read-only" in body
    assert log.describe_group("billing").offsets[0].committed_offset == 1


def test_reset_is_a_dry_run_until_executed_with_the_token(log):
    _group_with_lag(log)
    form = {"group": "billing", "topic": "orders", "strategy": "to-latest"}
    with serve_console(log, allow_writes=True, sample_interval_s=None) as console:
        _, page, _ = get(console, "/group?id=billing")
        assert f'name="csrf" value="{console.csrf_token}"' in page
        no_token, _ = post(console, form)
        wrong_token, _ = post(console, {**form, "csrf": "x" * 43, "execute": "1"})
        assert (no_token, wrong_token) == (403, 403)
        status, plan = post(console, {**form, "csrf": console.csrf_token})
        assert status == 200
        assert "Dry run: nothing was changed" in plan
        assert re.findall(r"<td>orders-(\d)</td><td class=\"n\">([-\d]+)</td>"
                          r"<td class=\"n\">(\d+)</td>", plan) == [("0", "1", "3"),
                                                                   ("1", "-", "0")]
        assert log.describe_group("billing").offsets[0].committed_offset == 1  # unchanged
        assert 'name="execute" value="1"' in plan
        status, done = post(console, {**form, "csrf": console.csrf_token, "execute": "1"})
    assert status == 200
    assert "Committed the new offsets" in done
    committed = {o.topic_partition: o.committed_offset
                 for o in log.describe_group("billing").offsets}
    assert committed == {TopicPartition("orders", 0): 3, TopicPartition("orders", 1): 0}


@pytest.mark.parametrize(("strategy", "value", "expected"), [
    ("to-earliest", "", 0), ("to-offset", "2", 2), ("to-offset", "99", 3),
    ("shift-by", "-5", 0), ("shift-by", "1", 2),
    ("to-datetime", "2000-01-01T00:00:00Z", 0), ("to-datetime", "2100-01-01T00:00:00", 3),
])
def test_reset_strategies_clamp_to_the_log(log, strategy, value, expected):
    _group_with_lag(log)
    with serve_console(log, allow_writes=True, sample_interval_s=None) as console:
        status, _ = post(console, {"group": "billing", "topic": "orders", "strategy": strategy,
                                   "value": value, "csrf": console.csrf_token, "execute": "1"})
    assert status == 200
    assert log.describe_group("billing").offsets[0].committed_offset == expected


def test_reset_is_refused_while_the_group_has_members_and_bad_input_changes_nothing(log):
    consumer = _group_with_lag(log, close=False)
    with serve_console(log, allow_writes=True, sample_interval_s=None) as console:
        token = console.csrf_token
        active, body = post(console, {"group": "billing", "topic": "orders",
                                      "strategy": "to-earliest", "csrf": token, "execute": "1"})
        consumer.close()
        bad_strategy, msg = post(console, {"group": "billing", "topic": "orders",
                                           "strategy": "to-moon", "csrf": token})
        bad_value, msg2 = post(console, {"group": "billing", "topic": "orders",
                                         "strategy": "to-offset", "value": "x", "csrf": token})
        no_topic, _ = post(console, {"group": "billing", "topic": "nope",
                                     "strategy": "to-earliest", "csrf": token})
    assert active == 400
    assert "inactive" in body
    assert (bad_strategy, bad_value, no_topic) == (400, 400, 400)
    assert "unknown reset strategy" in msg
    assert "needs an integer" in msg2
    assert log.describe_group("billing").offsets[0].committed_offset == 1


def test_requests_for_another_host_are_refused(log):
    with serve_console(log, sample_interval_s=None) as console:
        conn = http.client.HTTPConnection("127.0.0.1", console.port, timeout=30)
        conn.request("GET", "/", headers={"Host": "attacker.example:80"})
        response = conn.getresponse()
        conn.close()
        status, _, _ = get(console, "/no-such-page")
    assert response.status == 403
    assert status == 404


def test_background_sampler_stops_on_close(log):
    console = serve_console(log, sample_interval_s=0.01)
    console.close()
    console.close()  # idempotent
    with pytest.raises(OSError):
        urllib.request.urlopen(console.url, timeout=5)


def test_ui_command_serves_a_directory_until_terminated(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    with eventlog.open(tmp_path) as log_:
        log_.create_topic("orders")
    src = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
    child = subprocess.Popen([sys.executable, "-m", "eventlog", "ui", str(tmp_path),
                              "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    try:
        line = child.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", line).group(1)
        assert "read-only" in line
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read().decode()
        assert 'href="/topic?name=orders"' in body
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 0


def test_ui_command_names_a_missing_directory(tmp_path):
    import os
    import subprocess
    import sys

    src = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
    result = subprocess.run([sys.executable, "-m", "eventlog", "ui", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.path.abspath(src)})
    assert result.returncode == 2
    assert "no data directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_read_only_console_creates_no_offsets_topic_on_a_log_without_groups():
    with eventlog.open(clock=ManualClock()) as log_:
        log_.create_topic("orders")
        with serve_console(log_, sample_interval_s=None) as console:
            status, body, _ = get(console, "/groups")
            _, api, _ = get(console, "/api/groups")
        assert status == 200
        assert "No consumer groups yet" in body
        assert json.loads(api) == []
        assert log_.topics(include_internal=True) == ["orders"]
