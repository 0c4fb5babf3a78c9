"""Promise 1 and 2 through real sockets: the client gets exactly what the primary said,
and the primary is reached exactly once."""

from __future__ import annotations

import gzip
import hashlib
import os

import aiohttp
import pytest
from aiohttp import web

from tests.support import HITS, counting, make_config, proxy_url, running, sample_value, settle

BIG = os.urandom(10 * 1024 * 1024)
BINARY = bytes(range(256)) * 64
JSON = b'{"id": 7, "score": 6, "tags": ["calm", "tired"], "note": null}'
HTML = "<html><body><h1>Caf\u00e9</h1></body></html>".encode()


def corpus_app(tag: str) -> web.Application:
    """Replies of every shape a proxy must pass through untouched."""
    app = web.Application()

    async def json_(request):
        return web.Response(body=JSON, content_type="application/json",
                            headers={"X-Backend": tag, "ETag": '"v1"'})

    async def html(request):
        return web.Response(body=HTML, headers={"Content-Type": "text/html; charset=utf-8"})

    async def binary(request):
        return web.Response(body=BINARY, content_type="application/octet-stream")

    async def gzipped(request):
        return web.Response(body=gzip.compress(JSON, mtime=0), headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})

    async def big(request):
        return web.Response(body=BIG, content_type="application/octet-stream")

    async def chunked(request):
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(50):
            await response.write(f"line {i}\n".encode())
        await response.write_eof()
        return response

    async def empty(request):
        return web.Response(status=200, body=b"", headers={"Content-Type": "text/plain"})

    async def no_content(request):
        return web.Response(status=204, headers={"X-Deleted": "1"})

    async def not_modified(request):
        return web.Response(status=304, headers={"ETag": '"v1"'})

    async def redirect(request):
        return web.Response(status=302, headers={"Location": "/json"})

    async def cookies(request):
        response = web.Response(text="ok")
        response.headers.add("Set-Cookie", "session=abc; Path=/; HttpOnly")
        response.headers.add("Set-Cookie", "theme=dark; Path=/")
        response.headers.add("Set-Cookie", "lang=en; Path=/")
        return response

    async def echo(request):
        body = await request.read()
        return web.json_response({
            "method": request.method, "raw_path": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_sha256": hashlib.sha256(body).hexdigest(), "length": len(body),
        })

    async def custom_status(request):
        return web.Response(status=418, reason="I'm a teapot", text="short and stout")

    for path, handler in [("/json", json_), ("/html", html), ("/binary", binary),
                          ("/gzip", gzipped), ("/big", big), ("/chunked", chunked),
                          ("/empty", empty), ("/204", no_content), ("/304", not_modified),
                          ("/redirect", redirect), ("/cookies", cookies), ("/teapot", custom_status)]:
        app.router.add_get(path, handler)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    return counting(app)


@pytest.fixture
async def pair(aiohttp_server, tmp_path):
    legacy = await aiohttp_server(corpus_app("legacy"))
    candidate = await aiohttp_server(corpus_app("candidate"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         compare={"headers": ["content-type"]})
    async with running(config) as runtime:
        yield runtime, legacy, candidate


async def _get(session, url, method="GET", **kw):
    async with session.request(method, url, allow_redirects=False, **kw) as resp:
        return resp.status, resp.reason, resp.raw_headers, await resp.read()


def _without(headers, *names):
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.decode().lower() not in drop]


@pytest.mark.parametrize("path", ["/json", "/html", "/binary", "/gzip", "/big", "/chunked",
                                  "/empty", "/204", "/304", "/redirect", "/cookies", "/teapot"])
async def test_client_gets_the_primary_reply_byte_for_byte(pair, path):
    runtime, legacy, _ = pair
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        direct = await _get(session, str(legacy.make_url(path)))
        proxied = await _get(session, proxy_url(runtime, path))
    assert proxied[0] == direct[0]
    assert proxied[1] == direct[1]
    assert proxied[3] == direct[3]
    # Date may tick between the two calls; framing may differ for chunked replies.
    framing = ("Date", "Transfer-Encoding", "Content-Length")
    assert _without(proxied[2], *framing) == _without(direct[2], *framing)


async def test_head_keeps_content_length_and_sends_no_body(pair):
    runtime, legacy, _ = pair
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        direct = await _get(session, str(legacy.make_url("/binary")), "HEAD")
        proxied = await _get(session, proxy_url(runtime, "/binary"), "HEAD")
    assert proxied[0] == 200 and proxied[3] == b""
    assert dict(proxied[2])[b"Content-Length"] == dict(direct[2])[b"Content-Length"]


async def test_several_set_cookie_lines_are_kept_in_order(pair):
    runtime, _, _ = pair
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy_url(runtime, "/cookies")) as resp:
            cookies = resp.headers.getall("Set-Cookie")
    assert cookies == ["session=abc; Path=/; HttpOnly", "theme=dark; Path=/", "lang=en; Path=/"]


async def test_gzip_passes_through_compressed(pair):
    runtime, _, _ = pair
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        status, _, headers, body = await _get(session, proxy_url(runtime, "/gzip"))
    assert status == 200 and dict(headers)[b"Content-Encoding"] == b"gzip"
    assert gzip.decompress(body) == JSON


async def test_request_reaches_primary_once_with_forwarding_headers(pair):
    runtime, legacy, candidate = pair
    body = b'{"score": 5}'
    target = "/echo/a%20b?x=1&y=%E9%FF&z"
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy_url(runtime, target), data=body, headers={
                "Content-Type": "application/json", "X-Request-Id": "r1",
                "Connection": "keep-alive, X-Hop", "X-Hop": "secret-hop"}) as resp:
            seen = await resp.json()
    await settle(runtime, 1)
    assert legacy.app[HITS] == {"/echo/a b": 1}
    assert candidate.app[HITS] == {"/echo/a b": 1}
    assert seen["raw_path"] == target
    assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert headers["x-request-id"] == "r1"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{runtime.proxy_port}"
    assert "x-hop" not in headers, "headers named in Connection are hop-by-hop"
    assert "x-shadow-request" not in headers, "only the shadow gets the marker"


async def test_shadow_gets_the_same_request_with_the_marker(aiohttp_server, tmp_path):
    seen: list[dict] = []

    async def record(request):
        seen.append({"path": request.raw_path, "body": await request.read(),
                     "marker": request.headers.get("X-Shadow-Request")})
        return web.Response(text="ok")

    apps = []
    for _ in range(2):
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        apps.append(await aiohttp_server(app))
    config = make_config(tmp_path, str(apps[0].make_url("")), str(apps[1].make_url("")))
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as session:
            async with session.put(proxy_url(runtime, "/api/mood/3?x=1"), data=b"abc") as resp:
                assert resp.status == 200
        await settle(runtime, 1)
    assert sorted(s["marker"] or "" for s in seen) == ["", "1"]
    assert {s["path"] for s in seen} == {"/api/mood/3?x=1"}
    assert {s["body"] for s in seen} == {b"abc"}


async def test_large_request_body_is_streamed_to_primary_and_not_mirrored(aiohttp_server, tmp_path):
    legacy = await aiohttp_server(corpus_app("legacy"))
    candidate = await aiohttp_server(corpus_app("candidate"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         proxy={"max_body_bytes": 1024}, routes=[{"template": "/echo"}])
    payload = os.urandom(300_000)
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as session:
            async with session.post(proxy_url(runtime, "/echo"), data=payload) as resp:
                seen = await resp.json()
    assert seen["length"] == len(payload)
    assert seen["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert candidate.app[HITS] == {}
    assert sample_value(runtime, "shadow_skipped_total", route="/echo",
                        reason="request_too_large") == 1


async def test_primary_down_gives_502_and_the_proxy_keeps_serving(aiohttp_server, tmp_path, unused_tcp_port):
    candidate = await aiohttp_server(corpus_app("candidate"))
    config = make_config(tmp_path, f"http://127.0.0.1:{unused_tcp_port}",
                         str(candidate.make_url("")), routes=[{"template": "/json"}])
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.get(proxy_url(runtime, "/json")) as resp:
                    assert resp.status == 502
                    assert (await resp.json())["error"] == "primary_connect"
        await settle(runtime, 3)
        assert sample_value(runtime, "shadow_requests_total", route="/json", method="GET",
                            verdict="primary_error") == 3


async def test_primary_timeout_gives_504(aiohttp_server, tmp_path):
    import asyncio

    async def slow(request):
        await asyncio.sleep(3)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/slow", slow)
    legacy = await aiohttp_server(app)
    candidate = await aiohttp_server(corpus_app("candidate"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         proxy={"primary_timeout": 0.3})
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as session:
            async with session.get(proxy_url(runtime, "/slow")) as resp:
                assert resp.status == 504
                assert (await resp.json())["error"] == "primary_timeout"


async def test_a_backend_url_with_a_path_prefixes_every_target(aiohttp_server, tmp_path):
    seen: list[str] = []

    async def record(request):
        seen.append(request.raw_path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    config = make_config(tmp_path, str(server.make_url("/legacy")),
                         str(server.make_url("/candidate/")))
    async with running(config) as runtime:
        async with aiohttp.ClientSession() as session:
            async with session.get(proxy_url(runtime, "/api/x?q=%20")) as resp:
                assert resp.status == 200
        await settle(runtime, 1)
    assert sorted(seen) == ["/candidate/api/x?q=%20", "/legacy/api/x?q=%20"]
