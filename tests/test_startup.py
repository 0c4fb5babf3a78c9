"""A start-up failure ends `shadow run` cleanly: one line on stderr, exit code 2, at once.

Each case runs the real command in a subprocess; the subprocess's own timeout is the
failure condition (a start-up failure used to print a traceback and never exit, deaf to
SIGTERM), not a tight wall-clock assert.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults import closed_port, to_toml
from tests.support import config_data

HANG = 30.0  # seconds: far beyond a start-up failure's exit; reaching it means a hang
SHADOW = str(Path(sys.executable).with_name("shadow"))


def _run(tmp_path: Path, config: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "shadow.toml"
    path.write_text(to_toml(config))
    return subprocess.run([SHADOW, "run", "-c", str(path)], capture_output=True, text=True,
                          timeout=HANG, stdin=subprocess.DEVNULL)


def _config(tmp_path: Path, **overrides) -> dict:
    legacy = candidate = closed_port()
    while candidate == legacy:
        candidate = closed_port()
    return config_data(tmp_path, f"http://127.0.0.1:{legacy}", f"http://127.0.0.1:{candidate}",
                       **overrides)


def _rows_config(tmp_path: Path, pg_port: int) -> dict:
    """Row verification on: legacy on a real SQLite file, candidate on `pg_port`."""
    app_db = tmp_path / "app.db"
    with sqlite3.connect(app_db) as db:
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    config = _config(tmp_path)
    config["backends"]["legacy"]["database"] = f"sqlite:///{app_db}"
    config["backends"]["candidate"]["database"] = f"postgresql://app@127.0.0.1:{pg_port}/app"
    return config


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("which", ["listen", "admin_listen"])
def test_a_port_in_use_exits_2_with_one_line(tmp_path, which):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = _run(tmp_path, _config(tmp_path, **{which: address}))
    line = _one_line(result)
    assert line == f"shadow: cannot start: listen {address}: address already in use"
    assert not (tmp_path / "state.db").exists()  # failed before anything was opened


@pytest.mark.parametrize("store", ["directory", "not_a_database", "missing_parent"])
def test_an_unreadable_state_store_exits_2_with_one_line(tmp_path, store):
    path = tmp_path / "state.db"
    if store == "directory":
        path.mkdir()
    elif store == "not_a_database":
        path.write_bytes(b"this is not an SQLite file, whatever its name says" * 40)
    else:
        path = Path("/proc/no-such-dir/state.db")
    result = _run(tmp_path, _config(tmp_path, store={"path": str(path)}))
    line = _one_line(result)
    assert line.startswith(f"shadow: cannot start: state store {path}: ")


def test_an_unreachable_database_with_rows_on_exits_2_with_one_line(tmp_path):
    line = _one_line(_run(tmp_path, _rows_config(tmp_path, closed_port())))
    assert line.startswith("shadow: cannot start: row capture: ")
    assert "refused" in line.lower()


async def test_sigterm_during_start_up_stops_it(tmp_path):
    """A database that accepts and never answers holds start-up (asyncpg waits for its
    connect timeout, 10 s); SIGTERM meanwhile ends the process at once with exit 0, not
    with the timeout's start-up failure (exit 2)."""
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def silent(reader, writer):
        held.append(writer)
        accepted.set()
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    proc = None
    try:
        config = _rows_config(tmp_path, server.sockets[0].getsockname()[1])
        path = tmp_path / "shadow.toml"
        path.write_text(to_toml(config))
        proc = await asyncio.create_subprocess_exec(
            SHADOW, "run", "-c", str(path), stdin=subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        async with asyncio.timeout(HANG):
            await accepted.wait()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(HANG):
            _, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr
        assert b"cannot start" not in stderr
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        for writer in held:
            writer.transport.abort()
        server.close()
