"""Cascade rules: a later finding is linked to the one that explains it only on direct
evidence (pure, on recorded comparisons)."""

from __future__ import annotations

from shadow.findings.cascade import CascadeTracker, path_values, related
from shadow.findings.group import causes
from shadow.verdict import Difference, Kind
from tests.findings.recorded import (
    body, comparison, extra_row, journal_post_renders, mood_post_fails, status,
)


def feed(tracker: CascadeTracker, c):
    return tracker.observe(c, causes(c))


def test_a_read_of_a_row_a_failed_write_never_created_is_linked_to_that_write():
    tracker = CascadeTracker()
    assert feed(tracker, mood_post_fails("57")) == []
    read = comparison("GET", "/api/moods/{id}", "/api/moods/57", status(200, 404),
                      body("$.score", 7, None, "missing in shadow"))
    links = feed(tracker, read)
    assert len(links) == 1
    assert links[0].finding == "GET /api/moods/{id} status 200→404"
    assert links[0].cause == "POST /api/moods status 201→500"
    assert "moods key 57" in links[0].evidence


def test_a_read_of_another_row_is_not_linked():
    tracker = CascadeTracker()
    feed(tracker, mood_post_fails("57"))
    read = comparison("GET", "/api/moods/{id}", "/api/moods/58", status(200, 404))
    assert feed(tracker, read) == []


def test_a_read_of_another_table_with_the_same_key_is_not_linked():
    tracker = CascadeTracker()
    feed(tracker, mood_post_fails("57"))
    read = comparison("GET", "/api/messages/{id}", "/api/messages/57", status(200, 404))
    assert feed(tracker, read) == []


def test_a_list_lacking_an_uncommitted_row_is_linked_to_the_write_that_lost_it():
    tracker = CascadeTracker()
    feed(tracker, journal_post_renders())
    listing = comparison("GET", "/api/journal", "/api/journal",
                         body("$.entries[0]", {"id": 57, "title": "t"}, None, "missing in shadow"),
                         body("$.count", 3, 2))
    links = feed(tracker, listing)
    assert [(x.finding, x.cause) for x in links] == [
        ("GET /api/journal missing $.entries[*]", "POST /api/journal row_missing journal_entries")]
    assert "$.entries[0]" in links[0].evidence


def test_an_id_numbered_higher_after_a_failed_insert_is_linked_to_it():
    tracker = CascadeTracker()
    feed(tracker, mood_post_fails("57"))
    later = comparison("POST", "/api/moods", "/api/moods", body("$.id", 58, 59))
    links = feed(tracker, later)
    assert [(x.finding, x.cause) for x in links] == [
        ("POST /api/moods value $.id", "POST /api/moods status 201→500")]
    assert "59 on the shadow and 58 on the primary" in links[0].evidence


def test_an_id_numbered_lower_is_not_a_shift():
    tracker = CascadeTracker()
    feed(tracker, mood_post_fails("57"))
    lastrowid = comparison("POST", "/api/moods", "/api/moods", body("$.id", 58, 0))
    assert feed(tracker, lastrowid) == []


def test_an_extra_row_moves_the_key_of_the_next_pair():
    tracker = CascadeTracker()
    feed(tracker, comparison("POST", "/api/messages", "/api/messages",
                             extra_row("messages", "9", {"id": 9})))
    shifted = comparison("POST", "/api/messages", "/api/messages", Difference(
        Kind.ROW_CHANGED, "messages[10].id", 10, 11, "key: the shadow was expected to use 10"))
    links = feed(tracker, shifted)
    assert [x.cause for x in links] == ["POST /api/messages row_extra messages"]


def test_a_finding_is_never_its_own_cause_and_memory_is_bounded():
    tracker = CascadeTracker(max_rows=2)
    for key in ("1", "2", "3"):
        feed(tracker, mood_post_fails(key, exchange_id=key))
    assert len(tracker.missing) == 2 and ("moods", "1") not in tracker.missing
    again = feed(tracker, mood_post_fails("3"))
    assert again == []


def test_route_helpers():
    assert path_values("/api/journal/{id}", "/api/journal/57") == ["57"]
    assert path_values("/api/journal/{id}", "/api/journal") == []
    assert related("journal", "journal_entries") and related("moods", "moods")
    assert not related("conversations", "messages") and not related(None, "moods")
