"""`shadow rows`: install, inspect and remove change capture; resync after a re-copy.

    shadow rows install   -c FILE     triggers + one change-log table in each database
    shadow rows status    -c FILE     what is installed; tables added or altered since
    shadow rows uninstall -c FILE     removes every trace
    shadow rows resync --reason TEXT  (running proxy) forget divergence and the key map;
                                      --admin URL, token from $SHADOW_ADMIN_TOKEN, --json

Exit codes: 0 done / healthy, 1 status found problems, 2 usage, config or connection error.
"""

from __future__ import annotations

import asyncio
import sys

import click
import orjson

from shadow.config import BACKENDS
from shadow.cutover_cli import _common as _admin_options


def _databases(config_path: str) -> tuple[dict[str, str], object]:
    from shadow.cli import _load
    from shadow.config import row_rules

    config = _load(config_path)
    if not config.rows_enabled:
        click.echo("row verification is off: set `database` on both [backends.legacy] and "
                   "[backends.candidate]", err=True)
        sys.exit(2)
    return {name: config.backends[name].database for name in BACKENDS}, row_rules(config)


def _each(config_path: str, action):
    from shadow.rows.live import open_capture

    databases, rules = _databases(config_path)

    async def run() -> dict:
        results = {}
        for backend, database in databases.items():
            capture = open_capture(database, rules)
            try:
                await capture.open()
                results[backend] = await action(capture)
            finally:
                await capture.close()
        return results

    try:
        return asyncio.run(run())
    except Exception as exc:  # a database or driver error: connection, permission, SQL
        click.echo(f"shadow rows: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)


def _show(backend: str, status) -> None:
    state = "installed" if status.installed else "not installed"
    click.echo(f"{backend}: {state}; {len(status.captured)} table(s) captured"
               + (f", {status.pending} change(s) pending" if status.pending else ""))
    for problem in status.problems():
        click.echo(f"  ! {problem}")
    for table, why in sorted(status.unverifiable.items()):
        click.echo(f"  - {table}: unverifiable ({why})")


@click.group("rows")
def rows() -> None:
    """Row-state verification: change capture in both databases."""


_config = click.option("-c", "--config", "config_path", required=True,
                       type=click.Path(dir_okay=False), help="TOML configuration file.")


@rows.command("install")
@_config
def install(config_path: str) -> None:
    """Add change-capture triggers and the change-log table to both databases."""
    results = _each(config_path, lambda capture: capture.install())
    for backend, status in results.items():
        _show(backend, status)


@rows.command("uninstall")
@_config
def uninstall(config_path: str) -> None:
    """Remove every trigger, function and log table change capture added."""

    async def remove(capture):
        await capture.uninstall()
        return await capture.status()

    for backend, status in _each(config_path, remove).items():
        click.echo(f"{backend}: removed" if not status.installed else f"{backend}: still installed")


@rows.command("status")
@_config
def status(config_path: str) -> None:
    """What is installed, and whether both schemas still match the installed triggers."""

    async def inspect(capture):
        return await capture.status(), set(await capture.introspect())

    results = _each(config_path, inspect)
    healthy = True
    for backend, (state, _) in results.items():
        _show(backend, state)
        healthy &= state.installed and state.healthy
    legacy, candidate = results["legacy"][1], results["candidate"][1]
    for name, only in (("legacy", legacy - candidate), ("candidate", candidate - legacy)):
        if only:
            healthy = False
            click.echo(f"tables only in {name}: {', '.join(sorted(only))}")
    sys.exit(0 if healthy else 1)


@rows.command("resync")
@click.option("--reason", required=True, help="How the shadow's data was re-copied.")
@_admin_options
def resync(admin, reason: str) -> None:
    """After re-copying the data: clear divergence and the key map of a running proxy."""
    from shadow.cutover_cli import show_rows

    answer = admin.call("POST", "/api/rows/resync", {"reason": reason})
    if admin.as_json:
        click.echo(orjson.dumps(answer["rows"], option=orjson.OPT_INDENT_2).decode())
        return
    click.echo("resynced: divergence cleared, key pairs forgotten, row mismatches of the "
               "gate window resolved")
    show_rows(answer["rows"])


COMMANDS = [rows]
