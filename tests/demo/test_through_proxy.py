"""Each classic migration bug, switched on alone, is reported by the proxy on exactly the
routes it touches; with no bug on, the proxy reports nothing. The random values both
builds put in replies (error ids, CSRF tokens) are learnt from the traffic as drawn fresh
per reply (shadow.compare.fresh); while they are being learnt, a comparison that differs
only there is held, not recorded (shadow.compare.held), so they are no mismatch even
during the cold start. With no bug on, nothing at all is reported, audit rows included.
With a bug on, its error path writes audit rows on the candidate alone, and the audit
summary that reads them differs on a route the bug does not touch (`_audited`).

Row verification is on, as in `shadow demo`: a bug is also caught at the write that
stored it wrong (`Bug.acts_on`), not only where a later reply shows it."""

from __future__ import annotations

import pytest

from shadow.demo.bugs import BUGS
from shadow.demo.runner import DemoResult, collect, demo_stack
from shadow.demo.traffic import run_traffic
from shadow.verdict import Comparison

REQUESTS = 320
"""The demo's config holds no comparison rule: the shadow serves each request after the
primary, by seconds on a loaded machine, and each build stamps rows with its own clock
(timestamps are compared by meaning) and salts its password hashes (compared by scheme),
which is what these tests prove holds."""


async def _run(pg_dsn, tmp_path, bugs: str,
               seen: list[Comparison] | None = None) -> DemoResult:
    """The traffic through the demo stack; every comparison also goes to `seen`."""
    async with demo_stack(bugs=bugs, dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        if seen is not None:
            runtime.verifier.listeners.append(seen.append)
        url = f"http://127.0.0.1:{runtime.proxy_port}"
        report = await run_traffic(url, users=4, requests=REQUESTS, seed=11)
        assert report.errors == 0
        return await collect(runtime, DemoResult(requests=report.requests), top=200)


def _audited(signature: dict) -> bool:
    """What a bug shows through the audit log: the rows its error path wrote on the
    candidate alone, and the audit summary's counts, which every later reader of the
    summary sees (on a route the bug does not touch)."""
    return signature["path"].startswith("audit_log[") or (
        (signature["method"], signature["route"]) == ("GET", "/api/admin/audit")
        and signature["path"].startswith("$.actions"))


def _fresh(result: DemoResult) -> set[str]:
    """The places learnt as drawn fresh per reply that hide differences now. Beside
    another difference (a bug's), such a place's difference is recorded with it."""
    return {p["path"] for p in result.fresh if p["hiding"]}


def _flagged(result: DemoResult) -> set[str]:
    """Routes with a shadow error or a difference that is not the audit log's echo of
    one (`_audited`)."""
    errors = {route for route, row in result.verdicts.items() if row.get("shadow_error")}
    return errors | {f"{s['method']} {s['route']}" for s in result.signatures
                     if not _audited(s)}


async def test_a_faithful_port_gives_no_mismatch_but_noise(pg_dsn, tmp_path):
    result = await _run(pg_dsn, tmp_path, "none")
    compared = sum(row.get("match", 0) + row.get("mismatch", 0)
                   for row in result.verdicts.values())
    assert compared >= REQUESTS - 10, result.verdicts  # nearly every exchange compared
    assert result.signatures == [] and result.rows == {}, result.signatures[:5]
    assert not [r for r in result.verdicts.values() if r.get("shadow_error")], result.verdicts
    assert _fresh(result) == {"$.csrf_token", "$.error_id"}, result.fresh


async def test_the_random_values_of_a_faithful_port_are_no_mismatch_even_in_the_cold_start(
        pg_dsn, tmp_path):
    """The fresh CSRF token of every `GET /api/csrf` and the random `error_id` of every
    error reply (which writes an audit row, so A/A calibration never sends it twice) are
    learnt from the traffic with no rule. While the evidence gathers (`noise.min_fresh`
    values and a repeated request or three routes), a comparison that differs only there
    is held; once learnt, held and later differences there are hidden and counted as
    noise: not one mismatch at either place, from the first exchange on."""
    result = await _run(pg_dsn, tmp_path, "none")
    places = {p["path"]: p for p in result.fresh}
    for path in ("$.csrf_token", "$.error_id"):
        place = places[path]
        assert place["hiding"] and place["how"] == "fresh" and place["hidden"] > 0, place
        assert not [s for s in result.signatures if s["path"] == path], path
    assert len(places["$.error_id"]["routes"]) >= 3


# After a burnt users id the legacy and candidate user ids differ by one. The session
# cookie (signed by the primary) carries the legacy id, so the shadow acts for another
# user from then on; the mismatch spreads to every route that reads per-user data.
# Rewriting requests through the key map does not reach inside a signed cookie.
CASCADES = {"burnt_sequence": "a signed session cookie carries the primary's user id"}


# Caught only in what reads write (see `_audited`), so by its own test below.
ROWS_OF_READS = {"audit_on_get"}


@pytest.mark.parametrize("bug", [
    pytest.param(b, marks=pytest.mark.xfail(strict=True, reason=CASCADES[b])) if b in CASCADES
    else b for b in sorted(set(BUGS) - ROWS_OF_READS)])
async def test_each_bug_is_caught_where_it_shows_and_nowhere_else(pg_dsn, tmp_path, bug):
    result = await _run(pg_dsn, tmp_path, bug)
    flagged = _flagged(result)
    expected = set(BUGS[bug].routes) | set(BUGS[bug].acts_on)
    assert flagged, f"{bug}: no mismatch reported at all"
    assert flagged <= expected, f"{bug}: mismatches outside its routes: {flagged - expected}"
    assert result.signatures and all(s["route"] for s in result.signatures)


async def test_an_audit_row_the_legacy_build_never_wrote_is_an_extra_row(pg_dsn, tmp_path):
    """`audit_on_get` changes no reply but the audit summary's, which reads make
    uncertain (`_audited`): the evidence is the candidate's extra audit rows themselves,
    whose action a sample holds as a keyed fingerprint (no string is kept by default)."""
    async with demo_stack(bugs="audit_on_get", dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        url = f"http://127.0.0.1:{runtime.proxy_port}"
        assert (await run_traffic(url, users=4, requests=REQUESTS, seed=11)).errors == 0
        result = await collect(runtime, DemoResult(), top=200)
        view_profile = runtime.privacy.shaper.placeholder("view_profile")
        extra = []
        for signature in result.signatures:
            if (signature["kind"], signature["path"]) == ("row_extra", "audit_log[*]"):
                extra += await runtime.store.samples(signature=signature["signature"],
                                                     limit=100)
    assert result.rows.get("audit_log", {}).get("row_extra", 0) > 0, result.rows
    actions = {d["shadow"].get("action") for sample in extra
               for d in sample["sample"]["differences"]
               if d["kind"] == "row_extra" and isinstance(d["shadow"], dict)}
    assert view_profile in actions, actions


@pytest.mark.parametrize("bug", sorted(CASCADES))
async def test_a_cascading_bug_is_still_caught_where_it_happens(pg_dsn, tmp_path, bug):
    result = await _run(pg_dsn, tmp_path, bug)
    assert set(BUGS[bug].acts_on) <= _flagged(result)


async def test_a_201_that_was_never_committed_is_a_missing_row(pg_dsn, tmp_path):
    result = await _run(pg_dsn, tmp_path, "lost_commit")
    assert result.rows.get("journal_entries", {}).get("row_missing", 0) > 0
    fresh = _fresh(result)
    [row] = [s for s in result.signatures if s["route"] == "/api/journal"
             and s["method"] == "POST" and not _audited(s) and s["path"] not in fresh]
    assert row["kind"] == "row_missing" and row["path"] == "journal_entries[*]"
    # the reply itself looked right: no body or status difference on that route but
    # the random error ids of refused writes while they were being learnt
    assert not [s for s in result.signatures if s["route"] == "/api/journal"
                and s["method"] == "POST" and s["kind"] in ("body", "status")
                and s["path"] not in fresh]


async def test_a_faithful_port_writes_the_same_rows(pg_dsn, tmp_path):
    """The same rows in every table but audit_log, whose rows reads write (`_audited`), in
    both legacy files: the badges of the achievements file were written and compared."""
    seen: list[Comparison] = []
    result = await _run(pg_dsn, tmp_path, "none", seen)
    assert {table: kinds for table, kinds in result.rows.items() if table != "audit_log"} == {}
    for side in ("primary", "shadow"):
        written = {change.table for c in seen for change in getattr(c, side).rows}
        assert {"achievements", "moods", "points"} <= written, (side, written)
