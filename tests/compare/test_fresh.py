"""The learner of values drawn fresh per reply, alone: what it learns from the primary's
replies and, above all, what it must never learn."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta

from shadow.compare.fresh import ANY_ROUTE, FreshValues, request_key, shape_of
from shadow.compare.noise import ACCEPTED, REJECTED, NoiseModel
from shadow.verdict import Difference, Kind

ROUTE = "GET /api/csrf"


def body(path: str, primary, shadow) -> Difference:
    return Difference(Kind.BODY, path, primary, shadow)


def feed(model: NoiseModel, pairs, route: str = ROUTE, status: int = 200,
         inputs=itertools.repeat(b"same request")) -> list[int]:
    """Each (path, primary, shadow) observed then split; how many each split hid."""
    hidden = []
    for (path, p, s), asked in zip(pairs, inputs):
        diffs = (body(path, p, s),)
        model.observe_compared(route, status, diffs, lambda a=asked: a)
        hidden.append(model.split(route, diffs, status)[1])
    return hidden


def tokens(n: int, path: str = "$.csrf_token", make=lambda: secrets.token_hex(8)):
    return [(path, make(), make()) for _ in range(n)]


def test_a_fresh_token_is_learnt_after_the_cold_start_and_then_hidden():
    model = NoiseModel(min_fresh=8)
    hidden = feed(model, tokens(20))
    assert hidden[:7] == [0] * 7  # cold start: still mismatches
    assert hidden[8:] == [1] * 12
    [entry] = [r for r in model.listing() if r["route"] == ANY_ROUTE]
    [place] = entry["places"]
    assert (place["path"], place["how"], place["state"], place["hiding"]) == (
        "$.csrf_token", "fresh", "learnt", True)
    assert place["shape"] == "16 hex characters" and place["classes"] == {"2xx": 20}
    assert model.pending() == 1


def test_url_safe_and_signed_tokens_are_learnt():
    model = NoiseModel(min_fresh=8)
    signed = lambda: f"{secrets.token_urlsafe(12)}.1765000000.{secrets.token_hex(16)}"  # noqa: E731
    assert sum(feed(model, tokens(12, make=signed))) > 0
    assert shape_of(signed()).alphabet == "token"


def test_integer_ids_counters_and_timestamps_are_never_learnt():
    model = NoiseModel(min_fresh=3)
    ids = itertools.count(100)
    now = datetime(2026, 2, 4, tzinfo=UTC)
    pairs = []
    for i in range(30):
        pairs += [("$.id", next(ids), next(ids)),
                  ("$.ref", f"{1000000 + i:08d}", f"{2000000 + i:08d}"),
                  ("$.at", (now + timedelta(seconds=i)).isoformat(),
                   (now + timedelta(seconds=i + 3)).isoformat()),
                  ("$.stamp", (now + timedelta(seconds=i)).strftime("%Y%m%dT%H%M%SZ"),
                   (now + timedelta(seconds=i + 2)).strftime("%Y%m%dT%H%M%SZ"))]
    assert sum(feed(model, pairs)) == 0
    assert not any(p["hiding"] for r in model.listing() for p in r["places"])


def test_names_and_text_that_follow_the_input_are_never_learnt():
    """Different per request because the input differs: no repeated request gets a
    new value, and words and structured names fail the shape or the pattern test."""
    model = NoiseModel(min_fresh=3)
    pairs = [("$.user", f"user_{i:04d}", f"user_{i + 1:04d}") for i in range(20)]
    pairs += [("$.title", f"A day {i}", f"A night {i}") for i in range(20)]
    pairs += [("$.slug", secrets.token_hex(6), secrets.token_hex(6)) for _ in range(20)]
    inputs = [f"request {i}".encode() for i in range(60)]  # every input distinct
    assert sum(feed(model, pairs, inputs=inputs)) == 0
    [entry] = [r for r in model.listing() if r["route"] == ANY_ROUTE]
    by_path = {p["path"]: p for p in entry["places"]}
    assert "$.title" not in by_path
    assert "still needs" in by_path["$.slug"]["evidence"]
    assert not any(p["hiding"] for p in entry["places"])


def test_a_value_stable_for_the_same_input_is_never_learnt_and_stays_caught():
    """A hash of the input, which the candidate computes wrongly: random-looking and
    different from the shadow's in every comparison, but the same for the same input."""
    model = NoiseModel(min_fresh=3)
    stable = {i: secrets.token_hex(8) for i in range(4)}
    pairs = [("$.share_code", stable[i % 4], secrets.token_hex(8)) for i in range(40)]
    inputs = [f"entry {i % 4}".encode() for i in range(40)]
    assert sum(feed(model, pairs, inputs=inputs)) == 0
    [place] = model.fresh.listing()
    assert place["refused"] == "a value was seen twice" and not place["hiding"]


def test_a_stable_value_that_changes_once_is_never_learnt():
    model = NoiseModel(min_fresh=3)
    old, new = secrets.token_hex(8), secrets.token_hex(8)
    pairs = [("$.build", new, old)] * 10  # the primary moved on, the shadow did not
    assert sum(feed(model, pairs)) == 0
    assert model.fresh.listing()[0]["refused"] == "a value was seen twice"


def test_a_learnt_place_still_catches_a_value_of_another_shape():
    model = NoiseModel(min_fresh=5)
    feed(model, tokens(10, path="$.error_id"), status=422)
    wrong = [("$.error_id", secrets.token_hex(8), None), ("$.error_id", secrets.token_hex(8), 42),
             ("$.error_id", secrets.token_hex(8), "not-an-id")]
    assert feed(model, wrong, status=422) == [0, 0, 0]
    # only in the status class it was learnt in
    assert feed(model, tokens(1, path="$.error_id"), status=200) == [0]
    assert feed(model, tokens(1, path="$.error_id"), status=422) == [1]
    assert feed(model, tokens(1, path="$.error_id"), status=200) == [1]  # seen there before


def test_evidence_is_pooled_across_routes_and_a_contradiction_anywhere_refuses_it():
    model = NoiseModel(min_fresh=6)
    hidden = []
    for i in range(12):
        hidden += feed(model, tokens(1, path="$.error_id"), route=f"POST /api/r{i % 4}",
                       status=400, inputs=[f"r{i % 4}".encode()])
    assert hidden[-1] == 1
    assert model.fresh.listing()[0]["routes"] == [f"POST /api/r{i}" for i in range(4)]
    repeated = secrets.token_hex(8)
    feed(model, [("$.error_id", repeated, secrets.token_hex(8))] * 2, route="GET /api/x",
         status=404)
    assert feed(model, tokens(3, path="$.error_id"), route="POST /api/r0", status=400) == [0] * 3


def test_accept_reject_and_restart_keep_no_value():
    model = NoiseModel(min_fresh=4)
    pairs = tokens(10)
    feed(model, pairs)
    model.decide(ANY_ROUTE, "$.csrf_token", REJECTED)
    assert feed(model, tokens(2)) == [0, 0]
    model.decide(ANY_ROUTE, "$.csrf_token", ACCEPTED)
    saved = model.saved()
    text = repr(saved)
    assert not any(p in text or s in text for _, p, s in pairs)
    again = NoiseModel(min_fresh=4)
    again.load(saved)
    assert again.fresh.places["$.csrf_token"].state == ACCEPTED
    assert feed(again, tokens(1)) == [1]


def test_learning_can_be_turned_off():
    model = NoiseModel(min_fresh=None)
    assert feed(model, tokens(20)) == [0] * 20
    assert model.listing() == []


def test_the_request_key_counts_the_callers_credentials():
    plain = request_key("GET", "/api/csrf", b"", [("Accept", "*/*")])
    assert plain == request_key("GET", "/api/csrf", b"", [("X-Request-Id", "7")])
    assert plain != request_key("GET", "/api/csrf", b"", [("Cookie", "s=1")])
    assert plain != request_key("GET", "/api/csrf", b"x", [])


def test_shapes():
    assert shape_of("0123abcd") == shape_of("ffff0000")
    assert shape_of("short") is None and shape_of(12345678) is None
    assert shape_of("has a space in it") is None and shape_of("10:20:30:40") is None
    assert FreshValues().places == {}


def test_an_error_id_on_several_routes_is_learnt_without_any_repeated_request():
    """Error replies are rare per route and seldom repeat a request: the same place, of
    one shape, never twice the same, on `MIN_ROUTES` routes is the app's envelope."""
    model = NoiseModel(min_fresh=5)
    hidden = []
    for i in range(9):
        hidden += feed(model, tokens(1, path="$.error_id"), route=f"POST /api/r{i % 3}",
                       status=422, inputs=[f"distinct {i}".encode()])
    assert hidden[4:] == [1] * 5
    one_route = NoiseModel(min_fresh=5)
    assert sum(feed(one_route, tokens(9, path="$.error_id"),
                    inputs=[f"distinct {i}".encode() for i in range(9)])) == 0


def test_a_value_of_the_caller_on_several_routes_repeats_and_is_refused():
    """A per-user hash the candidate computes wrongly, on three routes: the same user on
    two routes gives the same primary value, before the evidence is complete, and any
    repeat later refuses a place even after it was learnt."""
    model = NoiseModel(min_fresh=5)
    users = {u: secrets.token_hex(8) for u in range(3)}
    hidden = []
    for i in range(12):
        hidden += feed(model, [("$.avatar", users[i % 3], secrets.token_hex(8))],
                       route=f"GET /api/r{i % 4}", inputs=[f"distinct {i}".encode()])
    assert sum(hidden) == 0 and model.fresh.listing()[0]["refused"]


def test_a_learnt_place_whose_value_repeats_later_is_refused_and_compared_again():
    model = NoiseModel(min_fresh=5)
    pairs = tokens(6)
    assert feed(model, pairs)[-1] == 1
    _, seen, _ = pairs[2]
    assert feed(model, [("$.csrf_token", seen, secrets.token_hex(8))]) == [0]
    assert feed(model, tokens(3)) == [0, 0, 0]
    assert model.fresh.listing()[0]["evidence"] == "refused: a value was seen twice"
