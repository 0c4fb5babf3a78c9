"""`shadow rows`: install, inspect and remove change capture; resync after a re-copy.

    shadow rows install   -c FILE     capture in each database of both backends (says which
                                      method, and why; lists each database's tables)
    shadow rows status    -c FILE     what is installed; tables added or altered since
    shadow rows uninstall -c FILE     removes every trace
    shadow rows resync --reason TEXT  (running proxy) forget divergence and the key map;
                                      --admin URL, token from $SHADOW_ADMIN_TOKEN, --json

Install and status print the same coverage (see `shadow.rows.coverage`): per table,
compared on both sides, one side only, keyless, not captured yet, excluded.
Exit codes: status: 0 when every table the config asks for is compared and the capture is
healthy, else 1; install: 0 once installed (its report says what is not compared), with
`--strict` 1 unless every table is compared; both: 2 usage, config or connection error.
"""

from __future__ import annotations

import asyncio
import sys

import click
import orjson

from shadow.config import BACKENDS
from shadow.cutover_cli import _common as _admin_options
from shadow.env_values import redact_secrets


def _rows_config(config_path: str):
    from shadow.cli import _load

    config = _load(config_path)
    if not config.rows_enabled:
        click.echo("row verification is off: set `database` (or `databases`) on both "
                   "[backends.legacy] and [backends.candidate]", err=True)
        sys.exit(2)
    return config


def _each(config_path: str, action):
    """`action(capture)` on each backend's capture (all its databases), opened and closed
    around it; a database error ends the command with exit code 2."""
    from shadow.config import row_rules
    from shadow.rows.live import backend_capture

    config = _rows_config(config_path)
    rules = row_rules(config)

    async def run() -> dict:
        results = {}
        for backend in BACKENDS:
            capture = backend_capture(config, backend, rules)
            try:
                await capture.open()
                results[backend] = await action(capture)
            finally:
                await capture.close()
        return results

    try:
        return asyncio.run(run()), rules
    except Exception as exc:  # a database or driver error: connection, permission, SQL
        click.echo(f"shadow rows: {type(exc).__name__}: {redact_secrets(str(exc))}", err=True)
        sys.exit(2)


def _seen(capture, status) -> tuple:
    """What a command keeps of one backend: its status, catalogue, install reason, the
    status of each of its databases and the database of each table (several only)."""
    parts = getattr(capture, "statuses", {})
    where = capture.where() if len(parts) > 1 else {}
    return status, dict(capture.tables), getattr(capture, "reason", ""), parts, where


def _report(results: dict, rules) -> bool:
    """Print the coverage shared by install and status; True when it is complete."""
    from shadow.rows.coverage import coverage

    found = coverage({b: r[0] for b, r in results.items()},
                     {b: r[1] for b, r in results.items()}, rules,
                     where={b: r[4] for b, r in results.items() if r[4]})
    click.echo("coverage:")
    for line in found.lines():
        click.echo(line)
    return found.covered


def _show(backend: str, seen: tuple, installing: bool = False) -> None:
    status, _tables, reason, parts, _where = seen
    state = "installed" if status.installed else "not installed"
    click.echo(f"{backend}: {state}; {len(status.captured)} table(s) captured"
               + (f", {status.pending} change(s) pending" if status.pending else ""))
    if status.installed:
        click.echo(f"  method: {(reason if installing else '') or status.method}")
        if status.detail:
            click.echo(f"  {status.detail}")
    if len(parts) > 1:
        for db, part in parts.items():
            tables = ", ".join(part.captured) or "none"
            click.echo(f"  database {db}: {'installed' if part.installed else 'not installed'}"
                       f"; captured: {tables}")
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
@click.option("--strict", is_flag=True,
              help="Exit 1 unless every table the config asks for is compared.")
def install(config_path: str, strict: bool) -> None:
    """Set up change capture in both databases (logical decoding or triggers) and report
    what is compared."""
    async def install_one(capture):
        return _seen(capture, await capture.install())

    results, rules = _each(config_path, install_one)
    for backend, seen in results.items():
        _show(backend, seen, installing=True)
    covered = _report(results, rules)
    sys.exit(1 if strict and not covered else 0)


@rows.command("uninstall")
@_config
def uninstall(config_path: str) -> None:
    """Remove every trigger, function and log table change capture added."""

    async def remove(capture):
        await capture.uninstall()
        return await capture.status()

    for backend, status in _each(config_path, remove)[0].items():
        click.echo(f"{backend}: removed" if not status.installed else f"{backend}: still installed")


@rows.command("status")
@_config
def status(config_path: str) -> None:
    """What is installed, and whether both schemas still match the installed triggers."""

    async def inspect(capture):
        return _seen(capture, await capture.status())

    results, rules = _each(config_path, inspect)
    healthy = True
    for backend, seen in results.items():
        _show(backend, seen)
        healthy &= seen[0].installed and seen[0].healthy
    covered = _report(results, rules)
    sys.exit(0 if healthy and covered else 1)


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
