"""With no bugs on, the candidate answers exactly like the legacy build."""

from __future__ import annotations

from shadow.demo.routes import ROUTE_KEYS

from .lockstep import differing_routes, run_in_step, same_reply

SEED = 7
REQUESTS = 400


async def test_same_traffic_gets_the_same_replies_from_both_builds(builds):
    legacy, candidate = await builds(bugs="none")
    calls_l, calls_c = await run_in_step(str(legacy.make_url("/")), str(candidate.make_url("/")),
                                         users=6, requests=REQUESTS, seed=SEED)

    assert len(calls_l) == len(calls_c) == REQUESTS
    for a, b in zip(calls_l, calls_c):
        assert (a.method, a.target, a.body) == (b.method, b.target, b.body), a.index
        assert (a.backend, b.backend) == ("legacy", "candidate")
        assert a.status != 500, a
        assert same_reply(a, b), f"#{a.index} {a.key}: {a.reply!r} != {b.reply!r}"
    assert differing_routes(calls_l, calls_c) == {}

    assert {call.key for call in calls_l} == ROUTE_KEYS, "the run must exercise every route"
    assert {200, 201, 204, 400, 401, 403, 404, 409} <= {call.status for call in calls_l}
    assert sum(call.set_cookie != () for call in calls_l) >= 10
