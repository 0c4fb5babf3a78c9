"""Route labels under a flood of unique paths: /metrics stays small, no raw value in it,
and `shadow routes` lists what was learned (real proxy, real upstreams)."""

from __future__ import annotations

import asyncio
import random
import string

import aiohttp
from click.testing import CliRunner

from shadow.cli import main
from tests.support import VIEWER, ok_app, admin_url, make_config, proxy_url, running, settle

TOKEN = "route-labels-token"


async def test_flood_of_long_unique_segments_keeps_metrics_small(aiohttp_server, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    limits = {"max_line_size": 32_768, "max_field_size": 32_768}
    legacy = await aiohttp_server(ok_app(), **limits)
    candidate = await aiohttp_server(ok_app(), **limits)
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    rng = random.Random(7)
    segments = ["".join(rng.choices(string.ascii_letters, k=15_000)) for _ in range(520)]
    async with running(config) as runtime, aiohttp.ClientSession() as client:
        async with client.get(admin_url(runtime, "/metrics")) as r:
            before = len(await r.read())
        sem = asyncio.Semaphore(16)

        async def hit(segment: str) -> int:
            async with sem, client.get(proxy_url(runtime, f"/{segment}")) as r:
                await r.read()
                return r.status

        assert set(await asyncio.gather(*(hit(s) for s in segments))) == {200}
        await settle(runtime, 520)
        async with client.get(admin_url(runtime, "/metrics")) as r:
            text = await r.text()
        assert len(text) < before + 16_384, (before, len(text))
        assert not any(s[:40] in text for s in segments)
        assert 'route="/{param}"' in text or 'route="{other}"' in text
        async with client.get(admin_url(runtime, "/api/routes"), headers=VIEWER) as r:
            routes = await r.json()
        assert [r["template"] for r in routes["learned"]] == ["/{param}"]

        result = await asyncio.to_thread(
            CliRunner().invoke, main, ["routes", "--admin", admin_url(runtime)])
        assert result.exit_code == 0, result.output
        assert "/{param}" in result.output and "learned (1 of at most 200" in result.output


async def test_usernames_in_paths_fold_and_configured_routes_rename(aiohttp_server, tmp_path):
    legacy, candidate = await aiohttp_server(ok_app()), await aiohttp_server(ok_app())
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         routes=[{"template": "/api/patients/{patient}/diagnosis"}],
                         learn_routes={"min_hits": 5, "max_literals": 8})
    users = [f"user.{name}@example.com" for name in string.ascii_lowercase[:12]]
    async with running(config) as runtime, aiohttp.ClientSession() as client:
        for _ in range(3):
            for user in users:
                for path in (f"/api/users/{user}/records", f"/api/patients/{user}/diagnosis"):
                    async with client.get(proxy_url(runtime, path)) as r:
                        await r.read()
        await settle(runtime, 72)
        async with client.get(admin_url(runtime, "/metrics")) as r:
            text = await r.text()
        assert "example.com" not in text
        assert 'route="/api/users/{param}/records"' in text
        assert 'route="/api/patients/{patient}/diagnosis"' in text
