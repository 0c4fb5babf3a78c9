"""The log lines an operator acts on, from a real proxy: start-up, missing token,
unreachable backend, primary 502s (rate-limited) and backend state changes."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from shadow import __version__
from tests.support import ok_app, make_config, proxy_url, running, settle


def events(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == name]


async def test_operator_lines_from_start_up_to_a_failing_primary(aiohttp_server, tmp_path,
                                                               unused_tcp_port, caplog,
                                                               monkeypatch):
    monkeypatch.delenv("SHADOW_ADMIN_TOKEN", raising=False)
    caplog.set_level(logging.INFO, logger="shadow")
    candidate = await aiohttp_server(ok_app())
    config = make_config(tmp_path, f"http://127.0.0.1:{unused_tcp_port}",
                         str(candidate.make_url("")), routes=[{"template": "/x"}])
    async with running(config) as runtime, aiohttp.ClientSession() as client:
        [start] = events(caplog, "proxy started")
        assert start.version == __version__ and start.mode == "shadow"
        assert start.rows == "off" and start.privacy
        assert start.legacy.startswith(f"legacy http://127.0.0.1:{unused_tcp_port}")
        assert events(caplog, "no admin token: mode changes are refused until one is set")
        async with asyncio.timeout(5):
            while not events(caplog, "backend unreachable at start-up"):
                await asyncio.sleep(0.02)
        assert events(caplog, "backend unreachable at start-up")[0].backend == "legacy"
        for _ in range(5):
            async with client.get(proxy_url(runtime, "/x")) as r:
                assert r.status == 502
        await settle(runtime, 5)
    [failed] = events(caplog, "primary failed")  # five 502s within the interval: one line
    assert (failed.backend, failed.route, failed.status, failed.error) == ("legacy", "/x", 502,
                                                                          "connect")
    [failing] = events(caplog, "backend failing")
    assert failing.backend == "legacy" and failing.role == "primary"
    assert not events(caplog, "backend answering")  # the candidate answered from the start
