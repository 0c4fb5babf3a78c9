"""A traffic generator for the demo app: simulated users with realistic flows.

    python -m shadow.demo.traffic --target http://127.0.0.1:5100 --users 8 --requests 500

Users register or log in (fetching a CSRF token first), write moods and read them back,
keep a journal (write, list, search, edit, delete), ask the AI coach to reflect on an
entry (the slow route), message each other, read their inbox and mark conversations
read, check their points and badges; the admin reads the statistics and the audit
summary; now and then someone sends a bad request.

With `concurrency=1` (the default) requests go one at a time, in an order fixed by
`seed`, so two runs with the same seed against two builds with the same starting data
send the same requests (see `shadow.demo.actors`). With `concurrency=n` the users are
split into n groups that send at the same time, each group in its own fixed order; the
interleaving of the groups is up to the target. Only first turns (sign-up, log-in) never
overlap: the session cookie names the user by the id the primary gave, signed, so two
sign-ups at once could get their ids in the other order on the shadow's database, and
from then on each user would act as the other there; no proxy can rewrite a signed
cookie (the same limit as the `burnt_sequence` bug's cascade).

Every request goes to the one base URL given, and nowhere else: paths are relative,
redirects are not followed, proxies from the environment are ignored. Each simulated
user has its own ClientSession and cookie jar.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from . import actors
from .actors import Actor


@dataclass(frozen=True, slots=True)
class Call:
    """One request the generator sent and what came back (status 0: no reply)."""

    index: int
    actor: str
    method: str
    route: str
    target: str
    body: bytes | None
    status: int
    reply: bytes
    set_cookie: tuple[str, ...]
    backend: str | None
    elapsed: float
    error: str | None = None

    @property
    def key(self) -> str:
        """"METHOD /template", the form route counts and `shadow.demo.bugs` use."""
        return f"{self.method} {self.route}"


@dataclass
class TrafficReport:
    """What a run sent: counts per route key and status, transport errors, time taken."""

    requests: int = 0
    errors: int = 0
    elapsed: float = 0.0
    counts: dict[str, Counter[int]] = field(default_factory=dict)

    def add(self, call: Call) -> None:
        """Count one call."""
        self.requests += 1
        self.errors += call.status == 0
        self.counts.setdefault(call.key, Counter())[call.status] += 1

    def count(self, route: str, status: int | None = None) -> int:
        """Calls to `route` ("METHOD /template"), or only those answered with `status`."""
        statuses = self.counts.get(route, Counter())
        return statuses[status] if status is not None else sum(statuses.values())

    def format(self) -> str:
        """A table of routes and statuses, with a total line."""
        width = max((len(key) for key in self.counts), default=10)
        lines = [f"{key:<{width}}  " + "  ".join(
            f"{status}: {n}" for status, n in sorted(self.counts[key].items()))
            for key in sorted(self.counts, key=lambda k: (k.split(" ")[1], k))]
        rate = self.requests / self.elapsed if self.elapsed else 0.0
        lines.append(f"{self.requests} requests in {self.elapsed:.1f} s ({rate:.0f}/s), "
                     f"{self.errors} without a reply")
        return "\n".join(lines)


class _Done(Exception):
    """The run's budget (requests or duration) is spent."""


OnProgress = Callable[[Call], Any]


def _origin(base_url: str) -> URL:
    url = URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"not an http(s) URL with a host: {base_url!r}")
    if url.path not in ("", "/") or url.query_string or url.fragment:
        raise ValueError(f"give the base URL only, without path or query: {base_url!r}")
    return url.origin()


class _Runner:
    def __init__(self, sessions: dict[str, aiohttp.ClientSession],
                 anonymous: aiohttp.ClientSession, requests: int | None,
                 deadline: float | None, on_progress: OnProgress | None) -> None:
        self._sessions = sessions
        self._anonymous = anonymous
        self._requests = requests
        self._deadline = deadline
        self._on_progress = on_progress
        self.report = TrafficReport()
        self.first_turns = asyncio.Lock()

    async def send(self, actor: Actor, method: str, route: str, target: str, *,
                   json: Any = None, raw: bytes | None = None, anonymous: bool = False,
                   headers: dict[str, str] | None = None) -> Any:
        loop = asyncio.get_running_loop()
        if self._requests is not None and self.report.requests >= self._requests:
            raise _Done
        if self._deadline is not None and loop.time() >= self._deadline:
            raise _Done
        body = orjson.dumps(json) if json is not None else raw
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        session = self._anonymous if anonymous else self._sessions[actor.name]
        started = loop.time()
        try:
            async with session.request(method, target, data=body, headers=headers,
                                       allow_redirects=False) as response:
                reply = await response.read()
                status, backend = response.status, response.headers.get("X-Backend")
                cookies = tuple(response.headers.getall("Set-Cookie", ()))
                error = None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            status, reply, cookies, backend = 0, b"", (), None
            error = f"{type(exc).__name__}: {exc}"
        call = Call(self.report.requests, actor.name, method, route, target, body, status,
                    reply, cookies, backend, loop.time() - started, error)
        self.report.add(call)
        if self._on_progress is not None:
            result = self._on_progress(call)
            if inspect.isawaitable(result):
                await result
        try:
            return orjson.loads(reply) if reply else None
        except orjson.JSONDecodeError:
            return None


async def _group(runner: _Runner, members: list[Actor], crowd: list[Actor],
                 rng: random.Random, think: float = 0.0,
                 pauses: random.Random | None = None) -> None:
    """Turns of `members`, one request at a time, until the budget is spent, pausing
    between turns for 0 .. 2 x `think` seconds (drawn from `pauses`, so the requests are
    the same whatever the pauses). First turns (sign-up or log-in) take
    `runner.first_turns`: see the module docstring."""
    pauses = pauses or random.Random(0)
    try:
        while True:
            actor = rng.choice(members)
            if actor.started:
                await actors.turn(actor, rng, runner.send, crowd)
            else:
                async with runner.first_turns:
                    await actors.start(actor, rng, runner.send, crowd)
            if think > 0:
                await asyncio.sleep(pauses.uniform(0.0, 2 * think))
    except _Done:
        pass


async def run_traffic(base_url: str, *, users: int, requests: int | None = None,
                      duration: float | None = None, seed: int = 0,
                      on_progress: OnProgress | None = None,
                      concurrency: int = 1, think: float = 0.0) -> TrafficReport:
    """Send traffic to `base_url` until `requests` were sent or `duration` seconds have
    passed (whichever comes first), from the admin, alice and `users` new users, in
    `concurrency` groups sending at the same time (see the module docstring); each group
    pauses between turns for `think` seconds on average, as people do (0: back to back,
    a load test).

    `on_progress(call)` runs after every request; if it returns an awaitable, the next
    request of that group waits for it. Raises ValueError for a bad URL, no budget, no
    users or a concurrency outside 1 .. users + 2.
    """
    origin = _origin(base_url)
    if requests is None and duration is None:
        raise ValueError("give requests, duration or both")
    if users < 1:
        raise ValueError("users must be at least 1")
    if think < 0:
        raise ValueError(f"think must be 0 or more seconds, got {think}")
    crowd = actors.cast(users, seed)
    if not 1 <= concurrency <= len(crowd):
        raise ValueError(f"concurrency must be from 1 to {len(crowd)} (the users and "
                         f"the two seeded ones), got {concurrency}")
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + duration if duration is not None else None
    timeout = aiohttp.ClientTimeout(total=30)
    async with AsyncExitStack() as stack:
        def session(jar: aiohttp.abc.AbstractCookieJar) -> aiohttp.ClientSession:
            return aiohttp.ClientSession(base_url=origin, cookie_jar=jar, timeout=timeout,
                                         trust_env=False)

        sessions = {a.name: await stack.enter_async_context(
            session(aiohttp.CookieJar(unsafe=True))) for a in crowd}
        anonymous = await stack.enter_async_context(session(aiohttp.DummyCookieJar()))
        runner = _Runner(sessions, anonymous, requests, deadline, on_progress)
        if concurrency == 1:
            await _group(runner, crowd, crowd, random.Random(seed), think,
                         random.Random(f"{seed}/pauses"))
        else:
            async with asyncio.TaskGroup() as group:
                for k in range(concurrency):
                    group.create_task(_group(runner, crowd[k::concurrency], crowd,
                                             random.Random(f"{seed}/{k}"), think,
                                             random.Random(f"{seed}/{k}/pauses")))
    runner.report.elapsed = loop.time() - started
    return runner.report


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; exit status 1 if any request got no reply."""
    parser = argparse.ArgumentParser(prog="python -m shadow.demo.traffic",
                                     description="Send simulated user traffic to one URL.")
    parser.add_argument("--target", required=True, help="base URL, e.g. http://127.0.0.1:5100")
    parser.add_argument("--users", type=int, default=5, help="new users to simulate")
    parser.add_argument("--requests", type=int, help="stop after this many requests")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, default=0, help="fixes names and choices")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="groups of users sending at the same time")
    args = parser.parse_args(argv)
    requests = 200 if args.requests is None and args.duration is None else args.requests
    try:
        report = asyncio.run(run_traffic(args.target, users=args.users, requests=requests,
                                         duration=args.duration, seed=args.seed,
                                         concurrency=args.concurrency))
    except ValueError as exc:
        parser.error(str(exc))
    print(report.format())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
