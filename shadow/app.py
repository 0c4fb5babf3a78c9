"""Builds a running proxy from a Config: the proxy and admin listeners and everything
behind them, started in order and stopped in reverse.

`Runtime.start()` binds both listening sockets (a port in use fails first, before anything
is opened), opens the state store, restores the mode, opens one pool per backend, starts
the mirror lanes and serves on both listeners. Any failure on the way closes what was
opened and raises `StartError`, one line saying what failed and why; `shadow run` prints it
and exits 2. `Runtime.stop()` stops accepting, lets in-flight client requests finish,
drains shadow work up to a deadline, flushes the store and closes everything.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from shadow import admin, events
from shadow.tasks import cancelled
from shadow.backend_logs import LogFollower, followers
from shadow.compare.noise import META as NOISE_META, NoiseModel
from shadow.compare.offload import Offload
from shadow.compare.rules import BridgeRules, build_rules
from shadow.config import BACKENDS, Config
from shadow.cutover import Cutover
from shadow.events import BackendStates
from shadow.listener import Guard, GuardedSite, bind, fd_budget
from shadow.logs import Raised
from shadow.findings.recorder import Findings
from shadow.metrics import Metrics
from shadow.mirror import MirrorLane
from shadow.modes import MODES, ModeState
from shadow.proxy import Proxy
from shadow.overlap import Clocks
from shadow.resends import attach_resends
from shadow.reply_head import strip_defaults
from shadow.privacy import SampleBuilder
from shadow.privacy import build as build_privacy
from shadow.routes import RouteTable
from shadow.store import Store
from shadow.upstream import Upstream
from shadow.verifier import Verifier
from shadow.rows.live import META as ROWS_META, RowState
from shadow.writes import Writes
from shadow.writes.assembly import start_writes

log = logging.getLogger("shadow.app")
RUNTIME = web.AppKey("runtime", "Runtime")


class StartError(Exception):
    """The proxy could not start; the message is one line: what failed, and why."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        text = os.strerror(exc.errno).lower()
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


@dataclass
class Runtime:
    """One proxy instance and all it owns."""

    config: Config
    metrics: Metrics = field(default_factory=Metrics)
    store: Store | None = None
    modes: ModeState | None = None
    routes: RouteTable | None = None
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    probes: dict[str, Upstream] = field(default_factory=dict)  # where A/A probes go
    lane: MirrorLane | None = None
    writes: Writes = field(default_factory=Writes)
    rows: RowState | None = None
    _rows_task: asyncio.Task | None = None
    _probe_task: asyncio.Task | None = None
    verifier: Verifier | None = None
    noise: NoiseModel | None = None
    logs: dict[str, LogFollower] = field(default_factory=dict)
    proxy: Proxy | None = None
    runners: list[web.AppRunner] = field(default_factory=list)
    sockets: list = field(default_factory=list)
    guards: dict[str, Guard] = field(default_factory=dict)
    _step: str = "start"
    _closed: bool = False
    proxy_port: int = 0
    admin_port: int = 0
    admin_token: str | None = None
    viewer_token: str | None = None
    auth: Any = None
    cutover: Cutover | None = None
    offload: Offload | None = None
    findings: Findings | None = None
    privacy: SampleBuilder | None = None
    clocks: Clocks = field(default_factory=Clocks)  # writes running on each side

    def __post_init__(self) -> None:
        self._raised = Raised(log, lambda operation: self.metrics.internal_errors.labels(
            operation).inc())

    async def _upstream(self, name: str, url: str) -> Upstream:
        upstream = Upstream(name=name, url=url, pool_size=self.config.proxy.pool_size,
                            connect_timeout=self.config.proxy.connect_timeout)
        await upstream.start()
        return upstream

    def raised(self, operation: str, exc: BaseException) -> None:
        """Where the verifier's own failures go: counted, logged (traceback once), never raised."""
        self._raised(operation, exc)

    async def start(self) -> None:
        """Start everything, or raise StartError having closed whatever was opened."""
        try:
            await self._start()
        except BaseException as exc:
            try:
                await self._close()
            except Exception as close_exc:  # the start-up failure is the news, not this
                log.debug("closing after a failed start", exc_info=close_exc)
            if isinstance(exc, Exception) and not isinstance(exc, StartError):
                raise StartError(f"{self._step}: {_reason(exc)}") from exc
            raise

    async def _start(self) -> None:
        cfg = self.config
        for address in (cfg.listen, cfg.admin_listen):
            self._step = f"listen {address}"
            self.sockets.append(bind(address))
        self.proxy_port = self.sockets[0].getsockname()[1]
        self.admin_port = self.sockets[1].getsockname()[1]
        self._step = f"state store {cfg.store.path}"
        Path(cfg.store.path).parent.mkdir(parents=True, exist_ok=True)
        self.privacy = build_privacy(cfg.privacy, cfg.store.path)
        self.store = await Store.open(
            cfg.store.path, samples_per_signature=cfg.store.samples_per_signature,
            max_signatures=cfg.store.max_signatures, retention_hours=cfg.store.retention_hours)
        self.metrics.initialise([cfg.label(name) for name in BACKENDS],
                                [(r.template, r.methods) for r in cfg.routes])
        self.store.on_evicted = self.metrics.signatures_evicted.inc
        self.store.findings.max_findings = cfg.findings.max_kept
        self.store.findings.on_evicted = self.metrics.findings_evicted.inc
        self.metrics.signatures.set_function(lambda: self.store.signature_count)
        mode = await self.store.get_meta("mode")
        if mode is None:
            mode = cfg.mode
            await self.store.set_meta("mode", mode)
        self.modes = ModeState(mode)
        self.metrics.set_mode(mode, MODES)
        self.modes.subscribe(lambda roles: self.metrics.set_mode(roles.mode, MODES))
        self.routes = RouteTable.from_config(cfg)
        self.routes.on_retired(self.metrics.forget_route)
        self.metrics.routes_learned.set_function(lambda: self.routes.learned_count)
        self._step = "row capture"
        if cfg.rows_enabled:
            from shadow.config import row_rules

            self.rows = await RowState.open(
                {name: cfg.backends[name].database_map for name in BACKENDS}, row_rules(cfg),
                keymap_size=cfg.rows.keymap_size, saved=await self.store.get_meta(ROWS_META),
                max_pending=cfg.rows.max_pending, method=cfg.rows.postgres_capture,
                sqlite_method=cfg.rows.sqlite_capture, renamed=cfg.rows.renamed)
            self.rows.listeners.append(self._diverged)
            self._diverged(self.rows.diverged)
        self._step = "start"
        for name in BACKENDS:
            self.upstreams[name] = await self._upstream(name, cfg.backends[name].url)
            twin = cfg.backends[name].calibration_url
            self.probes[name] = await self._upstream(name, twin) if twin else self.upstreams[name]
        metrics = self.metrics
        self.lane = MirrorLane(
            name="shadow", queue_size=cfg.mirror.queue_size, workers=cfg.mirror.concurrency,
            timeout=cfg.mirror.timeout + 1.0, raised=self.raised,
            on_depth=metrics.queue_depth.set,
            on_dropped=lambda reason: metrics.dropped.labels(reason).inc())
        self.lane.start()
        metrics.inflight.set_function(lambda: self.lane.busy)
        await start_writes(self.writes, cfg=cfg, metrics=metrics, rows=self.rows,
                           store=self.store, raised=self.raised,
                           primary=lambda: self.modes.current.primary)
        compare = cfg.compare
        rules = build_rules(
            headers=compare.headers, ignore_paths=compare.ignore_paths,
            unordered_paths=compare.unordered_paths,
            numeric_tolerance=compare.numeric_tolerance, time_tolerance=compare.time_tolerance,
            scrubbers=[(s.pattern, s.replacement) for s in compare.scrubbers],
            bridge=BridgeRules(**compare.bridge.model_dump()))
        self.logs = followers({name: cfg.backends[name].log_files for name in BACKENDS})
        for follower in self.logs.values():
            follower.start()
        self.noise = NoiseModel(
            min_pairs=cfg.noise.min_pairs, shown=self.privacy.path,
            min_fresh=cfg.noise.min_fresh if cfg.noise.fresh_values else None)
        self.noise.load(await self.store.get_meta(NOISE_META))
        self.verifier = Verifier(
            metrics=metrics, store=self.store, privacy=self.privacy, rules=rules,
            labels={name: cfg.label(name) for name in BACKENDS}, raised=self.raised,
            rows=self.rows, noise=self.noise, logs=self.logs,
            hold_seconds=cfg.noise.hold_seconds, max_held=cfg.noise.max_held)
        attach_resends(self, rules)
        if compare.offload_workers:
            self.offload = Offload(inline_bytes=compare.offload_bytes,
                                   workers=compare.offload_workers,
                                   timeout=compare.offload_timeout,
                                   max_pending=compare.offload_queue, raised=self.raised)
            self.verifier.offload = self.offload
            metrics.compare_offloaded.set_function(lambda: self.offload.pending)
        self.proxy = Proxy(config=cfg, routes=self.routes, modes=self.modes,
                           upstreams=self.upstreams, lane=self.lane, verifier=self.verifier,
                           writes=self.writes, rows=self.rows,
                           raised=self.raised, clocks=self.clocks)
        self.admin_token = os.environ.get(cfg.admin_token_env) or None
        self.viewer_token = os.environ.get(cfg.viewer_token_env) or None
        self.cutover = await Cutover.attach(self)
        self.findings = await Findings.open(
            self.store, version_header=cfg.findings.version_header, who=cfg.admin_token_name,
            since=lambda: self.cutover.stats.since, sample=self.verifier.sample,
            raised=self.raised, safe=self.verifier.privacy.with_safe_paths)
        self.verifier.listeners.append(self.findings.observe)
        if self.rows is not None:
            self._rows_task = asyncio.get_running_loop().create_task(
                self._watch_rows(), name="shadow-rows-state")
        self.verifier.backends = BackendStates({name: cfg.label(name) for name in BACKENDS})
        await self._listen()
        events.started(cfg, mode=str(mode), proxy_port=self.proxy_port,
                       admin_port=self.admin_port, rows=self.rows,
                       admin_token=self.admin_token is not None)
        self._probe_task = asyncio.get_running_loop().create_task(
            events.probe_backends(cfg), name="shadow-probe-backends")

    def _diverged(self, diverged: str | None) -> None:
        """The shadow's rows diverged (or were resynced): the metric and the gate know now."""
        self.metrics.diverged.set(1 if diverged else 0)
        if self.cutover is not None:
            self.cutover.stats.set_diverged(bool(diverged))

    async def save_rows(self) -> None:
        """Bring the row metrics and the gate up to date and persist the row state."""
        rows = self.rows
        self.metrics.keymap_size.set(len(rows.keymap))
        self.metrics.diverged.set(1 if rows.diverged else 0)
        self.metrics.capture_counts(rows.capture_counts())
        await rows.refresh_status()
        if self.cutover is not None:
            self.cutover.stats.set_diverged(bool(rows.diverged))
        await self.store.set_meta(ROWS_META, rows.saved())

    async def _watch_rows(self, every: float = 2.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.save_rows()
            except Exception as exc:
                self.raised("rows_state", exc)

    async def _listen(self) -> None:
        cfg = self.config
        conns = cfg.connections
        self._step = "connection limits"
        limit, room = fd_budget(2 * cfg.proxy.pool_size + conns.max_admin_connections)
        clients = conns.max_client_connections or room
        if clients > room:
            log.warning("connections.max_client_connections lowered to what the descriptor "
                        "limit leaves", extra={"configured": clients, "lowered_to": room,
                                               "descriptor_limit": limit})
            clients = room
        if clients < 1:
            raise StartError(
                f"descriptor limit {limit} leaves no room for client connections next to "
                f"2 x proxy.pool_size and connections.max_admin_connections: raise it "
                f"(LimitNOFILE=, ulimit -n) or lower those")
        self._step = "listeners"
        proxy_app = web.Application(client_max_size=cfg.proxy.max_body_bytes)
        proxy_app[RUNTIME] = self
        proxy_app.router.add_route("*", "/{tail:.*}", self.proxy.handle)
        proxy_app.on_response_prepare.append(strip_defaults)
        admin_app = admin.build(self)
        admin_app[RUNTIME] = self
        limits = {"max_line_size": cfg.proxy.max_header_bytes,
                  "max_field_size": cfg.proxy.max_header_bytes,
                  "keepalive_timeout": conns.idle_timeout}
        metrics = self.metrics
        for app, sock, name, most in ((proxy_app, self.sockets[0], "proxy", clients),
                                      (admin_app, self.sockets[1], "admin",
                                       conns.max_admin_connections)):
            guard = self.guards[name] = Guard(
                name, header_timeout=conns.header_timeout, max_connections=most,
                on_closed=lambda reason, name=name: metrics.connections_closed.labels(
                    name, reason).inc())
            metrics.connections_open.labels(name).set_function(lambda g=guard: g.open)
            metrics.connections_limit.labels(name).set(most)
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True, **limits)
            await runner.setup()
            self.runners.append(runner)
            await GuardedSite(runner, sock, guard).start()

    async def stop(self, deadline: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests, drain shadow work, flush, close."""
        await self._close(deadline)
        log.info("proxy stopped")

    async def _close(self, deadline: float = 0.0) -> None:
        """Close whatever is open, in reverse order of opening (after a failed start too);
        once only."""
        if self._closed:
            return
        self._closed = True
        for runner in self.runners[:1]:  # the proxy listener: in-flight requests finish
            await runner.shutdown()
            await runner.cleanup()
        if self.writes.causality is not None:
            self.writes.causality.drop_parked("shutdown")
        if self.lane is not None and not await self.lane.drain(deadline):
            log.warning("shadow work left undone at shutdown", extra={"lane": self.lane.name})
        if self.writes.attribution is not None:
            await self.writes.attribution.stop()
        await asyncio.sleep(0)  # let the last comparisons conclude
        if self.offload is not None:
            if not await self.offload.drain(deadline):
                log.warning("comparisons left undone at shutdown",
                            extra={"pending": self.offload.pending})
            await self.offload.close()
        if self.verifier is not None and self.verifier.holding is not None:
            self.verifier.holding.flush()  # after the last comparisons, before the store
        if self.verifier is not None and self.verifier.recheck is not None:
            self.verifier.recheck.flush()
        for runner in self.runners[1:]:
            await runner.cleanup()
        self.runners.clear()
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()
        for upstream in {*self.upstreams.values(), *self.probes.values()}:
            await upstream.close()
        await cancelled(self._rows_task, self._probe_task)
        if self.rows is not None:
            await self.save_rows()
            await self.rows.close()
        if self.noise is not None:
            await self.store.set_meta(NOISE_META, self.noise.saved())
        for follower in self.logs.values():
            await follower.stop()
        if self.findings is not None:
            await self.findings.stop()
        if self.cutover is not None:
            await self.cutover.stop()
        if self.store is not None:
            await self.store.close()


async def run_forever(config: Config) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully. A signal during start-up stops
    it too; a failed start raises StartError (everything opened is closed by then)."""
    import gc
    import signal

    runtime = Runtime(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = loop.create_task(runtime.start(), name="shadow-start")
    signalled = loop.create_task(stop.wait(), name="shadow-signal")
    await asyncio.wait((starting, signalled), return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
    signalled.cancel()
    await asyncio.gather(starting, signalled, return_exceptions=True)
    if starting.cancelled():
        return
    starting.result()  # raises StartError
    # What start-up built lives as long as the process: keep it out of the collector's
    # full passes, which every request in flight waits for.
    gc.collect()
    gc.freeze()
    try:
        await stop.wait()
    finally:
        await runtime.stop(deadline=config.proxy.drain_timeout)
