"""The mismatch browser on the admin listener: server-rendered, read-only HTML.

    GET /signatures           signatures, most frequent first (?route= ?kind= filters)
    GET /signatures?sig=SIG   one signature: counts, hourly trend, its samples
    GET /samples/{id}         one sample: the request, both replies side by side with the
                              differing lines marked, the differences, the row changes
                              (?finding=ID adds previous/next among that finding's samples)

The index (`/`) is the findings list of shadow.browser_findings.

Each page links to the JSON it shows (/api/signatures, /api/mismatches, /api/samples/{id}).
A malformed parameter is 400, an unknown signature or sample 404. Markup is in
shadow.browser_html; everything shown went through shadow.privacy before it was stored.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from shadow.browser_html import (
    compact, difference_row, e, header_table, options, page, q, sparkline, stored_body, table,
    when,
)
from shadow.auth import identity_of
from shadow.compare.jsonpath import Path, parse_path
from shadow.rows.crossed import CROSSED
from shadow.verdict import Kind, Verdict, signature

if TYPE_CHECKING:
    from shadow.app import Runtime

KINDS = (*(k.value for k in Kind), str(Verdict.RACED))
"""The kinds a signature has: a difference's kind, or `raced` (the differences of an
exchange recorded raced, unverified, kept apart from the mismatches)."""
MAX_PARAM = 2048
LIST_LIMIT = 500
SAMPLE_LIMIT = 50
_SAMPLE_ID = re.compile(r"[0-9]{1,15}")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the browser answers with an error page (400 or 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_of(runtime: Runtime) -> dict[str, Any]:
    """Mode, roles, and — when the cutover controller runs — gate, rollback safety and
    the route templates of the gate window."""
    roles, label = runtime.modes.current, runtime.config.label
    out: dict[str, Any] = {"mode": str(roles.mode), "primary": label(roles.primary),
                           "shadow": label(roles.shadow) if roles.shadow else None,
                           "routes": list(runtime.routes.templates) if runtime.routes else []}
    out["banners"] = banners(runtime)
    noise = getattr(runtime, "noise", None)
    out["noise_pending"] = noise.pending() if noise is not None else 0
    cutover = getattr(runtime, "cutover", None)
    if cutover is not None:
        status = cutover.status()
        out["gate"] = {"passed": status["gate"]["passed"], "reasons": status["gate"]["reasons"]}
        out["routes"] += [r["route"].partition(" ")[2] for r in status["gate"]["routes"]]
        if not status["rollback"]["clean"]:
            out["rollback"] = status["rollback"]["summary"]
    return out


LAG_BANNER_SECONDS = 30.0
"""Replay lag shown on every page: the same bound as the ShadowFallingBehind alert."""


def banners(runtime: Runtime) -> list[tuple[str, str]]:
    """(id, text) of the conditions every page must show: a diverged shadow, a shadow lane
    more than half full (comparisons lag behind the traffic), a shadow replaying far behind
    the primary, rows written outside the proxy."""
    out = []
    rows = getattr(runtime, "rows", None)
    cutover = getattr(runtime, "cutover", None)
    if (rows is not None and rows.diverged) or (cutover is not None and cutover.stats.diverged):
        out.append(("diverged", "The shadow is diverged: its rows cannot match the primary's "
                                "until the data is re-copied and `shadow rows resync` is run."))
    lane = getattr(runtime, "lane", None)
    size = runtime.config.mirror.queue_size
    if lane is not None and lane.depth * 2 >= size:
        out.append(("lag", f"The shadow lags: {lane.depth} of {size} shadow requests queued; "
                           "findings and the gate trail the traffic."))
    verifier = getattr(runtime, "verifier", None)
    if verifier is not None and verifier.lag.current > LAG_BANNER_SECONDS:
        out.append(("replay-lag", f"The shadow replays {verifier.lag.current:.0f} s behind the "
                                  "primary: its answers arrive late and the lane may drop work."))
    attribution = getattr(getattr(runtime, "writes", None), "attribution", None)
    if attribution is not None and attribution.outside.total:
        outside = attribution.outside
        where = "; ".join(f"{runtime.config.label(b)}: " + ", ".join(
            f"{t} {n}" for t, n in sorted(tables.items()))
            for b, tables in sorted(outside.counts.items()))
        out.append(("outside", f"{outside.total} row changes were made outside the proxy "
                               f"({where}); no route is charged with them and they are not "
                               f"verified. Past {outside.limit} the shadow counts as diverged."))
    return out


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if len(value) > MAX_PARAM:
        raise Refused(400, f"the {name!r} parameter is longer than {MAX_PARAM} characters")
    return value


def signature_list(rows: list[dict], routes: list[str], route: str, kind: str) -> str:
    """The list page: filter form (route and kind chosen) and one line per signature."""
    form = (
        '<form class="filters" method="get" action="/signatures">'
        f'<label>route<select name="route" id="route">{options(routes, route, "any route")}'
        f'</select></label><label>kind<select name="kind" id="kind">'
        f'{options(KINDS, kind, "any kind")}</select></label>'
        '<button type="submit" id="filter">Filter</button> <a href="/signatures">clear</a>'
        '</form>')
    api = "/api/signatures" + (f"?route={q(route)}" if route else "")
    if kind:
        api += ("&" if route else "?") + f"kind={q(kind)}"
    body = [f'<tr class="sig"><td>{e(r["route"])}</td><td>{e(r["method"])}</td>'
            f'<td class="kind">{e(r["kind"])}</td>'
            f'<td><a href="/signatures?sig={q(r["signature"])}"><code>{e(r["path"])}</code>'
            f'</a></td><td class="num count">{e(r["count"])}</td><td>{e(when(r["first_seen"]))}'
            f'</td><td>{e(when(r["last_seen"]))}</td><td>{sparkline(r.get("trend", ()))}</td>'
            f'<td class="num">{e(r.get("samples", 0))}</td></tr>' for r in rows]
    head = ("route", "method", "kind", "path", "count", "first seen", "last seen",
            "24 h", "samples")
    return (f"<h1>Mismatch signatures</h1>{form}"
            f'<div class="links">JSON: <a href="{api}">{e(api)}</a></div>'
            + table(head, body, "No mismatch signatures (for these filters)."))


def signature_detail(sig: dict, samples: list[dict]) -> str:
    """One signature's page: its counts and trend, and the samples that show it."""
    rows = []
    for s in samples:
        sample = s["sample"]
        shadow = sample.get("shadow") or {}
        rows.append(
            f'<tr class="sample"><td><a href="/samples/{e(s["id"])}">#{e(s["id"])}</a></td>'
            f'<td>{e(when(s["created_at"]))}</td><td><code>{e(sample["exchange"]["target"])}'
            f'</code></td><td>{e(sample["primary"]["status"])}</td>'
            f'<td>{e(shadow.get("status", ""))}</td>'
            f'<td class="num">{len(sample.get("differences", ()))}</td></tr>')
    api = f"/api/mismatches?signature={q(sig['signature'])}"
    return (
        f'<h1>{e(sig["method"])} {e(sig["route"])}</h1>'
        f'<p><span class="kind">{e(sig["kind"])}</span> at <code>{e(sig["path"])}</code></p>'
        f'<p>{e(sig["count"])} mismatching exchanges · first {e(when(sig["first_seen"]))} · '
        f'last {e(when(sig["last_seen"]))} · {sparkline(sig.get("trend", ()))}</p>'
        f'<div class="links">JSON: <a href="{api}">samples</a>'
        f'<a href="/api/signatures?route={q(sig["route"])}">signatures of this route</a></div>'
        "<h2>Samples that show it (newest first)</h2>"
        + table(("sample", "received", "request", "primary status", "shadow status",
                 "differences"), rows, "No samples kept for this signature."))


def _row_key(change: dict) -> str:
    key = change.get("key") or []
    parts = key if isinstance(key, list) else [key]
    return f'{change.get("table", "")}[{",".join(compact(k) for k in parts)}]'


def _side(obs: dict | None, name: str, body_paths: set[Path], headers: set[str],
          status_differs: bool) -> str:
    if obs is None:
        return f'<section class="side {name}"><h3>{e(name)}</h3><p class="muted">none</p></section>'
    status = e(obs.get("status"))
    if status_differs:
        status = f"<mark>{status}</mark>"
    error = f' · error <code>{e(obs["error"])}</code>' if obs.get("error") else ""
    return (f'<section class="side {name}" id="{name}"><h3>{e(name)} · {e(obs.get("label"))}'
            f'</h3><p>status <b class="status">{status}</b> · {e(obs.get("elapsed_ms"))} ms'
            f'{error}</p>{header_table(obs.get("headers", ()), headers)}<h3>body</h3>'
            f'{stored_body(obs.get("body"), body_paths, name + "-body")}</section>')


def _rows(obs: dict | None, name: str, marked: list[str]) -> str:
    rows = []
    for c in (obs or {}).get("rows", ()):
        key = _row_key(c)
        cls = ' class="d"' if any(p == key or p.startswith(key + ".") for p in marked) else ""
        rows.append(f'<tr{cls}><td>{e(c.get("op"))}</td><td><code>{e(key)}</code></td>'
                    f'<td><code>{e(compact(c.get("before")))}</code></td>'
                    f'<td><code>{e(compact(c.get("after")))}</code></td></tr>')
    return (f'<section class="side"><h3>{e(name)} rows</h3>'
            + table(("op", "row", "before", "after"), rows, "no rows changed") + "</section>")


def _translated(notes) -> str:
    """The ids of the shadow's reply read as the primary's before the replies were
    compared, and what said so."""
    if not notes:
        return ""
    sources = {"group": "pairs of this exchange's group's rows", "key map": "the key map",
               CROSSED: "moved to the primary's place: rows overlapping writes numbered in "
                        "another order on each side"}
    rows = [f'<tr><td><code>{e(t["path"])}</code></td><td>{e(t["table"])}</td>'
            f'<td><code>{e(compact(t["shadow"]))}</code></td>'
            f'<td><code>{e(compact(t["read_as"]))}</code></td>'
            f'<td>{e(sources.get(t["source"], t["source"]))}</td></tr>' for t in notes]
    return ("<h3>Shadow ids read as the primary's before comparing</h3>"
            + table(("where", "table", "shadow said", "read as", "from"), rows, ""))


_UNSETTLED = {"moved": "a write ran while it was sent again",
              "failed": "a build gave no usable reply when it was sent again",
              "busy": "writes never stopped long enough to send it again",
              "full": "too many reads were waiting for their recheck",
              "stopped": "the proxy stopped before it could be sent again",
              "mode": "the mode changed the builds' roles before it could be sent again"}


def _recheck(kept: dict | None) -> str:
    """How the recheck of a read that raced writes ended (shadow.rechecker), and the fresh
    pair's differences when it confirmed the mismatch."""
    if not kept:
        return ""
    fresh = kept.get("differences") or []
    said = ("sent again to both builds once no write ran, their fresh replies still "
            "differed" + (":" if fresh else "") if kept["outcome"] == "confirmed"
            else f'recorded as it was: {_UNSETTLED.get(kept.get("why"), kept.get("why"))}')
    return (f'<h3>Rechecked: {e(kept["outcome"])}</h3><p>the read overlapped '
            f'{e(kept.get("writes_overlapped", 0))} write(s); {e(said)}</p>'
            + (table(("kind", "where", "primary", "shadow", "detail"),
                     [difference_row(d) for d in fresh], "") if fresh else ""))


_RACED = {"resend_writes": "sending it again may write rows (an audit row) in production",
          "policy": "its route may not be sent again",
          "unsettled": "its recheck found no moment to settle it"}


def _raced(kept: dict | None) -> str:
    """Why a sample's exchange was recorded raced: unverified, not a mismatch."""
    if not kept:
        return ""
    return (f'<h3>Unverified: raced writes</h3><p>the replies differed while '
            f'{e(kept.get("writes_overlapped", 0))} write(s) overlapped the read, and the '
            f'proxy could not settle it: {e(_RACED.get(kept.get("why"), kept.get("why")))}. '
            'The shadow cannot replay which of those writes the primary saw, so this is '
            'no evidence either way; the same difference on a read no write overlapped is '
            'a mismatch.</p>')


def sample_detail(row: dict) -> str:
    """One sample's page (a store row with its `sample`): the differences, both
    replies side by side with differing lines marked, row changes, the request."""
    s = row["sample"]
    ex, diffs = s["exchange"], s.get("differences", [])
    body_paths: set[Path] = set()
    for d in diffs:
        if d["kind"] == Kind.BODY:
            try:
                body_paths.add(parse_path(d["path"]))
            except ValueError:
                pass
    headers = {str(d["path"]).lower() for d in diffs if d["kind"] == Kind.HEADER}
    status_differs = any(d["kind"] == Kind.STATUS for d in diffs)
    row_paths = [str(d["path"]) for d in diffs if str(d["kind"]).startswith("row_")]
    diff_rows = [difference_row(d) for d in diffs]
    has_rows = any((s.get(side) or {}).get("rows") for side in ("primary", "shadow"))
    rows_html = ('<h2>Row changes</h2><div class="sides">'
                 f'{_rows(s["primary"], "primary", row_paths)}'
                 f'{_rows(s.get("shadow"), "shadow", row_paths)}</div>') if has_rows else ""
    logs = s.get("logs") or {}
    logs_html = ("<h2>What the builds logged meanwhile</h2>" + "".join(
        f'<h3>{e(label)}</h3>' + (f'<pre class="log">{e(chr(10).join(lines))}</pre>'
                                  if lines else "<p>nothing</p>")
        for label, lines in logs.items())) if logs else ""
    return (
        f'<h1>Sample #{e(row["id"])}: {e(ex["method"])} {e(ex["route"])}</h1>'
        f'<p>verdict <b>{e(s.get("verdict"))}</b> · exchange <code>{e(ex["id"])}</code> · '
        f'received {e(when(ex.get("at")))} · normalised by the bridge: {e(s.get("normalised", 0))}'
        f'</p><div class="links"><a href="/signatures?sig={q(row["signature"])}">signature</a>'
        f' JSON: <a href="/api/samples/{e(row["id"])}">this sample</a></div>'
        "<h2>Differences</h2>"
        + table(("kind", "where", "primary", "shadow", "detail"), diff_rows, "none")
        + _translated(s.get("translated") or ()) + _raced(s.get("raced"))
        + _recheck(s.get("recheck"))
        + '<h2>Replies</h2><div class="sides">'
        f'{_side(s["primary"], "primary", body_paths, headers, status_differs)}'
        f'{_side(s.get("shadow"), "shadow", body_paths, headers, status_differs)}</div>'
        + rows_html + logs_html
        + f'<h2>Request</h2><p><code>{e(ex["method"])} {e(ex["target"])}</code></p>'
        f'<div class="sides"><div>{header_table(ex.get("headers", ()), set())}</div>'
        f'<div>{stored_body(ex.get("body"), set(), "request-body")}</div></div>')


def page_status(runtime: Runtime, request: web.Request) -> dict[str, Any]:
    """What every page's header shows: the proxy's state and, for a browser session, who
    is logged in and the session's CSRF token (for the logout form)."""
    status = status_of(runtime)
    identity = identity_of(request)
    if identity is not None:
        status["who"], status["csrf"] = identity.name, identity.csrf
    return status


def add_routes(app: web.Application, runtime: Runtime) -> None:
    """Add the browser's pages to the admin application of `runtime`."""
    Handler = Callable[[web.Request, dict[str, Any]], Awaitable[tuple[str, str]]]

    def html_page(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The handler's (title, body) in a whole page; Refused as an error page."""
        async def respond(request: web.Request) -> web.Response:
            status = page_status(runtime, request)
            try:
                title, body = await handler(request, status)
                code = 200
            except Refused as exc:
                title, body, code = "Not shown", f"<h1>{e(exc)}</h1>", exc.status
            return web.Response(text=page(title, status, body), status=code,
                                content_type="text/html", headers=HEADERS)
        return respond

    async def index(request: web.Request, status: dict[str, Any]) -> tuple[str, str]:
        route, kind = _param(request, "route"), _param(request, "kind")
        if kind and kind not in KINDS:
            raise Refused(400, f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        await runtime.store.flush()
        rows = await runtime.store.signatures(route=route or None, kind=kind or None,
                                              limit=LIST_LIMIT)
        routes = sorted({*status["routes"], *(r["route"] for r in rows), route} - {""})
        return "Signatures", signature_list(rows, routes, route, kind)

    async def one_signature(request: web.Request, status: dict[str, Any]) -> tuple[str, str]:
        if "sig" not in request.query:
            return await index(request, status)
        sig = _param(request, "sig")
        method, route, kind, _ = (sig.split(" ", 3) + ["", "", "", ""])[:4]
        if not (method and route and kind):
            raise Refused(400, "which signature? /signatures?sig=METHOD%20ROUTE%20KIND%20PATH")
        await runtime.store.flush()
        rows = await runtime.store.signatures(route=route, kind=kind, limit=2000)
        found = next((r for r in rows if r["signature"] == sig), None)
        if found is None:
            raise Refused(404, "no such signature")
        samples = await runtime.store.samples(signature=sig, limit=SAMPLE_LIMIT)
        if not samples:  # a sample is kept under its first signature; look for others
            nearby = await runtime.store.samples(route=route, limit=SAMPLE_LIMIT * 4)
            samples = [s for s in nearby if s["method"] == method and any(
                signature(method, route, d["kind"], d["path"]) == sig
                for d in s["sample"].get("differences", ()))][:SAMPLE_LIMIT]
        return sig, signature_detail(found, samples)

    async def sample(request: web.Request, status: dict[str, Any]) -> tuple[str, str]:
        raw = request.match_info["id"]
        if not _SAMPLE_ID.fullmatch(raw):
            raise Refused(400, "sample ids are integers")
        await runtime.store.flush()
        row = await runtime.store.sample(int(raw))
        if row is None:
            raise Refused(404, "no such sample")
        nav = ""
        finding = _param(request, "finding")
        if finding:
            if not _SAMPLE_ID.fullmatch(finding):
                raise Refused(400, "finding ids are integers")
            from shadow.browser_findings import sample_nav
            from shadow.findings.queries import neighbours

            nav = sample_nav(int(finding), *await neighbours(runtime.store, int(finding), int(raw)))
        return f"Sample #{raw}", nav + sample_detail(row)

    app.router.add_get("/signatures", html_page(one_signature))
    app.router.add_get("/samples/{id}", html_page(sample))
