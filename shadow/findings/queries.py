"""Reading findings back: the list (search, filters, sorting, paging), one finding with
its signatures, links, versions and samples, and a sample's neighbours in a finding.

`trend()` turns per-minute counts into a fixed number of bars over a window that fits
the run (from the earliest first sighting shown to now), so a short run gets as many
bars as a long one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from shadow.findings.group import KINDS
from shadow.findings.triage import STATES

SORTS = {"count": "f.count", "last_seen": "f.last_seen", "first_seen": "f.first_seen",
         "id": "f.id", "route": "f.route, f.method", "state": "f.state"}
BARS = 24


@dataclass(frozen=True, slots=True)
class Query:
    """What the list shows: `q` searches the cause, route and signature paths (or a
    finding number); every other field filters exactly; `version` keeps findings seen
    under that candidate version."""

    q: str = ""
    method: str = ""
    route: str = ""
    kind: str = ""
    table: str = ""
    state: str = ""
    version: str = ""
    sort: str = "count"
    descending: bool = True
    limit: int = 50
    offset: int = 0

    def problems(self) -> list[str]:
        out = []
        if self.kind and self.kind not in KINDS:
            out.append(f"unknown kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        if self.state and self.state not in STATES:
            out.append(f"unknown state {self.state!r}; states: {', '.join(STATES)}")
        if self.sort not in SORTS:
            out.append(f"unknown sort {self.sort!r}; sorts: {', '.join(SORTS)}")
        if not 1 <= self.limit <= 500:
            out.append("limit must be 1..500")
        if self.offset < 0:
            out.append("offset must be 0 or more")
        return out


def _where(query: Query) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (("f.method", query.method), ("f.route", query.route),
                          ("f.kind", query.kind), ("f.tbl", query.table),
                          ("f.state", query.state)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.version:
        clauses.append("EXISTS (SELECT 1 FROM finding_versions v WHERE v.finding_id = f.id"
                       " AND v.version = ?)")
        params.append(query.version)
    if query.q:
        text = query.q.strip().lstrip("#")
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(f.key LIKE ? ESCAPE '\\' OR f.id = ? OR EXISTS (SELECT 1 FROM "
                       "finding_signatures s WHERE s.finding_id = f.id AND s.signature LIKE ? "
                       "ESCAPE '\\'))")
        params += [like, int(text) if text.isdigit() else -1, like]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


async def listing(store, query: Query, now: float) -> tuple[list[dict], int]:
    """One page of findings and the number matching in all."""
    where, params = _where(query)
    total = (await store.rows(f"SELECT count(*) AS n FROM findings f{where}", tuple(params)))[0]["n"]
    order = SORTS[query.sort] + (" DESC" if query.descending else " ASC")
    rows = await store.rows(
        f"SELECT f.* FROM findings f{where} ORDER BY {order}, f.id LIMIT ? OFFSET ?",
        (*params, query.limit, query.offset))
    await _decorate(store, rows, now)
    return rows, total


async def one(store, finding_id: int, now: float) -> dict | None:
    """One finding with its signatures, cascade links (both ways), versions and trend."""
    rows = await store.rows("SELECT * FROM findings WHERE id = ?", (finding_id,))
    if not rows:
        return None
    await _decorate(store, rows, now)
    found = rows[0]
    found["signatures"] = await store.rows(
        """SELECT fs.signature, fs.dependent, fs.count, (SELECT count(*) FROM samples s
           WHERE s.signature = fs.signature) AS samples FROM finding_signatures fs
           WHERE fs.finding_id = ? ORDER BY fs.dependent, fs.count DESC, fs.signature""",
        (finding_id,))
    for sig in found["signatures"]:
        sig["dependent"] = bool(sig["dependent"])
        sig["path"] = sig["signature"].split(" ", 3)[3] if sig["signature"].count(" ") >= 3 else ""
    found["caused_by"] = await store.rows(
        """SELECT l.cause_id AS id, c.key AS title, c.state, l.evidence, l.count, l.first_seen,
           l.last_seen FROM finding_links l JOIN findings c ON c.id = l.cause_id
           WHERE l.finding_id = ? ORDER BY l.count DESC""", (finding_id,))
    found["explains"] = await store.rows(
        """SELECT l.finding_id AS id, c.key AS title, c.state, l.evidence, l.count
           FROM finding_links l JOIN findings c ON c.id = l.finding_id
           WHERE l.cause_id = ? ORDER BY l.count DESC""", (finding_id,))
    return found


async def _decorate(store, rows: list[dict], now: float) -> None:
    """Add title, versions, sample count, signature count, causes and trend to each row."""
    if not rows:
        return
    ids = [r["id"] for r in rows]
    marks = ",".join("?" * len(ids))
    versions = await store.rows(
        f"SELECT * FROM finding_versions WHERE finding_id IN ({marks}) ORDER BY first_seen",
        tuple(ids))
    counts = await store.rows(
        f"""SELECT f.id, (SELECT count(*) FROM sample_findings s WHERE s.finding_id = f.id)
            AS samples, (SELECT count(*) FROM finding_signatures g WHERE g.finding_id = f.id)
            AS signature_count FROM findings f WHERE f.id IN ({marks})""", tuple(ids))
    causes = await store.rows(
        f"SELECT finding_id, cause_id FROM finding_links WHERE finding_id IN ({marks})",
        tuple(ids))
    start = min(r["first_seen"] for r in rows)
    minutes = await store.rows(
        f"SELECT * FROM finding_minutes WHERE finding_id IN ({marks}) AND minute >= ?",
        (*ids, int(start // 60)))
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["title"] = r["key"]
        r["versions"] = []
        r["caused_by_ids"] = []
        r["trend"] = [0] * BARS
    for v in versions:
        by_id[v["finding_id"]]["versions"].append(
            {"version": v["version"] or None, "count": v["count"],
             "first_seen": v["first_seen"], "last_seen": v["last_seen"]})
    for c in counts:
        by_id[c["id"]].update(samples=c["samples"], signature_count=c["signature_count"])
    for link in causes:
        by_id[link["finding_id"]]["caused_by_ids"].append(link["cause_id"])
    first, last = int(start // 60), int(now // 60)
    width = max(1, math.ceil((last - first + 1) / BARS))
    for m in minutes:
        bar = min(BARS - 1, (m["minute"] - first) // width)
        by_id[m["finding_id"]]["trend"][bar] += m["count"]
    for r in rows:
        r["trend_minutes"] = width


async def samples(store, finding_id: int, limit: int = 50) -> list[dict]:
    """The samples kept for a finding, newest first, each with its redacted body."""
    rows = await store.rows(
        """SELECT s.* FROM samples s JOIN sample_findings l ON l.sample_id = s.id
           WHERE l.finding_id = ? ORDER BY s.id DESC LIMIT ?""", (finding_id, limit))
    for row in rows:
        row["sample"] = orjson.loads(row.pop("body"))
    return rows


async def neighbours(store, finding_id: int, sample_id: int) -> tuple[int | None, int | None]:
    """(previous, next) sample ids of a finding around `sample_id`, oldest to newest."""
    before = await store.rows(
        "SELECT max(sample_id) AS id FROM sample_findings WHERE finding_id = ? AND sample_id < ?",
        (finding_id, sample_id))
    after = await store.rows(
        "SELECT min(sample_id) AS id FROM sample_findings WHERE finding_id = ? AND sample_id > ?",
        (finding_id, sample_id))
    return before[0]["id"], after[0]["id"]


async def sample_findings(store, sample_id: int) -> list[dict]:
    return await store.rows(
        """SELECT f.id, f.key AS title, f.state FROM sample_findings l JOIN findings f
           ON f.id = l.finding_id WHERE l.sample_id = ? ORDER BY f.id""", (sample_id,))


async def filter_values(store) -> dict[str, list[str]]:
    """The values the list's filters offer: methods, routes, tables, versions seen."""
    out = {}
    for name, query in (("method", "SELECT DISTINCT method AS v FROM findings ORDER BY 1"),
                        ("route", "SELECT DISTINCT route AS v FROM findings ORDER BY 1"),
                        ("table", "SELECT DISTINCT tbl AS v FROM findings WHERE tbl IS NOT NULL"
                                  " ORDER BY 1"),
                        ("version", "SELECT DISTINCT version AS v FROM finding_versions WHERE"
                                    " version != '' ORDER BY 1")):
        out[name] = [r["v"] for r in await store.rows(query)]
    return out
