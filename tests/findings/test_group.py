"""Grouping one exchange's differences into causes (pure, on recorded comparisons)."""

from __future__ import annotations

from shadow.findings.group import body_change, causes
from tests.findings.recorded import (
    body, comparison, extra_row, journal_post_renders, mood_post_fails, status,
)


def test_a_status_change_holds_the_body_paths_and_rows_that_follow_from_it():
    found = causes(mood_post_fails("57"))
    assert len(found) == 1
    cause = found[0]
    assert cause.title == "POST /api/moods status 201→500"
    assert cause.signatures[0] == "POST /api/moods status status"
    assert set(cause.dependents) == {
        "POST /api/moods body $.error", "POST /api/moods body $.id",
        "POST /api/moods body $.points", "POST /api/moods row_missing moods[*]",
        "POST /api/moods row_missing points[*]"}
    assert ("moods", "57") in cause.rows and ("points", "3") in cause.rows


def test_two_status_pairs_on_one_route_are_two_findings():
    unauthorised = comparison("POST", "/api/moods", "/api/moods", status(201, 401))
    assert causes(unauthorised)[0].key != causes(mood_post_fails("57"))[0].key


def test_one_rendering_bug_is_one_cause_however_many_fields_it_touches():
    found = {c.kind: c for c in causes(journal_post_renders())}
    assert set(found) == {"format", "type", "row_missing"}
    fmt = found["format"]
    assert fmt.what == "0000-00-00 00:00:00→0000-00-00T00:00:00+00:00"
    assert fmt.paths == ("$.created_at", "$.updated_at")
    assert found["type"].what == "number→boolean" and found["type"].paths == ("$.is_private",)
    assert found["row_missing"].table == "journal_entries"
    assert found["row_missing"].what == "journal_entries"


def test_the_same_cause_in_every_element_is_one_cause_with_a_folded_path():
    c = comparison("GET", "/api/journal", "/api/journal",
                   body("$.entries[0]", {"id": 1}, None, "missing in shadow"),
                   body("$.entries[4]", {"id": 5}, None, "missing in shadow"),
                   body("$.entries[2]", {"id": 3}, {"id": 3}, "moved to $.entries[3]"))
    found = causes(c)
    assert [(x.kind, x.what) for x in found] == [("missing", "$.entries[*]"),
                                                 ("order", "$.entries[*]")]


def test_kinds_of_body_change():
    assert body_change(body("$.a", 1, None, "missing in shadow")) == ("missing", "$.a")
    assert body_change(body("$.a[3]", None, 1, "missing in primary (unordered array)")) == \
        ("extra", "$.a[*]")
    assert body_change(body("$.avg", 6.5, "6.50", "type changed: number -> string")) == \
        ("type", "number→string")
    assert body_change(body("$.count", 12, 11)) == ("value", "$.count")
    assert body_change(body("$.n", "9", "10")) == ("value", "$.n"), \
        "a number written as text that changed is a value, not a format"


def test_no_value_of_a_person_becomes_part_of_a_key():
    c = comparison("GET", "/api/me", "/api/me", body("$.name", "Ann 2", "Bob 3"))
    assert [x.what for x in causes(c)] == ["$.name"]


def test_rows_and_headers_are_keyed_by_table_and_name():
    c = comparison("POST", "/api/x", "/api/x",
                   extra_row("moods", "58", {"id": 58}), extra_row("moods", "59", {"id": 59}),
                   body("$", "a", "b", "text differs at line 1"))
    found = causes(c)
    assert [(x.kind, x.what) for x in found] == [("row_extra", "moods"), ("value", "$")]
    assert found[0].signatures == ("POST /api/x row_extra moods[*]",)


def test_a_match_has_no_causes():
    assert causes(comparison("GET", "/a", "/a")) == ()


def test_fields_of_array_elements_that_differ_together_are_one_cause():
    c = comparison("GET", "/api/journal", "/api/journal",
                   body("$.entries[0].id", 1, 2), body("$.entries[0].title", "a", "b"),
                   body("$.entries[1].id", 2, 1), body("$.count", 2, 3))
    found = causes(c)
    assert [(x.kind, x.what) for x in found] == [("value", "$.entries[*]"), ("value", "$.count")]
    assert found[0].paths == ("$.entries[*].id", "$.entries[*].title")


def test_timestamps_with_and_without_fractions_are_one_rendering():
    a = body("$.a", "2026-02-04 15:47:20", "2026-02-04T15:47:20.5+00:00")
    b = body("$.b", "2026-02-04 15:47:21", "2026-02-04T15:47:21+00:00")
    assert body_change(a) == body_change(b)
