"""The noise page of the browser: what A/A calibration learnt, for the operator to confirm.

    GET  /noise            every route with its A/A pairs (or "calibrating"), and each
                           learnt place with its evidence: in how many of the route's pairs
                           it varied, whether it hides differences now, how many it hid;
                           an accept/reject form per place; then the route `*`: places
                           learnt from values drawn fresh per reply, with their evidence
    POST /noise            the form: route, path, state, reason, the session's CSRF token;
                           303 back to the page, or the page with the error

The forms are shown to an admin session only, like the findings triage form: shadow.auth
lets their POST through only from an admin session carrying that session's CSRF token,
and a form the browser says came from another site is refused here. The decision is the
one `POST /api/noise` and `shadow noise accept|reject` make: kept across restarts and
audit-logged under the session's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from shadow.admin_cutover import noise_decision
from shadow.auth import Identity, identity_of
from shadow.browser import HEADERS, page_status
from shadow.browser_findings import same_site
from shadow.browser_html import e, page, table
from shadow.compare.noise import ACCEPTED, LEARNT, MIN_SHARE, REJECTED
from shadow.cutover import BadRequest

if TYPE_CHECKING:
    from shadow.app import Runtime

_FIELDS = ("route", "path", "state", "reason")
_BADGE = {LEARNT: "bad", ACCEPTED: "ok", REJECTED: "mode"}


def effect(place: dict[str, Any], pairs: int, calibrating: bool = False) -> str:
    """What a place does to comparisons now, in words."""
    if place["state"] == REJECTED:
        return "compared: rejected"
    if place["hiding"]:
        return "hidden" if place["state"] == ACCEPTED else "hidden until you decide"
    if place.get("how") == "fresh":
        return "not hidden: " + (place["refused"] or "evidence incomplete")
    if calibrating:
        return "not hidden yet: calibrating"
    return f"not hidden: varied in fewer than {MIN_SHARE:.0%} of {pairs} pairs"


def _form(route: str, place: dict[str, Any], identity: Identity | None) -> str:
    if identity is None or identity.role != "admin":
        return '<span class="muted readonly">the admin decides</span>'
    return (
        '<form class="filters noise-form" method="post" action="/noise">'
        f'<input type="hidden" name="csrf" value="{e(identity.csrf)}">'
        f'<input type="hidden" name="route" value="{e(route)}">'
        f'<input type="hidden" name="path" value="{e(place["path"])}">'
        '<label>reason<input name="reason" class="reason" size="28" required></label>'
        f'<button type="submit" name="state" value="{ACCEPTED}" class="accept">Accept</button>'
        f'<button type="submit" name="state" value="{REJECTED}" class="reject">Reject</button>'
        "</form>")


def noise_page(listing: list[dict[str, Any]], min_pairs: int, share: float,
               identity: Identity | None, message: str = "") -> str:
    """The page: one section per route, one row per learnt place with its evidence."""
    alert = f'<p class="banner bad" id="message">{e(message)}</p>' if message else ""
    intro = (
        "<p>Each safe request has a "
        f"{share:.0%} chance of being sent a second time to the primary's own build; what "
        "differs between those two replies (an A/A pair) varies by itself and is no "
        "evidence about the migration. A place that varied in at least "
        f"{MIN_SHARE:.0%} of its route's pairs hides differences there, counted as noise. "
        "Accept it to keep hiding it; reject it to compare it again. A route is "
        f"calibrating until it has {min_pairs} pairs.</p>")
    if identity is None or identity.role != "admin":
        intro += ('<p class="muted" id="noise-readonly">Deciding needs the admin token: '
                  "log out and log in with it.</p>")
    if not listing:
        return (f"{alert}<h1>Learnt noise</h1>{intro}<p id=\"none\">No A/A pairs yet: "
                "calibration needs safe requests (GET, HEAD) to arrive.</p>")
    sections = []
    for r in listing:
        if r.get("how") == "fresh":
            sections.append(_fresh_section(r, identity))
            continue
        pairs = r["pairs"]
        state = (f'<span class="badge bad calibrating">calibrating: {e(pairs)} of '
                 f'{e(min_pairs)} pairs</span>' if r["calibrating"]
                 else f'<span class="badge ok">{e(pairs)} A/A pairs</span>')
        unstable = (f' <span class="badge bad unstable">status varied in {e(r["unstable_status"])}'
                    " pairs: never learnt</span>" if r["unstable_status"] else "")
        rows = [_row(r["route"], p, f'<td class="num varied">{e(p["varied"])} of {e(pairs)} '
                     f'({p["share"]:.0%})</td>', effect(p, pairs, r["calibrating"]), identity)
                for p in r["places"]]
        head = ("place", "kind", "varied in", "state", "now", "differences hidden", "decide")
        sections.append(
            f'<section class="route" data-route="{e(r["route"])}"><h2>{e(r["route"])} '
            f'{state}{unstable}</h2>'
            + table(head, rows, "Nothing varied between its two replies.") + "</section>")
    return (f"{alert}<h1>Learnt noise</h1>{intro}<div class=\"links\">JSON: "
            '<a href="/api/noise">/api/noise</a></div>' + "".join(sections))


def _row(route: str, p: dict[str, Any], evidence: str, now: str,
         identity: Identity | None) -> str:
    """One learnt place: path, kind, the `evidence` cell, state, what it does `now`, how
    many differences it hid, and the form to decide it."""
    return (f'<tr class="place" data-path="{e(p["path"])}"><td><code>{e(p["path"])}</code></td>'
            f'<td class="kind">{e(p["kind"])}</td>{evidence}'
            f'<td><span class="badge state {_BADGE.get(p["state"], "")}">{e(p["state"])}'
            f'</span></td><td class="effect">{e(now)}</td>'
            f'<td class="num hidden">{e(p["hidden"])}</td>'
            f'<td>{_form(route, p, identity)}</td></tr>')


def _fresh_section(r: dict[str, Any], identity: Identity | None) -> str:
    """The places learnt on every route from values the primary draws fresh per reply."""
    rows = [_row(r["route"], p, f'<td class="evidence">{e(p["evidence"])}</td>', effect(p, 0),
                 identity) for p in r["places"]]
    head = ("place", "kind", "evidence", "state", "now", "differences hidden", "decide")
    return (f'<section class="route fresh" data-route="{e(r["route"])}"><h2>{e(r["route"])} '
            '<span class="badge mode">every route: values drawn fresh per reply</span></h2>'
            "<p class=\"muted\">Learnt without a second request: the primary's values at the "
            "place are tokens of one shape that never repeat, a repeated request got a new "
            "one, and the shadow's differ in the same shape. Hidden only where both values "
            "have that shape, in the status classes it was seen in.</p>"
            + table(head, rows, "") + "</section>")


def add_routes(app: web.Application, runtime: Runtime) -> None:
    """Add the noise page to the admin application of `runtime`."""

    def show(request: web.Request, message: str = "", status: int = 200) -> web.Response:
        body = noise_page(runtime.noise.listing(), runtime.noise.min_pairs,
                          runtime.config.noise.share, identity_of(request), message)
        return web.Response(text=page("Learnt noise", page_status(runtime, request), body),
                            status=status, content_type="text/html", headers=HEADERS)

    async def listing(request: web.Request) -> web.Response:
        return show(request)

    async def decide(request: web.Request) -> web.Response:
        if not same_site(request):
            return show(request, "refused: the form came from another site", 403)
        form = await request.post()
        fields: dict[str, Any] = {k: form.get(k, "") for k in _FIELDS}
        if not all(isinstance(v, str) for v in fields.values()):
            return show(request, "refused: a form field is not text", 400)
        identity = identity_of(request)
        try:
            await noise_decision(runtime, fields["route"], fields["path"], fields["state"],
                                 fields["reason"], identity.name if identity else None)
        except KeyError:
            return show(request, "not changed: no such learnt place on that route", 404)
        except BadRequest as exc:
            return show(request, f"not changed: {exc}", 400)
        raise web.HTTPSeeOther("/noise")

    app.router.add_get("/noise", listing)
    app.router.add_post("/noise", decide)
