"""The findings pages of the browser: the index is the findings list, each finding has a
page with its evidence and its triage form.

    GET  /                       findings (search, filters, sorting, paging; as /api/findings)
    GET  /findings/{id}          one finding: cause, counts, trend, versions, cascade links,
                                 signatures, samples, request shape, dashboard, triage form
    POST /findings/{id}/state    the triage form: state, reason, the session's CSRF token;
                                 303 back to the finding, or the page with the error

The triage form is shown to an admin session only; shadow.auth lets its POST through
only from an admin session carrying that session's CSRF token, and the form is also
refused when the browser says it came from another site (Sec-Fetch-Site, Origin). Markup
helpers are in shadow.browser_html; everything shown was shaped by shadow.privacy before
it was stored.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from shadow.admin_findings import finding_id, parse_query
from shadow.auth import Identity, identity_of
from shadow.browser import HEADERS, page_status
from shadow.browser_html import compact, e, options, page, q, sparkline, table, when
from shadow.findings import queries
from shadow.findings.group import KINDS
from shadow.findings.recorder import NotFound
from shadow.findings.triage import STATES, TriageError

if TYPE_CHECKING:
    from shadow.app import Runtime

FILTERS = ("method", "route", "kind", "table", "state", "version")
_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def same_site(request: web.Request) -> bool:
    """False when the browser says the form was sent from another site: by Sec-Fetch-Site,
    or by an Origin naming another origin (the pages send no referrer, so a browser may
    send `Origin: null` for our own forms)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin in (None, "null") or origin == f"{request.scheme}://{request.host}"


def _badge(state: str) -> str:
    cls = {"new": "bad", "acknowledged": "mode", "expected": "ok", "noise": "", "fixed": "ok"}
    return f'<span class="badge state {cls.get(state, "")}">{e(state)}</span>'


def _cause(r: dict) -> str:
    return f'<span class="kind">{e(r["kind"])}</span> <code>{e(r["what"])}</code>'


def _versions(r: dict) -> str:
    return ", ".join(e(v["version"]) for v in r.get("versions", ()) if v["version"]) or "—"


def findings_list(rows: list[dict], total: int, query: queries.Query, params: dict[str, str],
                  values: dict[str, list[str]]) -> str:
    """The index: search and filter form, one line per finding, paging links."""
    choices = {"method": values.get("method", []), "route": values.get("route", []),
               "kind": list(KINDS), "table": values.get("table", []), "state": list(STATES),
               "version": values.get("version", [])}
    selects = "".join(
        f'<label>{name}<select name="{name}" id="{name}">'
        f'{options(choices[name], getattr(query, name), "any")}</select></label>'
        for name in FILTERS)
    sorts = options(list(queries.SORTS), query.sort, "count")
    form = (
        '<form class="filters" method="get" action="/">'
        f'<label>search<input name="q" id="q" value="{e(query.q)}" size="24"></label>'
        f'{selects}<label>sort<select name="sort" id="sort">{sorts}</select></label>'
        f'<label>order<select name="order" id="order">'
        f'{options(["desc", "asc"], "desc" if query.descending else "asc", "desc")}'
        '</select></label><button type="submit" id="filter">Filter</button>'
        ' <a href="/">clear</a></form>')
    minutes = rows[0]["trend_minutes"] if rows else 1
    body = [
        f'<tr class="finding" data-id="{e(r["id"])}"><td><a href="/findings/{e(r["id"])}">'
        f'#{e(r["id"])}</a></td><td>{_badge(r["state"])}</td><td>{e(r["method"])}</td>'
        f'<td>{e(r["route"])}</td><td class="cause">{_cause(r)}</td>'
        f'<td class="num count">{e(r["count"])}</td><td class="num">{e(r["signature_count"])}'
        f'</td><td class="num samples">{e(r["samples"])}</td><td>{e(when(r["first_seen"]))}'
        f'</td><td>{e(when(r["last_seen"]))}</td><td>{sparkline(r["trend"], minutes)}</td>'
        f'<td>{_versions(r)}</td><td>'
        + " ".join(f'<a href="/findings/{e(c)}">#{e(c)}</a>' for c in r["caused_by_ids"])
        + "</td></tr>" for r in rows]
    head = ("#", "state", "method", "route", "cause", "exchanges", "signatures", "samples",
            "first seen", "last seen", "trend", "versions", "probably caused by")
    shown = f"{query.offset + 1}–{query.offset + len(rows)} of {total}" if rows else f"0 of {total}"
    nav = []
    if query.offset > 0:
        back = {**params, "offset": str(max(0, query.offset - query.limit))}
        nav.append(f'<a id="prev" href="/?{e(urlencode(back))}">previous page</a>')
    if query.offset + len(rows) < total:
        more = {**params, "offset": str(query.offset + query.limit)}
        nav.append(f'<a id="next" href="/?{e(urlencode(more))}">next page</a>')
    api = "/api/findings" + (f"?{urlencode(params)}" if params else "")
    return (f'<h1>Findings</h1>{form}<div class="links"><span id="shown">{e(shown)}</span> '
            f'{" ".join(nav)} JSON: <a href="{e(api)}">{e(api)}</a> '
            '<a href="/signatures">all signatures</a> <a href="/signatures?kind=raced" '
            'id="raced">raced reads (unverified, no finding)</a></div>'
            + table(head, body, "No findings (for these filters)."))


def request_shape(sample: dict | None) -> str:
    """A stored request as text to copy: method, target, headers and body as privacy
    stored them, without the headers that carry credentials."""
    if not sample:
        return ""
    ex = sample["sample"]["exchange"]
    lines = [f'{ex["method"]} {ex["target"]}']
    for pair in ex.get("headers", ()):
        name, value = (list(pair) + ["", ""])[:2]
        if str(name).lower() not in _SECRET_HEADERS:
            lines.append(f"{name}: {value}")
    return "\n".join(lines) + _body_text(ex.get("body"))


def _body_text(record: Any) -> str:
    """A stored body record as the text after a request's headers ('' when empty)."""
    if isinstance(record, str):
        return "\n\n" + record if record else ""
    if not isinstance(record, dict) or record.get("form") in (None, "empty"):
        return ""
    if record["form"] in ("json", "form"):
        return "\n\n" + compact(record.get("shape"))
    return (f'\n\n«{record["form"]} · {record.get("bytes", 0)} bytes · '
            f'{record.get("fingerprint", "")} · content not stored»')


def triage_form(f: dict, identity: Identity | None) -> str:
    """The triage form for an admin session; for anyone else, how to get it."""
    if identity is None or identity.role != "admin":
        return ('<p class="muted" id="triage-readonly">Changing the state needs the admin '
                "token: log out and log in with it.</p>")
    return (
        f'<form class="filters" id="triage" method="post" action="/findings/{e(f["id"])}/state">'
        f'<input type="hidden" name="csrf" value="{e(identity.csrf)}">'
        f'<label>state<select name="state" id="state">{options(STATES, f["state"], "choose")}'
        '</select></label><label>reason<input name="reason" id="reason" size="40" required>'
        '</label><button type="submit" id="change">Change</button></form>')


def finding_detail(f: dict, samples: list[dict], identity: Identity | None,
                   grafana: str | None, message: str = "") -> str:
    """One finding's page."""
    versions = [f'<tr><td>{e(v["version"] or "unknown")}</td><td class="num">{e(v["count"])}'
                f'</td><td>{e(when(v["first_seen"]))}</td><td>{e(when(v["last_seen"]))}</td></tr>'
                for v in f["versions"]]
    caused = [f'<li class="cause-link">probably caused by <a href="/findings/{e(c["id"])}">'
              f'#{e(c["id"])} {e(c["title"])}</a> ({e(c["state"])}): {e(c["evidence"])} '
              f'<span class="muted">({e(c["count"])} exchanges)</span></li>'
              for c in f["caused_by"]]
    explains = [f'<li>probably explains <a href="/findings/{e(c["id"])}">#{e(c["id"])} '
                f'{e(c["title"])}</a> ({e(c["count"])} exchanges)</li>' for c in f["explains"]]
    sigs = [f'<tr class="signature"><td>{"follows from it" if s["dependent"] else "first-order"}'
            f'</td><td><a href="/signatures?sig={q(s["signature"])}"><code>{e(s["signature"])}'
            f'</code></a></td><td class="num">{e(s["count"])}</td></tr>' for s in f["signatures"]]
    kept = [f'<tr class="sample"><td><a href="/samples/{e(s["id"])}?finding={e(f["id"])}">'
            f'#{e(s["id"])}</a></td><td>{e(when(s["created_at"]))}</td><td><code>'
            f'{e(s["sample"]["exchange"]["target"])}</code></td>'
            f'<td>{e(s.get("candidate_version") or "")}</td></tr>' for s in samples]
    dashboard = ""
    if grafana:
        url = f"{grafana}/d/shadow-route/shadow-route?" + urlencode({"var-route": f["route"]})
        dashboard = f'<a id="dashboard" href="{e(url)}">route dashboard (Grafana)</a>'
    shape = request_shape(samples[0] if samples else None)
    state_line = f'{_badge(f["state"])} {e(f["reason"])}'
    if f["state_at"]:
        state_line += (f' <span class="muted">since {e(when(f["state_at"]))}, candidate '
                       f'version {e(f["state_version"] or "unknown")}</span>')
    rule = (f'<h2>Proposed ignore rule</h2><p>Add to the config to ignore it:</p>'
            f'<pre id="rule">{e(f["rule"])}</pre>') if f["rule"] else ""
    alert = f'<p class="banner bad" id="message">{e(message)}</p>' if message else ""
    return (
        f'{alert}<h1>#{e(f["id"])} {e(f["method"])} {e(f["route"])}</h1>'
        f'<p class="cause">{_cause(f)}</p><p id="state-line">{state_line}</p>'
        f'<p>{e(f["count"])} mismatching exchanges · {e(f["signature_count"])} signatures · '
        f'{e(f["samples"])} samples · first {e(when(f["first_seen"]))} · last '
        f'{e(when(f["last_seen"]))} · {sparkline(f["trend"], f["trend_minutes"])}</p>'
        f'<div class="links">{dashboard} JSON: <a href="/api/findings/{e(f["id"])}">this '
        f'finding</a></div>'
        + (f'<ul id="caused-by">{"".join(caused)}</ul>' if caused else "")
        + (f'<ul id="explains">{"".join(explains)}</ul>' if explains else "")
        + "<h2>Triage</h2>" + triage_form(f, identity) + rule
        + "<h2>Candidate versions</h2>"
        + table(("version", "exchanges", "first seen", "last seen"), versions, "none")
        + "<h2>Signatures</h2>"
        + table(("role", "signature", "exchanges"), sigs, "none")
        + "<h2>Samples (newest first)</h2>"
        + table(("sample", "kept", "request", "candidate version"), kept, "No samples kept.")
        + ('<h2>Request (as stored, credentials left out)</h2><textarea id="request-shape" '
           f'readonly rows="8" cols="100">{e(shape)}</textarea>' if shape else ""))


def sample_nav(fid: int, previous: int | None, following: int | None) -> str:
    """Previous/next links between the samples of one finding, for the sample page."""
    links = [f'<a href="/findings/{e(fid)}">finding #{e(fid)}</a>']
    if previous is not None:
        links.append(f'<a id="prev-sample" href="/samples/{e(previous)}?finding={e(fid)}">'
                     "previous sample</a>")
    if following is not None:
        links.append(f'<a id="next-sample" href="/samples/{e(following)}?finding={e(fid)}">'
                     "next sample</a>")
    return f'<div class="links">{" ".join(links)}</div>'


def add_routes(app: web.Application, runtime: Runtime) -> None:
    """Add the findings pages to the admin application of `runtime`."""

    def html(request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
        return web.Response(text=page(title, page_status(runtime, request), body), status=status,
                            content_type="text/html", headers=HEADERS)

    async def index(request: web.Request) -> web.Response:
        query, problems = parse_query(request.query)
        if problems:
            return html(request, "Not shown", f"<h1>{e('; '.join(problems))}</h1>", 400)
        await runtime.store.flush()
        rows, total = await queries.listing(runtime.store, query, time.time())
        params = {k: v for k, v in request.query.items() if v and k != "offset"}
        values = await queries.filter_values(runtime.store)
        return html(request, "Findings", findings_list(rows, total, query, params, values))

    async def show(request: web.Request, fid: int | None, message: str = "",
                   status: int = 200) -> web.Response:
        if fid is None:
            return html(request, "Not shown", "<h1>finding ids are integers</h1>", 400)
        await runtime.store.flush()
        found = await queries.one(runtime.store, fid, time.time())
        if found is None:
            return html(request, "Not shown", "<h1>no such finding</h1>", 404)
        kept = await queries.samples(runtime.store, fid)
        body = finding_detail(found, kept, identity_of(request),
                              runtime.config.findings.grafana_url, message)
        return html(request, f"#{fid} {found['key']}", body, status)

    async def one(request: web.Request) -> web.Response:
        return await show(request, finding_id(request.match_info["id"]))

    async def change(request: web.Request) -> web.Response:
        fid = finding_id(request.match_info["id"])
        if fid is None:
            return html(request, "Not shown", "<h1>finding ids are integers</h1>", 400)
        if not same_site(request):
            return await show(request, fid, "refused: the form came from another site", 403)
        form = await request.post()
        fields: dict[str, Any] = {k: form.get(k, "") for k in ("state", "reason")}
        if not all(isinstance(v, str) for v in fields.values()):
            return await show(request, fid, "refused: a form field is not text", 400)
        try:
            await runtime.findings.triage(fid, fields["state"], fields["reason"],
                                          identity_of(request).name)
        except NotFound:
            return html(request, "Not shown", "<h1>no such finding</h1>", 404)
        except TriageError as exc:
            return await show(request, fid, f"not changed: {exc}", 400)
        raise web.HTTPSeeOther(f"/findings/{fid}")

    app.router.add_get("/", index)
    app.router.add_get("/findings/{id}", one)
    app.router.add_post("/findings/{id}/state", change)
