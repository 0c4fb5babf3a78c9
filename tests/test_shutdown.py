"""Graceful shutdown and restart of `shadow run` (a real subprocess, a real SIGTERM).

On SIGTERM the proxy stops accepting, lets in-flight client requests finish, drains shadow
work up to a deadline, flushes the state store and exits 0 leaving no process behind. A
restart keeps the mode set through the admin API, the audit log and the gate statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time

import aiohttp
import orjson
from aiohttp.test_utils import TestServer

from shadow.app import Runtime
from tests.faults import (
    HEALTHY_BODY,
    FaultServer,
    ProxyProcess,
    closed_port,
    healthy_app,
    proxy_config,
)
from tests.support import HITS, counting, make_config, proxy_url, sample_value

PRIMARY_DELAY = 0.5
SHADOW_DELAY = 0.8   # the shadow answers after the client has its reply: work to drain
IN_FLIGHT = 8
TOKEN = "shutdown-test-token"
SHADOW_BODY = HEALTHY_BODY.replace(b'"score": 6', b'"score": 5')  # one difference: $.score

ITEMS = [{"template": "/api/items/{id}"}]  # the route every test here names


async def _server(app) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def _url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def _refused(port: int, until: asyncio.Future, timeout: float = 5.0) -> float | None:
    """Try new connections until one is refused (returns when) or `until` is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until.done():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except (ConnectionRefusedError, ConnectionResetError):  # reset: closed mid-accept
            return time.monotonic()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        await asyncio.sleep(0.01)
    return None


async def test_sigterm_finishes_in_flight_refuses_new_drains_and_flushes(tmp_path):
    primary = await _server(counting(healthy_app(PRIMARY_DELAY)))
    shadow = await _server(healthy_app(SHADOW_DELAY, SHADOW_BODY))
    proxy: ProxyProcess | None = None
    try:
        proxy = await ProxyProcess.start(tmp_path, proxy_config(tmp_path, _url(primary), _url(shadow), routes=ITEMS))
        async with aiohttp.ClientSession() as session:

            async def get(i: int) -> tuple[int, bytes, float]:
                async with session.get(proxy.url(f"/api/items/{i}")) as resp:
                    return resp.status, await resp.read(), time.monotonic()

            requests = asyncio.gather(*(get(i) for i in range(IN_FLIGHT)))
            async with asyncio.timeout(PRIMARY_DELAY * 4):  # all of them at the primary
                while sum(primary.app[HITS].values()) < IN_FLIGHT:
                    await asyncio.sleep(0.01)
            proxy.terminate()
            refused_at = await _refused(proxy.proxy_port, requests)
            replies = await requests
            code = await proxy.wait(30)

        assert [(status, body) for status, body, _ in replies] == [(200, HEALTHY_BODY)] * IN_FLIGHT
        assert refused_at is not None, "new connections were still accepted"
        assert refused_at < min(done for *_, done in replies), \
            "the listener should close before the in-flight requests finish"
        assert code == 0, proxy.log()
        assert not proxy.group_alive()
        log = proxy.log()
        assert "proxy stopped" in log and "left undone" not in log, log

        # Every exchange was compared (the shadow answered after the clients had their
        # replies) and its mismatch written to the state file before the exit.
        with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as db:
            rows = db.execute("SELECT signature, count FROM signatures").fetchall()
            gate = orjson.loads(db.execute("SELECT value FROM meta WHERE key = 'gate'").fetchone()[0])
        assert rows == [("GET /api/items/{id} body $.score", IN_FLIGHT)]
        assert gate["routes"]["GET /api/items/{id}"][:2] == [IN_FLIGHT, IN_FLIGHT]
    finally:
        if proxy is not None:
            await proxy.close()
        await primary.close()
        await shadow.close()


async def test_shadow_that_never_answers_does_not_hold_the_exit(tmp_path):
    """The shadow hangs: its work ends at the mirror timeout, the exit is still clean."""
    primary = await _server(healthy_app())
    shadow = await FaultServer("hang").start()
    proxy: ProxyProcess | None = None
    try:
        config = proxy_config(tmp_path, _url(primary), shadow.url, mirror={"timeout": 1.0},
                              routes=ITEMS)
        proxy = await ProxyProcess.start(tmp_path, config)
        async with aiohttp.ClientSession() as session:
            for i in range(4):
                async with session.get(proxy.url(f"/api/items/{i}")) as resp:
                    assert (resp.status, await resp.read()) == (200, HEALTHY_BODY)
        stopping = time.monotonic()
        proxy.terminate()
        assert await proxy.wait(30) == 0, proxy.log()
        took = time.monotonic() - stopping
        assert not proxy.group_alive()
        with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as db:
            gate = orjson.loads(db.execute("SELECT value FROM meta WHERE key = 'gate'").fetchone()[0])
        assert gate["routes"]["GET /api/items/{id}"][2] == 4  # shadow errors (timeouts)
        print(f"\nexit with a hanging shadow took {took:.2f} s (mirror.timeout 1 s)")
    finally:
        if proxy is not None:
            await proxy.close()
        await shadow.stop()
        await primary.close()


async def test_drain_stops_at_its_deadline_and_counts_what_it_drops(tmp_path):
    """More shadow work queued than the deadline allows: stop() returns at the deadline
    and every exchange is still counted once (skipped: dropped at shutdown)."""
    primary = await _server(healthy_app())
    shadow = await FaultServer("hang").start()
    queued, deadline, timeout = 12, 0.5, 30.0
    config = make_config(tmp_path, _url(primary), shadow.url,
                         mirror={"timeout": timeout, "concurrency": 1},
                         routes=ITEMS)
    runtime = Runtime(config)
    try:
        await runtime.start()
        async with aiohttp.ClientSession() as session:
            for i in range(queued):
                async with session.get(proxy_url(runtime, f"/api/items/{i}")) as resp:
                    assert resp.status == 200
        started = time.monotonic()
        await runtime.stop(deadline=deadline)
        took = time.monotonic() - started
    finally:
        if runtime.runners:  # stop() did not finish
            await runtime.stop(deadline=0.1)
        await shadow.stop()
        await primary.close()
    # Without the deadline this work would take queued * timeout seconds.
    assert took < queued * timeout / 20, took
    assert took >= deadline * 0.9, took
    value = lambda name, **labels: sample_value(runtime, name, **labels)  # noqa: E731
    assert value("shadow_requests_total", route="/api/items/{id}", method="GET",
                 verdict="skipped") == queued
    assert value("shadow_skipped_total", route="/api/items/{id}",
                 reason="dropped_shutdown") == queued - 1
    assert value("shadow_skipped_total", route="/api/items/{id}",
                 reason="dropped_cancelled") == 1
    assert value("shadow_mirror_dropped_total", reason="shutdown") == queued - 1
    assert value("shadow_mirror_dropped_total", reason="cancelled") == 1
    assert value("shadow_internal_errors_total") == 0


async def test_restart_in_traffic_keeps_mode_audit_and_gate_statistics(tmp_path):
    primary = await _server(healthy_app())
    shadow = await _server(healthy_app())
    listen, admin = closed_port(), closed_port()
    config = proxy_config(
        tmp_path, _url(primary), _url(shadow), listen=f"127.0.0.1:{listen}",
        admin_listen=f"127.0.0.1:{admin}", gate={"min_compared": 5, "max_mismatch_rate": 0.5})
    env = {"SHADOW_ADMIN_TOKEN": TOKEN}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    proxies: list[ProxyProcess] = []
    ok = 0
    errors: list[str] = []
    statuses: list[int] = []
    paused = asyncio.Event()
    stop = asyncio.Event()

    async def traffic() -> None:
        """One request after another, each on a new connection, until told to stop."""
        nonlocal ok
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            i = 0
            while not stop.is_set() and i < 5000:
                if paused.is_set():
                    await asyncio.sleep(0.01)
                    continue
                i += 1
                try:
                    async with session.get(f"http://127.0.0.1:{listen}/api/items/{i % 20}") as resp:
                        body = await resp.read()
                    statuses.append(resp.status)
                    if (resp.status, body) == (200, HEALTHY_BODY):
                        ok += 1
                except aiohttp.ClientConnectionError as exc:  # only while restarting
                    errors.append(type(exc).__name__)
                    await asyncio.sleep(0.02)

    async def quiet(session, proxy) -> dict:
        """Pause the traffic and wait until every exchange so far is in the gate."""
        paused.set()
        await asyncio.sleep(0.05)
        async with asyncio.timeout(10):
            while True:
                async with session.get(proxy.admin("/api/status")) as resp:
                    status = await resp.json()
                if status["gate"]["compared"] >= ok:
                    return status
                await asyncio.sleep(0.05)

    runner = None
    try:
        proxies.append(await ProxyProcess.start(tmp_path, config, env=env))
        runner = asyncio.get_running_loop().create_task(traffic())
        async with aiohttp.ClientSession(headers=auth) as session:
            async with asyncio.timeout(10):
                while ok < 20:
                    await asyncio.sleep(0.01)
            async with session.post(proxies[0].admin("/api/mode"), headers=auth,
                                    json={"mode": "cutover", "reason": "restart test"}) as resp:
                assert resp.status == 200, await resp.text()
            async with asyncio.timeout(10):
                while ok < 40:
                    await asyncio.sleep(0.01)
            before = await quiet(session, proxies[0])
            async with session.get(proxies[0].admin("/api/audit")) as resp:
                audit_before = (await resp.json())["audit"]
            assert before["mode"] == "cutover" and before["gate"]["compared"] == ok

            # Restart in the middle of traffic: SIGTERM, then a new process on the same ports.
            paused.clear()
            await asyncio.sleep(0.1)
            proxies[0].terminate()
            assert await proxies[0].wait(30) == 0, proxies[0].log()
            proxies.append(await ProxyProcess.start(tmp_path, config, env=env))
            served = ok
            async with asyncio.timeout(10):
                while ok < served + 20:
                    await asyncio.sleep(0.01)
            after = await quiet(session, proxies[1])
            async with session.get(proxies[1].admin("/api/audit")) as resp:
                audit_after = (await resp.json())["audit"]
        stop.set()
        await runner

        assert after["mode"] == "cutover"
        assert after["primary"]["backend"] == "candidate"
        assert audit_after == audit_before
        assert [(a["action"], a["from_mode"], a["to_mode"]) for a in audit_after] == [
            ("mode_change", "shadow", "cutover")]
        # Every exchange a client got an answer for, before, during and after the restart,
        # is in the gate statistics once: nothing lost, nothing counted twice.
        assert after["gate"]["compared"] == ok
        assert after["gate"]["since"] == before["gate"]["since"]
        assert after["gate"]["mismatches"] == before["gate"]["mismatches"] == 0
        assert set(statuses) == {200}, "the restart may refuse connections, never fail a request"
        print(f"\nrestart: {ok} requests answered, {len(errors)} refused while restarting")
        proxies[1].terminate()
        assert await proxies[1].wait(30) == 0
    finally:
        stop.set()
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        for proxy in proxies:
            await proxy.close()
        await primary.close()
        await shadow.close()
