"""Recorded comparisons, as the verifier publishes them, for the pure findings tests:
the differences are those the comparison and row modules report for the demo's bugs."""

from __future__ import annotations

from shadow.verdict import (
    Comparison, Difference, Exchange, Kind, Observation, Reply, Role, Verdict,
)


def comparison(method: str, route: str, path: str, *differences: Difference,
               exchange_id: str = "x1", candidate_headers: tuple = ()) -> Comparison:
    ex = Exchange(exchange_id, method, path, route, (), b"", 0.0)
    primary = Observation("legacy", Role.PRIMARY, Reply(200, (), b"{}", 0.01))
    shadow = Observation("candidate", Role.SHADOW, Reply(200, candidate_headers, b"{}", 0.01))
    verdict = Verdict.MISMATCH if differences else Verdict.MATCH
    return Comparison(ex, primary, shadow, tuple(differences), verdict)


def status(p, s) -> Difference:
    return Difference(Kind.STATUS, "status", p, s)


def body(path: str, p, s, detail: str = "changed") -> Difference:
    return Difference(Kind.BODY, path, p, s, detail)


def missing_row(table: str, key: str, row: dict, op: str = "insert") -> Difference:
    return Difference(Kind.ROW_MISSING, f"{table}[{key}]", row, None, f"{op} on the primary only")


def extra_row(table: str, key: str, row: dict) -> Difference:
    return Difference(Kind.ROW_EXTRA, f"{table}[{key}]", None, row, "insert on the shadow only")


def mood_post_fails(key: str, exchange_id: str = "m1") -> Comparison:
    """insert_or_replace: POST /api/moods answers 500 on the candidate; the mood and the
    points row were never written there."""
    return comparison(
        "POST", "/api/moods", "/api/moods",
        status(201, 500),
        body("$.error", None, "internal", "missing in primary"),
        body("$.id", int(key), None, "missing in shadow"),
        body("$.points", 10, None, "missing in shadow"),
        missing_row("moods", key, {"id": int(key), "score": 7}),
        missing_row("points", "3", {"user_id": 3, "points": 10}),
        exchange_id=exchange_id)


def journal_post_renders(exchange_id: str = "j1") -> Comparison:
    """bool_render + timestamp_render on POST /api/journal, and lost_commit's missing row."""
    return comparison(
        "POST", "/api/journal", "/api/journal",
        body("$.created_at", "2026-02-04 15:47:20", "2026-02-04T15:47:20.123456+00:00"),
        body("$.updated_at", "2026-02-04 15:47:20", "2026-02-04T15:47:20.123456+00:00"),
        body("$.is_private", 0, False, "type changed: number -> boolean"),
        missing_row("journal_entries", "57", {"id": 57, "title": "t"}),
        exchange_id=exchange_id)
