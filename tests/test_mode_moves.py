"""Mode moves that cannot go wrong by accident, through a running proxy and its CLI:
`rollback` from shadow asks for `--to legacy-only`, `finalize` from shadow asks for
`--skip-cutover` with a reason (the admin API for `"skip"`), `resume` goes back to
shadow, `gate --reset` exits 0; divergence shows at once in `shadow_diverged`, in
`shadow status`, and `shadow rows resync` says in words what it did."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import aiosqlite
import orjson

from shadow.config import parse_config, row_rules
from shadow.modes import Mode
from shadow.rows.live import open_capture
from tests.rows.test_burnt_sequence import legacy_app
from tests.support import VIEWER_TOKEN, admin_url, config_data, proxy_url, running, sample_value
from tests.test_cutover import LOOSE, backends, call, cli, config_for, token, traffic

__all__ = ["backends", "token"]  # fixtures used here


async def test_rollback_from_shadow_needs_an_explicit_target_and_resume_comes_back(
        tmp_path, backends, token):
    async with running(config_for(tmp_path, backends)) as runtime:
        result = await cli(runtime, "rollback")
        assert result.exit_code == 2 and "--to legacy-only" in result.output
        result = await cli(runtime, "rollback", "--json")
        assert result.exit_code == 2 and orjson.loads(result.output)["error"] == "refused"
        assert runtime.modes.current.mode == Mode.SHADOW
        result = await cli(runtime, "resume")
        assert result.exit_code == 2 and "the mode is shadow" in result.output
        result = await cli(runtime, "rollback", "--to", "legacy-only", "--reason", "drill")
        assert result.exit_code == 0, result.output
        assert "shadow -> legacy-only" in result.output
        result = await cli(runtime, "rollback", "--to", "shadow")
        assert result.exit_code == 2 and "`shadow resume`" in result.output
        result = await cli(runtime, "resume", "--reason", "drill over")
        assert result.exit_code == 0 and "legacy-only -> shadow" in result.output
        assert runtime.modes.current.mode == Mode.SHADOW
        audit = (await call(runtime, "GET", "/api/audit", auth=VIEWER_TOKEN))[1]["audit"]
        assert [(a["from_mode"], a["to_mode"], a["reason"]) for a in audit] == [
            ("legacy-only", "shadow", "drill over"), ("shadow", "legacy-only", "drill")]


async def test_finalize_from_shadow_needs_skip_cutover_and_a_reason(tmp_path, backends, token):
    async with running(config_for(tmp_path, backends, gate=LOOSE)) as runtime:
        await traffic(runtime, 6)
        result = await cli(runtime, "finalize")
        assert result.exit_code == 2 and "skips cutover" in result.output
        assert "--skip-cutover" in result.output
        result = await cli(runtime, "finalize", "--skip-cutover")
        assert result.exit_code == 2 and "--reason" in result.output
        status, answer = await call(runtime, "POST", "/api/mode", {"mode": "candidate-only"})
        assert status == 400 and "skips cutover" in answer["message"]
        status, answer = await call(runtime, "POST", "/api/mode",
                                    {"mode": "candidate-only", "skip": True})
        assert status == 400 and "needs a reason" in answer["message"]
        assert runtime.modes.current.mode == Mode.SHADOW
        result = await cli(runtime, "finalize", "--skip-cutover", "--reason", "verified offline")
        assert result.exit_code == 0, result.output
        assert "shadow -> candidate-only (skipped cutover)" in result.output
        result = await cli(runtime, "rollback", "--json")
        assert result.exit_code == 0
        assert orjson.loads(result.output)["change"] == {
            "from": "candidate-only", "to": "shadow", "forced": False, "skipped": []}
        result = await cli(runtime, "cutover")
        assert result.exit_code == 0 and "shadow -> cutover" in result.output
        result = await cli(runtime, "finalize")
        assert result.exit_code == 0 and "cutover -> candidate-only" in result.output


async def test_a_forward_move_over_shadow_is_refused_by_the_api_too(tmp_path, backends, token):
    async with running(config_for(tmp_path, backends, mode="legacy-only")) as runtime:
        status, answer = await call(runtime, "POST", "/api/mode",
                                    {"mode": "cutover", "force": True, "reason": "hurry"})
        assert status == 400 and "legacy-only -> cutover skips shadow" in answer["message"]
        status, answer = await call(runtime, "POST", "/api/mode", {"mode": "shadow"})
        assert status == 200 and answer["change"]["skipped"] == []


async def test_gate_reset_exits_0_as_a_process(tmp_path, backends, token):
    async with running(config_for(tmp_path, backends)) as runtime:
        await traffic(runtime, 2)
        codes = []
        for args in (["gate"], ["gate", "--reset", "--reason", "new build"]):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shadow.cli", *args, "--admin", admin_url(runtime),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await process.communicate()
            codes.append((process.returncode, out.decode(), err.decode()))
        assert codes[0][0] == 1 and "GET /api/items: 2 of" in codes[0][1]
        assert codes[1][0] == 0, codes[1]
        assert "0 compared" in codes[1][1] and "no evidence yet" in codes[1][1]


async def _notes_pair(tmp_path, aiohttp_server):
    """Two SQLite builds of a notes app, change capture installed in both databases."""
    urls, databases = [], []
    for name in ("legacy", "candidate"):
        path = tmp_path / f"{name}.sqlite3"
        async with aiosqlite.connect(path) as db:
            await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                             "title TEXT NOT NULL)")
            await db.commit()
        server = await aiohttp_server(legacy_app(str(path)))
        urls.append(str(server.make_url("")))
        databases.append(f"sqlite:///{path}")
    data = config_data(tmp_path, *urls, mode="legacy-only",
                       routes=[{"template": "/notes"}, {"template": "/notes/{id}"}])
    for name, database in zip(("legacy", "candidate"), databases, strict=True):
        data["backends"][name]["database"] = database
    config = parse_config(data)
    for name in ("legacy", "candidate"):
        capture = open_capture(config.backends[name].database, row_rules(config))
        await capture.open()
        await capture.install()
        await capture.close()
    return config


async def test_divergence_shows_the_moment_it_happens_and_a_resync_says_what_it_did(
        tmp_path, aiohttp_server, token):
    config = await _notes_pair(tmp_path, aiohttp_server)
    async with running(config) as runtime:
        runtime._rows_task.cancel()  # no periodic refresh: only the divergence itself counts
        assert sample_value(runtime, "shadow_diverged") == 0
        async with aiohttp.ClientSession() as session:
            async with session.post(proxy_url(runtime, "/notes"), json={"title": "a"}) as resp:
                assert resp.status == 201
        async with asyncio.timeout(10):
            while sample_value(runtime, "shadow_diverged") != 1:
                await asyncio.sleep(0.01)
        assert runtime.cutover.stats.diverged is True
        result = await cli(runtime, "status")
        assert result.exit_code == 0
        assert "rows      DIVERGED: /notes wrote rows the shadow never received" in result.output
        result = await cli(runtime, "resume")
        assert result.exit_code == 0 and "DIVERGED" in result.output
        result = await cli(runtime, "rows", "resync", "--reason", "re-copied legacy.sqlite3")
        assert result.exit_code == 0, result.output
        assert result.output.startswith("resynced: divergence cleared")
        assert "rows      in step; 0 key pair(s) remembered" in result.output
        assert "{" not in result.output
        assert sample_value(runtime, "shadow_diverged") == 0
        result = await cli(runtime, "rows", "resync", "--reason", "again", "--json")
        assert result.exit_code == 0 and orjson.loads(result.output)["diverged"] is None
