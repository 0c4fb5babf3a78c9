"""`shadow store purge`: everything stored for one route, or for all routes, deleted at once.

A route's data is its mismatch signatures with their hourly counts and samples, and its
findings with their signatures, trend, versions, cascade links (both ways) and sample
links. Deleted pages are zeroed (the store runs with `secure_delete`), the file is
vacuumed and the WAL truncated, so the bytes are gone from the disk, not only from the
tables; the purge itself is audited with what it deleted. A running proxy keeps what it
holds in memory (counts, the findings it knows) until it restarts.
"""

from __future__ import annotations

from shadow.store import Store

_FINDING_TABLES = ("finding_signatures", "finding_minutes", "finding_versions",
                   "sample_findings")


def statements(route: str | None) -> list[tuple[str, str, tuple]]:
    """(what is counted, SQL, parameters) of one purge, in the order they must run."""
    where, params = ("WHERE route = ?", (route,)) if route is not None else ("", ())
    found = f"(SELECT id FROM findings {where})"
    out = [("hourly_counts", f"DELETE FROM signature_hours WHERE signature IN "
                             f"(SELECT signature FROM signatures {where})", params)]
    out += [(table, f"DELETE FROM {table} WHERE finding_id IN {found}", params)
            for table in _FINDING_TABLES]
    out.append(("finding_links", f"DELETE FROM finding_links WHERE finding_id IN {found} "
                                 f"OR cause_id IN {found}", params + params))
    out += [(table, f"DELETE FROM {table} {where}", params)
            for table in ("findings", "samples", "signatures")]
    return out


async def purge(store: Store, *, route: str | None, reason: str, who: str) -> dict[str, int]:
    """Delete everything stored for `route` (None: for all routes) and audit it; returns
    how many rows of each kind were deleted. Raises ValueError without a reason."""
    if not reason.strip():
        raise ValueError("a purge needs a reason")
    await store.flush()
    steps = statements(route)
    counts = await store.write(
        [(sql, params) for _, sql, params in steps])
    deleted: dict[str, int] = {}
    for (name, _, _), n in zip(steps, counts):
        deleted[name] = deleted.get(name, 0) + n
    await store.compact()
    await store.add_audit(action="store_purge", from_mode=None, to_mode=None, forced=False,
                          reason=reason, who=who,
                          gate={"route": route if route is not None else "*", **deleted})
    return deleted
