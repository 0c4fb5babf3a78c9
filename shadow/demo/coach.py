"""A local stand-in for the AI service the demo app asks for a reflection on an entry.

`make_coach_app(delay=(low, high))` serves `POST /reflect` with `{"text": ...}`: it waits
a random time between `low` and `high` seconds, as a hosted model does, and answers
`{"reply": ..., "confidence": ...}`. The answer depends only on the text, so both builds
get the same one for the same entry; the wait differs on every call. `CALLS` counts the
requests it served. `ask_coach` is the app's client.
"""

from __future__ import annotations

import asyncio
import hashlib
import random

import aiohttp
import orjson
from aiohttp import web

DEFAULT_DELAY = (0.5, 3.0)
CALLS = web.AppKey("calls", list)

_OPENINGS = ("It sounds like", "I notice that", "You wrote that", "It seems")
_THEMES = ("rest matters to you", "this week asked a lot of you",
           "small routines are helping", "people around you make a difference")
_PROMPTS = ("What would make tomorrow a little easier?", "What helped the most?",
            "Who could you share this with?", "What would you tell a friend?")


class CoachUnavailable(Exception):
    """The coach did not answer with a reflection."""


def reflect(text: str) -> tuple[str, float]:
    """The coach's reply and confidence (three decimals in [0.5, 1)) for `text`."""
    digest = hashlib.sha256(text.encode()).digest()
    reply = (f"{_OPENINGS[digest[0] % 4]} {_THEMES[digest[1] % 4]}. "
             f"{_PROMPTS[digest[2] % 4]}")
    return reply, (500 + int.from_bytes(digest[3:5], "big") % 500) / 1000


def make_coach_app(delay: tuple[float, float] = DEFAULT_DELAY, *,
                   seed: int | None = None) -> web.Application:
    """The stand-in as an aiohttp app; `delay` is the (low, high) wait in seconds."""
    low, high = delay
    if not 0 <= low <= high:
        raise ValueError(f"delay must be 0 <= low <= high, got {delay!r}")
    rng = random.Random(seed)
    app = web.Application()
    app[CALLS] = []

    async def handle(request: web.Request) -> web.Response:
        try:
            text = (await request.json())["text"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "give {\"text\": ...}"}, status=400)
        wait = rng.uniform(low, high)
        app[CALLS].append(wait)
        await asyncio.sleep(wait)
        reply, confidence = reflect(str(text))
        return web.json_response({"reply": reply, "confidence": confidence})

    app.router.add_post("/reflect", handle)
    return app


async def ask_coach(http: aiohttp.ClientSession, base_url: str, text: str
                    ) -> tuple[str, float]:
    """Ask the coach at `base_url` to reflect on `text`; raises CoachUnavailable."""
    try:
        async with http.post(f"{base_url.rstrip('/')}/reflect", json={"text": text}) as reply:
            if reply.status != 200:
                raise CoachUnavailable(f"status {reply.status}")
            data = orjson.loads(await reply.read())
    except (aiohttp.ClientError, asyncio.TimeoutError, orjson.JSONDecodeError) as exc:
        raise CoachUnavailable(str(exc)) from None
    return str(data["reply"]), float(data["confidence"])
