"""Arrays each build sorted by its own clock: equal when only the clocks explain the order,
different for every real order bug (ties broken another way, the other direction, another
key, an element changed)."""

import pytest

from shadow.compare.clock_order import MAX_ELEMENTS, clock_order
from shadow.compare.rules import build_rules
from shadow.compare.walk import Walker


def badge(name: str, second: int) -> dict:
    return {"badge": name, "earned_at": f"2026-12-05 21:00:{second:02d}"}


LAGGED = Walker(build_rules().at_lag(3.0))
"""The shadow replays about three seconds behind: its stamps may be that much later."""


def walk(primary, shadow, walker=LAGGED):
    return walker.compare({"achievements": primary}, {"achievements": shadow})


def test_a_second_boundary_between_two_stamps_on_one_side_only_is_no_mismatch():
    # primary: both stamped in second 01, listed by the tie-breaker (badge);
    # shadow: the second write fell into second 02 and is listed first (newest first)
    primary = [badge("first_entry", 1), badge("week_streak", 1)]
    shadow = [badge("week_streak", 2), badge("first_entry", 1)]
    result = walk(primary, shadow)
    assert result.equal and result.normalised >= 1
    assert LAGGED.equal({"a": primary}, {"a": shadow}) == (True, 1)
    # and the other way round: the tie on the shadow, the boundary on the primary
    assert walk(shadow, primary).equal


def test_ties_broken_another_way_on_both_sides_are_still_a_mismatch():
    # the same second on both sides, other orders: a tie-breaker the port lost
    primary = [badge("first_entry", 1), badge("week_streak", 1)]
    shadow = [badge("week_streak", 1), badge("first_entry", 1)]
    result = walk(primary, shadow)
    assert [d.path for d in result.differences] == ["$.achievements[0].badge",
                                                    "$.achievements[1].badge"]


def test_the_other_direction_is_still_a_mismatch():
    primary = [badge("c", 3), badge("b", 2), badge("a", 1)]
    assert not walk(primary, list(reversed(primary))).equal


def test_an_order_by_another_member_is_still_a_mismatch():
    # the shadow lists by name, and its stamps are not sorted
    primary = [badge("b", 3), badge("a", 2), badge("c", 1)]
    shadow = [badge("a", 2), badge("b", 3), badge("c", 1)]
    assert not walk(primary, shadow).equal


def test_a_changed_element_is_reported_where_it_changed():
    primary = [badge("first_entry", 1), badge("week_streak", 1)]
    shadow = [badge("week_streak", 2), badge("first_entry", 1)]
    shadow[1] = {**shadow[1], "badge": "lost"}
    assert not walk(primary, shadow).equal
    # a stamp a day off is no tie and no lag
    far = [{"badge": "week_streak", "earned_at": "2026-12-06 21:00:02"}, badge("first_entry", 1)]
    assert not walk(primary, far).equal


def test_a_change_after_equal_elements_is_reported_at_its_place_with_their_normalised():
    # the elements before the change are walked once, and what they normalised still counts
    primary = [badge("c", 3), badge("b", 2), badge("a", 1)]
    shadow = [badge("c", 4), badge("b", 2), {**badge("a", 1), "badge": "lost"}]
    result = walk(primary, shadow)
    assert [d.path for d in result.differences] == ["$.achievements[2].badge"]
    assert result.normalised == 1  # "c" stamped a second later, within the lag


def test_both_sides_must_differ_in_the_same_direction_where_both_differ():
    # swapped pair that differs on both sides: one build's clock says the opposite
    primary = [badge("b", 2), badge("a", 1)]
    shadow = [badge("a", 3), badge("b", 2)]
    assert not walk(primary, shadow).equal


def test_only_with_times_compared_by_meaning():
    primary = [badge("first_entry", 1), badge("week_streak", 1)]
    shadow = [badge("week_streak", 1), badge("first_entry", 1)]
    # with no replay lag and no time rule, stamps are compared as written: no clock to blame
    assert not walk(primary, [badge("week_streak", 2), badge("first_entry", 1)],
                    Walker(build_rules())).equal
    assert not walk(primary, shadow, Walker(build_rules())).equal


def test_nested_arrays_get_the_same_chance():
    primary = {"users": [{"name": "ann", "badges": [badge("x", 1), badge("y", 1)]}]}
    shadow = {"users": [{"name": "ann", "badges": [badge("y", 2), badge("x", 1)]}]}
    assert LAGGED.compare(primary, shadow).equal


def test_pure_rule_needs_a_stamp_in_every_element_and_a_pairing():
    same = lambda a, b: a["badge"] == b["badge"]  # noqa: E731  (stamps by meaning: paired)
    assert clock_order([badge("a", 1), badge("b", 1)], [badge("b", 2), badge("a", 1)], same)
    unstamped = [{"badge": "a", "n": 1}, {"badge": "b", "n": 1}]
    assert not clock_order(unstamped, unstamped[::-1], same)
    assert not clock_order([badge("a", 1), {"badge": "b", "earned_at": None}],
                           [{"badge": "b", "earned_at": None}, badge("a", 1)], same)
    assert not clock_order([badge("a", 1)], [badge("a", 1)], same)  # one element: no order
    assert not clock_order([badge("a", 1), badge("b", 1)], [badge("a", 1)], same)
    assert not clock_order([badge("a", 1), badge("b", 1)],
                           [badge("b", 1), badge("c", 1)], same)


@pytest.mark.parametrize(("n", "paired"), [(MAX_ELEMENTS, True), (MAX_ELEMENTS + 1, False)])
def test_only_lists_up_to_the_bound_are_paired(n, paired):
    names = [f"b{i:03d}" for i in range(n)]
    primary = [badge(name, 1) for name in names]
    shadow = [badge(names[-1], 2)] + primary[:-1]
    assert clock_order(primary, shadow, lambda a, b: a["badge"] == b["badge"]) is paired


@pytest.mark.parametrize("n", [3, 6])
def test_several_writes_around_one_boundary(n):
    # n writes one after another; the primary stamps them all in second 01, the shadow
    # replays them across 01 -> 02 after the first half
    names = [f"b{i}" for i in range(n)]
    primary = [badge(name, 1) for name in names]  # all tied: listed by name
    later = [badge(name, 2) for name in names[n // 2:]]
    earlier = [badge(name, 1) for name in names[: n // 2]]
    assert walk(primary, later + earlier).equal
