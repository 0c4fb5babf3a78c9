"""Rows numbered in another order by overlapping inserts, and the reply arrays put back in
the primary's order for them only (pure logic, no I/O; the proxy-level cases are in
tests/writes/test_crossed_keys.py)."""

from __future__ import annotations

import pytest

from shadow.rows.crossed import Crossings, crossing

SECRET = b"k" * 16


def inbox(*names: str) -> dict:
    """An inbox as the demo lists it: one element per thread, no id shown."""
    return {"conversations": [{"partner": n, "last_message": f"hello from {n}", "unread": 1}
                              for n in names]}


def noted(*pairs: tuple[int, int], names=("ana", "ben", "cy")) -> Crossings:
    """Crossings that saw one group insert one message per name, with these key pairs."""
    crossings = Crossings(secret=SECRET)
    rows = [(p, s, {"body": f"hello from {n}", "created_at": "2026-12-05 10:00:00"},
             {"body": f"hello from {n}", "created_at": "2026-12-05T10:00:01+00:00"})
            for (p, s), n in zip(pairs, names, strict=False)]
    crossings.note("messages", "legacy", rows)
    return crossings


def test_crossing_names_the_pairs_another_pair_crosses():
    assert crossing([(1, 10), (2, 11), (3, 12)]) == set()
    assert crossing([(1, 11), (2, 10), (3, 12)]) == {(1, 11), (2, 10)}
    assert crossing([(3, 10), (1, 12), (2, 11)]) == {(1, 12), (2, 11), (3, 10)}


def test_rows_that_did_not_cross_are_not_kept():
    crossings = Crossings(secret=SECRET)
    assert crossings.note("messages", "legacy", [(1, 1, {"body": "a"}, {"body": "a"}),
                                                 (2, 2, {"body": "b"}, {"body": "b"})]) == 0
    assert len(crossings) == 0
    assert crossings.reorder(inbox("ana", "ben"), inbox("ben", "ana"), "legacy") is None


def test_an_inbox_ordered_by_key_is_put_back_in_the_primary_order():
    crossings = noted((1, 2), (2, 1))  # ana 1 on legacy is 2 on the candidate
    primary, shadow = inbox("ben", "ana"), inbox("ana", "ben")  # both ORDER BY id DESC
    found = crossings.reorder(primary, shadow, "legacy")
    assert found is not None
    document, moves = found
    assert document == primary
    assert {(m.path, m.table, m.shadow, m.primary) for m in moves} == {
        ("$.conversations", "messages", 0, 1), ("$.conversations", "messages", 1, 0)}


def test_elements_that_stand_for_no_crossed_row_stay_where_they_are():
    crossings = noted((5, 6), (6, 5))
    primary = {"conversations": inbox("ben", "dan", "ana")["conversations"]}
    shadow = {"conversations": inbox("ana", "dan", "ben")["conversations"]}
    document, moves = crossings.reorder(primary, shadow, "legacy")
    assert document == primary and len(moves) == 2


def test_after_a_mode_change_the_rows_are_read_from_the_other_side():
    crossings = noted((1, 2), (2, 1))
    document, _ = crossings.reorder(inbox("ben", "ana"), inbox("ana", "ben"), "candidate")
    assert document == inbox("ben", "ana")


@pytest.mark.parametrize("shadow_names", [
    ("ben", "ana", "dan"),  # the candidate lists in another order than its keys (no ORDER BY)
    ("ana", "dan", "ben"),  # the crossed rows at other places
])
def test_an_order_the_shadow_keys_do_not_explain_is_left_as_it_is(shadow_names):
    crossings = noted((1, 2), (2, 1))  # the shadow's keys: ben 1, ana 2
    primary = inbox("dan", "ben", "ana")
    assert crossings.reorder(primary, inbox(*shadow_names), "legacy") is None


def test_an_order_against_the_shadow_keys_is_no_crossing():
    crossings = noted((1, 2), (2, 1))
    # The primary lists by its keys descending (ben 2, ana 1); the shadow's keys are
    # ana 2, ben 1, so descending it would list ana first; listing ben first is no
    # order of its keys the crossing explains: it matches already, or it is a bug.
    assert crossings.reorder(inbox("ben", "ana"), inbox("ben", "ana"), "legacy") is None
    primary_ascending = inbox("ana", "ben")  # the primary ascending, the shadow descending
    assert crossings.reorder(primary_ascending, inbox("ana", "ben"), "legacy") is None


def test_an_element_that_could_stand_for_two_rows_moves_nothing():
    crossings = noted((1, 2), (2, 1))
    both = {"partner": "ana", "last_message": "hello from ana", "quoted": "hello from ben"}
    primary = {"conversations": [inbox("ben")["conversations"][0], both]}
    shadow = {"conversations": [both, inbox("ben")["conversations"][0]]}
    assert crossings.reorder(primary, shadow, "legacy") is None


def test_a_value_every_crossed_row_holds_links_nothing():
    crossings = noted((1, 2), (2, 1))  # both rows hold the same created_at
    primary = {"items": [{"at": "2026-12-05 10:00:00", "n": 1},
                         {"at": "2026-12-05 10:00:00", "n": 2}]}
    shadow = {"items": [{"at": "2026-12-05 10:00:00", "n": 2},
                        {"at": "2026-12-05 10:00:00", "n": 1}]}
    assert crossings.reorder(primary, shadow, "legacy") is None


def test_arrays_of_another_length_are_not_touched():
    crossings = noted((1, 2), (2, 1))
    assert crossings.reorder(inbox("ben", "ana"), inbox("ana", "ben", "dan"), "legacy") is None


def test_nested_arrays_are_found_and_bodies_that_are_no_json_pass_unchanged():
    crossings = noted((1, 2), (2, 1))
    primary = {"page": {"inbox": inbox("ben", "ana")}}
    shadow = {"page": {"inbox": inbox("ana", "ben")}}
    document, moves = crossings.reorder(primary, shadow, "legacy")
    assert document == primary and moves[0].path == "$.page.inbox.conversations"
    assert crossings.read(b"<html>", b"<html>", "legacy") == (b"<html>", ())
    assert crossings.read(b"{", b"{}", "legacy") == (b"{}", ())


def test_only_the_last_groups_are_kept_and_no_value_is():
    crossings = Crossings(max_groups=1, secret=SECRET)
    crossings.note("messages", "legacy", [(1, 2, {"body": "secret a"}, {"body": "secret a"}),
                                          (2, 1, {"body": "secret b"}, {"body": "secret b"})])
    crossings.note("messages", "legacy", [(3, 4, {"body": "c"}, {"body": "c"}),
                                          (4, 3, {"body": "d"}, {"body": "d"})])
    assert len(crossings) == 1
    assert b"secret" not in repr(crossings._groups).encode()
    with pytest.raises(ValueError):
        Crossings(max_groups=0)
