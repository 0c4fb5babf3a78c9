"""The candidate's own account of a failed exchange: log lines followed, masked where they
are read, and stored with only the words known to be no value (shadow.privacy.logs)."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from shadow.backend_logs import LogFollower, mask
from tests.support import admin_url, make_config, proxy_url, reader, running, settle


@pytest.mark.parametrize("line, shape", [
    ('ERROR:  syntax error at or near ")" at character 52',
     'ERROR:  syntax error at or near "<text>" at character <n>'),
    ("DETAIL:  Key (email)=(ana@example.com) already exists.",
     "DETAIL:  Key (email)=(<value>) already exists."),
    ("STATEMENT:  SELECT * FROM users WHERE email = 'ana@example.com' AND age > 41",
     "STATEMENT:  SELECT * FROM users WHERE email = '<text>' AND age > <n>"),
    ("TypeError: can't compare offset-naive and offset-aware datetimes",
     "TypeError: can't compare offset-naive and offset-aware datetimes"),
    ("login failed for ana@example.com token 9f86d081884c7d659a2feaa0c55ad015",
     "login failed for <email> token <token>"),
])
def test_a_line_keeps_its_words_and_loses_its_values(line, shape):
    assert mask(line) == shape


async def test_lines_are_followed_through_rotation_and_truncation(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("before start\n")
    follower = LogFollower([str(path), str(tmp_path / "not-yet.log")], every=0.01)
    follower.start()
    try:
        with path.open("a") as f:
            f.write("first 1\nhalf a li")
        follower.poll()
        with path.open("a") as f:
            f.write("ne\n")
        follower.poll()
        path.rename(tmp_path / "app.log.1")
        path.write_text("after rotation\n")
        follower.poll()
        (tmp_path / "not-yet.log").write_text("a file that appeared\n")
        follower.poll()
        path.write_text("")
        follower.poll()
        path.write_text("after truncation\n")
        follower.poll()
    finally:
        await follower.stop()
    assert [masked for _, masked, _ in follower.lines] == [
        "first <n>", "half a line", "after rotation", "a file that appeared",
        "after truncation"]


def test_lines_are_chosen_by_the_exchange_window_or_its_id(tmp_path):
    follower = LogFollower([], every=0.2)
    follower.lines.extend([(10.0, "early", "early"), (20.1, "during", "during"),
                           (20.5, "another's", "[req a1b2-70] another exchange"),
                           (21.1, "read a poll later", "read a poll later"),
                           (30.0, "late", "late [req a1b2-7]")])
    assert follower.during(20.0, 21.0) == ["during", "another's", "read a poll later"]
    # a line naming another exchange of this proxy is that exchange's, not this one's
    assert follower.during(20.0, 21.0, "a1b2-7") == ["during", "read a poll later", "late"]
    assert follower.during(20.0, 21.0, "a1b2-70") == ["during", "another's", "read a poll later"]


def apps(dsn: str, log_path):
    """Legacy answers the report; the candidate's port of it has a SQL error, which it
    hides behind a generic 500 and logs, as real apps do."""
    legacy, candidate = web.Application(), web.Application()

    async def report_ok(request):
        return web.json_response({"rows": 3})

    async def report_broken(request):
        conn = await asyncpg.connect(dsn)
        try:
            await conn.fetch("SELECT count(*) FROM pg_class WHERE relname = 'ana@example.com' "
                             "GROUP BY (relkind")
        except asyncpg.PostgresError as exc:
            with open(log_path, "a") as log:
                log.write(f"ERROR report failed for ana@example.com by Jane Roe: {exc}\n")
            return web.json_response({"error": "An unexpected error occurred"}, status=500)
        finally:
            await conn.close()
        return web.json_response({"rows": 3})

    legacy.router.add_get("/api/report", report_ok)
    candidate.router.add_get("/api/report", report_broken)
    return legacy, candidate


@pytest.mark.postgres
async def test_a_sample_carries_the_database_error_and_the_app_log(aiohttp_server, tmp_path,
                                                                    pg_server, pg_dsn):
    if pg_server.log_file is None:
        pytest.skip("an external server's log is not readable here")
    app_log = tmp_path / "candidate.log"
    legacy_app, candidate_app = apps(pg_dsn, app_log)
    legacy, candidate = await aiohttp_server(legacy_app), await aiohttp_server(candidate_app)
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         backends={"legacy": {"url": str(legacy.make_url(""))},
                                   "candidate": {"url": str(candidate.make_url("")),
                                                 "log_files": [str(pg_server.log_file),
                                                               str(app_log)]}},
                         routes=[{"template": "/api/report"}],
                         privacy={"log_words": ["report"]})
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as http:
            async with http.get(proxy_url(runtime, "/api/report")) as response:
                assert response.status == 200
        await settle(runtime, 1)
        await asyncio.sleep(0.5)  # the sample is built when the comparison concludes
        await runtime.store.flush()
        [row] = await runtime.store.samples(route="/api/report", limit=5)
        async with reader() as http:
            async with http.get(admin_url(runtime, f"/samples/{row['id']}")) as response:
                page = await response.text()
    assert "What the builds logged meanwhile" in page and "syntax error" in page
    logs = row["sample"]["logs"]
    assert set(logs) == {"candidate"}  # only the candidate names log files
    text = "\n".join(logs["candidate"])
    assert "syntax error at end of input" in text  # the server's own words
    assert "ERROR report failed for <email> by «#" in text  # the app's line, its words
    assert "ana@example.com" not in str(row) and "Jane" not in text and "Roe" not in text
    assert os.path.getsize(app_log) > 0


def logging_apps(log_path, seen: list[tuple[str, str]]):
    """Both builds record the exchange header they receive; the candidate also logs it,
    as apps log a request id, and fails `/api/slow` after a while."""
    legacy, candidate = web.Application(), web.Application()

    def recorded(name: str, handler):
        async def wrapped(request):
            seen.append((name, request.headers.get("X-Shadow-Exchange", "")))
            return await handler(request)
        return wrapped

    def log(request, text: str) -> None:
        with open(log_path, "a") as out:
            out.write(f"[{request.headers.get('X-Shadow-Exchange', '-')}] {text}\n")

    async def ok(request):
        return web.json_response({"ok": True})

    async def slow_broken(request):
        log(request, "slow report started")
        await asyncio.sleep(0.6)
        log(request, "slow report failed: division by zero")
        return web.json_response({"error": "An unexpected error occurred"}, status=500)

    async def fast(request):
        log(request, "fast page served")
        return web.json_response({"ok": True})

    legacy.router.add_get("/api/slow", recorded("legacy", ok))
    legacy.router.add_get("/api/fast", recorded("legacy", ok))
    candidate.router.add_get("/api/slow", recorded("candidate", slow_broken))
    candidate.router.add_get("/api/fast", recorded("candidate", fast))
    return legacy, candidate


async def test_the_exchange_header_ties_log_lines_to_their_exchange(aiohttp_server, tmp_path):
    app_log = tmp_path / "candidate.log"
    app_log.write_text("")
    seen: list[tuple[str, str]] = []
    legacy_app, candidate_app = logging_apps(app_log, seen)
    legacy, candidate = await aiohttp_server(legacy_app), await aiohttp_server(candidate_app)
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         backends={"legacy": {"url": str(legacy.make_url(""))},
                                   "candidate": {"url": str(candidate.make_url("")),
                                                 "log_files": [str(app_log)]}},
                         routes=[{"template": "/api/slow"}, {"template": "/api/fast"}])
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        async def get(path: str, forged: str | None = None) -> None:
            headers = {"X-Shadow-Exchange": forged} if forged else {}
            async with http.get(proxy_url(runtime, path), headers=headers) as response:
                assert response.status == 200

        async def fast_pages() -> None:
            for _ in range(4):  # read on the candidate while the slow report runs there
                await asyncio.sleep(0.1)
                await get("/api/fast")

        await asyncio.gather(get("/api/slow", forged="client-chosen"), fast_pages())
        await settle(runtime, 5)
        await asyncio.sleep(0.5)  # the sample is built when the comparison concludes
        await runtime.store.flush()
        [row] = await runtime.store.samples(route="/api/slow", limit=5)
    ids = {backend: [v for b, v in seen if b == backend] for backend in ("legacy", "candidate")}
    assert sorted(ids["legacy"]) == sorted(ids["candidate"])  # the same id on both builds
    assert len(set(ids["legacy"])) == 5 and "client-chosen" not in ids["legacy"]
    assert all(value.startswith(row["exchange_id"].rpartition("-")[0]) for value in ids["legacy"])
    lines = row["sample"]["logs"]["candidate"]  # as privacy keeps them: words, fingerprints
    assert len(lines) == 2, lines  # the four fast pages' lines fell in its window too
    assert lines[0].endswith(" started") and " failed: " in lines[1], lines
