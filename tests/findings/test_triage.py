"""Triage states, reopening, proposed rules, and the gate's view of triaged findings
(pure)."""

from __future__ import annotations

import pytest

from shadow.findings.triage import TriageError, blocks, change, proposed_rule, reopens
from shadow.findings.window import GateWindow
from shadow.gate import GateStats, Thresholds, evaluate, evaluate_with_findings
from shadow.verdict import Verdict

BODY = dict(kind="value", route="/api/health", paths=["$.version"])


def test_a_change_needs_a_known_state_a_reason_and_a_real_change():
    with pytest.raises(TriageError, match="unknown state"):
        change("new", "wontfix", "x", version=None, **BODY)
    with pytest.raises(TriageError, match="needs a reason"):
        change("new", "expected", "  ", version=None, **BODY)
    with pytest.raises(TriageError, match="already expected"):
        change("expected", "expected", "x", version=None, **BODY)
    done = change("new", "expected", " renamed on purpose ", version="1.2", **BODY)
    assert (done.state, done.reason, done.version, done.rule) == \
        ("expected", "renamed on purpose", "1.2", "")


def test_noise_proposes_the_rule_that_would_ignore_it():
    done = change("new", "noise", "request id", version=None, **BODY)
    assert done.rule == '[[routes]]\ntemplate = "/api/health"\nignore_paths = ["$.version"]'
    assert proposed_rule("row_changed", "/x", ["moods[*].updated_at"]) == \
        '[rows.columns."moods.updated_at"]\nignore = true'
    assert "content-type" in proposed_rule("header", "/x", ["content-type"])
    with pytest.raises(TriageError, match="mark it expected"):
        change("new", "noise", "x", version=None, kind="status", route="/x", paths=[])


def test_fixed_reopens_when_seen_under_another_candidate_version():
    assert not reopens("fixed", "1.0", "1.0"), "the broken build is still running"
    assert reopens("fixed", "1.0", "1.1")
    assert reopens("fixed", None, None), "without versions, seen again is enough"
    assert not reopens("acknowledged", "1.0", "1.1")


def test_only_expected_and_noise_leave_the_gate():
    assert [s for s in ("new", "acknowledged", "expected", "noise", "fixed") if not blocks(s)] \
        == ["expected", "noise"]


def stats_with(route: str, compared: int, mismatches: int, rows: int = 0) -> GateStats:
    stats = GateStats(since=5.0)
    for i in range(compared):
        stats.observe(*route.split(" "), Verdict.MISMATCH if i < mismatches else Verdict.MATCH)
    if rows:
        stats.row_mismatch(route, rows)
    return stats


def test_exchanges_explained_only_by_expected_findings_do_not_block_the_gate():
    route = "GET /api/health"
    stats = stats_with(route, 100, 40)
    window = GateWindow()
    for _ in range(30):
        window.observe(5.0, route, ["A"], rows=False)
    for _ in range(10):
        window.observe(5.0, route, ["A", "B"], rows=False)
    t = Thresholds(min_compared=50, max_mismatch_rate=0.05)
    assert not evaluate(stats, t).passed
    state = {"A": "expected", "B": "new"}
    excused = window.excused(lambda key: blocks(state[key]))
    assert excused == {route: (30, 0)}, "an exchange with a blocking finding still counts"
    result = evaluate_with_findings(stats, t, excused, [{"finding": "B"}], [{"finding": "A"}])
    assert result.mismatches == 10 and not result.passed
    state["B"] = "noise"
    result = evaluate_with_findings(stats, t, window.excused(lambda key: blocks(state[key])),
                                    [], [{"finding": "A"}, {"finding": "B"}])
    assert result.passed and result.mismatches == 0
    assert result.to_dict()["findings"]["uncounted"] == [{"finding": "A"}, {"finding": "B"}]


def test_row_mismatches_of_excused_exchanges_are_excused_too():
    route = "POST /api/x"
    stats = stats_with(route, 60, 2, rows=2)
    window = GateWindow()
    window.observe(5.0, route, ["R"], rows=True)
    window.observe(5.0, route, ["R"], rows=True)
    t = Thresholds(min_compared=50, max_mismatch_rate=0.05)
    result = evaluate_with_findings(stats, t, window.excused(lambda key: False), [], [])
    assert result.passed and result.row_mismatches == 0


def test_a_new_gate_window_forgets_the_old_combinations_and_the_window_round_trips():
    window = GateWindow()
    window.observe(1.0, "GET /a", ["A"], rows=False)
    copy = GateWindow.from_json(window.to_json())
    assert copy.combos == window.combos and copy.since == 1.0
    window.observe(2.0, "GET /a", ["B"], rows=False)
    assert window.exchanges() == {"B": 1}
    window.sync(3.0)
    assert window.exchanges() == {}


def test_past_its_cap_the_window_keeps_exchanges_blocking():
    window = GateWindow(max_combos=1)
    window.observe(1.0, "GET /a", ["A"], rows=False)
    window.observe(1.0, "GET /a", ["B"], rows=False)
    assert window.excused(lambda key: False) == {"GET /a": (1, 0)}
