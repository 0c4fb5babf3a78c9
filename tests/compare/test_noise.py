"""NoiseModel: what the primary's own build varies, learnt from A/A pairs (pure)."""

import pytest

from shadow.compare.noise import ACCEPTED, REJECTED, NoiseModel, ancestors
from shadow.verdict import Difference, Kind

ROUTE = "GET /api/me"


def body(path, a="x", b="y"):
    return Difference(Kind.BODY, path, a, b)


def test_ancestors_walk_up_to_the_root():
    assert ancestors("$.a[*].b") == ["$.a[*].b", "$.a[*]", "$.a", "$"]
    assert ancestors("$['odd key'].v") == ["$['odd key'].v", "$['odd key']", "$"]
    assert ancestors("x-request-id") == ["x-request-id"]


def test_a_place_that_varied_hides_itself_and_what_is_below_it():
    model = NoiseModel(min_pairs=2)
    assert model.calibrating(ROUTE)
    model.observe(ROUTE, [body("$.csrf_token"), body("$.items[3].seen_at")])
    model.observe(ROUTE, [])
    assert not model.calibrating(ROUTE)
    found = (body("$.csrf_token"), body("$.items[0].seen_at"), body("$.items[0].score"),
             Difference(Kind.STATUS, "status", 200, 500))
    kept, hidden = model.split(ROUTE, found)
    assert hidden == 2
    assert [d.path for d in kept] == ["$.items[0].score", "status"]
    # another route learnt nothing
    assert model.split("GET /api/other", found) == (found, 0)


def test_a_status_that_varies_is_never_learnt_but_reported():
    model = NoiseModel()
    model.observe(ROUTE, [Difference(Kind.STATUS, "status", 200, 429)])
    [route] = model.listing()
    assert route["unstable_status"] == 1 and route["places"] == []


def test_rejected_places_are_compared_again_and_everything_survives_a_restart():
    model = NoiseModel(min_pairs=1)
    for _ in range(4):
        model.observe(ROUTE, [body("$.csrf_token")])
    model.observe(ROUTE, [body("$.csrf_token"), body("$.counter")])
    model.decide(ROUTE, "$.counter", REJECTED)
    model.decide(ROUTE, "$.csrf_token", ACCEPTED)
    kept, hidden = model.split(ROUTE, (body("$.counter"), body("$.csrf_token")))
    assert [d.path for d in kept] == ["$.counter"] and hidden == 1
    again = NoiseModel(min_pairs=1)
    again.load(model.saved())
    assert again.listing() == model.listing()
    [route] = again.listing()
    assert {p["path"]: (p["state"], p["varied"], p["share"]) for p in route["places"]} == {
        "$.counter": ("rejected", 1, 0.2), "$.csrf_token": ("accepted", 5, 1.0)}


def test_decisions_name_a_learnt_place_and_a_known_state():
    model = NoiseModel()
    model.observe(ROUTE, [body("$.a")])
    with pytest.raises(KeyError):
        model.decide(ROUTE, "$.b", ACCEPTED)
    with pytest.raises(ValueError):
        model.decide(ROUTE, "$.a", "ignored")


def test_places_per_route_are_bounded():
    model = NoiseModel(max_places=3)
    model.observe(ROUTE, [body(f"$.k{i}") for i in range(10)])
    assert len(model.listing()[0]["places"]) == 3


def test_a_place_that_varied_in_few_pairs_is_not_hidden_until_accepted():
    # a write between two probes changes a listing once in a while: not the route's noise
    model = NoiseModel(min_pairs=1)
    model.observe(ROUTE, [body("$.count"), body("$.csrf")])
    for _ in range(3):
        model.observe(ROUTE, [body("$.csrf")])
    kept, hidden = model.split(ROUTE, (body("$.count"), body("$.csrf")))
    assert [d.path for d in kept] == ["$.count"] and hidden == 1
    model.decide(ROUTE, "$.count", ACCEPTED)
    assert model.split(ROUTE, (body("$.count"),)) == ((), 1)


def test_nothing_learnt_is_hidden_while_the_route_calibrates_unless_accepted():
    model = NoiseModel(min_pairs=3)
    model.observe(ROUTE, [body("$.csrf"), body("$.views")])
    found = (body("$.csrf"), body("$.views"))
    assert model.split(ROUTE, found) == (found, 0)
    assert model.pending() == 0
    model.decide(ROUTE, "$.views", ACCEPTED)  # the operator's word counts at once
    kept, hidden = model.split(ROUTE, found)
    assert [d.path for d in kept] == ["$.csrf"] and hidden == 1
    model.observe(ROUTE, [body("$.csrf")])
    model.observe(ROUTE, [body("$.csrf")])
    assert model.split(ROUTE, found) == ((), 2)
    assert model.pending() == 1
    places = {p["path"]: (p["hiding"], p["hidden"]) for p in model.listing()[0]["places"]}
    assert places == {"$.csrf": (True, 1), "$.views": (True, 2)}
