"""One account of coverage: `rows install` and `rows status` print the same groups and
their exit codes say whether every table the config asks for is compared; secrets in the
config come from the environment and never show in an error."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest
from click.testing import CliRunner

from shadow.cli import main
from shadow.config import ConfigError, parse_config
from shadow.rows.capture import CaptureStatus
from shadow.rows.coverage import coverage
from shadow.rows.model import Column, RowRules, TableInfo
from shadow.compare.bridge import ValueKind


def info(name, key=("id",), verifiable=True, reason=""):
    return TableInfo(name, key, (Column("id", "INTEGER", ValueKind.ANY),), verifiable, reason)


def test_each_table_is_in_exactly_one_group():
    legacy = {t.name: t for t in (info("items"), info("pet"), info("log_lines", ("rowid",)),
                                  info("Moved"), info("secret"))}
    candidate = {t.name: t for t in (info("items"), info("log_lines", (), False, "no primary key"),
                                     info("moved"), info("secret"))}
    statuses = {"legacy": CaptureStatus(True, captured=("items", "pet", "log_lines", "Moved")),
                "candidate": CaptureStatus(True, captured=("items",))}
    found = coverage(statuses, {"legacy": legacy, "candidate": candidate},
                     RowRules.build(exclude=["secret"]))
    assert dict(found.groups) == {"both": ("items",), "one_side": ("pet",),
                                  "keyless": ("log_lines",), "pending": ("Moved",),
                                  "excluded": ("secret",)}
    assert not found.covered
    text = "\n".join(found.lines())
    assert "pet (only in legacy)" in text and "candidate: no primary key" in text
    assert "legacy: keyed by rowid" in text and "3 table(s)" in text


async def test_install_and_status_agree_and_exit_codes_follow_coverage(pg_dsn, tmp_path,
                                                                         monkeypatch):
    db = tmp_path / "legacy.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);"
                           "CREATE TABLE pet (id INTEGER PRIMARY KEY);"
                           "CREATE TABLE log_lines (msg TEXT);")
    pg = await asyncpg.connect(pg_dsn)
    try:
        await pg.execute("CREATE TABLE items (id serial PRIMARY KEY, name text);"
                         "CREATE TABLE log_lines (msg text);")
    finally:
        await pg.close()
    monkeypatch.setenv("SHADOW_TEST_CANDIDATE_DSN", pg_dsn)
    config = tmp_path / "shadow.toml"

    def write(extra: str = "") -> None:
        config.write_text(
            f'[backends.legacy]\nurl = "http://127.0.0.1:5101"\ndatabase = "sqlite:///{db}"\n'
            '[backends.candidate]\nurl = "http://127.0.0.1:5102"\n'
            'database = "${SHADOW_TEST_CANDIDATE_DSN}"\n' + extra)

    async def shadow(*args):
        return await asyncio.to_thread(CliRunner().invoke, main, [*args, "-c", str(config)])

    def coverage_lines(output: str) -> list[str]:
        return output[output.index("coverage:"):].splitlines()

    write()
    installed = await shadow("rows", "install")
    status = await shadow("rows", "status")
    assert installed.exit_code == 0 and status.exit_code == 1, installed.output
    assert (await shadow("rows", "install", "--strict")).exit_code == 1
    assert coverage_lines(installed.output) == coverage_lines(status.output)
    assert "one side only: pet (only in legacy)" in status.output
    assert "keyless, not compared: log_lines" in status.output
    assert "compared (both sides): items" in status.output

    write('[rows]\nexclude = ["pet", "log_lines"]\n')
    installed = await shadow("rows", "install", "--strict")
    status = await shadow("rows", "status")
    assert installed.exit_code == 0 and status.exit_code == 0, status.output
    assert coverage_lines(installed.output) == coverage_lines(status.output)
    assert "every table the config asks for is compared" in status.output
    assert (await shadow("rows", "uninstall")).exit_code == 0


def test_secrets_come_from_the_environment_and_never_show(monkeypatch):
    monkeypatch.setenv("SHADOW_TEST_PASSWORD", "hunter2")
    document = {"backends": {
        "legacy": {"url": "http://127.0.0.1:1", "database": "sqlite:////srv/app.db"},
        "candidate": {"url": "http://127.0.0.1:2",
                      "database": "postgresql://app:${SHADOW_TEST_PASSWORD}@db/app"}}}
    config = parse_config(document)
    assert config.backends["candidate"].database == "postgresql://app:hunter2@db/app"
    document["backends"]["legacy"]["database"] = "postgresql://app:${SHADOW_NOT_SET_X}@db/a"
    document["backends"]["legacy"]["url"] = "ftp://app:${SHADOW_TEST_PASSWORD}@host/"
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    message = str(raised.value)
    assert "backends.legacy.database: environment variable(s) not set: SHADOW_NOT_SET_X" in message
    assert "backends.legacy.url: not an http(s) URL: 'ftp://app:***@host/'" in message
    assert "hunter2" not in message
