"""Simulated users of the demo app: who they are and what each of their turns sends.

An actor's choices come only from the run's random generator and from what the actor
meant to do before (its own intent), never from the replies it got, so two runs with
the same seed send the same sequence of requests to two builds even where the builds
answer differently. Replies only fill in ids (a new mood or entry id); where a reply
has none, the actor uses id 0, which names nothing.

Kinds of actors: `admin` (seeded admin: statistics), `alice` (seeded user with history),
and new users, who register on their first turn; every third new user first tries a
name that is already taken, as people do.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .seed import ADMIN, SEED_PASSWORDS

Send = Callable[..., Awaitable[Any]]
"""`send(actor, method, route, target, json=..., raw=..., anonymous=False)` -> parsed
JSON reply body (None if there is none); `route` is the path template."""

_NAMES = ("maya", "liam", "noor", "omar", "zoe", "ivan", "lena", "kai", "ada", "finn")
_WORDS = ("Walk", "River", "Sleep", "Anxiety", "Gratitude", "Coffee", "Therapy", "Work",
          "Family", "Running", "Breathing", "Calm", "Stress", "Music", "Garden", "Rain")
_TAGS = ("sleep", "work", "family", "exercise", "social", "weather")
_NOTES = ("Slept well", "Long day", "Felt anxious before the meeting", "Good run",
          "Tired but okay", "Talked to my sister")
_SEEDED = tuple(name for name in SEED_PASSWORDS if name != ADMIN)


@dataclass
class Actor:
    """One simulated user and what it remembers of its own doing."""

    name: str
    password: str
    kind: str = "new"
    tries_taken_name: bool = False
    started: bool = False
    known: bool = False  # its first turn has ended: others may name it
    entries: list[int] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


def cast(users: int, seed: int) -> list[Actor]:
    """The admin, alice, and `users` new users whose names depend on `seed`."""
    actors = [Actor(ADMIN, SEED_PASSWORDS[ADMIN], kind="admin"),
              Actor("alice", SEED_PASSWORDS["alice"], kind="alice")]
    for i in range(users):
        name = f"{_NAMES[i % len(_NAMES)]}_{seed}_{i}"
        actors.append(Actor(name, f"pw-{name}", tries_taken_name=i % 3 == 1))
    return actors


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) if rng.random() < 0.4 else
                    rng.choice(("today", "felt", "a", "long", "the", "and", "after", "good"))
                    for _ in range(words)).capitalize() + "."


async def log_in(actor: Actor, send: Send, password: str | None = None) -> Any:
    """Fetch a CSRF token, then log in with it, as the login form does."""
    reply = await send(actor, "GET", "/api/csrf", "/api/csrf")
    token = reply.get("csrf_token") if isinstance(reply, dict) else None
    return await send(actor, "POST", "/api/login", "/api/login",
                      json={"username": actor.name, "password": password or actor.password},
                      headers={"X-CSRF-Token": str(token or "")})


async def start(actor: Actor, rng: random.Random, send: Send, actors: list[Actor]) -> None:
    """The first turn: log in (seeded users) or register (new users). Only once it has
    ended do the others name the user (`known`): people write to an account they have
    seen, not to one whose sign-up is still on its way."""
    actor.started = True
    await _first_turn(actor, rng, send)
    actor.known = True


async def _first_turn(actor: Actor, rng: random.Random, send: Send) -> None:
    login = {"username": actor.name, "password": actor.password}
    if actor.kind != "new":
        await log_in(actor, send)
        return
    if actor.tries_taken_name:
        taken = {"username": rng.choice(_SEEDED), "password": actor.password}
        await send(actor, "POST", "/api/register", "/api/register", json=taken)
    reply = await send(actor, "POST", "/api/register", "/api/register", json=login)
    if not (isinstance(reply, dict) and "id" in reply):
        await log_in(actor, send)


async def turn(actor: Actor, rng: random.Random, send: Send, actors: list[Actor]) -> None:
    """One turn of an actor that has started: one action of one to three requests."""
    table = _ADMIN_ACTIONS if actor.kind == "admin" else _USER_ACTIONS
    action = rng.choices([a for a, _ in table], weights=[w for _, w in table])[0]
    await action(actor, rng, send, actors)


def _id(reply: Any) -> int:
    value = reply.get("id") if isinstance(reply, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


async def write_mood(actor, rng, send, actors) -> None:
    body: dict[str, Any] = {"score": rng.randint(1, 10)}
    note = rng.random()
    if note < 0.25:
        body["note"] = ""
    elif note < 0.75:
        body["note"] = rng.choice(_NOTES)
    body["tags"] = rng.sample(_TAGS, rng.randint(0, 3))
    if rng.random() < 0.6:
        body["sleep_hours"] = rng.choice((5, 5.5, 6.25, 7, 7.5, 8, 9))
    read_back = rng.random() < 0.6
    reply = await send(actor, "POST", "/api/moods", "/api/moods", json=body)
    if read_back:
        await send(actor, "GET", "/api/moods/{id}", f"/api/moods/{_id(reply)}")


async def list_moods(actor, rng, send, actors) -> None:
    target = rng.choice(("/api/moods", "/api/moods?limit=5", "/api/moods?limit=3"))
    await send(actor, "GET", "/api/moods", target)


async def write_entry(actor, rng, send, actors) -> None:
    title = f"{rng.choice(_WORDS)} and {rng.choice(_WORDS)}"
    body = {"title": title, "body": _sentence(rng, rng.randint(4, 12))}
    if rng.random() < 0.3:
        body["private"] = rng.random() < 0.5
    actor.words.extend(title.split(" and "))
    reply = await send(actor, "POST", "/api/journal", "/api/journal", json=body)
    actor.entries.append(_id(reply))


async def list_entries(actor, rng, send, actors) -> None:
    await send(actor, "GET", "/api/journal", "/api/journal")


async def read_entry(actor, rng, send, actors) -> None:
    if not actor.entries:
        await write_entry(actor, rng, send, actors)
        return
    entry_id = rng.choice(actor.entries)
    await send(actor, "GET", "/api/journal/{id}", f"/api/journal/{entry_id}")


async def search_entries(actor, rng, send, actors) -> None:
    word = rng.choice(actor.words or list(_WORDS))
    word = rng.choice((word.lower(), word.upper(), word, word[:4].lower()))
    await send(actor, "GET", "/api/journal", f"/api/journal?q={word}")


async def edit_entry(actor, rng, send, actors) -> None:
    if len(actor.entries) < 2:
        await write_entry(actor, rng, send, actors)
        return
    change = rng.choice(({"title": f"{rng.choice(_WORDS)} revisited"},
                         {"body": _sentence(rng, 6)}, {"private": rng.random() < 0.5}))
    await send(actor, "PUT", "/api/journal/{id}", f"/api/journal/{actor.entries[0]}",
               json=change)
    await send(actor, "GET", "/api/journal", "/api/journal")


async def delete_entry(actor, rng, send, actors) -> None:
    if len(actor.entries) < 3:
        await write_entry(actor, rng, send, actors)
        return
    entry_id = actor.entries.pop()
    await send(actor, "DELETE", "/api/journal/{id}", f"/api/journal/{entry_id}")


def _partner(actor: Actor, rng: random.Random, actors: list[Actor]) -> str:
    names = [a.name for a in actors if a.known and a is not actor and a.kind != "admin"]
    return rng.choice(sorted((set(names) | set(_SEEDED)) - {actor.name}))


async def send_message(actor, rng, send, actors) -> None:
    body = {"to": _partner(actor, rng, actors), "body": _sentence(rng, rng.randint(3, 10))}
    await send(actor, "POST", "/api/messages", "/api/messages", json=body)


async def inbox(actor, rng, send, actors) -> None:
    await send(actor, "GET", "/api/inbox", "/api/inbox")


async def read_conversation(actor, rng, send, actors) -> None:
    partner = _partner(actor, rng, actors)
    mark = rng.random() < 0.7
    await send(actor, "GET", "/api/conversations/{username}", f"/api/conversations/{partner}")
    if mark:
        await send(actor, "POST", "/api/conversations/{username}/read",
                   f"/api/conversations/{partner}/read")


async def points(actor, rng, send, actors) -> None:
    await send(actor, "GET", "/api/points", "/api/points")


async def me(actor, rng, send, actors) -> None:
    await send(actor, "GET", "/api/me", "/api/me")


async def stats(actor, rng, send, actors) -> None:
    await send(actor, "GET", "/api/admin/stats", "/api/admin/stats")


async def relogin(actor, rng, send, actors) -> None:
    peek = rng.random() < 0.3
    await send(actor, "POST", "/api/logout", "/api/logout")
    if peek:
        await send(actor, "GET", "/api/me", "/api/me")
    await log_in(actor, send)


async def achievements(actor, rng, send, actors) -> None:
    await send(actor, "GET", "/api/achievements", "/api/achievements")


async def reflect(actor, rng, send, actors) -> None:
    """Ask the AI coach about one of the actor's entries: the slow route."""
    if not actor.entries:
        await write_entry(actor, rng, send, actors)
        return
    entry_id = rng.choice(actor.entries)
    await send(actor, "POST", "/api/reflections", "/api/reflections",
               json={"entry_id": entry_id or 999_999})


async def list_reflections(actor, rng, send, actors) -> None:
    await send(actor, "GET", "/api/reflections", "/api/reflections")


async def audit_summary(actor, rng, send, actors) -> None:
    target = rng.choice(("/api/admin/audit", "/api/admin/audit?min=2"))
    await send(actor, "GET", "/api/admin/audit", target)


_INVALID: tuple[tuple[str, str, str, Any], ...] = (
    ("POST", "/api/moods", "/api/moods", {"score": 11}),
    ("POST", "/api/moods", "/api/moods", {"score": "seven"}),
    ("POST", "/api/moods", "/api/moods", b'{"score": 5,'),
    ("POST", "/api/moods", "/api/moods", {"score": 5, "tags": "sleep"}),
    ("POST", "/api/journal", "/api/journal", {"body": "no title"}),
    ("POST", "/api/messages", "/api/messages", {"to": "nobody-here", "body": "hello?"}),
    ("GET", "/api/moods/{id}", "/api/moods/999999", None),
    ("GET", "/api/journal", "/api/journal?limit=0", None),
    ("PUT", "/api/journal/{id}", "/api/journal/999999", {"title": "Lost"}),
    ("GET", "/api/conversations/{username}", "/api/conversations/nobody-here", None),
    ("GET", "/api/admin/stats", "/api/admin/stats", None),
    ("GET", "/api/inbox", "/api/inbox", "anonymous"),
    ("POST", "/api/login", "/api/login", "wrong-password"),
    ("POST", "/api/login", "/api/login", "no-csrf"),
    ("POST", "/api/reflections", "/api/reflections", {"entry_id": 999_999}),
    ("GET", "/api/admin/audit", "/api/admin/audit", None),
    ("POST", "/api/register", "/api/register", "taken-name"),
)


async def invalid(actor, rng, send, actors) -> None:
    method, route, target, body = rng.choice(_INVALID)
    if body == "anonymous":
        await send(actor, method, route, target, anonymous=True)
    elif body == "wrong-password":
        await log_in(actor, send, password="not-my-password")
    elif body == "no-csrf":
        await send(actor, method, route, target,
                   json={"username": actor.name, "password": actor.password})
    elif body == "taken-name":
        await send(actor, method, route, target,
                   json={"username": rng.choice(_SEEDED), "password": "another-password"})
    elif isinstance(body, bytes):
        await send(actor, method, route, target, raw=body)
    else:
        await send(actor, method, route, target, json=body)


_USER_ACTIONS = (
    (write_mood, 18), (list_moods, 7), (write_entry, 10), (list_entries, 5), (read_entry, 4),
    (search_entries, 9), (edit_entry, 7), (delete_entry, 2), (send_message, 10),
    (inbox, 7), (read_conversation, 6), (points, 5), (me, 3), (relogin, 2), (invalid, 8),
    (achievements, 4), (reflect, 3), (list_reflections, 2),
)
_ADMIN_ACTIONS = ((stats, 4), (audit_summary, 2), (inbox, 1), (me, 1), (send_message, 1))
