"""What an operator does with row state: install, status, uninstall, divergence, resync."""

from __future__ import annotations

import asyncio
import sqlite3

import aiohttp
import asyncpg
from click.testing import CliRunner

from shadow.cli import main
from shadow.demo.legacy_files import achievements_path
from shadow.demo.runner import demo_stack
from shadow.demo.seed import seed
from tests.support import VIEWER


def _sqlite_catalogue(path) -> list:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


async def test_install_status_uninstall_through_the_cli(pg_dsn, tmp_path):
    db = tmp_path / "legacy.sqlite3"
    await seed(db_path=db, dsn=pg_dsn)
    badges = achievements_path(db)  # the legacy build's second SQLite file
    before = _sqlite_catalogue(db), _sqlite_catalogue(badges)
    config = tmp_path / "shadow.toml"
    config.write_text(
        f'[backends.legacy]\nurl = "http://127.0.0.1:5101"\n'
        f'databases = {{ main = "sqlite:///{db}", achievements = "sqlite:///{badges}" }}\n'
        f'[backends.candidate]\nurl = "http://127.0.0.1:5102"\ndatabase = "{pg_dsn}"\n')
    cli = CliRunner()

    async def shadow(*args: str):
        """The command runs its own event loop: give it a thread, as a shell would."""
        return await asyncio.to_thread(cli.invoke, main, list(args))

    done = await shadow("rows", "install", "-c", str(config))
    assert done.exit_code == 0, done.output
    assert "legacy: installed; 8 table(s) captured" in done.output
    assert "candidate: installed; 8 table(s) captured" in done.output
    assert "database achievements: installed; captured: achievements" in done.output
    # the default reads the write-ahead log (the demo's files are in WAL mode already)
    assert "main: the write-ahead log (nothing added to the database)" in done.output
    assert "achievements: the write-ahead log (nothing added to the database)" in done.output
    status = await shadow("rows", "status", "-c", str(config))
    assert status.exit_code == 0, status.output

    with sqlite3.connect(db) as conn:  # a table added after install must be reported
        conn.execute("CREATE TABLE reminders (id INTEGER PRIMARY KEY, text TEXT)")
    status = await shadow("rows", "status", "-c", str(config))
    assert status.exit_code == 1
    assert "one side only: reminders (only in legacy)" in status.output
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE reminders")

    gone = await shadow("rows", "uninstall", "-c", str(config))
    assert gone.exit_code == 0 and "legacy: removed" in gone.output
    assert (_sqlite_catalogue(db), _sqlite_catalogue(badges)) == before

    # with triggers, install says what they cost each new connection, and names the log
    with config.open("a") as handle:
        handle.write('[rows]\nsqlite_capture = "triggers"\n')
    done = await shadow("rows", "install", "-c", str(config))
    assert done.exit_code == 0, done.output
    assert "main: triggers (rows.sqlite_capture): every new connection of the app parses " \
        "their 21 objects" in done.output  # and what to choose instead, per connection
    assert '"wal" reads the write-ahead log instead' in done.output
    gone = await shadow("rows", "uninstall", "-c", str(config))
    assert gone.exit_code == 0 and "legacy: removed" in gone.output
    assert (_sqlite_catalogue(db), _sqlite_catalogue(badges)) == before
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
    finally:
        await conn.close()


def test_rows_commands_need_databases_on_both_backends(tmp_path):
    config = tmp_path / "shadow.toml"
    config.write_text('[backends.legacy]\nurl = "http://127.0.0.1:1"\n'
                      '[backends.candidate]\nurl = "http://127.0.0.1:2"\n')
    result = CliRunner().invoke(main, ["rows", "status", "-c", str(config)])
    assert result.exit_code == 2 and "row verification is off" in result.output


async def test_a_write_the_shadow_never_saw_diverges_until_resync(pg_dsn, tmp_path, monkeypatch):
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", "t0ken")
    async with demo_stack(bugs="none", dsn=pg_dsn, tmp=tmp_path) as (runtime, _):
        proxy = f"http://127.0.0.1:{runtime.proxy_port}"
        admin = f"http://127.0.0.1:{runtime.admin_port}"
        auth = {"Authorization": "Bearer t0ken"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{admin}/api/mode", headers=auth, json={
                    "mode": "legacy-only", "reason": "maintenance"}) as resp:
                assert resp.status == 200
            async with session.post(f"{proxy}/api/register", json={
                    "username": "solo", "password": "correct horse battery"}) as resp:
                assert resp.status == 201
            async with asyncio.timeout(5):  # noticed once the write's rows are drained
                while runtime.rows.diverged is None:
                    await asyncio.sleep(0.02)
            await runtime.save_rows()
            async with session.get(f"{admin}/api/status", headers=VIEWER) as resp:
                status = await resp.json()
            assert status["rows"]["diverged"]
            assert any("diverged" in reason for reason in status["gate"]["reasons"])
            assert runtime.metrics.registry.get_sample_value("shadow_diverged") == 1

            async with session.post(f"{admin}/api/rows/resync", json={"reason": "x"}) as resp:
                assert resp.status == 401
            async with session.post(f"{admin}/api/rows/resync", headers=auth,
                                    json={"reason": "re-copied the SQLite file"}) as resp:
                assert resp.status == 200
                assert (await resp.json())["rows"]["diverged"] is None
            async with session.get(f"{admin}/api/audit", headers=VIEWER) as resp:
                audit = (await resp.json())["audit"]
            assert audit[0]["action"] == "rows_resync"
            assert audit[0]["reason"] == "re-copied the SQLite file"
