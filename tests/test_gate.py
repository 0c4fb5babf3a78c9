"""The cutover gate, without I/O: the Wilson bound, compared exchanges still needed, every reason."""

from __future__ import annotations

import pytest

from shadow.gate import (
    GateStats, RouteCounts, Thresholds, evaluate, compared_needed, wilson_upper,
)
from shadow.verdict import Verdict

STRICT = Thresholds(min_compared=1000, max_mismatch_rate=0.001, max_shadow_error_rate=0.01)


def stats_of(**routes: RouteCounts) -> GateStats:
    """Stats whose keys are given as METHOD__template_with_underscores (for brevity)."""
    stats = GateStats(since=1000.0)
    for key, counts in routes.items():
        method, _, path = key.partition("__")
        stats.routes[f"{method} /{path.replace('_', '/')}"] = counts
    return stats


def test_wilson_upper_bound_on_known_values():
    z2 = 1.644854 ** 2
    assert wilson_upper(0, 3000) == pytest.approx(z2 / (3000 + z2))  # closed form at p = 0
    assert wilson_upper(0, 3000) == pytest.approx(0.000901, abs=1e-6)
    # textbook two-sided 95% intervals, with z given explicitly
    assert wilson_upper(10, 100, z=1.959964) == pytest.approx(0.1744, abs=1e-4)
    assert wilson_upper(50, 100, z=1.959964) == pytest.approx(0.5962, abs=1e-4)
    assert wilson_upper(0, 0) == 1.0
    assert wilson_upper(5, 5) == pytest.approx(1.0)


def test_zero_mismatches_in_n_is_about_four_over_n():
    for n in (1000, 3000, 10_000, 100_000):
        assert 2.6 / n < wilson_upper(0, n) < 3 / n


def test_bound_shrinks_as_clean_samples_grow():
    bounds = [wilson_upper(3, n) for n in (10, 100, 1000, 10_000)]
    assert bounds == sorted(bounds, reverse=True)


def test_compared_needed_is_the_smallest_clean_count_under_the_target():
    n = compared_needed(0, 0, 0.001)
    assert 2690 < n < 2720
    assert wilson_upper(0, n) < 0.001 <= wilson_upper(0, n - 1)
    # counts so far are taken into account, and later exchanges are assumed clean
    assert compared_needed(0, 212, 0.001) == n - 212
    k = compared_needed(2, 100, 0.01)
    assert wilson_upper(2, 100 + k) < 0.01 <= wilson_upper(2, 100 + k - 1)


def test_compared_needed_respects_min_compared_and_is_zero_when_met():
    assert compared_needed(0, 0, 0.5, min_compared=1000) == 1000
    assert compared_needed(0, 400, 0.5, min_compared=1000) == 600
    assert compared_needed(0, 5000, 0.001, min_compared=1000) == 0
    with pytest.raises(ValueError):
        compared_needed(0, 0, 0.0)


def test_no_evidence_at_all_fails():
    result = evaluate(GateStats(), STRICT)
    assert not result.passed
    assert result.reasons == ("no evidence yet: no compared exchanges in this window",)


def test_route_with_too_few_samples_names_its_numbers():
    result = evaluate(stats_of(POST__api_mood=RouteCounts(compared=212)), STRICT)
    [route] = result.routes
    assert route.route == "POST /api/mood" and route.template == "/api/mood"
    assert route.compared_needed == compared_needed(0, 212, 0.001, 1000)
    [reason] = result.reasons
    assert reason == (f"POST /api/mood: 212 of {212 + route.compared_needed} compared exchanges, "
                      f"0 mismatches, upper bound 1.26% >= 0.1%")


def test_enough_samples_but_too_many_mismatches_fails_with_the_bound():
    result = evaluate(stats_of(GET__api_list=RouteCounts(compared=20_000, mismatches=40)), STRICT)
    [reason] = result.reasons
    assert "GET /api/list: 20000 of" in reason and "40 mismatches" in reason
    assert ">= 0.1%" in reason and result.routes[0].compared_needed > 0


def test_clean_evidence_on_every_route_passes():
    stats = stats_of(GET__api_list=RouteCounts(compared=5000),
                     POST__api_mood=RouteCounts(compared=4000, shadow_errors=3))
    result = evaluate(stats, Thresholds(expected_routes=("/api/list", "POST /api/mood")))
    assert result.passed and result.reasons == ()
    assert [r.compared_needed for r in result.routes] == [0, 0]
    assert result.to_dict()["passed"] is True


def test_expected_routes_never_seen_fail():
    stats = stats_of(GET__api_list=RouteCounts(compared=5000))
    t = Thresholds(expected_routes=("/api/list", "POST /api/list", "/api/export"))
    result = evaluate(stats, t)
    needed = compared_needed(0, 0, t.max_mismatch_rate, t.min_compared)
    assert result.reasons == (f"POST /api/list: never exercised (0 of {needed} compared exchanges)",
                              f"/api/export: never exercised (0 of {needed} compared exchanges)")
    assert {r.route: r.compared_needed for r in result.routes}["/api/export"] == needed


def test_unresolved_row_mismatches_fail_until_resolved():
    stats = stats_of(GET__api_list=RouteCounts(compared=5000))
    stats.row_mismatch("POST /api/mood", 2)
    stats.row_mismatch("PUT /api/mood/{id}")
    result = evaluate(stats, STRICT)
    assert result.reasons == ("3 unresolved row mismatches (POST /api/mood: 2, "
                              "PUT /api/mood/{id}: 1)",)
    assert result.routes[0].route == "GET /api/list", "rows alone do not make a route seen"
    stats.resolve_row_mismatches("POST /api/mood")
    assert evaluate(stats, STRICT).row_mismatches == 1
    stats.resolve_row_mismatches()
    assert evaluate(stats, STRICT).passed


def test_diverged_shadow_fails_and_survives_a_window_reset():
    stats = stats_of(GET__api_list=RouteCounts(compared=5000))
    stats.set_diverged(True)
    assert evaluate(stats, STRICT).reasons == (
        "the shadow is diverged: its rows cannot match until it is resynced",)
    stats.reset(since=2000.0)
    assert stats.routes == {} and stats.diverged and stats.since == 2000.0


def test_shadow_error_rate_over_the_limit_fails():
    stats = stats_of(GET__api_list=RouteCounts(compared=4900, shadow_errors=100))
    [reason] = evaluate(stats, STRICT).reasons
    assert reason == "shadow error rate 2% (100 of 5000) >= 1%"


def test_every_failing_reason_is_reported_at_once():
    stats = stats_of(POST__api_mood=RouteCounts(compared=10, mismatches=1, shadow_errors=5))
    stats.row_mismatch("POST /api/mood")
    stats.set_diverged(True)
    result = evaluate(stats, Thresholds(expected_routes=("/api/export",)))
    assert len(result.reasons) == 5, result.reasons
    joined = "\n".join(result.reasons)
    for part in ("POST /api/mood: 10 of", "/api/export: never exercised", "unresolved row",
                 "diverged", "shadow error rate 33.3% (5 of 15)"):
        assert part in joined


def test_stats_count_compared_exchanges_only_and_round_trip():
    stats = GateStats(since=5.0)
    for verdict in (Verdict.MATCH, Verdict.MATCH, Verdict.MISMATCH, Verdict.SHADOW_ERROR,
                    Verdict.PRIMARY_ERROR, Verdict.SKIPPED):
        stats.observe("GET", "/a", verdict)
    stats.observe("GET", "/skipped-only", Verdict.SKIPPED)
    assert stats.routes == {"GET /a": RouteCounts(compared=3, mismatches=1, shadow_errors=1)}
    assert stats.dirty
    again = GateStats.from_json(stats.to_json())
    assert again.routes == stats.routes and again.since == 5.0 and not again.dirty
    assert GateStats.from_json(None, since=9.0).since == 9.0


def test_raced_exchanges_are_counted_apart_and_are_no_evidence():
    stats = GateStats(since=5.0)
    for verdict in (Verdict.MATCH, Verdict.RACED, Verdict.RACED):
        stats.observe("GET", "/stats", verdict)
    assert stats.routes == {"GET /stats": RouteCounts(compared=1, raced=2)}
    assert GateStats.from_json(stats.to_json()).routes == stats.routes
    old = {"since": 1.0, "routes": {"GET /a": [3, 1, 0, 0]}}   # saved before raced was counted
    assert GateStats.from_json(old).routes == {"GET /a": RouteCounts(3, 1)}
    clean = stats_of(GET__stats=RouteCounts(compared=5000, raced=100))
    result = evaluate(clean, STRICT)
    assert result.passed and (result.compared, result.mismatches, result.raced) == (5000, 0, 100)
    assert result.to_dict()["routes"][0]["raced"] == 100
    # raced exchanges never stand in for the verified ones a route needs
    assert not evaluate(stats_of(GET__stats=RouteCounts(compared=999, raced=5000)), STRICT).passed


def test_a_route_raced_more_often_than_allowed_fails_with_its_numbers():
    t = Thresholds(min_compared=10, max_mismatch_rate=0.05, max_raced_share=0.2)
    result = evaluate(stats_of(GET__stats=RouteCounts(compared=3000, raced=1000)), t)
    assert result.reasons == (
        "GET /stats: 1000 of 4000 exchanges raced writes (unverified), 25% > 20%",)
    assert evaluate(stats_of(GET__stats=RouteCounts(compared=3000, raced=750)), t).passed
