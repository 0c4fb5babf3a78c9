"""The recheck's pure parts: which mismatches qualify, how a recheck ends, the overlap
bookkeeping, the bounded place held reads wait in, and the rate budget."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shadow.config import ConfigError, parse_config
from shadow.cutover_cli import show_rechecks
from shadow.overlap import Clocks, WriteClock
from shadow.route_learning import OTHER
from shadow.recheck import (BUSY, CONFIRMED, FAILED, MOVED, POLICY, RACE, RESEND_WRITES, SAFE,
                            UNSETTLED, Budget, Proof, Waiting, evidence, outcome, raced_why,
                            refusal)
from shadow.verdict import (Comparison, Difference, Exchange, Kind, Observation, Reply, Role,
                            RowChange, Verdict)

OK = Reply(200, (), b'{"n": 1}', 0.01)
BODY = Difference(Kind.BODY, "$.n", 1, 2)
ROW = Difference(Kind.ROW_MISSING, "items[1]", {"id": 1}, None)
CHANGE = RowChange("audit", (1,), "insert", None, {"id": 1})


def _comparison(*differences: Difference, method: str = "GET", rows: tuple = (),
                shadow_rows: tuple = (), verdict: Verdict | None = None) -> Comparison:
    ex = Exchange("x-1", method, "/count", "/count", (), b"", 0.0)
    return Comparison(ex, Observation("legacy", Role.PRIMARY, OK, rows),
                      Observation("candidate", Role.SHADOW, OK, shadow_rows), differences,
                      verdict or (Verdict.MISMATCH if differences else Verdict.MATCH),
                      signatures=tuple(f"{method} /count {d.kind} {d.path}" for d in differences))


def _why(c: Comparison, *, may_resend: bool = True, writing: bool = False,
         overlapped: int = 1) -> str | None:
    return refusal(c, methods=SAFE, may_resend=may_resend, writing=writing,
                   overlapped=overlapped)


def test_a_mismatched_read_that_overlapped_a_write_qualifies():
    assert _why(_comparison(BODY)) is None
    assert _why(_comparison(Difference(Kind.STATUS, "status", 200, 500),
                            Difference(Kind.HEADER, "content-type", "a", "b"))) is None
    assert _why(_comparison(BODY, method="HEAD")) is None


def test_what_keeps_a_comparison_from_its_recheck():
    assert _why(_comparison()) == "verdict"
    assert _why(_comparison(verdict=Verdict.SHADOW_ERROR)) == "verdict"
    assert _why(_comparison(BODY, method="POST")) == "method"
    assert _why(_comparison(BODY, method="OPTIONS")) == "method"
    assert _why(_comparison(BODY, ROW)) == "rows_differ"
    assert _why(_comparison(BODY, rows=(CHANGE,))) == "wrote_rows"
    assert _why(_comparison(BODY, shadow_rows=(CHANGE,))) == "wrote_rows"
    assert _why(_comparison(BODY), may_resend=False) == "policy"
    assert _why(_comparison(BODY), writing=True) == "route_writes"
    assert _why(_comparison(BODY), overlapped=0) == "no_overlap"
    assert refusal(_comparison(BODY), methods=SAFE, may_resend=True, writing=False,
                   overlapped=1, proven=False) == "unproven"


def test_a_route_is_proven_to_read_without_writing_only_by_reads_nothing_overlapped():
    proof = Proof(needed=2)
    audited_beside_a_write = replace(_comparison(BODY), overlapped=1)  # its row: the write's
    for _ in range(5):
        proof.saw(audited_beside_a_write)
    assert not proof.proven("GET", "/count")
    proof.saw(_comparison(BODY, rows=(CHANGE,)))                  # alone, and it wrote
    proof.saw(_comparison(BODY, shadow_rows=(CHANGE,)))
    failed = _comparison(verdict=Verdict.SHADOW_ERROR)
    proof.saw(replace(failed, shadow=replace(failed.shadow, reply=Reply(
        0, (), b"", 0.0, error="timeout"))))                       # no word on its writes
    assert not proof.proven("GET", "/count")
    proof.saw(_comparison())                                       # a match proves it too
    assert not proof.proven("GET", "/count")
    proof.saw(_comparison(BODY))
    assert proof.proven("GET", "/count") and not proof.proven("HEAD", "/count")


def test_paths_no_template_names_yet_prove_nothing_of_each_other():
    # `/a` and `/b` both fall under `{other}` until a template names them: three quiet
    # reads of `/a` must not let a read of `/b` (an audited one, say) be sent again
    proof = Proof(needed=3)
    for _ in range(5):
        ex = Exchange("x", "GET", OTHER, "/a", (), b"", 0.0)
        proof.saw(Comparison(ex, Observation("legacy", Role.PRIMARY, OK, ()),
                             Observation("candidate", Role.SHADOW, OK, ()), (),
                             Verdict.MATCH))
    assert not proof.proven("GET", OTHER)


def test_the_routes_proven_are_bounded():
    proof = Proof(needed=1, most=2)
    for route in ("/a", "/b", "/c"):
        ex = Exchange("x", "GET", route, route, (), b"", 0.0)
        proof.saw(Comparison(ex, Observation("legacy", Role.PRIMARY, OK, ()),
                             Observation("candidate", Role.SHADOW, OK, ()), (),
                             Verdict.MATCH))
    assert [proof.proven("GET", r) for r in ("/a", "/b", "/c")] == [False, True, True]


def test_the_outcome_table():
    failed = Reply(0, (), b"", 0.0, error="timeout")
    assert outcome(OK, OK, (), 0) == (RACE, "")
    assert outcome(OK, OK, (BODY,), 0) == (CONFIRMED, "")
    assert outcome(OK, OK, (), 1) == (UNSETTLED, MOVED)
    assert outcome(OK, OK, (BODY,), 2) == (UNSETTLED, MOVED)
    assert outcome(OK, None, (), 0) == (UNSETTLED, FAILED)
    assert outcome(failed, None, (), 0) == (UNSETTLED, FAILED)
    assert outcome(OK, failed, (), 0) == (UNSETTLED, FAILED)


def test_a_clock_counts_the_writes_that_overlapped_a_span():
    clock = WriteClock()
    end_before = clock.start()
    clock.sent()
    mark = clock.mark()       # two running when the span starts
    end_before()
    end_before()              # ended once, however often it is called
    clock.sent()              # one more starts inside the span
    assert clock.overlapped(mark) == 3 and clock.in_flight == 2
    clock.finished()
    clock.finished()
    quiet = clock.mark()
    assert clock.overlapped(quiet) == 0


def test_a_watch_counts_each_side_over_its_own_span():
    clocks = Clocks()
    write = clocks.primary.start()
    watch = clocks.watch()               # a read arrives while a write runs
    write()
    watch.primary_replied()
    assert watch.primary == 1 and watch.writes == 1
    watch.sending_shadow()
    shadow_write = clocks.shadow.start()
    assert not clocks.quiet()
    shadow_write()
    watch.shadow_replied()
    assert watch.shadow == 1 and watch.writes == 2 and clocks.quiet()
    alone = clocks.watch()
    alone.primary_replied()
    alone.shadow_replied()               # never sent to the shadow: nothing there
    assert alone.writes == 0


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_held_reads_are_bounded_and_each_comes_out_exactly_once():
    clock = _Clock()
    waiting = Waiting(most=3, wait=5.0, clock=clock)
    a, b, c = (waiting.add(name) for name in "abc")
    assert waiting.add("d") is None and len(waiting) == 3
    assert [w.item for w in waiting.ready(2)] == ["a", "b"] and waiting.running == 2
    waiting.back(b)                       # a write began first: it waits again
    assert waiting.done(a) and not waiting.done(a)
    clock.now += 5.0
    assert [w.item for w in waiting.due()] == ["b", "c"] and len(waiting) == 0
    e = waiting.add("e")
    [running] = waiting.ready(5)
    clock.now += 60.0
    assert waiting.due() == []            # a running recheck ends by the lane's bound
    assert [w.item for w in waiting.flush()] == ["e"]
    assert not waiting.done(running) and e is running


def test_the_budget_allows_so_many_rechecks_a_second():
    clock = _Clock()
    budget = Budget(2.0, clock)
    assert [budget.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert [budget.take() for _ in range(2)] == [True, False]
    slow = Budget(0.5, clock)
    assert [slow.take(), slow.take()] == [True, False]
    clock.now += 2.0
    assert slow.take()


def test_the_evidence_a_sample_keeps():
    assert evidence(UNSETTLED, BUSY, 3) == {"outcome": "unsettled", "why": "busy",
                                            "writes_overlapped": 3}
    shown = [{"kind": "body", "path": "$.n"}]
    assert evidence(CONFIRMED, "", 1, shown) == {"outcome": "confirmed", "writes_overlapped": 1,
                                                 "differences": shown}


def test_shadow_status_says_how_rechecks_ended(capsys):
    show_rechecks({"held": 1, "race": 4, "confirmed": 1, "unsettled": 2, "race_writes": 9})
    show_rechecks({"held": 0, "race": 0, "confirmed": 0, "unsettled": 0, "race_writes": 0})
    show_rechecks(None)
    assert capsys.readouterr().out.splitlines() == [
        "rechecks  4 race(s) (both builds agreed when asked again; the reads had overlapped "
        "9 write(s)), 1 confirmed, 2 unsettled, 1 waiting"]


def test_a_bad_recheck_section_lists_every_problem_with_its_place():
    backends = {"legacy": {"url": "http://127.0.0.1:5101"},
                "candidate": {"url": "http://127.0.0.1:5102"}}
    assert parse_config({"backends": backends}).compare.recheck.enabled
    with pytest.raises(ConfigError) as caught:
        parse_config({"backends": backends, "compare": {"recheck": {
            "max_wiat": 3, "max_held": 0, "concurrency": -1, "per_second": 0}}})
    text = str(caught.value)
    for problem in ("compare.recheck.max_wiat: unknown key (did you mean 'max_wait'?)",
                    "compare.recheck.max_held:", "compare.recheck.concurrency:",
                    "compare.recheck.per_second:"):
        assert problem in text, text


def _raced(c: Comparison, *, refused: str | None = "wrote_rows", unsettled: bool = False,
           overlapped: int = 1, mismatched: frozenset[str] = frozenset()) -> str | None:
    return raced_why(c, refused=refused, unsettled=unsettled, overlapped=overlapped,
                     methods=SAFE, mismatched=mismatched)


def test_a_read_the_proxy_cannot_settle_is_raced_and_says_why():
    audited = _comparison(BODY, rows=(CHANGE,), shadow_rows=(CHANGE,))
    assert _raced(audited) == RESEND_WRITES
    assert _raced(_comparison(BODY), refused="route_writes") == RESEND_WRITES
    assert _raced(_comparison(BODY), refused="unproven") == RESEND_WRITES
    assert _raced(_comparison(BODY), refused="policy") == POLICY
    assert _raced(_comparison(BODY), refused=None, unsettled=True) == UNSETTLED
    assert _raced(_comparison(Difference(Kind.STATUS, "status", 200, 404),
                              Difference(Kind.HEADER, "etag", "a", "b"))) == RESEND_WRITES


def test_what_keeps_a_mismatch_from_being_raced():
    audited = _comparison(BODY, rows=(CHANGE,), shadow_rows=(CHANGE,))
    assert _raced(audited, overlapped=0) is None              # no write beside it
    assert _raced(audited, refused=None) is None              # settled, or not yet tried
    for refused in ("verdict", "method", "rows_differ", "no_overlap"):
        assert _raced(audited, refused=refused) is None
    assert _raced(_comparison(BODY, method="POST"), refused="wrote_rows") is None
    assert _raced(_comparison(BODY, ROW, rows=(CHANGE,))) is None   # its own rows differ
    assert _raced(_comparison(Difference(Kind.STATUS, "status", 200, 500))) is None
    assert _raced(_comparison(Difference(Kind.STATUS, "status", 503, 200))) is None
    retyped = Difference(Kind.BODY, "$.avg", 6.5, "6.50", "type changed: number -> string")
    assert _raced(_comparison(retyped)) is None                 # no race makes a string
    emptied = Difference(Kind.BODY, "$.avg", None, 6.5, "type changed: null -> number")
    assert _raced(_comparison(emptied)) == RESEND_WRITES        # a race may: no rows yet
    assert _raced(_comparison(verdict=Verdict.MATCH)) is None
    assert _raced(_comparison(BODY, verdict=Verdict.SHADOW_ERROR)) is None
    known = frozenset({f"GET /count {Kind.BODY} $.n"})         # seen with no race beside it
    assert _raced(audited, mismatched=known) is None
    assert _raced(audited, refused=None, unsettled=True, mismatched=known) is None


def test_a_side_going_idle_is_told_once_its_last_write_ends():
    clock, told = WriteClock(), []
    clock.idle = lambda: told.append(clock.in_flight)
    first, second = clock.start(), clock.start()
    first()
    assert told == []
    second()
    second()
    assert told == [0]


def test_shadow_status_says_how_many_reads_raced(capsys):
    show_rechecks({"held": 0, "race": 0, "confirmed": 0, "unsettled": 2, "race_writes": 0,
                   "raced": 5, "raced_why": {"resend_writes": 3, "policy": 0, "unsettled": 2},
                   "raced_writes": 11})
    assert capsys.readouterr().out.splitlines()[1] == (
        "raced     5 read(s) unverified: their replies differed while 11 write(s) overlapped "
        "them and the proxy could not settle them (3 may write rows if sent again, 0 may "
        "not be sent again by policy, 2 unsettled rechecks); not evidence either way; see "
        "the gate's raced column")
