"""`python -m shadow.demo.apps`: seed both databases, run each build as a process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from pathlib import Path

import aiohttp

from shadow.demo.apps import main

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_until_up(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            assert proc.returncode is None, f"{url}: the process exited"
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(f"{url}/api/me") as response:
                    if response.status == 401:
                        return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_seed_then_run_both_builds_as_processes(tmp_path, pg_dsn):
    db_path = tmp_path / "legacy.sqlite3"
    assert await asyncio.to_thread(main, ["seed", "--db", str(db_path), "--dsn", pg_dsn]) == 0
    commands = {
        "legacy": ["legacy", "--db", str(db_path)],
        "candidate": ["candidate", "--dsn", pg_dsn, "--bugs", "bool_render"],
    }
    procs, urls = {}, {}
    try:
        for name, args in commands.items():
            port = _free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            with open(tmp_path / f"{name}.log", "wb") as log:
                procs[name] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "shadow.demo.apps", *args, "--port", str(port),
                    cwd=ROOT, stdout=log, stderr=log)
        for name in commands:
            await _wait_until_up(urls[name], procs[name])
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            login = {"username": "alice", "password": "alice-demo-pass"}
            async with client.get(f"{urls['legacy']}/api/csrf") as response:
                token = (await response.json())["csrf_token"]
            async with client.post(f"{urls['legacy']}/api/login", json=login,
                                   headers={"X-CSRF-Token": token}) as response:
                assert response.status == 200
                assert response.headers["X-Backend"] == "legacy"
                cookie = response.cookies["session"].value
            async with client.get(f"{urls['candidate']}/api/me",
                                  headers={"Cookie": f"session={cookie}"}) as response:
                assert response.headers["X-Backend"] == "candidate"
                assert (await response.json())["is_admin"] is False
    finally:
        for proc in procs.values():
            await _stop(proc)


def test_bad_command_lines_exit_with_2(capsys):
    assert main(["candidate", "--port", "1", "--dsn", "postgresql://x/y", "--bugs", "nope"]) == 2
    assert main(["seed"]) == 2
    assert "nope" in capsys.readouterr().err
