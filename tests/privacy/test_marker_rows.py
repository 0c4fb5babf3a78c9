"""Planted markers in row images, through a real proxy with real row capture (two SQLite
builds): rows the candidate never commits carry e-mails, names and a diagnosis; none of
it reaches the state file, the API, findings or the sample page, while the difference
still says which table lost which row and what its columns were."""

from __future__ import annotations

import re

import aiohttp
import orjson

from shadow.browser import sample_detail
from tests.support import admin_url, proxy_url, reader, running, settle
from tests.writes.apps import build_pair

EMAIL = "qzmk-row.owner@example.com"
MARKS = [EMAIL, "Qzmk70Vx Roe", "qzmk71 diabetes type 2"]


async def test_no_marker_in_a_row_image_reaches_the_store_the_api_or_the_page(
        aiohttp_server, tmp_path):
    config, _, _ = await build_pair(aiohttp_server, tmp_path, lost=frozenset(MARKS))
    async with running(config) as runtime:
        seen: list = []
        runtime.verifier.listeners.append(seen.append)
        async with aiohttp.ClientSession() as client:
            for name in [*MARKS, "kept on both"]:
                async with client.post(proxy_url(runtime, "/items"), json={"name": name}) as r:
                    assert r.status == 201
        await settle(runtime, len(MARKS) + 1)
        await runtime.store.flush()
        api: dict[str, str] = {}
        async with reader() as client:
            for path in ("/api/mismatches?limit=500", "/api/signatures", "/api/findings"):
                async with client.get(admin_url(runtime, path)) as reply:
                    api[path] = await reply.text()
            samples = orjson.loads(api["/api/mismatches?limit=500"])["mismatches"]
            findings = orjson.loads(api["/api/findings"])["findings"]
            for path in [f"/api/samples/{s['id']}" for s in samples] + [
                    f"/api/findings/{f['id']}" for f in findings]:
                async with client.get(admin_url(runtime, path)) as reply:
                    api[path] = await reply.text()
    missing = [d.primary["name"] for c in seen for d in c.differences if d.kind == "row_missing"]
    assert sorted(missing) == sorted(MARKS)  # the markers really were in the differences
    pages = {f"/samples/{s['id']}": sample_detail(s) for s in samples}
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*") if p.suffix != ".key")
    texts = {"state file": stored.decode("utf-8", "replace"), **api, **pages}
    for where, text in texts.items():
        assert [m for m in ("qzmk", "Roe", "diabetes") if m in text] == [], where

    differences = [d for s in samples for d in s["sample"]["differences"]]
    rows = [d for d in differences if d["kind"] == "row_missing"]
    assert rows and all(d["path"].startswith("items[") for d in rows)
    for d in rows:
        assert isinstance(d["primary"]["id"], int) and d["shadow"] is None
        assert re.fullmatch(r"«str \d+ #[0-9a-f]{12}»", d["primary"]["name"])
    assert ("row_missing", "items") in {(f["kind"], f["what"]) for f in findings}
    assert all("row_missing" in page and "items" in page for page in pages.values())
