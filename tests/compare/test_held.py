"""The hold of the fresh-value learner's cold start, alone: which comparisons are held,
and how each held one is settled (learnt, refused, a bound, a stop); nothing is lost."""

from __future__ import annotations

import secrets

from shadow.compare.held import BOUND, LEARNT, REFUSED, STOPPED, HeldVerdicts
from shadow.compare.noise import REJECTED, NoiseModel
from shadow.verdict import Difference, Kind

ROUTE = "GET /api/csrf"


def token_diff(path: str = "$.csrf_token", make=lambda: secrets.token_hex(8)) -> Difference:
    return Difference(Kind.BODY, path, make(), make())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def setup(min_fresh: int = 5, wait: float = 30.0, most: int = 100):
    model, clock = NoiseModel(min_fresh=min_fresh), Clock()
    return model, clock, HeldVerdicts(wait=wait, most=most, decide=model.decision, clock=clock)


def exchange(model: NoiseModel, held: HeldVerdicts, diffs: tuple[Difference, ...],
             asked: bytes = b"same request", status: int = 200, route: str = ROUTE):
    """One comparison as the verifier makes it: observed, split, then held or recorded at
    once; returns (whether held, what settled now, the differences left by split)."""
    model.observe_compared(route, status, diffs, lambda: asked)
    kept, _ = model.split(route, diffs, status)
    places = model.waiting(route, kept, status)
    settled = []
    if places is not None:
        settled += held.offer(len(held.settled), route, status, kept, places)
    settled += held.settle(model.fresh.touched)
    model.fresh.touched.clear()
    return places is not None, settled, kept


def test_the_cold_start_is_held_and_settled_as_matches_once_learnt():
    model, _, held = setup(min_fresh=5)
    outcomes = [exchange(model, held, (token_diff(),)) for _ in range(8)]
    assert [h for h, _, _ in outcomes[:4]] == [True] * 4  # still gathering: held
    settled = [s for _, out, _ in outcomes for s in out]
    assert len(settled) == 4 and {s.why for s in settled} == {LEARNT}
    assert all(s.kept == () and s.hidden == ("$.csrf_token",) for s in settled)
    assert all(kept == () for _, _, kept in outcomes[5:])  # learnt: hidden by split
    assert len(held) == 0 and held.settled[LEARNT] == 4


def test_a_value_that_repeats_refuses_the_place_and_every_held_one_is_a_mismatch():
    model, _, held = setup(min_fresh=5)
    stable = "a1b2c3d4e5f6a7b8"
    first = [exchange(model, held, (token_diff(make=lambda: secrets.token_hex(8)),),
                      asked=bytes([i])) for i in range(3)]
    assert all(h for h, _, _ in first)
    exchange(model, held, (Difference(Kind.BODY, "$.csrf_token", stable, "0f" * 8),), b"x")
    held_now, settled, kept = exchange(
        model, held, (Difference(Kind.BODY, "$.csrf_token", stable, "0e" * 8),), b"x")
    assert not held_now and len(kept) == 1  # refused: recorded at once
    assert len(settled) == 4 and {s.why for s in settled} == {REFUSED}
    assert all(len(s.kept) == 1 and s.hidden == () for s in settled)
    assert len(held) == 0


def test_any_other_difference_is_recorded_at_once():
    model, _, held = setup()
    status = Difference(Kind.STATUS, "status", 200, 500)
    plan = Difference(Kind.BODY, "$.plan", "pro", "free")
    row = Difference(Kind.ROW_MISSING, "moods[1]", None, None)
    for other in (status, plan, row):
        held_now, _, kept = exchange(model, held, (token_diff(), other))
        assert not held_now and other in kept
    held_now, _, _ = exchange(model, held, (Difference(Kind.BODY, "$.csrf_token",
                                                       secrets.token_hex(8), None),))
    assert not held_now  # the shadow dropped the value: its own difference
    held_now, _, _ = exchange(model, held, (Difference(Kind.BODY, "$.csrf_token",
                                                       secrets.token_hex(8), "short"),))
    assert not held_now
    assert len(held) == 0


def test_the_age_bound_records_the_mismatch():
    model, clock, held = setup(min_fresh=50, wait=30.0)
    for _ in range(3):
        assert exchange(model, held, (token_diff(),))[0]
        clock.now += 10.0
    clock.now = 29.0
    assert held.due() == []
    clock.now = 30.0  # the first, held at 0, is 30 s old
    [settled] = held.due()
    assert settled.why == BOUND and len(settled.kept) == 1 and settled.hidden == ()
    clock.now = 1000.0
    assert [s.why for s in held.due()] == [BOUND, BOUND] and len(held) == 0


def test_the_count_bound_records_the_oldest_first():
    model, _, held = setup(min_fresh=50, most=2)
    items = []
    for i in range(3):
        diffs = (token_diff(),)
        model.observe_compared(ROUTE, 200, diffs, lambda: b"q")
        items.append(held.offer(f"item {i}", ROUTE, 200, diffs, ("$.csrf_token",)))
    assert items[:2] == [[], []]
    [out] = items[2]
    assert out.held.item == "item 0" and out.why == BOUND and len(out.kept) == 1
    assert len(held) == 2


def test_a_stop_records_each_held_one_as_it_stands():
    model, _, held = setup(min_fresh=5)
    exchange(model, held, (token_diff("$.error_id"),), status=422, route="POST /a")
    for _ in range(3):
        exchange(model, held, (token_diff(),))
    settled = held.flush()
    assert [s.why for s in settled] == [STOPPED] * 4
    assert all(len(s.kept) == 1 for s in settled) and len(held) == 0
    assert held.settled[STOPPED] == 4


def test_an_operators_rejection_settles_the_held_ones_as_mismatches():
    model, _, held = setup(min_fresh=50)
    for _ in range(3):
        exchange(model, held, (token_diff(),))
    model.decide("*", "$.csrf_token", REJECTED)
    settled = held.due()
    assert [s.why for s in settled] == [REFUSED] * 3 and len(held) == 0
    assert exchange(model, held, (token_diff(),))[0] is False  # rejected: never held


def test_a_place_learnt_in_one_status_class_holds_the_first_of_another():
    """A learnt place hides only in a status class it has seen twice: the first value in
    a new class waits for the second, and both are then hidden."""
    model, _, held = setup(min_fresh=5)
    for i in range(6):
        exchange(model, held, (token_diff("$.error_id"),), asked=b"r", status=422)
    assert len(held) == 0
    assert exchange(model, held, (token_diff("$.error_id"),), status=500)[0]
    held_now, settled, kept = exchange(model, held, (token_diff("$.error_id"),), status=500)
    assert not held_now and kept == ()  # two 5xx seen: hidden by split now
    assert [s.why for s in settled] == [LEARNT]
