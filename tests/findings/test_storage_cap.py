"""The findings' cap, on a real state store file: past `max_findings` the least frequent
and least recent untriaged findings go, with everything attached to them; a finding an
operator triaged stays whatever its count."""

from __future__ import annotations

import time

from shadow.findings.cascade import Link
from shadow.findings.group import Cause
from shadow.store import Store


def cause(n: int) -> Cause:
    return Cause(key=f"GET /r{n} body $.x", method="GET", route=f"/r{n}", kind="body",
                 what="$.x", table=None, signatures=(f"sig{n}",))


async def test_untriaged_findings_past_the_cap_are_evicted_with_what_hangs_on_them(tmp_path):
    store = await Store.open(str(tmp_path / "state.db"), flush_interval=3600)
    tables = store.findings
    tables.max_findings = 3
    evicted: list[int] = []
    tables.on_evicted = evicted.append
    now = time.time()
    try:
        for _ in range(40):  # frequent, long ago
            tables.record(exchange_id="a", causes=(cause(0),), links=[], version="1",
                          now=now - 7200)
        tables.record(exchange_id="b", causes=(cause(1),), links=[], version="1",
                      now=now - 7200)
        await store.flush()
        await store.write([("UPDATE findings SET state = 'expected', reason = 'on purpose'"
                            " WHERE key = ?", (cause(1).key,))])
        for n in range(2, 8):  # seen once each, recently; #7 blames #2
            links = [Link(finding=cause(7).key, cause=cause(2).key, evidence="e")] if n == 7 else []
            tables.record(exchange_id=f"e{n}", causes=(cause(n),), links=links, version="1",
                          now=now + n)
        await store.flush()

        kept = {r["key"] for r in await store.rows("SELECT key FROM findings")}
        assert kept == {cause(0).key, cause(1).key, cause(6).key, cause(7).key}
        assert evicted == [4]
        ids = {r["id"] for r in await store.rows("SELECT id FROM findings")}
        for table in ("finding_signatures", "finding_minutes", "finding_versions"):
            left = {r["finding_id"] for r in await store.rows(f"SELECT finding_id FROM {table}")}
            assert left == ids, table
        assert await store.rows("SELECT * FROM finding_links") == []
    finally:
        await store.close()


async def test_triaged_findings_are_kept_and_leave_the_cap_to_new_ones(tmp_path):
    store = await Store.open(str(tmp_path / "state.db"), flush_interval=3600)
    tables = store.findings
    tables.max_findings = 1
    try:
        for n in range(3):
            tables.record(exchange_id=f"e{n}", causes=(cause(n),), links=[], version=None)
        await store.flush()
        assert len(await store.rows("SELECT key FROM findings")) == 1
        (left,) = await store.rows("SELECT key FROM findings")
        await store.write([("UPDATE findings SET state = 'acknowledged' WHERE key = ?",
                            (left["key"],))])
        tables.record(exchange_id="e9", causes=(cause(9),), links=[], version=None)
        await store.flush()
        keys = {r["key"] for r in await store.rows("SELECT key FROM findings")}
        assert keys == {left["key"], cause(9).key}
    finally:
        await store.close()
