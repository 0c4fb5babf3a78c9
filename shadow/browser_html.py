"""The markup of the mismatch browser: one function per page part, every value escaped.

Values from the store reach the markup only through `e()` (HTML text and attribute
escaping) or `q()` (percent-encoding for a URL query, then escaping). The pages carry no
script and load nothing: the CSS is inline, the trend sparkline is inline SVG. Samples
hold only what shadow.privacy let through: structure, kept values and fingerprints.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import orjson

from shadow.compare.jsonpath import Path

MAX_DEPTH = 64
"""JSON nested deeper than this is shown on one line."""

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;gap:1.2rem;
 align-items:center;flex-wrap:wrap}
header a{color:#cfe3ff}header .brand{font-weight:600;color:#fff;text-decoration:none}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.8rem;font-size:12px;
 background:#e4e7ec;color:#1d2330}
.ok{background:#c9f0d3;color:#0d4f21}.bad{background:#ffe0c2;color:#7a3a00}
.mode{background:#cfe3ff;color:#0b3a75}
main{padding:1rem;max-width:1500px}h1{font-size:20px;margin:.2rem 0 .8rem}
h2{font-size:16px;margin:1.2rem 0 .5rem}h3{font-size:14px;margin:.2rem 0 .4rem}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #e4e7ec;padding:.3rem .5rem;text-align:left;
 vertical-align:top}
th{background:#eef0f4;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12px/1.45 ui-monospace,monospace}
pre{background:#fff;border:1px solid #e4e7ec;padding:.5rem;overflow:auto;margin:0;
 white-space:pre-wrap;word-break:break-all}
pre .ln{display:block}pre mark.ln{background:#ffe08a;box-shadow:inset 3px 0 #d97706}
tr.d td{background:#fff3c4}.muted{color:#6b7280}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.side{background:#fff;border:1px solid #d5d9e0;padding:.6rem;min-width:0}
form.filters{display:flex;gap:.6rem;align-items:end;margin-bottom:.8rem}
label{display:flex;flex-direction:column;font-size:12px;color:#4b5563}
select,button{font:inherit;padding:.2rem .4rem}
svg.spark{background:#eef0f4}svg.spark rect{fill:#3b82f6}.kind{font-family:ui-monospace,monospace}
.links{font-size:12px;margin:.3rem 0 .8rem}.links a{margin-right:.8rem}
.banner{padding:.5rem .8rem;margin:0 0 .8rem;border-radius:.3rem}
input,textarea{font:inherit;padding:.2rem .4rem}textarea{font:12px ui-monospace,monospace;width:100%}
form.logout{margin-left:auto;display:flex;gap:.4rem;align-items:center}
.note{color:#7a3a00;font-size:12px}p.bad{color:#7a3a00}
"""


def e(value: Any) -> str:
    """`value` as escaped HTML text, safe in element content and in quoted attributes."""
    return html.escape(str(value), quote=True)


def q(value: Any) -> str:
    """`value` percent-encoded for a URL query and escaped for an attribute."""
    return e(quote(str(value), safe=""))


def when(ts: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(ts)))
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def compact(value: Any) -> str:
    """A value as one line of JSON (text that is not JSON-serialisable as its str)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def page(title: str, status: dict[str, Any], body: str) -> str:
    """A whole document: header with mode and gate, then `body` (already markup)."""
    gate = status.get("gate")
    if gate is None:
        gate_html = ""
    else:
        word, cls = ("holds", "ok") if gate["passed"] else ("refuses", "bad")
        reasons = "; ".join(gate["reasons"][:3]) + (" …" if len(gate["reasons"]) > 3 else "")
        gate_html = (f'<span>gate <span class="badge {cls}" id="gate" title="{e(reasons)}">'
                     f"{e(word)}</span></span>")
    roles = f"primary {e(status['primary'])}"
    if status.get("shadow"):
        roles += f" · shadow {e(status['shadow'])}"
    rollback = status.get("rollback")
    rollback_html = f'<span class="muted">{e(rollback)}</span>' if rollback else ""
    banners = "".join(f'<p class="banner bad" id="banner-{e(name)}">{e(text)}</p>'
                      for name, text in status.get("banners", ()))
    waiting = status.get("noise_pending", 0)
    pending = (f' <span class="badge bad" id="noise-pending" title="learnt noise rules '
               f'waiting for your word">{e(waiting)} to confirm</span>' if waiting else "")
    if status.get("csrf"):  # a browser session: who, and the way out
        rollback_html += (f'<form class="logout" method="post" action="/logout">'
                          f'<input type="hidden" name="csrf" value="{e(status["csrf"])}">'
                          f'<span>{e(status.get("who", ""))}</span> '
                          '<button type="submit" id="logout">Log out</button></form>')
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · shadow</title><style>{CSS}</style></head><body><header>"
        '<a class="brand" href="/">shadow · mismatch browser</a>'
        f'<span>mode <span class="badge mode" id="mode">{e(status["mode"])}</span></span>'
        f"{gate_html}<span>{roles}</span>{rollback_html}"
        f'<span><a href="/noise" id="noise-link">noise</a>{pending} · '
        '<a href="/api/status">status</a> · <a href="/metrics">metrics</a></span>'
        f"</header><main>{banners}{body}</main></body></html>\n")


def sparkline(counts: Iterable[Any], minutes: int | None = None) -> str:
    """24 counts as a tiny inline SVG bar chart, oldest first: one bar per hour, or per
    `minutes` minutes when given."""
    values = [max(0, int(c)) for c in counts][-24:]
    top = max(values, default=0) or 1
    bars = []
    for i, c in enumerate(values):
        h = max(1, round(16 * c / top)) if c else 0
        bars.append(f'<rect x="{i * 4}" y="{18 - h}" width="3" height="{h}"/>')
    span = "per hour, last 24 hours" if minutes is None else f"per {minutes} min"
    label = f"{span}: " + " ".join(map(str, values))
    return (f'<svg class="spark" width="96" height="18" viewBox="0 0 96 18" role="img" '
            f'aria-label="{e(label)}"><title>{e(label)}</title>{"".join(bars)}</svg>')


def table(head: Iterable[str], rows: Iterable[str], empty: str) -> str:
    """A table of pre-rendered `<tr>` rows, or a line saying `empty`."""
    body = "".join(rows)
    if not body:
        return f'<p class="muted">{e(empty)}</p>'
    cols = "".join(f"<th>{e(h)}</th>" for h in head)
    return f"<table><thead><tr>{cols}</tr></thead><tbody>{body}</tbody></table>"


def options(values: Iterable[str], chosen: str | None, any_label: str) -> str:
    out = [f'<option value="">{e(any_label)}</option>']
    for v in values:
        sel = " selected" if v == chosen else ""
        out.append(f'<option value="{e(v)}"{sel}>{e(v)}</option>')
    return "".join(out)


def json_lines(value: Any, path: Path = (), depth: int = 0, prefix: str = "",
               suffix: str = "") -> list[tuple[str, Path]]:
    """Pretty-printed JSON as (line, path of the value the line belongs to)."""
    pad = "  " * depth
    if isinstance(value, (dict, list)) and value and depth < MAX_DEPTH:
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        out = [(f"{pad}{prefix}{opening}", path)]
        for i, (step, item) in enumerate(items):
            label = compact(str(step)) + ": " if isinstance(value, dict) else ""
            out += json_lines(item, (*path, step), depth + 1, label,
                              "," if i < len(items) - 1 else "")
        out.append((f"{pad}{closing}{suffix}", path))
        return out
    return [(f"{pad}{prefix}{compact(value)}{suffix}", path)]


def body_block(text: str, marked: set[Path], block_id: str) -> str:
    """A body: JSON pretty-printed with the lines under a path in `marked` highlighted,
    anything else as plain text."""
    if not text:
        return f'<p class="muted" id="{e(block_id)}">(empty body)</p>'
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return f'<pre id="{e(block_id)}">{e(text)}</pre>'
    lines = []
    for line, path in json_lines(doc):
        hit = any(path[:n] in marked for n in range(len(path) + 1))
        tag = "mark" if hit else "span"
        lines.append(f'<{tag} class="ln">{e(line)}</{tag}>')
    return f'<pre id="{e(block_id)}">{"".join(lines)}</pre>'


def header_table(headers: Iterable[Any], marked: set[str]) -> str:
    rows = []
    for pair in headers:
        name, value = (list(pair) + ["", ""])[:2]
        cls = ' class="d"' if str(name).lower() in marked else ""
        rows.append(f"<tr{cls}><td><code>{e(name)}</code></td><td><code>{e(value)}</code>"
                    "</td></tr>")
    return table(("header", "value"), rows, "no headers")


def stored_body(record: Any, marked: set[Path], block_id: str) -> str:
    """A body as a sample stores it (shadow.privacy.bodies): JSON and form fields as their
    shape, with the lines under a path in `marked` highlighted; text and binary bodies as
    their size and fingerprint, since their content is never stored."""
    if isinstance(record, str):
        return body_block(record, marked, block_id)
    if not isinstance(record, dict) or record.get("form") == "empty":
        return body_block("", marked, block_id)
    size = f'{e(record.get("bytes", 0))} bytes'
    if record.get("encoding"):
        size += f', {e(record["encoding"])}-encoded'
    form = record.get("form")
    if form in ("json", "form"):
        caption = f'<p class="muted">{e(form)} · {size}</p>'
        return caption + body_block(compact(record.get("shape")), marked, block_id)
    lines = f' · {e(record["lines"])} lines' if "lines" in record else ""
    return (f'<p class="muted" id="{e(block_id)}">{e(form)} · {size}{lines} · fingerprint '
            f'<code>{e(record.get("fingerprint", ""))}</code> · content not stored</p>')


def difference_row(d: dict[str, Any]) -> str:
    """One row of the differences table: both sides as stored; where a value was not
    kept, its type and fingerprint and the note that the values are not stored."""
    types, fps = d.get("types") or ["", ""], d.get("fingerprints") or ["", ""]
    cells = []
    for i, side in enumerate(("primary", "shadow")):
        cell = f'<code>{e(compact(d.get(side)))}</code>'
        if d.get("note"):
            cell += (f'<br><span class="muted">{e(types[i])} · <code>{e(fps[i])}</code>'
                     "</span>")
        cells.append(f'<td class="{side}">{cell}</td>')
    note = f'<br><span class="note">{e(d["note"])}</span>' if d.get("note") else ""
    return (f'<tr class="d"><td class="kind">{e(d["kind"])}</td><td><code>{e(d["path"])}'
            f'</code></td>{"".join(cells)}<td>{e(d.get("detail", ""))}{note}</td></tr>')
