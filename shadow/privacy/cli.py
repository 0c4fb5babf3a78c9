"""`shadow privacy-check` and `shadow store purge`.

    shadow privacy-check -c FILE     what is stored and kept in the clear, and why; then a
                                     scan of the state store; exit 1 when it finds
                                     anything that looks personal
    shadow store purge -c FILE (--route R | --all) --reason TEXT
                                     delete every signature, sample and finding of a route
                                     (or of all routes); audited (shadow.privacy.purge)
"""

from __future__ import annotations

import asyncio
import getpass
import os
from pathlib import Path

import click

from shadow.privacy.fingerprint import key_path
from shadow.privacy.keep import KeepRules
from shadow.privacy.scan import scan

WHAT_IS_STORED = """\
Stored for each kept sample: the structure of the request, both replies and the row
images (keys, types, string lengths, array sizes, statuses, header names) and, for every
value, a keyed fingerprint (HMAC-SHA256, 12 hex digits). Text, HTML and binary bodies are
stored as size and fingerprint only. Keys that are themselves values (e-mails, digits,
tokens) are fingerprinted too, also in signatures, findings and learnt noise. The builds'
log lines keep only the words of database and runtime errors (and [privacy] log_words);
every other word is a fingerprint.

Kept in the clear without a rule: true, false, null, statuses{numbers}. Strings never:
a short string is as likely a first name as an enum word."""

RULE_KINDS = {"path": "JSON body value (and all below it) at", "header": "header value of",
              "query": "query parameter value of", "column": "row column value of"}


def _rule_line(text: str) -> str:
    if text.startswith("$"):
        kind = "path"
    else:
        prefix, sep, _ = text.partition(":")
        kind = prefix.lower() if sep and prefix.lower() in ("header", "query") else "column"
    return f"  {text:32} {RULE_KINDS[kind]} {text.partition(':')[2] or text}"


@click.command("privacy-check")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML configuration file.")
def privacy_check(config_path: str) -> None:
    """Say what is stored and kept in the clear, then scan the state store for values
    that look like e-mails, phone or card numbers, tokens or free text (exit 1 if any)."""
    from shadow.cli import _load

    config = _load(config_path)
    privacy = config.privacy
    numbers = ", numbers under 9 integer digits" if privacy.keep_numbers else ""
    click.echo(WHAT_IS_STORED.format(numbers=numbers))
    rules = KeepRules.compile(privacy.keep).texts
    click.echo("\nKept in the clear by [privacy] keep:" if rules else
               "\nKept in the clear by [privacy] keep: nothing")
    for text in rules:
        click.echo(_rule_line(text))
    if privacy.log_words:
        click.echo(f"Log words kept by [privacy] log_words: {', '.join(privacy.log_words)}")
    if os.environ.get(privacy.key_env):
        click.echo(f"\nFingerprint key: from ${privacy.key_env}")
    else:
        key = key_path(config.store.path, privacy.key_file)
        state = f"mode {key.stat().st_mode & 0o777:o}" if key.exists() else \
            "not created yet (made 0600 on first start)"
        click.echo(f"\nFingerprint key: {key} ({state})")
    click.echo(f"Retention: samples expire after {config.store.retention_hours:g} hours; "
               "`shadow store purge` removes them at once.")
    store = Path(config.store.path)
    if not store.exists():
        click.echo(f"\nState store {store}: not created yet; nothing to scan.")
        return
    findings = scan(str(store))
    if not findings:
        click.echo(f"\nState store {store}: nothing that looks personal.")
        return
    click.echo(f"\nState store {store}: {len(findings)} value(s) look personal:")
    for finding in findings[:200]:
        click.echo(f"  {finding}")
    if len(findings) > 200:
        click.echo(f"  ... and {len(findings) - 200} more")
    raise SystemExit(1)


@click.group("store")
def store_group() -> None:
    """The state store: retention."""


@store_group.command("purge")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML configuration file.")
@click.option("--route", default=None, help="Route template whose data goes, e.g. /api/mood/{id}.")
@click.option("--all", "everything", is_flag=True, help="Every route's data goes.")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
def purge(config_path: str, route: str | None, everything: bool, reason: str) -> None:
    """Delete every mismatch signature, hourly count, sample and finding of one route or
    of all routes, and record it in the audit log."""
    from shadow.cli import _load
    from shadow.privacy.purge import purge as purge_store
    from shadow.store import Store

    if (route is None) == (not everything):
        raise click.UsageError("give exactly one of --route ROUTE or --all")
    if not reason.strip():
        raise click.UsageError("--reason must say why")
    config = _load(config_path)
    if not Path(config.store.path).exists():
        click.echo(f"{config.store.path}: no state store", err=True)
        raise SystemExit(2)

    async def run() -> dict[str, int]:
        store = await Store.open(config.store.path)
        try:
            return await purge_store(store, route=route, reason=reason,
                                     who=f"cli:{getpass.getuser()}")
        finally:
            await store.close()

    deleted = asyncio.run(run())
    scope = f"route {route}" if route is not None else "all routes"
    click.echo(f"purged {scope}: {deleted['signatures']} signatures, {deleted['samples']} "
               f"samples, {deleted['hourly_counts']} hourly counts, {deleted['findings']} "
               "findings (audited)")


COMMANDS = (privacy_check, store_group)
