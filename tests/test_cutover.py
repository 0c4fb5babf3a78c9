"""Cutover through real servers: run-time mode changes behind the gate, the admin API and
its token, the audit log, rollback safety, restarts, and the CLI against a live proxy."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import aiohttp
import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from shadow.cli import main
from shadow.cutover import is_gated
from shadow.rollback import RollbackLedger
from shadow.modes import Mode
from tests.support import (
    VIEWER_TOKEN, admin_url, make_config, proxy_url, running, sample_value, settle,
)

TOKEN = "t0ken-for-tests-only"
LOOSE = {"min_compared": 5, "max_mismatch_rate": 0.5}  # a gate a few requests can satisfy


def stamp_app(tag: str, *, fail_writes: bool = False) -> web.Application:
    """A backend that stamps every reply with `X-Backend: tag`."""
    app = web.Application()

    async def items(request: web.Request) -> web.Response:
        if request.method == "POST" and fail_writes:
            return web.json_response({"error": "disk I/O error"}, status=500,
                                     headers={"X-Backend": tag})
        status = 201 if request.method == "POST" else 200
        return web.json_response({"items": [1, 2, 3]}, status=status, headers={"X-Backend": tag})

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"ok": tag != "legacy"}, status=500 if tag == "legacy" else 200,
                                 headers={"X-Backend": tag})

    app.router.add_route("*", "/api/items", items)
    app.router.add_get("/api/broken", broken)
    return app


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    return TOKEN


@pytest.fixture
async def backends(aiohttp_server):
    legacy = await aiohttp_server(stamp_app("legacy", fail_writes=True))
    candidate = await aiohttp_server(stamp_app("candidate"))
    return str(legacy.make_url("")), str(candidate.make_url(""))


def config_for(tmp_path, backends, **overrides):
    overrides.setdefault("routes", [{"template": "/api/items"}, {"template": "/api/broken"}])
    return make_config(tmp_path, *backends, **overrides)


async def call(runtime, method: str, path: str, body=None, *, auth: str | None = TOKEN,
               raw: bytes | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {auth}"} if auth is not None else {}
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    async with aiohttp.ClientSession() as session:
        async with session.request(method, admin_url(runtime, path), data=data,
                                   headers=headers) as resp:
            return resp.status, await resp.json()


async def traffic(runtime, n: int, method: str = "GET", path: str = "/api/items") -> None:
    start = runtime.verifier.concluded
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            async with session.request(method, proxy_url(runtime, path)) as resp:
                await resp.read()
    await settle(runtime, start + n)


# --- pure parts -------------------------------------------------------------------------

def test_only_moves_that_hand_the_candidate_the_primary_role_or_drop_legacy_are_gated():
    assert not is_gated(Mode.LEGACY_ONLY, Mode.SHADOW)
    assert is_gated(Mode.SHADOW, Mode.CUTOVER) and is_gated(Mode.CUTOVER, Mode.CANDIDATE_ONLY)
    assert is_gated(Mode.LEGACY_ONLY, Mode.CUTOVER) and is_gated(Mode.SHADOW, Mode.CANDIDATE_ONLY)
    for back in [(Mode.CANDIDATE_ONLY, Mode.SHADOW), (Mode.CUTOVER, Mode.LEGACY_ONLY),
                 (Mode.SHADOW, Mode.LEGACY_ONLY)]:
        assert not is_gated(*back)


def test_rollback_ledger_says_what_a_rollback_would_lose():
    ledger = RollbackLedger()
    assert ledger.safety()["clean"]
    ledger.write_failed("POST /api/mood")
    ledger.write_failed("POST /api/mood")
    ledger.skip_legacy()
    safety = RollbackLedger.from_json(orjson.loads(orjson.dumps(ledger.to_json()))).safety()
    assert not safety["clean"] and safety["unsafe_writes"] == 2
    assert safety["routes"] == {"POST /api/mood": 2} and safety["legacy_missed_writes"]
    assert "2 write(s) failed on the legacy build" in safety["summary"]
    ledger.begin()
    assert ledger.safety()["clean"]


# --- through real servers ---------------------------------------------------------------

async def test_flip_under_load_serves_every_request_and_new_ones_from_the_candidate(
        tmp_path, backends, token):
    async with running(config_for(tmp_path, backends, gate=LOOSE)) as runtime:
        await traffic(runtime, 10)
        seen: list[tuple[float, int, str]] = []
        stop = asyncio.Event()

        async def client(session: aiohttp.ClientSession) -> None:
            while not stop.is_set():
                started = time.monotonic()
                async with session.get(proxy_url(runtime, "/api/items")) as resp:
                    await resp.read()
                    seen.append((started, resp.status, resp.headers.get("X-Backend", "")))

        async with aiohttp.ClientSession() as session:
            clients = [asyncio.create_task(client(session)) for _ in range(8)]
            try:
                await asyncio.sleep(0.3)
                status, answer = await call(runtime, "POST", "/api/mode", {"mode": "cutover"})
                flipped = time.monotonic()
                await asyncio.sleep(0.3)
            finally:
                stop.set()
                await asyncio.gather(*clients)
        assert status == 200, answer
        assert answer["mode"] == "cutover" and answer["change"]["forced"] is False
        assert answer["primary"]["backend"] == "candidate"
        assert answer["shadow"]["backend"] == "legacy"
        assert all(s == 200 for _, s, _ in seen)
        before = {b for t, _, b in seen if t < flipped}
        after = [b for t, _, b in seen if t > flipped]
        assert "legacy" in before and after and set(after) == {"candidate"}
        assert sample_value(runtime, "shadow_mode", mode="cutover") == 1
        assert sample_value(runtime, "shadow_mode", mode="shadow") == 0


async def test_gate_refuses_then_a_forced_flip_is_recorded_with_its_reason(
        tmp_path, backends, token):
    async with running(config_for(tmp_path, backends)) as runtime:
        await traffic(runtime, 3)
        status, refused = await call(runtime, "POST", "/api/mode", {"mode": "cutover"})
        assert status == 409 and refused["error"] == "gate_refused"
        needed = refused["gate"]["routes"][0]["compared_needed"]
        assert refused["reasons"] == [
            f"GET /api/items: 3 of {3 + needed} compared exchanges, 0 mismatches, upper bound 47.4% >= 0.1%"]
        assert runtime.modes.current.mode == Mode.SHADOW
        assert sample_value(runtime, "shadow_gate_passed") == 0
        assert sample_value(runtime, "shadow_gate_compared_needed", route="/api/items",
                            method="GET") == needed

        status, answer = await call(runtime, "POST", "/api/mode",
                                    {"mode": "cutover", "force": True, "reason": "INC-42 window"})
        assert status == 200 and answer["change"] == {"from": "shadow", "to": "cutover",
                                                      "forced": True, "skipped": []}
        status, log = await call(runtime, "GET", "/api/audit", auth=VIEWER_TOKEN)
        forced, refusal = log["audit"]
        assert (forced["action"], forced["forced"], forced["reason"], forced["who"]) == (
            "mode_change", True, "INC-42 window", "admin")
        assert forced["gate"]["passed"] is False and forced["gate"]["reasons"] == refused["reasons"]
        assert (refusal["action"], refusal["from_mode"], refusal["to_mode"]) == (
            "mode_refused", "shadow", "cutover")


async def test_mutating_calls_need_the_token(tmp_path, backends, token, caplog):
    caplog.set_level(logging.DEBUG)
    async with running(config_for(tmp_path, backends)) as runtime:
        for auth in (None, "wrong", ""):
            status, answer = await call(runtime, "POST", "/api/mode",
                                        {"mode": "legacy-only"}, auth=auth)
            assert status == 401 and answer["error"] == "unauthorized"
        status, _ = await call(runtime, "POST", "/api/gate/reset", {"reason": "x"}, auth="nope")
        assert status == 401
        assert runtime.modes.current.mode == Mode.SHADOW
        status, _ = await call(runtime, "POST", "/api/mode", {"mode": "legacy-only"})
        assert status == 200
    assert TOKEN not in caplog.text


async def test_without_a_configured_token_every_mutating_call_is_forbidden(
        tmp_path, backends, monkeypatch):
    monkeypatch.delenv("SHADOW_ADMIN_TOKEN", raising=False)
    async with running(config_for(tmp_path, backends)) as runtime:
        for path, body in (("/api/mode", {"mode": "legacy-only"}),
                           ("/api/gate/reset", {"reason": "x"})):
            for auth in (None, "", TOKEN):
                status, answer = await call(runtime, "POST", path, body, auth=auth)
                assert status == 403 and answer["error"] == "forbidden"
        status, answer = await call(runtime, "GET", "/api/status", auth=VIEWER_TOKEN)
        assert status == 200 and answer["mode"] == "shadow"


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"{}", "'mode' is required"),
    (b'{"mode": "sideways"}', "unknown mode 'sideways'"),
    (b'{"mode": "shadow"}', "already in mode shadow"),
    (b'{"mode": "cutover", "force": "yes"}', "'force' must be a bool"),
    (b'{"mode": "cutover", "force": true}', "a forced change needs a reason"),
    (b'{"mode": "cutover", "force": true, "reason": "   "}', "a forced change needs a reason"),
])
async def test_bad_mode_requests_are_400(tmp_path, backends, token, raw, message):
    async with running(config_for(tmp_path, backends)) as runtime:
        status, answer = await call(runtime, "POST", "/api/mode", raw=raw)
        assert status == 400 and message in answer["message"]
        status, answer = await call(runtime, "POST", "/api/gate/reset", {"reason": ""})
        assert status == 400 and "reason" in answer["message"]
        assert (await call(runtime, "GET", "/api/audit", auth=VIEWER_TOKEN))[1]["audit"] == []


async def test_rollback_is_always_allowed_even_when_the_gate_refuses(tmp_path, backends, token):
    async with running(config_for(tmp_path, backends, mode="cutover")) as runtime:
        status, _ = await call(runtime, "POST", "/api/mode", {"mode": "candidate-only"})
        assert status == 409
        status, answer = await call(runtime, "POST", "/api/mode",
                                    {"mode": "candidate-only", "force": True, "reason": "drill"})
        assert status == 200 and answer["shadow"] is None
        assert answer["rollback"]["clean"] is False
        assert answer["rollback"]["legacy_missed_writes"] is True
        assert answer["gate"]["passed"] is False
        for target in ("cutover", "shadow", "legacy-only"):
            status, answer = await call(runtime, "POST", "/api/mode", {"mode": target})
            assert status == 200 and answer["mode"] == target
            assert answer["change"]["forced"] is False


async def test_rollback_safety_counts_writes_that_failed_on_legacy_during_cutover(
        tmp_path, backends, token):
    config = config_for(tmp_path, backends, mode="cutover")
    async with running(config) as runtime:
        await traffic(runtime, 2, "GET", "/api/broken")  # a failed read loses nothing
        status, answer = await call(runtime, "GET", "/api/status", auth=VIEWER_TOKEN)
        assert answer["rollback"]["clean"] is True
        await traffic(runtime, 1, "POST")  # candidate 201, legacy 500
        status, answer = await call(runtime, "GET", "/api/status", auth=VIEWER_TOKEN)
        rollback = answer["rollback"]
        assert rollback["clean"] is False and rollback["unsafe_writes"] == 1
        assert rollback["routes"] == {"POST /api/items": 1}
        assert "rollback would lose data: 1 write(s) failed" in rollback["summary"]
        assert sample_value(runtime, "shadow_rollback_unsafe_writes_total",
                            route="/api/items") == 1
        status, answer = await call(runtime, "POST", "/api/mode", {"mode": "shadow"})
        assert status == 200 and answer["rollback"]["unsafe_writes"] == 1
        assert answer["rollback"]["summary"].startswith("the last cutover lost data")
        await traffic(runtime, 1, "POST")  # legacy is primary again: nothing more to count
        assert runtime.cutover.ledger.safety()["unsafe_writes"] == 1
    async with running(config) as runtime:
        assert runtime.cutover.ledger.safety()["routes"] == {"POST /api/items": 1}


async def test_restart_keeps_mode_audit_log_and_gate_window(tmp_path, backends, token):
    config = config_for(tmp_path, backends)
    async with running(config) as runtime:
        await traffic(runtime, 4)
        await traffic(runtime, 2, "GET", "/api/broken")  # both sides answer, bodies differ
        status, _ = await call(runtime, "POST", "/api/mode",
                               {"mode": "cutover", "force": True, "reason": "restart test"})
        assert status == 200
        runtime.cutover.stats.row_mismatch("POST /api/items")
    async with running(config) as runtime:
        assert runtime.modes.current.mode == Mode.CUTOVER
        status, answer = await call(runtime, "GET", "/api/status", auth=VIEWER_TOKEN)
        gate = answer["gate"]
        assert (gate["compared"], gate["mismatches"], gate["row_mismatches"]) == (6, 2, 1)
        audit = (await call(runtime, "GET", "/api/audit", auth=VIEWER_TOKEN))[1]["audit"]
        assert [(a["action"], a["reason"]) for a in audit] == [("mode_change", "restart test")]
        status, answer = await call(runtime, "POST", "/api/gate/reset", {"reason": "new build"})
        assert status == 200 and answer["gate"]["compared"] == 0
        assert "no evidence yet: no compared exchanges in this window" in answer["gate"]["reasons"]
    async with running(config) as runtime:
        status, answer = await call(runtime, "GET", "/api/status", auth=VIEWER_TOKEN)
        assert answer["gate"]["compared"] == 0 and answer["mode"] == "cutover"
        audit = (await call(runtime, "GET", "/api/audit", auth=VIEWER_TOKEN))[1]["audit"]
        assert [a["action"] for a in audit] == ["gate_reset", "mode_change"]
        assert audit[0]["gate"]["compared"] == 6, "the reset keeps the old window's answer"


# --- the CLI against a running proxy ----------------------------------------------------

async def cli(runtime, *args: str, token: str | None = TOKEN):
    env = {"SHADOW_ADMIN_URL": admin_url(runtime), "SHADOW_ADMIN_TOKEN": token}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def test_cli_commands_and_exit_codes(tmp_path, backends, token):
    async with running(config_for(tmp_path, backends)) as runtime:
        await traffic(runtime, 3)
        result = await cli(runtime, "status")
        assert result.exit_code == 0, result.output
        assert "mode      shadow" in result.output and "GET /api/items" in result.output
        result = await cli(runtime, "gate")
        assert result.exit_code == 1 and "GET /api/items: 3 of" in result.output
        result = await cli(runtime, "cutover")
        assert result.exit_code == 1 and "refused by the cutover gate" in result.output
        result = await cli(runtime, "cutover", "--force")
        assert result.exit_code == 2 and "--reason" in result.output
        result = await cli(runtime, "cutover", "--force", "--reason", "cli drill", token=None)
        assert result.exit_code == 2 and "SHADOW_ADMIN_TOKEN" in result.output
        result = await cli(runtime, "cutover", "--force", "--reason", "cli drill")
        assert result.exit_code == 0, result.output
        assert "shadow -> cutover (forced past the gate)" in result.output
        result = await cli(runtime, "rollback")
        assert result.exit_code == 0 and "cutover -> shadow" in result.output
        result = await cli(runtime, "rollback", "--to", "shadow")
        assert result.exit_code == 2 and "nothing to roll back" in result.output
        result = await cli(runtime, "gate", "--reset", "--reason", "fresh window")
        assert result.exit_code == 0 and "no evidence yet" in result.output
        result = await cli(runtime, "audit", "--json")
        assert result.exit_code == 0
        actions = [row["action"] for row in orjson.loads(result.output)]
        assert actions == ["gate_reset", "mode_change", "mode_change", "mode_refused"]
        result = await cli(runtime, "audit")
        assert result.exit_code == 0 and "cli drill" in result.output
        result = await cli(runtime, "status", "--json")
        assert result.exit_code == 0 and orjson.loads(result.output)["mode"] == "shadow"
        result = await cli(runtime, "finalize", "--skip-cutover", "--reason", "r", "--json")
        assert result.exit_code == 1 and orjson.loads(result.output)["error"] == "gate_refused"
    result = await asyncio.to_thread(CliRunner().invoke, main,
                                     ["status", "--admin", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "cannot reach the admin API" in result.output


async def test_cli_as_a_process(tmp_path, backends, token):
    async with running(config_for(tmp_path, backends, gate=LOOSE)) as runtime:
        await traffic(runtime, 6)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shadow.cli", "cutover", "--admin", admin_url(runtime),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert b"shadow -> cutover" in out and TOKEN.encode() not in out + err
        assert runtime.modes.current.mode == Mode.CUTOVER
