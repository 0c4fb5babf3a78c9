"""The traffic generator: reproducible, bounded, and aimed at its one target only."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from shadow.demo import actors
from shadow.demo.legacy import make_legacy_app
from shadow.demo.seed import seed
from shadow.demo.traffic import main, run_traffic


async def _legacy(tmp_path, aiohttp_server, name="legacy.sqlite3", seen=None):
    db_path = tmp_path / name
    await seed(db_path)
    app = make_legacy_app(db_path)
    if seen is not None:
        async def count(request, response):
            seen.append(request.path)
        app.on_response_prepare.append(count)
    return await aiohttp_server(app)


async def test_the_report_counts_every_request_the_target_received(tmp_path, aiohttp_server):
    seen: list[str] = []
    server = await _legacy(tmp_path, aiohttp_server, seen=seen)
    calls = []
    report = await run_traffic(str(server.make_url("/")), users=3, requests=120, seed=1,
                               on_progress=calls.append)

    assert report.requests == len(calls) == len(seen) == 120
    assert sum(sum(c.values()) for c in report.counts.values()) == 120
    assert report.errors == 0 and report.elapsed > 0
    assert all(call.backend == "legacy" and call.target.startswith("/api/") for call in calls)
    assert [call.index for call in calls] == list(range(120))
    assert report.count("POST /api/register", 201) == 3
    assert report.count("POST /api/login") >= 2
    assert "120 requests" in report.format()


async def test_the_seed_fixes_the_requests(tmp_path, aiohttp_server):
    async def requests_of(seed_value: int, name: str) -> list[tuple]:
        server = await _legacy(tmp_path, aiohttp_server, name=name)
        calls = []
        await run_traffic(str(server.make_url("/")), users=3, requests=80, seed=seed_value,
                          on_progress=calls.append)
        return [(c.method, c.target, c.body) for c in calls]

    first, again, other = (await requests_of(5, "a.sqlite3"), await requests_of(5, "b.sqlite3"),
                           await requests_of(6, "c.sqlite3"))
    assert first == again
    assert first != other


async def test_pauses_between_turns_change_no_request(tmp_path, aiohttp_server):
    async def requests_of(think: float, name: str) -> list[tuple]:
        server = await _legacy(tmp_path, aiohttp_server, name=name)
        calls = []
        await run_traffic(str(server.make_url("/")), users=3, requests=30, seed=4,
                          on_progress=calls.append, think=think)
        return [(c.method, c.target, c.body) for c in calls]

    assert await requests_of(0.02, "b.sqlite3") == await requests_of(0.0, "a.sqlite3")


async def test_a_duration_ends_the_run(tmp_path, aiohttp_server):
    server = await _legacy(tmp_path, aiohttp_server)
    report = await run_traffic(str(server.make_url("/")), users=2, duration=0.3)
    assert report.requests > 0 and report.elapsed < 3


async def test_a_target_that_does_not_answer_gives_calls_without_reply():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = await run_traffic(f"http://127.0.0.1:{port}", users=1, requests=4)
    assert report.requests == report.errors == 4


@pytest.mark.parametrize("url, kwargs", [
    ("ftp://127.0.0.1:5100", {"requests": 1}),
    ("127.0.0.1:5100", {"requests": 1}),
    ("http://127.0.0.1:5100/api", {"requests": 1}),
    ("http://127.0.0.1:5100/?x=1", {"requests": 1}),
    ("http://127.0.0.1:5100", {}),
])
async def test_bad_arguments_are_refused(url, kwargs):
    with pytest.raises(ValueError):
        await run_traffic(url, users=1, **kwargs)
    with pytest.raises(ValueError):
        await run_traffic("http://127.0.0.1:5100", users=0, requests=1)
    with pytest.raises(ValueError):
        await run_traffic("http://127.0.0.1:5100", users=1, requests=1, think=-1)


async def test_the_command_line_prints_a_report(tmp_path, aiohttp_server, capsys):
    server = await _legacy(tmp_path, aiohttp_server)
    argv = ["--target", str(server.make_url("/")), "--users", "2", "--requests", "30",
            "--seed", "4"]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "30 requests" in out and "POST /api/register" in out


async def test_no_one_names_a_user_whose_sign_up_has_not_ended():
    """With groups sending at once, a message to an account still being created would
    fail on one build and not the other, depending only on the race."""
    crowd = actors.cast(3, seed=1)
    newcomer, writer = crowd[2], crowd[3]
    writer.started = writer.known = True
    signing_up = asyncio.Event()
    release = asyncio.Event()
    named: list[str] = []

    async def send(actor, method, route, target, json=None, **_):
        if route == "/api/register" and actor is newcomer:
            signing_up.set()
            await release.wait()
            return {"id": 7}
        if route == "/api/messages":
            named.append(json["to"])
        return None

    rng = random.Random(0)
    first_turn = asyncio.ensure_future(actors.start(newcomer, rng, send, crowd))
    await signing_up.wait()
    for _ in range(50):
        await actors.send_message(writer, rng, send, crowd)
    assert named and newcomer.name not in named
    release.set()
    await first_turn
    for _ in range(50):
        await actors.send_message(writer, rng, send, crowd)
    assert newcomer.name in named
