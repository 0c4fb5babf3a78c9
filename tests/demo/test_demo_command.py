"""`shadow demo` end to end, as a user runs it: summary printed, nothing left behind."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

SHADOW = str(Path(sys.executable).with_name("shadow"))


def _postgres_dirs() -> set[str]:
    """Data directories of the running PostgreSQL servers (other tests may run their own)."""
    dirs = set()
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-D" in cmd:
            dirs.add(cmd[cmd.index("-D") + 1])
    return dirs


def _demo_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "shadow-demo-*"))) | set(
        glob.glob(os.path.join(tempfile.gettempdir(), "shadow-pg-*")))


def test_demo_runs_end_to_end_and_leaves_nothing_behind():
    postgres_before, dirs_before = _postgres_dirs(), _demo_dirs()
    run = subprocess.run(
        [SHADOW, "demo", "--duration", "3", "--bugs", "date_arith,bool_render",
         "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "top mismatch signatures" in out
    assert "GET /api/admin/stats" in out  # date_arith: the stats query fails on PostgreSQL
    assert "total" in out
    assert _postgres_dirs() - postgres_before == set(), "a PostgreSQL server was left running"
    assert _demo_dirs() - dirs_before == set(), "temporary data was left behind"


def test_demo_refuses_a_busy_port_naming_it():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([SHADOW, "demo", "--duration", "1", "--listen", f"127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2
    assert f"port {port}" in run.stderr and "busy" in run.stderr


def test_demo_rejects_an_unknown_bug_name():
    run = subprocess.run([SHADOW, "demo", "--bugs", "no_such_bug"], capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2 and "no_such_bug" in run.stderr


async def test_traffic_command_drives_one_url_only(aiohttp_server, tmp_path):
    """`shadow traffic` on its own, against the legacy build; it reaches only that URL."""
    import asyncio

    from click.testing import CliRunner

    from shadow.cli import main
    from shadow.demo.apps import make_legacy_app
    from shadow.demo.seed import seed

    db = tmp_path / "legacy.sqlite3"
    await seed(db_path=db)
    server = await aiohttp_server(make_legacy_app(db))
    result = await asyncio.to_thread(CliRunner().invoke, main, [
        "traffic", "--target", str(server.make_url("")), "--users", "3", "--requests", "60",
        "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "60 requests" in result.output and "0 without a reply" in result.output
    assert "POST /api/register" in result.output
    usage = await asyncio.to_thread(CliRunner().invoke, main, ["traffic", "--target", "x"])
    assert usage.exit_code == 2
