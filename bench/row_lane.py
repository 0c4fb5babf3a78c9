"""What row capture adds to a primary write, measured in one run.

The demo app pair runs as two processes (real SQLite file, real PostgreSQL), the proxy as
a third (`shadow run`), as in production; one client sends the same sequential writes
(POST /api/moods, one at a time) three ways:
    direct   to the legacy build itself
    mirror   through the proxy: ordered writes, no row capture
    rows     through the proxy: triggers installed, each write's rows drained and diffed
and prints p50/p90 per case and the differences.
Usage: python -m bench.row_lane [--writes N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.processes import free_port, start, stop
from shadow.config import load_config
from shadow.demo.runner import install_capture
from shadow.demo.seed import seed
from shadow.pgserver import PostgresServer

PY = sys.executable
SHADOW = str(Path(PY).with_name("shadow"))


async def _ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def _writes(base: str, n: int) -> list[float]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        user = f"bench{time.monotonic_ns() % 10**9}"
        async with session.post(f"{base}/api/register", json={
                "username": user, "password": "correct horse battery"}) as resp:
            assert resp.status == 201, await resp.text()
        times = []
        for i in range(n + 30):
            started = time.perf_counter()
            async with session.post(f"{base}/api/moods", json={"score": 1 + i % 10}) as resp:
                await resp.read()
                assert resp.status == 201
            if i >= 30:  # warm-up excluded
                times.append((time.perf_counter() - started) * 1000)
        return times


def _config(tmp: Path, legacy: str, candidate: str, port: int, databases: tuple | None) -> Path:
    """A proxy config on `port`; with `databases` (legacy, candidate), rows are verified."""
    legacy_db = f'database = "{databases[0]}"' if databases else ""
    candidate_db = f'database = "{databases[1]}"' if databases else ""
    path = tmp / f"shadow-{port}.toml"
    path.write_text(f"""listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:0"
[backends.legacy]
url = "{legacy}"
{legacy_db}
[backends.candidate]
url = "{candidate}"
{candidate_db}
[compare]
time_tolerance = 2.0
[rows.columns."users.password_hash"]
ignore = true
[rows.columns."*.created_at"]
tolerance = 2.0
[store]
path = "{tmp / f"state-{port}.db"}"
[log]
level = "warning"
""")
    return path


async def main(writes: int) -> None:
    pg = await asyncio.to_thread(PostgresServer)
    tmp = Path(tempfile.mkdtemp(prefix="shadow-bench-rows-"))
    procs: list[subprocess.Popen] = []
    results: dict[str, list[float]] = {}
    try:
        dsn = await pg.create_database()
        db = tmp / "legacy.sqlite3"
        await seed(db_path=db, dsn=dsn)
        ports = {"legacy": free_port(), "candidate": free_port()}
        procs.append(start([PY, "-m", "shadow.demo.apps", "legacy", "--port",
                             str(ports["legacy"]), "--db", str(db)]))
        procs.append(start([PY, "-m", "shadow.demo.apps", "candidate", "--port",
                             str(ports["candidate"]), "--dsn", dsn]))
        urls = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
        for url in urls.values():
            await _ready(url + "/api/me")
        results["direct"] = await _writes(urls["legacy"], writes)
        for case, databases in (("mirror", None), ("rows", (f"sqlite:///{db}", dsn))):
            port = free_port()
            config = _config(tmp, urls["legacy"], urls["candidate"], port, databases)
            if databases:
                await install_capture(load_config(config))
            proxy = start([SHADOW, "run", "-c", str(config)])
            procs.append(proxy)
            await _ready(f"http://127.0.0.1:{port}/api/me")
            results[case] = await _writes(f"http://127.0.0.1:{port}", writes)
            stop(proxy)
    finally:
        for proc in procs:
            stop(proc)
        if pg.external:
            await pg.drop_databases()
        pg.close()
    p50 = {}
    for name, times in results.items():
        times.sort()
        p50[name] = statistics.median(times)
        print(f"{name:<7} p50 {p50[name]:7.3f} ms   p90 {times[int(len(times) * 0.9)]:7.3f} ms"
              f"   ({len(times)} sequential writes)")
    print(f"row capture adds {p50['rows'] - p50['mirror']:+.3f} ms to a write's p50; "
          f"the proxy without rows adds {p50['mirror'] - p50['direct']:+.3f} ms over direct")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=400)
    asyncio.run(main(parser.parse_args().writes))
