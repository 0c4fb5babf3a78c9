"""Each bug switch, on its own, makes replies differ on its declared routes only."""

from __future__ import annotations

import pytest

from shadow.demo.bugs import BUG_NAMES, BUG_ROUTES, BUGS, UnknownBug, parse_bugs
from shadow.demo.routes import ROUTE_KEYS

from .lockstep import differing_routes, run_in_step, same_reply

SEED = 3
REQUESTS = 240

EXPECTED_NAMES = {
    "date_arith", "group_by", "order_by", "bool_render", "timestamp_render", "like_case",
    "insert_or_replace", "lastrowid", "avg_decimal", "empty_null", "burnt_sequence",
    "lost_commit", "order_tie", "numeric_string", "naive_aware", "having_alias",
    "audit_on_get",
}


def test_the_catalogue_names_every_bug_and_only_real_routes():
    assert BUG_NAMES == EXPECTED_NAMES == set(BUG_ROUTES)
    for bug in BUGS.values():
        assert bug.routes and bug.routes <= ROUTE_KEYS, bug.name
        assert bug.acts_on and bug.acts_on <= ROUTE_KEYS, bug.name


def test_parse_bugs_takes_all_none_lists_and_names_unknown_ones():
    assert parse_bugs("all") == BUG_NAMES
    assert parse_bugs("none") == parse_bugs("") == parse_bugs(None) == frozenset()
    assert parse_bugs("lastrowid, group_by") == {"lastrowid", "group_by"}
    assert parse_bugs(["order_by"]) == {"order_by"}
    with pytest.raises(UnknownBug, match="nope, typo"):
        parse_bugs("lastrowid,typo,nope")


@pytest.mark.parametrize("bug", sorted(EXPECTED_NAMES))
async def test_one_bug_shows_on_its_routes_and_nowhere_else(builds, bug):
    legacy, candidate = await builds(bugs=bug)
    calls_l, calls_c = await run_in_step(str(legacy.make_url("/")), str(candidate.make_url("/")),
                                         users=6, requests=REQUESTS, seed=SEED)

    differing = differing_routes(calls_l, calls_c)
    declared = BUG_ROUTES[bug]
    assert set(differing) & declared, f"{bug}: no mismatch on {sorted(declared)}"
    assert set(differing) <= declared, f"{bug}: mismatches outside: {set(differing) - declared}"


async def test_lost_commit_answers_every_write_correctly_and_loses_it(builds):
    legacy, candidate = await builds(bugs="lost_commit")
    calls_l, calls_c = await run_in_step(str(legacy.make_url("/")), str(candidate.make_url("/")),
                                         users=6, requests=REQUESTS, seed=SEED)

    writes = [(a, b) for a, b in zip(calls_l, calls_c) if a.key == "POST /api/journal"]
    assert writes and all(same_reply(a, b) for a, b in writes)
    assert sum(a.status == 201 for a, _ in writes) >= 3
    read_backs = [(a, b) for a, b in zip(calls_l, calls_c)
                  if a.key in ("GET /api/journal/{id}", "PUT /api/journal/{id}")
                  and a.status == 200]
    assert any(b.status == 404 for _, b in read_backs)
