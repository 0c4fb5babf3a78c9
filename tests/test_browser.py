"""The mismatch browser, driven for real: headless Chromium (Selenium) against a running
proxy whose two backends differ on exactly one route, with secrets planted in the
requests and replies of that route.

What it proves: the signature list shows the expected signatures and counts and filters
them; a signature leads to its samples and a sample shows both replies side by side with
the differing lines marked; no planted secret reaches any page; markup in the traffic is
shown, never run; odd ids and parameters get 400/404, never a traceback or a file.

Outside CI the test is skipped when Chromium, chromedriver or Selenium is missing; with
CI=true it fails instead. Screenshots go to artifacts/ (git-ignored); with
SHADOW_UPDATE_SCREENSHOT=1 the sample page is also saved as docs/mismatch-browser.png.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from shadow.browser import sample_detail
from tests.support import (
    VIEWER, VIEWER_TOKEN, admin_url, make_config, proxy_url, reader, running, settle,
)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

PASSWORD = "hunter2-Planted-Password"
BEARER = "Planted-Bearer-7c1e9a"
NOTE = "Planted note: meet Dr. Reyes about the panic attacks"
REPLY_TOKEN = "Planted-Reply-Token-55aa"
SESSION = "Planted-Session-Cookie-0f0f"
SECRETS = (PASSWORD, BEARER, NOTE, REPLY_TOKEN, SESSION)
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
WRITES = 6  # PUTs on the broken route
EXPECTED = {  # (route, method, kind, path) -> count
    ("/api/journal/{id}", "PUT", "body", "$.calm"): WRITES,
    ("/api/journal/{id}", "PUT", "body", "$.tags[*]"): WRITES,
    ("/api/journal/{id}", "PUT", "body", "$.created_at"): WRITES,
}


def backend(candidate: bool) -> web.Application:
    """The app as one build serves it. The candidate differs on PUT /api/journal/{id}
    only: `calm` is a boolean, the tags come back in another order, the timestamp is
    rendered the PostgreSQL way. Both echo the planted note, hand out a token and a
    session cookie, and carry the same markup in `label`."""

    async def journal(request: web.Request) -> web.Response:
        data = await request.json()
        reply = web.json_response({
            "id": int(request.match_info["id"]), "calm": True if candidate else 1,
            "tags": ["work", "sleep"] if candidate else ["sleep", "work"],
            "created_at": "2026-02-04T15:47:20+00:00" if candidate else "2026-02-04 15:47:20",
            "label": XSS,
            "note": data["note"], "token": REPLY_TOKEN, "score": 7})
        reply.set_cookie("session", SESSION)
        return reply

    async def item(request: web.Request) -> web.Response:
        return web.json_response({"id": int(request.match_info["id"]), "name": "lamp"})

    app = web.Application()
    app.router.add_put("/api/journal/{id}", journal)
    app.router.add_get("/api/items/{id}", item)
    return app


def need(ok: bool, reason: str) -> None:
    """Skip outside CI, fail in CI, when a tool the test drives is missing."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)")
    pytest.skip(reason)


@contextlib.contextmanager
def browser():
    """A headless Chromium with a fresh profile, quit and its profile removed afterwards,
    even when the test fails; the artifacts directory made for its screenshots."""
    ARTIFACTS.mkdir(exist_ok=True)
    profile = tempfile.mkdtemp(prefix="shadow-chromium-")
    driver = chrome(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def chrome(profile: str):
    """A headless Chromium with a fresh profile in `profile`; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))


def click_and_wait(driver, element, url_part: str = "") -> None:
    """Click something that loads a page and wait for the new page: the old window object is
    marked first and must be gone, so a URL or element the old page already had cannot
    satisfy the wait (element staleness is unreliable in Chromium: it may raise instead)."""
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.__shadowOldPage = true")
    element.click()
    wait = WebDriverWait(driver, 10)
    wait.until(lambda d: d.execute_script(
        "return window.__shadowOldPage === undefined && document.readyState === 'complete'"))
    if url_part:
        wait.until(until.url_contains(url_part))


def log_in(driver, base: str, token: str) -> None:
    """Open `base` (which sends a browser without a session to the login form) and log in
    with `token`."""
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(token)
    click_and_wait(driver, driver.find_element(By.ID, "login"))
    assert "/login" not in driver.current_url


def browse(base: str) -> dict[str, str]:
    """Click through the browser as an operator would; returns every page's source.
    Runs in a thread: Selenium blocks, and the proxy shares the test's event loop."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def go(click_on, url_part: str) -> None:
        click_and_wait(driver, click_on, url_part)

    pages: dict[str, str] = {}
    with browser() as driver:
        log_in(driver, base, VIEWER_TOKEN)
        driver.get(base + "/signatures")
        pages["list"] = driver.page_source
        driver.save_screenshot(str(ARTIFACTS / "browser-signatures.png"))
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.sig")
        seen = {tuple(c.text for c in r.find_elements(By.TAG_NAME, "td")[:4]):
                int(r.find_element(By.CSS_SELECTOR, "td.count").text) for r in rows}
        assert seen == EXPECTED, seen
        spark = rows[0].find_elements(By.CSS_SELECTOR, "svg.spark rect")
        assert len(spark) == 24 and spark[-1].get_attribute("height") == "16"
        assert driver.find_element(By.ID, "mode").text == "shadow"
        assert driver.find_element(By.ID, "gate").text == "refuses"

        Select(driver.find_element(By.ID, "kind")).select_by_value("status")
        go(driver.find_element(By.ID, "filter"), "kind=status")
        assert not driver.find_elements(By.CSS_SELECTOR, "tr.sig")
        pages["filtered-empty"] = driver.page_source
        Select(driver.find_element(By.ID, "route")).select_by_value("/api/journal/{id}")
        Select(driver.find_element(By.ID, "kind")).select_by_value("body")
        go(driver.find_element(By.ID, "filter"), "kind=body")
        assert len(driver.find_elements(By.CSS_SELECTOR, "tr.sig")) == 3
        pages["filtered"] = driver.page_source

        go(driver.find_element(By.LINK_TEXT, "$.tags[*]"), "%24.tags%5B%2A%5D")
        assert driver.find_elements(By.CSS_SELECTOR, "tr.sample a"), \
            "a signature kept no sample of its own and found none under its sibling"
        pages["signature-sibling"] = driver.page_source
        driver.back()
        go(driver.find_element(By.LINK_TEXT, "$.calm"),
           "/signatures?sig=PUT%20%2Fapi%2Fjournal%2F%7Bid%7D%20body%20%24.calm")
        assert driver.find_element(By.TAG_NAME, "h1").text == "PUT /api/journal/{id}"
        samples = driver.find_elements(By.CSS_SELECTOR, "tr.sample a")
        assert samples, "the signature page lists no sample"
        pages["signature"] = driver.page_source
        driver.save_screenshot(str(ARTIFACTS / "browser-signature.png"))

        go(samples[0], "/samples/")
        pages["sample"] = driver.page_source
        diffs = {tuple(c.text for c in r.find_elements(By.TAG_NAME, "td")[:4])
                 for r in driver.find_elements(By.CSS_SELECTOR, "tr.d")}
        assert ("body", "$.calm", "1", "true") in diffs, diffs
        primary = driver.find_element(By.ID, "primary-body")
        shadow = driver.find_element(By.ID, "shadow-body")
        assert [m.text for m in primary.find_elements(By.TAG_NAME, "mark")][:1] == \
            ['  "calm": 1,'], primary.text
        assert '  "calm": true,' in [m.text for m in shadow.find_elements(By.TAG_NAME, "mark")]
        assert '"score": 7' not in " ".join(m.text for m in shadow.find_elements(
            By.TAG_NAME, "mark")), "an equal line is marked"
        assert "legacy" in driver.find_element(By.ID, "primary").text
        assert "candidate" in driver.find_element(By.ID, "shadow").text
        assert driver.execute_script("return window.__pwned === undefined")
        driver.save_screenshot(str(ARTIFACTS / "browser-sample.png"))
        if os.environ.get("SHADOW_UPDATE_SCREENSHOT") == "1":
            driver.set_window_size(1200, 1250)
            driver.save_screenshot(str(ROOT / "docs" / "mismatch-browser.png"))

        driver.get(base + "/samples/999999")
        pages["missing"] = driver.page_source
        assert "no such sample" in pages["missing"]
        return pages


def need_browser() -> None:
    """Skip (fail in CI) when Chromium, chromedriver or Selenium is missing."""
    need(Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(),
         "chromium and chromium-driver are not installed (apt-get install chromium "
         "chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        need(False, "selenium is not installed (pip install -e '.[test]')")


async def planted_writes(client: aiohttp.ClientSession, runtime) -> None:
    """WRITES PUTs on the broken route through the proxy, secrets planted in each."""
    for i in range(WRITES):
        async with client.put(proxy_url(runtime, f"/api/journal/{i + 1}"), json={
                "note": NOTE, "password": PASSWORD, "tags": ["sleep"]},
                headers={"Authorization": f"Bearer {BEARER}",
                         "Cookie": f"session={SESSION}"}) as reply:
            assert reply.status == 200


async def test_browser_shows_signatures_and_samples_without_secrets(tmp_path, aiohttp_server):
    need_browser()
    legacy = await aiohttp_server(backend(candidate=False))
    candidate = await aiohttp_server(backend(candidate=True))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         routes=[{"template": "/api/journal/{id}"}, {"template": "/api/items/{id}"}])
    async with running(config) as runtime, aiohttp.ClientSession() as client:
        await planted_writes(client, runtime)
        for i in range(WRITES):
            async with client.get(proxy_url(runtime, f"/api/items/{i + 1}")) as reply:
                assert reply.status == 200
        await settle(runtime, 2 * WRITES)
        pages = await asyncio.to_thread(browse, admin_url(runtime))
        for path in ("/api/signatures", "/api/mismatches", "/api/samples/1"):
            async with client.get(admin_url(runtime, path), headers=VIEWER) as reply:
                pages[path] = await reply.text()
    for name, source in pages.items():
        for secret in SECRETS:
            assert secret not in source, f"{secret!r} shown on {name}"
        if not name.startswith("/api/"):  # JSON carries the text as is; pages must not
            assert "<script>window.__pwned" not in source, f"markup unescaped on {name}"


async def test_odd_ids_and_parameters_are_refused(tmp_path, aiohttp_server):
    """No browser needed: the answers to malformed requests, over real sockets."""
    legacy = await aiohttp_server(backend(candidate=False))
    twin = await aiohttp_server(backend(candidate=False))
    config = make_config(tmp_path, str(legacy.make_url("")), str(twin.make_url("")))
    cases = {
        "/samples/abc": 400, "/samples/-1": 400, "/samples/%C2%B2": 400,
        "/samples/..%2F..%2Fetc%2Fpasswd": 400, "/samples/1e3": 400,
        "/samples/99999999999999999999": 400, "/samples/12345": 404,
        "/signatures": 200, "/signatures?kind=nonsense": 400,
        "/signatures?sig=": 400, "/signatures?sig=GET": 400,
        "/findings/abc": 400, "/findings/99999999999999999999": 400, "/findings/12": 404,
        "/?sort=nonsense": 400, "/?limit=0": 400, "/?state=nonsense": 400,
        "/samples/1?finding=x": 404,
        "/signatures?sig=GET%20%2Fx%20body%20%24.a": 404,
        "/?kind=nonsense": 400, "/?route=" + "x" * 3000: 400,
        "/?route=%3Cscript%3E": 200, "/../../etc/passwd": 404,
    }
    async with running(config) as runtime, reader() as client:
        for path, expected in cases.items():
            url = URL(admin_url(runtime) + path, encoded=True)
            async with client.get(url) as reply:
                text = await reply.text()
                assert reply.status == expected, (path, reply.status, text[:300])
                assert "root:" not in text and "Traceback" not in text
                assert "<script>" not in text
                if expected != 404 or path.startswith(("/samples", "/signatures")):
                    assert reply.headers["Content-Security-Policy"].startswith(
                        "default-src 'none'"), path


def test_sample_page_marks_row_changes_odd_keys_and_status():
    """Rendering alone (no I/O): a sample with a status difference, a body difference
    under a key that needs quoting, and a row difference marks exactly those places."""
    row = {"id": 3, "signature": "POST /api/moods status status", "sample": {
        "exchange": {"id": "x1", "method": "POST", "route": "/api/moods",
                     "target": "/api/moods", "headers": [], "body": "", "at": 0},
        "verdict": "mismatch", "normalised": 0,
        "primary": {"label": "sqlite", "status": 201, "elapsed_ms": 1.0, "headers": [],
                    "body": '{"odd key": {"a": 1}, "same": 2}',
                    "rows": [{"table": "moods", "key": [7], "op": "insert", "before": None,
                              "after": {"id": 7, "calm": 1}},
                             {"table": "audit", "key": [1], "op": "insert", "before": None,
                              "after": {"id": 1}}]},
        "shadow": {"label": "postgres", "status": 500, "elapsed_ms": 1.0, "headers": [],
                   "body": '{"odd key": {"a": "<b>1</b>"}, "same": 2}', "rows": []},
        "differences": [
            {"kind": "status", "path": "status", "primary": 201, "shadow": 500},
            {"kind": "body", "path": "$['odd key'].a", "primary": 1, "shadow": "<b>1</b>"},
            {"kind": "row_missing", "path": "moods[7]", "primary": {"id": 7},
             "shadow": None}]}}
    html = sample_detail(row)
    assert "<mark>201</mark>" in html and "<mark>500</mark>" in html
    assert '<mark class="ln">    &quot;a&quot;: 1</mark>' in html
    assert '<span class="ln">  &quot;same&quot;: 2</span>' in html
    assert "&lt;b&gt;1&lt;/b&gt;" in html and "<b>1</b>" not in html
    assert '<tr class="d"><td>insert</td><td><code>moods[7]</code>' in html
    assert '<tr><td>insert</td><td><code>audit[1]</code>' in html


def test_a_sample_shows_the_shadow_ids_read_as_the_primarys():
    """Rendering alone: the ids of the shadow's reply that were read through a group's
    pairs or the key map before comparing are listed, with what said so."""
    side = {"label": "x", "status": 201, "elapsed_ms": 1.0, "headers": [], "rows": []}
    row = {"id": 4, "signature": "POST /items row_missing items[*]", "sample": {
        "exchange": {"id": "x2", "method": "POST", "route": "/items", "target": "/items",
                     "headers": [], "body": "", "at": 0},
        "verdict": "mismatch", "normalised": 0,
        "primary": {**side, "body": '{"id": 1}'}, "shadow": {**side, "body": '{"id": 2}'},
        "differences": [{"kind": "row_missing", "path": "items[2]", "primary": {"id": 2},
                         "shadow": None}],
        "translated": [{"path": "$.id", "table": "items", "shadow": 2, "read_as": 1,
                        "source": "group"},
                       {"path": "$.user_id", "table": "users", "shadow": 8, "read_as": 7,
                        "source": "key map"}]}}
    html = sample_detail(row)
    assert "<h3>Shadow ids read as the primary's before comparing</h3>" in html
    assert ("<tr><td><code>$.id</code></td><td>items</td><td><code>2</code></td>"
            "<td><code>1</code></td><td>pairs of this exchange&#x27;s group&#x27;s rows</td>"
            "</tr>") in html
    assert "<td>the key map</td>" in html
    del row["sample"]["translated"]
    assert "read as the primary" not in sample_detail(row)
