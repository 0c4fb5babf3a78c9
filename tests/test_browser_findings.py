"""The findings pages, driven for real in headless Chromium (Selenium) against a running
proxy whose builds differ on one route in three ways (a type change, an order change, a
timestamp rendering), with secrets planted in requests and replies.

What it proves: the index lists the findings with their counts and trend; search,
filters and paging narrow it; a finding page shows its signatures, samples with
previous/next, the request as stored without secrets; a viewer session gets no triage
form; an admin session's form is refused with a forged CSRF token and with its own
changes the state, which the gate then lists as not counted; the divergence banner shows
on every page.
"""

from __future__ import annotations

import asyncio
import aiohttp

from tests.support import VIEWER_TOKEN, admin_url, make_config, reader, running, settle
from tests.test_browser import (
    ARTIFACTS, BEARER, SECRETS, WRITES, backend, browser, click_and_wait, log_in,
    need_browser, planted_writes,
)

TOKEN = "browser-findings-token"


def browse(base: str) -> dict[str, str]:
    """Click through the findings pages; returns every page's source. Runs in a thread."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def go(click_on, url_part: str) -> None:
        click_and_wait(driver, click_on, url_part)

    def rows() -> list:
        return driver.find_elements(By.CSS_SELECTOR, "tr.finding")

    pages: dict[str, str] = {}
    with browser() as driver:
        log_in(driver, base, VIEWER_TOKEN)
        pages["index"] = driver.page_source
        driver.save_screenshot(str(ARTIFACTS / "browser-findings.png"))
        assert len(rows()) == 3
        assert {int(r.find_element(By.CSS_SELECTOR, "td.count").text) for r in rows()} == {WRITES}
        assert all(int(r.find_element(By.CSS_SELECTOR, "td.samples").text) > 0 for r in rows())
        assert len(rows()[0].find_elements(By.CSS_SELECTOR, "svg.spark rect")) == 24
        assert driver.find_element(By.ID, "banner-diverged").is_displayed()

        driver.find_element(By.ID, "q").send_keys("calm")
        go(driver.find_element(By.ID, "filter"), "q=calm")
        assert [r.find_element(By.CSS_SELECTOR, "td.cause").text for r in rows()] == \
            ["type number→boolean"]
        driver.get(base + "/")
        Select(driver.find_element(By.ID, "kind")).select_by_value("format")
        go(driver.find_element(By.ID, "filter"), "kind=format")
        assert len(rows()) == 1
        Select(driver.find_element(By.ID, "kind")).select_by_value("")
        Select(driver.find_element(By.ID, "method")).select_by_value("PUT")
        Select(driver.find_element(By.ID, "state")).select_by_value("new")
        go(driver.find_element(By.ID, "filter"), "state=new")
        assert len(rows()) == 3

        driver.get(base + "/?limit=2&sort=id&order=asc")
        first = [r.get_attribute("data-id") for r in rows()]
        assert len(first) == 2 and driver.find_element(By.ID, "shown").text == "1–2 of 3"
        go(driver.find_element(By.ID, "next"), "offset=2")
        second = [r.get_attribute("data-id") for r in rows()]
        assert len(second) == 1 and not set(first) & set(second)
        assert driver.find_element(By.ID, "prev")
        pages["paged"] = driver.page_source

        driver.get(base + "/?q=calm")
        go(rows()[0].find_element(By.TAG_NAME, "a"), "/findings/")
        finding_url = driver.current_url
        pages["finding"] = driver.page_source
        driver.save_screenshot(str(ARTIFACTS / "browser-finding.png"))
        assert "$.calm" in driver.find_element(By.CSS_SELECTOR, "tr.signature").text
        shape = driver.find_element(By.ID, "request-shape").get_attribute("value")
        assert shape.startswith("PUT /api/journal/") and BEARER not in shape
        samples = driver.find_elements(By.CSS_SELECTOR, "tr.sample a")
        assert len(samples) >= 2
        go(samples[0], "finding=")
        assert driver.find_element(By.ID, "prev-sample")
        go(driver.find_element(By.ID, "prev-sample"), "finding=")
        assert driver.find_element(By.ID, "next-sample")
        pages["sample"] = driver.page_source

        driver.get(finding_url)
        assert driver.find_element(By.ID, "triage-readonly")
        assert not driver.find_elements(By.ID, "triage")
        click_and_wait(driver, driver.find_element(By.ID, "logout"), "/login")
        log_in(driver, base, TOKEN)

        def triage(state: str, reason: str, csrf: str | None = None) -> None:
            driver.get(finding_url)
            Select(driver.find_element(By.ID, "state")).select_by_value(state)
            driver.find_element(By.ID, "reason").send_keys(reason)
            if csrf is not None:
                driver.execute_script(
                    "document.querySelector('#triage input[name=csrf]').value = arguments[0]",
                    csrf)
            click_and_wait(driver, driver.find_element(By.ID, "change"))

        triage("expected", "on purpose", csrf="forged")
        assert "CSRF token missing or wrong" in driver.page_source
        driver.get(finding_url)
        assert "new" in driver.find_element(By.ID, "state-line").text
        triage("expected", "booleans render as true/false on purpose")
        assert not driver.find_elements(By.ID, "message")
        assert driver.find_element(By.ID, "state-line").text.startswith(
            "expected booleans render as true/false on purpose")
        pages["triaged"] = driver.page_source
        driver.get(base + "/?state=expected")
        assert len(rows()) == 1
        return pages


async def test_findings_pages_search_filter_page_and_triage(tmp_path, aiohttp_server,
                                                            monkeypatch):
    need_browser()
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    legacy = await aiohttp_server(backend(candidate=False))
    candidate = await aiohttp_server(backend(candidate=True))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         routes=[{"template": "/api/journal/{id}"}, {"template": "/api/items/{id}"}])
    async with running(config) as runtime, aiohttp.ClientSession() as client:
        await planted_writes(client, runtime)
        await settle(runtime, WRITES)
        runtime.cutover.stats.set_diverged(True)
        pages = await asyncio.to_thread(browse, admin_url(runtime))
        async with reader() as viewer, viewer.get(admin_url(runtime, "/api/status")) as reply:
            gate = (await reply.json())["gate"]["findings"]
        assert [f["why"] for f in gate["uncounted"]] == [
            "expected: booleans render as true/false on purpose"]
        assert len(gate["counted"]) == 2
    for name, source in pages.items():
        for secret in SECRETS:
            assert secret not in source, f"{secret!r} shown on {name}"
        assert "<script>window.__pwned" not in source, f"markup unescaped on {name}"
