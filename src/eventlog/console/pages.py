"""HTML of the console's pages. Every value that comes from the log (topic and group
names, keys, values, headers, member and client ids, error messages) goes through
``h()``; links are built with ``urlencode`` and then escaped too. The pages carry no
script at all, and the server sends a Content-Security-Policy forbidding scripts, so
a value that slipped past escaping still could not run."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from .resets import STRATEGIES, ResetRow
from .views import FORMATS, TopicRow, format_time_ms, render_bytes, total_lag

__all__ = ["error_page", "group_page", "groups_page", "records_page", "reset_page",
           "topic_page", "topics_page"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none}header b{margin-right:1em}
main{padding:1em 1.5em}table{border-collapse:collapse;background:#fff;margin:.5em 0 1.5em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eaeef2}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{margin:0;white-space:pre-wrap;word-break:break-all;max-width:60em}
.mode{color:#57606a;font-size:.9em}.warn{color:#9a6700}.err{color:#cf222e}
form.inline{display:inline}fieldset{background:#fff;border:1px solid #d0d7de}
"""


def h(value: Any) -> str:
    """``value`` as HTML text or attribute content: & < > " ' escaped."""
    return html.escape(str(value), quote=True)


def _link(path: str, label: Any, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f'<a href="{h(path + ("?" + query if query else ""))}">{h(label)}</a>'


def layout(title: str, body: str, *, writable: bool, refresh_s: int | None = None) -> str:
    refresh = (f'<meta http-equiv="refresh" content="{int(refresh_s)}">'
               if refresh_s else "")
    mode = "read-write" if writable else "read-only"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{h(title)} · eventlog</title>{refresh}<style>{_STYLE}</style></head>"
        "<body><header><b>eventlog</b>"
        f'{_link("/", "Topics")}{_link("/groups", "Groups")}'
        f'<span class="mode">{mode}</span></header>'
        f'<main><h1 id="title">{h(title)}</h1>{body}</main></body></html>\n'
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str,
           numeric: frozenset[int] = frozenset()) -> str:
    """A table; ``rows`` hold already-escaped HTML cells."""
    head = "".join(f"<th>{h(c)}</th>" for c in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table id="{h(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def topics_page(rows: list[TopicRow], *, writable: bool) -> str:
    table = _table(
        ("topic", "partitions", "records", "size", "internal"),
        ((_link("/topic", t.name, name=t.name), str(len(t.partitions)), str(t.records),
          h(_size(t.size_bytes)), "yes" if t.internal else "") for t in rows),
        table_id="topics", numeric=frozenset({1, 2, 3}),
    )
    return layout("Topics", table if rows else "<p>No topics yet.</p>", writable=writable)


def topic_page(topic: TopicRow, *, writable: bool) -> str:
    parts = _table(
        ("partition", "start offset", "end offset", "records", "size", "segments", ""),
        ((str(p.partition), str(p.start_offset), str(p.end_offset),
          str(p.end_offset - p.start_offset), h(_size(p.size_bytes)), str(p.segments),
          _link("/records", "browse", topic=topic.name, partition=p.partition))
         for p in topic.partitions),
        table_id="partitions", numeric=frozenset({0, 1, 2, 3, 4, 5}),
    )
    config = _table(("config", "value"),
                    ((h(k), h(v)) for k, v in sorted(topic.config.items())),
                    table_id="config")
    return layout(f"Topic {topic.name}", parts + "<h2>Configuration</h2>" + config,
                  writable=writable)


def groups_page(descriptions: list[Any], *, writable: bool, refresh_s: int) -> str:
    table = _table(
        ("group", "state", "members", "partitions", "total lag"),
        ((_link("/group", d.group_id, id=d.group_id), h(d.state), str(len(d.members)),
          str(len(d.offsets)), str(total_lag(d))) for d in descriptions),
        table_id="groups", numeric=frozenset({2, 3, 4}),
    )
    body = table if descriptions else "<p>No consumer groups yet.</p>"
    return layout("Consumer groups", body, writable=writable, refresh_s=refresh_s)


def lag_chart(samples: Sequence[tuple[float, int]], *, width: int = 640,
              height: int = 160) -> str:
    """An inline SVG line of total lag over time (``samples``: (time_ms, lag))."""
    if len(samples) < 2:
        return '<p id="lag-chart">Lag history: sampling (the chart needs two samples).</p>'
    t0, t1 = samples[0][0], samples[-1][0]
    top = max(max(lag for _t, lag in samples), 1)
    span = max(t1 - t0, 1.0)
    pad = 30
    points = " ".join(
        f"{pad + (t - t0) / span * (width - 2 * pad):.1f},"
        f"{height - pad - lag / top * (height - 2 * pad):.1f}" for t, lag in samples
    )
    return (
        f'<svg id="lag-chart" width="{width}" height="{height}" role="img" '
        f'aria-label="total lag over the last {span / 1000:.0f} s" '
        f'xmlns="http://www.w3.org/2000/svg" style="background:#fff;border:1px solid #d0d7de">'
        f'<polyline fill="none" stroke="#0969da" stroke-width="2" points="{points}"/>'
        f'<text x="4" y="14" font-size="11">{top}</text>'
        f'<text x="4" y="{height - pad + 4}" font-size="11">0</text>'
        f'<text x="{pad}" y="{height - 8}" font-size="11">'
        f"{h(format_time_ms(int(t0)))}</text>"
        f'<text x="{width - pad}" y="{height - 8}" font-size="11" text-anchor="end">'
        f"{h(format_time_ms(int(t1)))}</text></svg>"
    )


def group_page(d: Any, samples: Sequence[tuple[float, int]], *, writable: bool,
               csrf: str, refresh_s: int, topics: Sequence[str]) -> str:
    summary = (f'<p>State <b id="state">{h(d.state)}</b>, generation {h(d.generation)}, '
               f"protocol {h(d.protocol or '-')}, {len(d.members)} member(s), "
               f'total lag <b id="total-lag">{total_lag(d)}</b>.</p>')
    members = _table(
        ("member", "client", "instance", "assignment"),
        ((h(m.member_id), h(m.client_id), h(m.group_instance_id or ""),
          h(", ".join(f"{tp.topic}-{tp.partition}" for tp in m.assignment)))
         for m in d.members),
        table_id="members",
    )
    owners = {tp: m.member_id for m in d.members for tp in m.assignment}
    offsets = _table(
        ("partition", "committed", "end offset", "lag", "owner"),
        ((h(f"{o.topic_partition.topic}-{o.topic_partition.partition}"),
          "-" if o.committed_offset is None else str(o.committed_offset), str(o.end_offset),
          "-" if o.lag is None else str(o.lag), h(owners.get(o.topic_partition, "")))
         for o in d.offsets),
        table_id="offsets", numeric=frozenset({1, 2, 3}),
    )
    body = (summary + "<h2>Members</h2>" + members + "<h2>Lag per partition</h2>" + offsets
            + "<h2>Total lag over time</h2>" + lag_chart(samples))
    if writable:
        body += _reset_form(d.group_id, csrf, topics)
    return layout(f"Group {d.group_id}", body, writable=writable, refresh_s=refresh_s)


def _reset_form(group_id: str, csrf: str, topics: Sequence[str]) -> str:
    options = "".join(f'<option value="{h(t)}">{h(t)}</option>' for t in topics)
    strategies = "".join(f'<option value="{h(s)}">{h(s)}</option>' for s in STRATEGIES)
    return (
        '<h2>Reset offsets</h2><form id="reset" method="post" action="/reset"><fieldset>'
        f'<input type="hidden" name="csrf" value="{h(csrf)}">'
        f'<input type="hidden" name="group" value="{h(group_id)}">'
        f'<label>topic <select name="topic">{options}</select></label> '
        f'<label>strategy <select name="strategy">{strategies}</select></label> '
        '<label>value <input name="value" placeholder="offset, shift or ISO time"></label> '
        '<button type="submit">Dry run</button> <span class="mode">'
        "(shows the plan; nothing changes until you execute it)</span></fieldset></form>"
    )


def reset_page(group_id: str, topic: str, strategy: str, value: str, rows: list[ResetRow],
               *, executed: bool, csrf: str) -> str:
    table = _table(
        ("partition", "current offset", "new offset"),
        ((h(f"{r.topic_partition.topic}-{r.topic_partition.partition}"),
          "-" if r.current is None else str(r.current), str(r.new)) for r in rows),
        table_id="plan", numeric=frozenset({1, 2}),
    )
    if executed:
        body = (f'<p id="outcome">Committed the new offsets of group <b>{h(group_id)}</b>.</p>'
                + table + _link("/group", "back to the group", id=group_id))
        return layout(f"Offsets reset: {group_id}", body, writable=True)
    fields = "".join(
        f'<input type="hidden" name="{name}" value="{h(v)}">'
        for name, v in (("csrf", csrf), ("group", group_id), ("topic", topic),
                        ("strategy", strategy), ("value", value), ("execute", "1"))
    )
    body = (f'<p id="outcome" class="warn">Dry run: nothing was changed. Group '
            f"<b>{h(group_id)}</b>, topic <b>{h(topic)}</b>, {h(strategy)} "
            f"{h(value)}.</p>" + table
            + f'<form id="execute" method="post" action="/reset">{fields}'
            '<button type="submit">Execute</button></form>')
    return layout(f"Reset plan: {group_id}", body, writable=True)


def records_page(query: Any, records: list[Any], start: int, end: int, *, writable: bool,
                 mode: str, value: str) -> str:
    fmt_options = "".join(
        f'<option value="{f}"{" selected" if f == query.fmt else ""}>{f}</option>'
        for f in FORMATS)
    modes = "".join(
        f'<option value="{m}"{" selected" if m == mode else ""}>{label}</option>'
        for m, label in (("newest", "newest N"), ("offset", "from offset"),
                         ("time", "from time (ISO)")))
    form = (
        '<form id="browse" method="get" action="/records"><fieldset>'
        f'<input type="hidden" name="topic" value="{h(query.topic)}">'
        f'<label>partition <input name="partition" size="4" value="{h(query.partition)}">'
        f'</label> <label>show <select name="mode">{modes}</select></label> '
        f'<label>value <input name="value" value="{h(value)}"></label> '
        f'<label>limit <input name="limit" size="4" value="{h(query.limit)}"></label> '
        f'<label>format <select name="format">{fmt_options}</select></label> '
        '<button type="submit">Show</button></fieldset></form>'
    )
    table = _table(
        ("offset", "timestamp", "key", "value", "headers"),
        ((str(r.offset), h(format_time_ms(r.timestamp_ms)),
          f"<pre>{h(render_bytes(r.key, query.fmt))}</pre>",
          f"<pre>{h(render_bytes(r.value, query.fmt))}</pre>",
          f"<pre>{h(_headers(r.headers, query.fmt))}</pre>") for r in records),
        table_id="records", numeric=frozenset({0}),
    )
    info = (f'<p>Partition {h(query.topic)}-{h(query.partition)} holds offsets '
            f"{start} to {end - 1 if end > start else start} (end offset {end}); "
            f"showing {len(records)} record(s).</p>")
    title = f"Records of {query.topic}-{query.partition}"
    return layout(title, form + info + table, writable=writable)


def _headers(headers: Sequence[tuple[str, bytes | None]], fmt: str) -> str:
    return "\n".join(f"{k}: {render_bytes(v, 'hex' if fmt == 'hex' else 'text')}"
                     for k, v in headers)


def error_page(status: int, message: str, *, writable: bool) -> str:
    return layout(f"Error {status}", f'<p class="err" id="error">{h(message)}</p>',
                  writable=writable)
