"""`shadow demo`: the whole idea on one machine, in one command.

Starts a PostgreSQL server (embedded, or SHADOW_POSTGRES_DSN), gives the two SQLite files
and the PostgreSQL database the same starting data, creates the candidate's DML-only
role, starts the AI coach stand-in, the legacy and the candidate build (bugs on by
default), installs row capture as the schema owner, puts the proxy in `shadow` mode in
front of the builds, drives traffic from concurrent simulated users through it, and
prints a summary: verdicts per route and the top mismatch signatures with one example
each, stored as privacy allows. Everything it started is stopped and every temporary
file removed, also on Ctrl-C or failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from shadow.app import Runtime
from shadow.config import Config, parse_config
from shadow.demo.apps import make_candidate_app, make_legacy_app
from shadow.demo.bugs import parse_bugs
from shadow.demo.coach import make_coach_app
from shadow.demo.legacy_files import achievements_path
from shadow.demo.roles import app_role
from shadow.demo.routes import ROUTES
from shadow.demo.seed import seed
from shadow.demo.traffic import run_traffic
from shadow.findings import queries
from shadow.pgserver import PostgresServer
from shadow.recheck import raced_said
from shadow.verdict import Verdict, signature_path

RACED = str(Verdict.RACED)


class PortBusy(RuntimeError):
    """A port the demo was asked to listen on is taken."""


@dataclass
class DemoResult:
    """What a demo run saw: verdict counts per route and the top signatures."""

    verdicts: dict[str, dict[str, int]] = field(default_factory=dict)
    signatures: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    samples: dict[str, dict] = field(default_factory=dict)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: int = 0
    urls: dict[str, str] = field(default_factory=dict)
    fresh: list[dict] = field(default_factory=list)
    """Places learnt from values the builds draw fresh per reply (shadow.compare.fresh)."""
    rechecks: dict[str, Any] = field(default_factory=dict)
    """How the rechecks of reads that raced writes ended, and the reads recorded raced
    (shadow.rechecker)."""
    raced: list[dict] = field(default_factory=list)
    """The store's signatures of raced exchanges (unverified; kept apart from the
    mismatches in `signatures`)."""


def check_free(address: str) -> None:
    """Raise PortBusy naming the address when something already listens there."""
    host, _, port = address.rpartition(":")
    if int(port) == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortBusy(f"port {port} on {host} is busy ({exc.strerror}); "
                               f"choose another with --listen/--admin-listen") from None
            raise


def demo_config(*, legacy_url: str, candidate_url: str, state: Path, listen: str,
                admin_listen: str, legacy_db: Path | None = None,
                candidate_dsn: str | None = None) -> Config:
    """The proxy configuration of the demo: the backends, their databases (row
    verification, when both are given), the app's route templates and the gate's evidence.
    No comparison rule: timestamps are compared by meaning, salted password hashes by
    their scheme, and what varies by itself is learnt (A/A calibration)."""
    legacy: dict = {"url": legacy_url, "label": "sqlite"}
    candidate: dict = {"url": candidate_url, "label": "postgres"}
    if legacy_db is not None and candidate_dsn is not None:
        # The legacy build's two SQLite files; the candidate folds the badges into its
        # one database, and tables are matched by name whatever database holds them.
        legacy["databases"] = {"main": f"sqlite:///{legacy_db.resolve()}",
                               "achievements": f"sqlite:///{achievements_path(legacy_db).resolve()}"}
        candidate["database"] = candidate_dsn
    templates: dict[str, set[str]] = {}
    for method, path, _ in ROUTES:
        templates.setdefault(path, set()).add(method)
    return parse_config({
        "listen": listen, "admin_listen": admin_listen, "mode": "shadow",
        "backends": {"legacy": legacy, "candidate": candidate},
        "routes": [{"template": t} for t in sorted(templates)],
        "gate": {"min_compared": 50, "max_mismatch_rate": 0.05,
                 "expected_routes": sorted(f"{m} {t}" for t, ms in templates.items() for m in ms)},
        "store": {"path": str(state)},
        "log": {"level": "warning"},
    })


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


COACH_DELAY = (0.5, 1.5)
"""The demo's AI coach waits this long (seconds, low and high): slow, yet a minute's run
sees a few dozen reflections."""
THINK = 0.05
"""Seconds a simulated user pauses between actions, on average (0: back to back)."""
USERS, DURATION, GROUPS = 6, 20.0, 4
"""`shadow demo`'s defaults: simulated users, seconds of traffic, and at most how many
groups of users act at once (`groups`)."""


def groups(users: int) -> int:
    """How many groups of users `shadow demo` sends at once."""
    return min(users, GROUPS)


@contextlib.asynccontextmanager
async def demo_stack(*, bugs: str, dsn: str, tmp: Path, listen: str = "127.0.0.1:0",
                     admin_listen: str = "127.0.0.1:0", rows: bool = True,
                     coach_delay: tuple[float, float] = COACH_DELAY
                     ) -> AsyncIterator[tuple[Runtime, dict[str, str]]]:
    """Both builds on seeded databases, the AI coach stand-in (waiting `coach_delay`)
    and the proxy in front of the builds; the candidate runs as a DML-only role, `dsn`
    being the schema owner's. Yields the running proxy and the URLs ("legacy",
    "candidate", "coach"); all stopped on exit."""
    async with contextlib.AsyncExitStack() as stack:
        db_path = tmp / "legacy.sqlite3"
        await seed(db_path=db_path, dsn=dsn)
        app_dsn = await stack.enter_async_context(app_role(dsn))
        coach_runner, coach_url = await _serve(make_coach_app(coach_delay))
        stack.push_async_callback(coach_runner.cleanup)
        legacy_runner, legacy_url = await _serve(make_legacy_app(db_path, coach_url=coach_url))
        stack.push_async_callback(legacy_runner.cleanup)
        candidate_runner, candidate_url = await _serve(
            make_candidate_app(app_dsn, bugs, coach_url=coach_url))
        stack.push_async_callback(candidate_runner.cleanup)
        config = demo_config(legacy_url=legacy_url, candidate_url=candidate_url,
                             state=tmp / "state.db", listen=listen, admin_listen=admin_listen,
                             legacy_db=db_path if rows else None,
                             candidate_dsn=dsn if rows else None)
        if rows:
            await install_capture(config)
        runtime = Runtime(config)
        stack.push_async_callback(runtime.stop)
        await runtime.start()
        yield runtime, {"legacy": legacy_url, "candidate": candidate_url, "coach": coach_url}


async def install_capture(config: Config) -> None:
    """What an operator does with `shadow rows install`: capture in both databases."""
    from shadow.rows.live import backend_capture

    for name in ("legacy", "candidate"):
        capture = backend_capture(config, name)
        await capture.open()
        try:
            await capture.install()
        finally:
            await capture.close()


async def collect(runtime: Runtime, result: DemoResult, top: int = 8) -> DemoResult:
    """Fill `result` with the verdicts and top signatures once the shadow lanes are idle
    (comparisons still held for the evidence of values drawn fresh per reply are recorded
    as they stand then: the traffic that could decide them is over)."""
    await settle(runtime)
    if runtime.verifier.holding is not None:
        runtime.verifier.holding.flush()
    if runtime.verifier.recheck is not None:
        runtime.verifier.recheck.flush()
        result.rechecks = runtime.verifier.recheck.status()
    await runtime.store.flush()
    result.verdicts = _verdicts(runtime)
    for metric in runtime.metrics.row_mismatches.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.value:
                result.rows.setdefault(sample.labels["table"], {})[sample.labels["kind"]] = \
                    int(sample.value)
    result.signatures = await runtime.store.signatures(limit=top, not_kind=RACED)
    result.raced = await runtime.store.signatures(limit=top, kind=RACED)
    fresh = runtime.noise.fresh if runtime.noise is not None else None
    result.fresh = fresh.listing() if fresh is not None else []
    result.findings, found = await queries.listing(runtime.store, queries.Query(limit=top),
                                                   time.time())
    counted = await runtime.store.rows("SELECT count(*) AS n FROM signatures")
    result.totals = {"findings": found, "signatures": counted[0]["n"]}
    for row in result.signatures:
        found = await runtime.store.samples(signature=row["signature"], limit=1)
        if found:
            result.samples[row["signature"]] = found[0]
    return result


async def run_demo(*, duration: float, bugs: str, users: int = USERS, seed_value: int = 7,
                   think: float = THINK,
                   listen: str = "127.0.0.1:8080", admin_listen: str = "127.0.0.1:8081",
                   keep_running: bool = False, say: Callable[[str], None] = print,
                   until: asyncio.Event | None = None) -> DemoResult:
    """Run the demo; returns what it saw. `until` ends --keep-running (Ctrl-C)."""
    parse_bugs(bugs)  # an unknown bug name fails before anything starts
    check_free(listen)
    check_free(admin_listen)
    # The candidate's 500s are the point of the demo; their tracebacks are not.
    for name in ("aiohttp", "asyncio", "shadow.demo"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    tmp = Path(tempfile.mkdtemp(prefix="shadow-demo-"))
    result = DemoResult()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, True)
        say("starting PostgreSQL ...")
        pg = await asyncio.to_thread(PostgresServer)
        stack.callback(pg.close)
        if pg.external:
            stack.push_async_callback(pg.drop_databases)
        dsn = await pg.create_database()
        viewer = _demo_viewer_token(stack)
        runtime, urls = await stack.enter_async_context(demo_stack(
            bugs=bugs, dsn=dsn, tmp=tmp, listen=listen, admin_listen=admin_listen))
        proxy = f"http://127.0.0.1:{runtime.proxy_port}"
        admin = f"http://127.0.0.1:{runtime.admin_port}"
        result.urls = {"proxy": proxy, "admin": admin, "metrics": admin + "/metrics",
                       "browser": admin + "/"}
        say(f"legacy (two SQLite files) {urls['legacy']}   candidate (PostgreSQL, DML-only "
            f"role, bugs: {bugs}) {urls['candidate']}   AI coach {urls['coach']}")
        say(f"proxy {proxy} in shadow mode; traffic for {duration:g} s from {users} users ...")
        last = [0.0]

        def progress(call) -> None:
            now = asyncio.get_running_loop().time()
            if now - last[0] >= 1.0:
                last[0] = now
                counts = _verdicts(runtime)
                total = {v: sum(r.get(v, 0) for r in counts.values())
                         for v in ("match", "mismatch", "raced", "shadow_error")}
                say(f"  {runtime.verifier.concluded:5d} compared  " + "  ".join(
                    f"{k} {n}" for k, n in total.items()))

        traffic = asyncio.ensure_future(run_traffic(
            proxy, users=users, duration=duration, seed=seed_value, on_progress=progress,
            concurrency=groups(users), think=think))
        stop = asyncio.ensure_future((until or asyncio.Event()).wait())
        try:
            await asyncio.wait({traffic, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not traffic.done():  # Ctrl-C during the traffic: stop it, then clean up
                traffic.cancel()
                await asyncio.gather(traffic, return_exceptions=True)
                say("stopped before the end of the traffic.")
                return result
            result.requests = traffic.result().requests
            await collect(runtime, result)
            say(summary(result))
            if keep_running:
                say(f"\nkeeping it running: proxy {proxy}  admin {admin}  metrics "
                    f"{admin}/metrics  browser {admin}/ (log in with the viewer token "
                    f"{viewer})\nCtrl-C stops everything.")
                await stop
        finally:
            stop.cancel()
    return result


def _demo_viewer_token(stack: contextlib.ExitStack | contextlib.AsyncExitStack) -> str:
    """The viewer token the demo's browser takes: $SHADOW_VIEWER_TOKEN, or one made for
    this run (and put back when it ends), since reads are refused without one."""
    given = os.environ.get("SHADOW_VIEWER_TOKEN")
    if given:
        return "from $SHADOW_VIEWER_TOKEN"
    token = secrets.token_urlsafe(12)
    os.environ["SHADOW_VIEWER_TOKEN"] = token
    stack.callback(os.environ.pop, "SHADOW_VIEWER_TOKEN", None)
    return token


async def settle(runtime: Runtime, timeout: float = 10.0) -> None:
    """Wait for the shadow lanes to finish what the traffic queued, and for the verdicts
    held for their rows' sake (shadow.writes.reconcile) to come out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        lane, causality = runtime.lane, runtime.writes.causality
        attribution = runtime.writes.attribution
        recheck = runtime.verifier.recheck
        if (lane.depth == 0 and lane.busy == 0 and (recheck is None or len(recheck) == 0)
                and (causality is None or causality.parked == 0)
                and (attribution is None or (len(attribution.groups) == 0
                                             and not attribution.reconcile.held))):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)


def _verdicts(runtime: Runtime) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for metric in runtime.metrics.requests.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.value:
                key = f"{sample.labels['method']} {sample.labels['route']}"
                out.setdefault(key, {})[sample.labels["verdict"]] = int(sample.value)
    return out


def summary(result: DemoResult) -> str:
    """The ten-second read: verdicts per route, then the top mismatch causes."""
    verdicts = ("match", "mismatch", "raced", "shadow_error", "primary_error", "skipped")
    width = max((len(k) for k in result.verdicts), default=20)
    lines = ["", f"{'route':<{width}}  " + "  ".join(f"{v:>13}" for v in verdicts)]
    for route in sorted(result.verdicts, key=lambda k: (k.split(" ", 1)[1], k)):
        row = result.verdicts[route]
        flag = "  <-" if row.get("mismatch") or row.get("shadow_error") else ""
        lines.append(f"{route:<{width}}  " + "  ".join(f"{row.get(v, 0):>13}" for v in verdicts)
                     + flag)
    totals = {v: sum(r.get(v, 0) for r in result.verdicts.values()) for v in verdicts}
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{totals[v]:>13}" for v in verdicts))
    if result.rows:
        lines.append("\nrow mismatches by table (what each request wrote, compared):")
        for table, kinds in sorted(result.rows.items()):
            lines.append(f"  {table:<18} " + "  ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    learnt = [p for p in result.fresh if p["hiding"]]
    if learnt:
        lines.append("\nlearnt as drawn fresh per reply (no rule, no second request; "
                     "`shadow noise list`): " + ", ".join(
                         f"{p['path']} ({p['hidden']} hidden)" for p in learnt))
    rechecks = result.rechecks
    if rechecks.get("race") or rechecks.get("confirmed") or rechecks.get("unsettled"):
        lines.append(f"\nreads that raced writes, asked again once none ran: "
                     f"{rechecks['race']} agreed (a race, not a fault), {rechecks['confirmed']} "
                     f"still differed, {rechecks['unsettled']} could not be settled")
    if rechecks.get("raced"):
        lines.append(f"\nraced, neither match nor mismatch: {raced_said(rechecks)}; where:")
        for row in result.raced:
            lines.append(f"  {row['count']:6d}x  {row['method']} {row['route']}  at {row['path']}")
    if not result.signatures:
        lines.append("\nno mismatches: the candidate answered and wrote like the legacy build.")
        return "\n".join(lines)
    totals = result.totals
    lines.append(f"\n{totals.get('findings', 0)} findings (causes) from "
                 f"{totals.get('signatures', 0)} signatures; top {len(result.findings)}:")
    for row in result.findings:
        caused = "".join(f"  <- probably #{c}" for c in row["caused_by_ids"][:2])
        lines.append(f"  #{row['id']:<4} {row['count']:6d}x  {row['method']} {row['route']}  "
                     f"{row['kind']} {row['what']}  ({row['signature_count']} signatures)"
                     f"{caused}")
    lines.append(f"\ntop mismatch signatures ({len(result.signatures)} shown):")
    for row in result.signatures:
        lines.append(f"  {row['count']:6d}x  {row['method']} {row['route']}  {row['kind']} at "
                     f"{row['path']}")
        sample = result.samples.get(row["signature"])
        if sample:
            diff = next((d for d in sample["sample"]["differences"]
                         if d["kind"] == row["kind"]
                         and signature_path(d["path"]) == row["path"]), None)
            if diff:
                lines.append(f"           legacy: {_short(diff['primary'])}   candidate: "
                             f"{_short(diff['shadow'])}")
    return "\n".join(lines)


def _short(value, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
