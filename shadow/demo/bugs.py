"""The classic SQLite-to-PostgreSQL migration bugs, as switches of the candidate build.

Each bug is one name. `make_candidate_app(dsn, bugs)` takes a set of names; with none on,
the candidate answers exactly like the legacy build. With one on, the replies differ
exactly on the routes listed in `Bug.routes` for the traffic of `shadow.demo.traffic`
(route keys are "METHOD /template", as in the route table of `shadow.demo.routes`).

`Bug.acts_on` names the routes whose code is wrong; `Bug.routes` names the routes whose
replies show it. They differ where a bug is silent or has knock-on effects: a wrong id
in one reply makes the client's next read of that id fail, a lost row shows only when it
is read back. `lost_commit` is the silent one: `POST /api/journal` answers a correct
201 with a correct-looking id, and only a later `GET` shows that the row is missing, so
its `acts_on` route is not among its `routes`.

The routes hold when each build sees the session cookies it issued itself, as when the
traffic generator runs against each build. Behind a proxy the client holds the primary's
cookie, which names the user by the primary's id. With `burnt_sequence` the candidate
then reads that id as the previously registered user (or as nobody: 401), so everything
a later user does lands on another account on the candidate: mismatches on every route
that needs a session, not only on `routes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bug:
    """One migration bug: what goes wrong, where the code is, where replies differ."""

    name: str
    summary: str
    acts_on: frozenset[str]
    routes: frozenset[str]


def _bug(name: str, summary: str, acts_on: set[str] | None, routes: set[str]) -> Bug:
    """A Bug; `acts_on=None` means the faulty code runs on every route that shows it."""
    return Bug(name, summary, frozenset(routes if acts_on is None else acts_on), frozenset(routes))


_USER_RECORD = {"POST /api/register", "POST /api/login", "GET /api/me"}
_JOURNAL_READS = {"GET /api/journal", "GET /api/journal/{id}", "PUT /api/journal/{id}"}
_MOOD_READS = {"GET /api/moods", "GET /api/moods/{id}"}
_REFLECTIONS = {"POST /api/reflections", "GET /api/reflections"}

BUGS: dict[str, Bug] = {
    bug.name: bug
    for bug in (
        _bug("date_arith",
             "stats filter on SQLite's datetime('now', '-7 days'): no such function, 500 "
             "(and the audit summary misses the statistics views)",
             {"GET /api/admin/stats"}, {"GET /api/admin/stats", "GET /api/admin/audit"}),
        _bug("group_by",
             "inbox query keeps SQLite's bare columns next to MAX(): strict GROUP BY, 500",
             {"GET /api/inbox"}, {"GET /api/inbox"}),
        _bug("order_by",
             "journal listing without ORDER BY: an edited entry moves to the end",
             {"GET /api/journal"}, {"GET /api/journal"}),
        _bug("bool_render",
             "booleans rendered true/false instead of 0/1, on every reply that has one",
             None, _USER_RECORD | {"POST /api/journal", "POST /api/messages",
                                    "GET /api/conversations/{username}"} | _JOURNAL_READS),
        _bug("timestamp_render",
             "timestamptz rendered as ISO 8601 with microseconds and offset, on every "
             "reply that has a timestamp",
             None, _USER_RECORD | _JOURNAL_READS | _MOOD_READS | _REFLECTIONS | {
                 "POST /api/journal", "POST /api/messages", "GET /api/inbox",
                 "GET /api/conversations/{username}", "GET /api/achievements"}),
        _bug("like_case",
             "journal search with LIKE instead of ILIKE: case-sensitive, fewer hits",
             {"GET /api/journal"}, {"GET /api/journal"}),
        _bug("insert_or_replace",
             "points upsert ported as a plain INSERT: duplicate key on a user's second "
             "mood, 500; the mood is rolled back and its id burnt, so later mood ids, "
             "mood lists, points and statistics differ too",
             {"POST /api/moods"},
             {"POST /api/moods", "GET /api/points", "GET /api/admin/stats",
              "GET /api/achievements"} | _MOOD_READS),
        _bug("lastrowid",
             "new mood id taken from the command tag 'INSERT 0 1' (the OID, always 0); "
             "the client's read-back of id 0 gets a 404",
             {"POST /api/moods"}, {"POST /api/moods", "GET /api/moods/{id}"}),
        _bug("avg_decimal",
             "AVG() numeric left as Decimal, serialised as the string \"6.50\"",
             {"GET /api/admin/stats"}, {"GET /api/admin/stats"}),
        _bug("empty_null",
             "an empty mood note '' is stored as NULL and read back as null",
             {"POST /api/moods"}, set(_MOOD_READS)),
        _bug("burnt_sequence",
             "duplicate username caught by the unique constraint, not checked first: the "
             "failed INSERT burns a users id and every later user id is one higher",
             {"POST /api/register"}, set(_USER_RECORD)),
        _bug("lost_commit",
             "new journal entries are never committed: 201 with a correct-looking id, the "
             "row is rolled back when the connection goes back to the pool; reads, edits, "
             "deletes and statistics then miss it",
             {"POST /api/journal"},
             _JOURNAL_READS | _REFLECTIONS | {"DELETE /api/journal/{id}",
                                              "GET /api/admin/stats", "GET /api/admin/audit"}),
        _bug("order_tie",
             "badges listed ORDER BY earned_at alone: SQLite's second-resolution ties were "
             "broken by name, PostgreSQL's microseconds and a tie within one transaction "
             "come in another order",
             {"GET /api/achievements"}, {"GET /api/achievements"}),
        _bug("numeric_string",
             "a reflection's confidence, numeric(4,3) on PostgreSQL, left as Decimal and "
             "serialised as the string \"0.873\"",
             None, set(_REFLECTIONS)),
        _bug("naive_aware",
             "'new badge' computed with a naive now against PostgreSQL's aware timestamptz: "
             "TypeError, 500",
             {"GET /api/achievements"}, {"GET /api/achievements"}),
        _bug("having_alias",
             "audit summary keeps SQLite's HAVING on an output alias: PostgreSQL rejects "
             "the GROUP BY query, 500",
             {"GET /api/admin/audit"}, {"GET /api/admin/audit"}),
        _bug("audit_on_get",
             "the port audits every profile read, which the legacy build never did: one "
             "more audit row per GET /api/me, seen in the rows and in the audit summary",
             {"GET /api/me"}, {"GET /api/admin/audit"}),
    )
}

BUG_NAMES: frozenset[str] = frozenset(BUGS)

BUG_ROUTES: dict[str, frozenset[str]] = {name: bug.routes for name, bug in BUGS.items()}
"""Bug name -> the "METHOD /template" routes whose replies differ when only it is on."""


class UnknownBug(ValueError):
    """A bug name that is not in `BUGS`."""


def parse_bugs(spec: str | Iterable[str] | None) -> frozenset[str]:
    """Turn `"all"`, `"none"`, `"a,b"`, an iterable of names or None into a set of names.

    Raises UnknownBug naming every unknown name at once.
    """
    if spec is None:
        return frozenset()
    if isinstance(spec, str):
        text = spec.strip()
        if text in ("", "none"):
            return frozenset()
        if text == "all":
            return BUG_NAMES
        names = [part.strip() for part in text.split(",") if part.strip()]
    else:
        names = list(spec)
    unknown = sorted(set(names) - BUG_NAMES)
    if unknown:
        raise UnknownBug(
            f"unknown bug name(s): {', '.join(unknown)}; known: {', '.join(sorted(BUG_NAMES))}"
        )
    return frozenset(names)
