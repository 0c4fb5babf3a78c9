"""Dashboards, recording rules and alerts, checked against a real Prometheus.

A running proxy with two backends that differ on exactly one route (GET /api/moods/{id})
is scraped every second by a Prometheus that loads config/rules; then every PromQL
expression of every dashboard panel, annotation and rule is evaluated through the HTTP
API. Each must parse; each whose metrics have samples must return data; the broken
route's mismatch ratio must be above 0 and the clean routes' exactly 0. promtool checks
the config and the rules and runs the rules' unit tests. Without Prometheus the live
tests are skipped (outside CI) or fail (CI=true).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from dashboards import build as dashboards
from shadow.metrics import LATENCY_BUCKETS, Metrics
from tests.support import make_config, proxy_url, running, settle

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "rules"
RULE_FILES = (RULES / "shadow-recording.yml", RULES / "shadow-alerts.yml")
PROMETHEUS, PROMTOOL = "/usr/bin/prometheus", "/usr/bin/promtool"
BROKEN = ("/api/moods/{id}", "GET")
CLEAN = [("/api/items/{id}", "GET"), ("/api/items/{id}", "PUT")]
ROUTES = (BROKEN[0], CLEAN[0][0])  # the templates: one broken, one clean
ROUNDS = 12
BUILTINS = {"__rate_interval": "30s", "__range": "5m", "__interval": "15s", "job": "shadow",
            "instance": ".*"}


def need(path: str) -> None:
    """Skip outside CI, fail with CI=true, when a binary the test drives is missing."""
    if Path(path).exists():
        return
    reason = f"{path} is missing (apt-get install prometheus)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true: Prometheus tests must run")
    pytest.skip(reason)


def panel_queries(board: dict) -> list[tuple[str, str]]:
    """(where, expr) of every query of a dashboard: panel targets and annotations."""
    out = [(f"{board['uid']}: {p['title']}", t["expr"])
           for p in board["panels"] if p["type"] != "row" for t in p["targets"]]
    out += [(f"{board['uid']}: annotation {a['name']}", a["expr"])
            for a in board["annotations"]["list"] if "expr" in a]
    return out


def rule_exprs(path: Path) -> dict[str, str]:
    """Rule name -> expr, read from a rules file (block scalars and one-liners)."""
    out: dict[str, str] = {}
    lines, name = path.read_text().splitlines(), ""
    for i, line in enumerate(lines):
        if m := re.match(r"\s*- (?:record|alert): (\S+)", line):
            name = m.group(1)
        elif m := re.match(r"(\s*)expr: (.*)", line):
            indent, rest = len(m.group(1)), m.group(2)
            if rest.strip() == "|":
                body = []
                for more in lines[i + 1:]:
                    if more.strip() and len(more) - len(more.lstrip()) <= indent:
                        break
                    body.append(more.strip())
                rest = " ".join(body)
            out[name] = rest.strip()
    return out


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Grafana's variable substitution; an unknown variable is an error."""
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        assert name in variables, f"unknown dashboard variable ${name} in {expr}"
        return variables[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads: raw `shadow_*` and recorded `level:name:op`."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return {t for t in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)
            if t.startswith("shadow_") or ":" in t or t == "up"}


def registry_names() -> set[str]:
    names = {"up"}
    for family in Metrics().registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


# --- without Prometheus ------------------------------------------------------------------

def test_committed_dashboards_are_what_the_script_builds():
    for name, board in dashboards.build().items():
        committed = (ROOT / "dashboards" / name).read_text(encoding="utf-8")
        assert committed == dashboards.render(board), f"run python -m dashboards.build ({name})"


def test_dashboards_are_well_formed_and_use_only_existing_metrics():
    recorded = {n for path in RULE_FILES[:1] for n in rule_exprs(path)}
    known = registry_names() | recorded
    for name, board in dashboards.build().items():
        assert board["schemaVersion"] >= 39
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        panels = board["panels"]
        assert len({p["id"] for p in panels}) == len(panels), f"{name}: duplicate ids"
        for where, expr in panel_queries(board):
            assert metric_names(expr), f"{where}: reads no metric: {expr}"
            unknown = metric_names(expr) - known
            assert not unknown, f"{where}: unknown metrics {unknown} in {expr}"
        for p in panels:
            if p["type"] == "row":
                continue
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["targets"] and all(t["expr"] and t["datasource"] == p["datasource"]
                                        for t in p["targets"]), p["title"]
            assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
    for name, board in dashboards.build().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["job"]["query"]["query"] == "label_values(shadow_build_info, job)"
        assert variables["instance"]["includeAll"] and variables["instance"]["multi"]
        assert any(link["url"] == "${browser}/" for link in board["links"]), name
        for where, expr in panel_queries(board):
            for metric in re.findall(r"(?<![\w:$])(shadow_\w+|\w+:\w+:\w+)(\{[^}]*\})?", expr):
                assert 'job="$job"' in metric[1], f"{where}: {metric[0]} not scoped to $job"
    route = {v["name"]: v for v in dashboards.build()["shadow-route.json"]["templating"]["list"]}
    assert route["route"]["query"]["query"] == \
        'label_values(shadow_requests_total{job="$job"}, route)'


def test_rules_use_only_existing_metrics():
    recorded = rule_exprs(RULE_FILES[0])
    known = registry_names() | set(recorded)
    for path in RULE_FILES:
        for name, expr in rule_exprs(path).items():
            assert not metric_names(expr) - known, f"{path.name} {name}: {expr}"
    assert len(rule_exprs(RULE_FILES[1])) == 9


def test_latency_buckets_span_sub_millisecond_to_seconds():
    m = Metrics()
    m.upstream_duration.labels("legacy", "primary", "/x").observe(0.0003)
    les = sorted(float(sample.labels["le"]) for family in m.registry.collect()
                 for sample in family.samples
                 if sample.name == "shadow_upstream_duration_seconds_bucket")
    assert les[-1] == float("inf") and tuple(les[:-1]) == LATENCY_BUCKETS
    assert les[0] < 0.001 and sum(b < 0.001 for b in les) >= 2, "no sub-millisecond detail"
    assert any(b >= 5.0 for b in les[:-1]) and all(a < b for a, b in zip(les, les[1:]))


def test_promtool_accepts_config_rules_and_rule_unit_tests():
    need(PROMTOOL)
    for args in (["check", "config", str(ROOT / "config" / "prometheus.yml")],
                 ["check", "rules", *map(str, RULE_FILES)],
                 ["test", "rules", str(RULES / "tests" / "shadow-rules.test.yml")]):
        done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_compose_mounts_files_that_exist():
    text = (ROOT / "docker-compose.yml").read_text()
    mounts = re.findall(r"- (\./[^:\s]+):", text)
    assert len(mounts) >= 4
    for mount in mounts:
        assert (ROOT / mount).exists(), mount
    for name in ("datasources/prometheus.yml", "dashboards/shadow.yml"):
        assert (ROOT / "config" / "grafana" / "provisioning" / name).exists()


# --- against a real Prometheus ------------------------------------------------------------

def backend(candidate: bool) -> web.Application:
    """Moods differ (SQLite's 1 is PostgreSQL's true); items only in number notation
    (5 vs 5.0, which the comparison treats as equal and counts as normalised); mail is
    never sent to the shadow (route policy skip)."""

    async def mood(request: web.Request) -> web.Response:
        return web.json_response({"id": int(request.match_info["id"]),
                                  "calm": True if candidate else 1})

    async def item(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": int(request.match_info["id"]),
                                  "score": 5.0 if candidate else 5})

    async def mail(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"sent": True})

    app = web.Application()
    app.router.add_post("/api/mail", mail)
    app.router.add_get("/api/moods/{id}", mood)
    app.router.add_route("*", "/api/items/{id}", item)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def prometheus(tmp_path: Path, admin_port: int):
    """A Prometheus scraping the admin listener every second with the rules loaded, in
    its own process group; stopped by its PID on the way out. Yields its base URL."""
    config, port = tmp_path / "prometheus.yml", free_port()
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{', '.join(repr(str(p)) for p in RULE_FILES)}]\n"
        "scrape_configs:\n  - job_name: shadow\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{admin_port}']\n")
    with (tmp_path / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield f"http://127.0.0.1:{port}", proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


class PromAPI:
    """The few calls of Prometheus's HTTP API the test needs."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def get(self, path: str, **params) -> dict:
        async with self.session.get(self.base + path, params=params) as reply:
            return await reply.json()

    async def query(self, expr: str) -> dict:
        return await self.get("/api/v1/query", query=expr)

    async def values(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        """An instant query's result as {label values: value}; asserts it parsed."""
        answer = await self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        return {tuple(r["metric"].get(n, "") for n in labels): float(r["value"][1])
                for r in answer["data"]["result"]}

    async def ready(self) -> bool:
        try:
            async with self.session.get(self.base + "/-/ready") as reply:
                return reply.status == 200
        except aiohttp.ClientConnectionError:
            return False

    async def scraped(self) -> bool:
        return await self.values('up{job="shadow"}') == {(): 1.0}

    async def populated(self, route: str | None) -> set[str]:
        """Metrics with samples; with `route`: of that route, or with no route label."""
        names = '__name__=~"shadow_.*|up"'
        expr = f"count by (__name__) ({{{names}}})" if route is None else (
            f'count by (__name__) ({{{names}, route="{route}"}}) '
            f'or count by (__name__) ({{{names}, route=""}})')
        return {n for (n,) in await self.values(expr, "__name__")}


async def wait_for(check, what: str, timeout: float = 20.0):
    """Polls `check()` until it returns a truthy value; fails naming `what` on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (last := await check()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)
    return last


async def drive(session: aiohttp.ClientSession, runtime) -> int:
    """Traffic over several scrapes, so every counter rises between two of them;
    returns the number of exchanges sent to both backends."""
    sent = 0
    for i in range(ROUNDS):
        for method, path in (("GET", f"/api/moods/{i}"), ("GET", f"/api/items/{i}"),
                             ("PUT", f"/api/items/{i}")):
            async with session.request(method, proxy_url(runtime, path), json={"n": i}) as r:
                assert r.status == 200
            sent += 1
        if i % 4 == 0:
            async with session.post(proxy_url(runtime, "/api/mail"), json={"n": i}) as r:
                assert r.status == 200  # skipped by policy: never concluded
        await asyncio.sleep(0.35)
    return sent


async def test_every_dashboard_and_rule_query_against_real_prometheus(tmp_path, aiohttp_server):
    need(PROMETHEUS)
    legacy = await aiohttp_server(backend(candidate=False))
    candidate = await aiohttp_server(backend(candidate=True))
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")),
                         routes=[{"template": "/api/mail", "policy": "skip"},
                                 {"template": "/api/moods/{id}"}, {"template": "/api/items/{id}"}])
    async with running(config) as runtime, aiohttp.ClientSession() as session:
        with prometheus(tmp_path, runtime.admin_port) as (base, proc):
            api = PromAPI(session, base)
            try:
                await wait_for(api.ready, "Prometheus to be ready")
                # Targets reach the scrapers a few seconds after start: traffic before the
                # first scrape would never show as a rate.
                await wait_for(api.scraped, "the first scrape of the admin listener")
                await settle(runtime, await drive(session, runtime))
                await wait_for(lambda: recorded(api), "the recorded ratios and a pending alert")
            except AssertionError as exc:
                log = (tmp_path / "prometheus.log").read_text()[-3000:]
                raise AssertionError(f"{exc}; exit code {proc.poll()}; log: {log}") from None
            results = await evaluate_everything(api)
            check_values(results)


async def recorded(api: PromAPI) -> bool:
    """True once every route's mismatch ratio is recorded and the rising alert pends."""
    ratios = await api.values("job_route_method:shadow_requests_mismatched:ratio_rate5m",
                              "route", "method")
    alerts = (await api.get("/api/v1/alerts"))["data"]["alerts"]
    return set(ratios) == {BROKEN, *CLEAN} and ratios[BROKEN] > 0 and any(
        a["labels"]["alertname"] == "ShadowMismatchRateRising" for a in alerts)


async def evaluate_everything(api: PromAPI) -> dict[str, list]:
    """Every panel, annotation and rule expression, evaluated: all must parse, and all
    whose metrics have samples (through recording rules) must return data. Panels with
    $route run once for the broken and once for a clean route. Returns expr -> result."""
    rules = {r["name"]: r for g in (await api.get("/api/v1/rules"))["data"]["groups"]
             for r in g["rules"]}
    assert set(rules) == {n for p in RULE_FILES for n in rule_exprs(p)}
    assert not [n for n, r in rules.items() if r["health"] != "ok"], rules
    with_samples = {r: await api.populated(r) for r in (None, *ROUTES)}

    def raw(expr: str) -> set[str]:
        """The raw metrics an expression reads, through recording rules."""
        out: set[str] = set()
        for name in metric_names(expr):
            rule = rules.get(name)
            out |= raw(rule["query"]) if rule and rule["type"] == "recording" else {name}
        return out

    queries = [(f"rule {n}", r["query"], None, r["type"] == "alerting")
               for n, r in rules.items()]
    for board in dashboards.build().values():
        for where, expr in panel_queries(board):
            for route in (ROUTES if "$route" in expr else (None,)):
                queries.append((where, substitute(expr, {**BUILTINS, "route": route or ""}),
                                route, False))
    results, failures = {}, []
    for where, expr, route, is_alert in queries:
        answer = await api.query(expr)
        if answer["status"] != "success":
            failures.append(f"{where}: {answer.get('error')} in {expr}")
            continue
        results[expr] = answer["data"]["result"]
        if not is_alert and raw(expr) <= with_samples[route] and not results[expr]:
            failures.append(f"{where}: no data, though its metrics have samples: {expr}")
    assert not failures, "\n".join(failures)
    for name, rule in rules.items():
        results[f"rule {name}"] = results[rule["query"]]
    return results


def check_values(results: dict[str, list]) -> None:
    """The values the dashboards and alerts show for the known traffic."""
    boards = dashboards.build()

    def panel(where: str, route: str = ROUTES[0]) -> list[tuple[dict, float]]:
        board, _, title = where.partition(": ")
        expr = next(e for w, e in panel_queries(boards[board + ".json"]) if w == where)
        found = results[substitute(expr, {**BUILTINS, "route": route})]
        return [(r["metric"], float(r["value"][1])) for r in found]

    by_route = {(m["route"], m["method"]): v
                for m, v in panel("shadow-overview: Mismatch ratio by route")}
    assert by_route == {BROKEN: 1.0, **{clean: 0.0 for clean in CLEAN}}, by_route
    assert [v for _, v in panel("shadow-route: Mismatch ratio", BROKEN[0])] == [1.0]
    assert [v for _, v in panel("shadow-route: Mismatch ratio", ROUTES[1])] == [0.0, 0.0]
    assert [m["kind"] for m, _ in panel("shadow-overview: Mismatches by kind")] == ["body"]
    assert [m["mode"] for m, _ in panel("shadow-overview: Mode")] == ["shadow"]
    for q in (50, 95, 99):
        backends = {m["backend"] for m, _ in panel(f"shadow-overview: Latency p{q} by backend")}
        assert backends == {"legacy", "candidate"}, q
    needed = dict((m["route"], v) for m, v in panel(
        "shadow-overview: Compared exchanges still needed per route"))
    assert set(needed) == set(ROUTES) and min(needed.values()) > 0, needed
    normalised = panel("shadow-overview: Normalised by the bridge, by route")
    assert {m["route"] for m, _ in normalised} == {ROUTES[1]}, normalised
    assert [m["reason"] for m, _ in panel("shadow-overview: Skipped, by reason")] == ["policy"]
    rising = [(a["metric"]["route"], a["metric"]["method"])
              for a in results["rule ShadowMismatchRateRising"]]
    assert rising == [BROKEN], rising
    quiet = ("ShadowErrorRateHigh", "ShadowLaneDropping", "ShadowDiverged",
             "ShadowRollbackUnsafe", "ShadowProxyDown", "ShadowInternalErrors")
    assert not [name for name in quiet if results[f"rule {name}"]]
