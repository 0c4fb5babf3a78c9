"""The log lines an operator acts on, besides internal errors (shadow.logs.Raised).

    proxy started          version, listeners, mode, each backend (label, URL, database
                           kind), row capture method, privacy mode; once at start-up
    no admin token         warning at start-up: mode changes are refused until one is set
    backend unreachable    warning at start-up when a backend's port does not accept a
                           connection within a second (the proxy still starts)
    primary failed         one line per 502/504 a client got (rate-limited per backend and
                           status; the next line says how many were folded)
    backend state          a backend went from answering to failing, or back (rate-limited)

Lines carry backend names, route templates, methods, statuses and error classes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from yarl import URL

from shadow import __version__
from shadow.logs import RateLimited
from shadow.verdict import Reply

if TYPE_CHECKING:
    from shadow.config import Config
    from shadow.rows.live import RowState

log = logging.getLogger("shadow.events")


def _database_kind(databases: dict[str, str]) -> str:
    """"none", the kind of the backend's database, or "N x KIND" for several."""
    if not databases:
        return "none"
    kind = "sqlite" if next(iter(databases.values())).startswith("sqlite:") else "postgresql"
    return kind if len(databases) == 1 else f"{len(databases)}x{kind}"


def rows_method(config: Config, rows: RowState | None) -> str:
    """How row changes are captured: "off", or per backend the capture's method."""
    if rows is None:
        return "off"
    methods = []
    for backend, capture in sorted(rows.captures.items()):
        method = getattr(capture, "method", None) or (
            f"{_database_kind(config.backends[backend].database_map)}-triggers")
        methods.append(f"{backend}:{method}")
    return ",".join(methods)


def privacy_mode(config: Config) -> str:
    """What stored samples hold: structure and fingerprints, and how many keep rules
    widen that (shadow.privacy)."""
    return f"fingerprints+{len(config.privacy.keep)}-keep-rules"


def started(config: Config, *, mode: str, proxy_port: int, admin_port: int,
            rows: RowState | None, admin_token: bool) -> None:
    """The start-up line, and the warning when no admin token is set."""
    fields: dict[str, object] = {
        "version": __version__, "mode": mode, "listen": proxy_port, "admin": admin_port,
        "rows": rows_method(config, rows), "privacy": privacy_mode(config)}
    for name, backend in config.backends.items():
        fields[f"{name}"] = (f"{config.label(name)} {backend.url} "
                             f"db={_database_kind(backend.database_map)}")
    log.info("proxy started", extra=fields)
    if not admin_token:
        log.warning("no admin token: mode changes are refused until one is set",
                    extra={"env": config.admin_token_env})


async def probe_backends(config: Config, timeout: float = 1.0) -> dict[str, bool]:
    """Try one TCP connection to each backend; warn for each that does not accept one."""

    async def reachable(url: str) -> bool:
        parsed = URL(url)
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(parsed.host, parsed.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    names = list(config.backends)
    results = await asyncio.gather(*(reachable(config.backends[n].url) for n in names))
    for name, ok in zip(names, results):
        if not ok:
            log.warning("backend unreachable at start-up", extra={
                "backend": name, "url": config.backends[name].url})
    return dict(zip(names, results))


class BackendStates:
    """Whether each backend answers; a change is logged (rate-limited per backend)."""

    def __init__(self, labels: dict[str, str], interval: float = 10.0) -> None:
        self._labels = labels
        self._up: dict[str, bool] = {}
        self._changes = RateLimited(log, interval)
        self._failures = RateLimited(log, interval)

    def seen(self, backend: str, role: str, reply: Reply) -> None:
        """Record one reply (or failure) of `backend`."""
        up = reply.error is None or reply.error in ("too_large", "cancelled", "dropped")
        before = self._up.get(backend)
        if before is None or before != up:
            self._up[backend] = up
            if before is not None or not up:
                self._changes.log(
                    logging.INFO if up else logging.WARNING,
                    "backend answering" if up else "backend failing", (backend, up),
                    backend=backend, label=self._labels.get(backend, backend), role=role,
                    **({} if up else {"error": reply.error}))

    def primary_failed(self, backend: str, route: str, status: int, error: str) -> None:
        """A client got a 502 or 504 because the primary gave no usable reply."""
        self._failures.log(logging.WARNING, "primary failed", (backend, status),
                           backend=backend, label=self._labels.get(backend, backend),
                           route=route, status=status, error=error)
