"""The noise page, driven for real in headless Chromium (Selenium) against a running proxy
whose two builds put a fresh token, the time and a counter in every reply.

What it proves: once calibrated, the page lists each learnt place with its evidence (in
how many of the route's A/A pairs it varied, what it does now, how many differences it
hid) and the header counts the places waiting for a decision; a viewer session gets no
form; an admin session's form is refused with a forged CSRF token, and with its own a
rejected place is compared again (its differences come back as mismatches) and an
accepted one keeps being hidden, both audit-logged with their reasons.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
from shadow.browser_noise import effect
from tests.support import VIEWER_TOKEN, admin_url, make_config, reader, running, settle
from tests.test_browser import ARTIFACTS, browser, click_and_wait, log_in, need_browser
from tests.test_noise import ROUTES, build, calibrated, mismatches, send

TOKEN = "browser-noise-token"
PAIRS = 3


def browse(base: str) -> dict[str, str]:
    """Look at the noise page as a viewer, then as the admin reject one place and accept
    another through their forms (with a forged CSRF token first). Runs in a thread."""
    from selenium.webdriver.common.by import By

    def place(path: str):
        section = driver.find_element(By.CSS_SELECTOR, 'section[data-route="GET /api/session"]')
        return section.find_element(By.CSS_SELECTOR, f'tr.place[data-path="{path}"]')

    def decide(path: str, button: str, reason: str, csrf: str | None = None):
        driver.get(base + "/noise")
        row = place(path)
        row.find_element(By.CSS_SELECTOR, "input.reason").send_keys(reason)
        if csrf is not None:
            driver.execute_script("arguments[0].value = arguments[1]",
                                  row.find_element(By.CSS_SELECTOR, "input[name=csrf]"), csrf)
        click_and_wait(driver, row.find_element(By.CSS_SELECTOR, f"button.{button}"))

    pages: dict[str, str] = {}
    with browser() as driver:
        log_in(driver, base, VIEWER_TOKEN)
        assert driver.find_element(By.ID, "noise-pending").text == "5 to confirm"
        click_and_wait(driver, driver.find_element(By.ID, "noise-link"), "/noise")
        pages["noise"] = driver.page_source
        driver.save_screenshot(str(ARTIFACTS / "browser-noise.png"))
        sections = driver.find_elements(By.CSS_SELECTOR, "section.route")
        assert [s.get_attribute("data-route") for s in sections] == [
            "GET /api/plan", "GET /api/session", "*"]
        for path in ("$.csrf_token", "$.views"):
            cells = place(path).find_elements(By.TAG_NAME, "td")
            assert re.fullmatch(r"(\d+) of \1 \(100%\)", cells[2].text), cells[2].text
            assert cells[3].text == "learnt" and cells[4].text == "hidden until you decide"
            assert int(cells[5].text) > 0  # the differences it hid since calibration
        assert len(sections[1].find_elements(By.CSS_SELECTOR, "tr.place")) == 2
        assert driver.find_element(By.ID, "noise-readonly")
        assert not driver.find_elements(By.CSS_SELECTOR, "form.noise-form")
        click_and_wait(driver, driver.find_element(By.ID, "logout"), "/login")
        log_in(driver, base, TOKEN)

        decide("$.csrf_token", "reject", "tokens must match", csrf="forged")
        assert "CSRF token missing or wrong" in driver.page_source
        driver.get(base + "/noise")
        assert place("$.csrf_token").find_elements(By.TAG_NAME, "td")[3].text == "learnt"

        decide("$.csrf_token", "reject", "tokens must match after the port")
        assert not driver.find_elements(By.ID, "message")
        assert driver.current_url.endswith("/noise")
        cells = place("$.csrf_token").find_elements(By.TAG_NAME, "td")
        assert (cells[3].text, cells[4].text) == ("rejected", "compared: rejected")
        decide("$.views", "accept", "a view counter")
        cells = place("$.views").find_elements(By.TAG_NAME, "td")
        assert (cells[3].text, cells[4].text) == ("accepted", "hidden")
        assert driver.find_element(By.ID, "noise-pending").text == "3 to confirm"
        pages["decided"] = driver.page_source
        return pages


async def test_learnt_noise_is_confirmed_or_refused_in_the_browser(aiohttp_server, tmp_path,
                                                                   monkeypatch):
    need_browser()
    monkeypatch.setenv("SHADOW_ADMIN_TOKEN", TOKEN)
    legacy = await aiohttp_server(build("legacy"))
    candidate = await aiohttp_server(build("candidate"))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         noise={"share": 1.0, "min_pairs": PAIRS}, routes=ROUTES)
    async with running(config) as runtime, aiohttp.ClientSession() as http:
        await send(runtime, http, "/api/session", PAIRS)
        await send(runtime, http, "/api/plan", PAIRS)
        await calibrated(runtime, "GET /api/session")
        await calibrated(runtime, "GET /api/plan")
        await send(runtime, http, "/api/session", 2)  # hidden: counted on the page
        await settle(runtime, 2 * PAIRS + 2)
        pages = await asyncio.to_thread(browse, admin_url(runtime))
        before = mismatches(runtime, "/api/session")
        await send(runtime, http, "/api/session", 3)
        await settle(runtime, 2 * PAIRS + 5)
        assert mismatches(runtime, "/api/session") == before + 3  # the token is compared again
        audit = {a["action"]: (a["reason"], a["who"]) for a in await runtime.store.audit()}
        assert audit["noise_rejected"][0] == "tokens must match after the port"
        assert audit["noise_accepted"][0] == "a view counter"
        async with reader() as viewer, viewer.get(admin_url(runtime, "/api/noise")) as reply:
            listed = {(r["route"], p["path"]): p["state"]
                      for r in (await reply.json())["routes"] for p in r["places"]}
        assert listed[("GET /api/session", "$.csrf_token")] == "rejected"
        assert listed[("GET /api/session", "$.views")] == "accepted"
    for name, source in pages.items():
        assert TOKEN not in source, f"the admin token is shown on {name}"


def test_what_a_place_does_is_said_in_words():
    place = {"state": "learnt", "hiding": False}
    assert effect(place, 10) == "not hidden: varied in fewer than 50% of 10 pairs"
    assert effect({**place, "hiding": True}, 10) == "hidden until you decide"
    assert effect({"state": "accepted", "hiding": True}, 10) == "hidden"
    assert effect({"state": "rejected", "hiding": False}, 10) == "compared: rejected"
    assert effect(place, 1, calibrating=True) == "not hidden yet: calibrating"
