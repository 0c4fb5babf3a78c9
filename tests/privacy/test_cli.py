"""`shadow privacy-check` and `shadow store purge` on a real state store."""

from __future__ import annotations

import asyncio
import sqlite3

import orjson
from click.testing import CliRunner

from shadow.cli import main
from shadow.store import Store


def write_config(tmp_path, keep: str = '["header:content-type", "users.role"]'):
    path = tmp_path / "shadow.toml"
    path.write_text('[backends.legacy]\nurl = "http://127.0.0.1:1"\n'
                    '[backends.candidate]\nurl = "http://127.0.0.1:2"\n'
                    f'[store]\npath = "{tmp_path / "state.db"}"\n'
                    f'[privacy]\nkeep = {keep}\n')
    return str(path)


def fill(tmp_path, samples: dict[str, dict]) -> None:
    """Samples recorded through the store as the verifier records them (route -> sample)."""
    async def run() -> None:
        store = await Store.open(str(tmp_path / "state.db"))
        for route, sample in samples.items():
            store.record(signatures=[(f"GET {route} body $.a", "GET", route, "body", "$.a")],
                         exchange_id="x", method="GET", route=route, sample=sample)
        await store.close()
    asyncio.run(run())


CLEAN = {"differences": [{"kind": "body", "path": "$.a", "primary": 1,
                          "shadow": "«str 3 number #0123456789ab»", "detail": "changed"}]}
LEAKY = {"differences": [{"kind": "body", "path": "$.a", "primary": "jane@example.com",
                          "shadow": "+44 7700 900123", "detail": "changed"}],
         "body": {"note": "I have been feeling low and anxious most days"}}


def test_privacy_check_says_what_is_stored_and_passes_a_clean_store(tmp_path):
    config = write_config(tmp_path)
    result = CliRunner().invoke(main, ["privacy-check", "-c", config])
    assert result.exit_code == 0, result.output
    assert "not created yet" in result.output
    fill(tmp_path, {"/api/a": CLEAN})
    result = CliRunner().invoke(main, ["privacy-check", "-c", config])
    assert result.exit_code == 0, result.output
    assert "Strings never" in result.output and "users.role" in result.output
    assert "row column value of users.role" in result.output
    assert "nothing that looks personal" in result.output


def test_privacy_check_fails_on_what_looks_personal_without_printing_it(tmp_path):
    config = write_config(tmp_path)
    fill(tmp_path, {"/api/a": CLEAN, "/api/b": LEAKY})
    result = CliRunner().invoke(main, ["privacy-check", "-c", config])
    assert result.exit_code == 1
    for what in ("e-mail", "phone number", "free text"):
        assert what in result.output
    assert "jane" not in result.output and "7700" not in result.output
    assert "anxious" not in result.output


def test_purge_removes_a_route_or_everything_and_is_audited(tmp_path):
    config = write_config(tmp_path)
    fill(tmp_path, {"/api/a": CLEAN, "/api/b": LEAKY})
    db = sqlite3.connect(tmp_path / "state.db")
    with db:
        for fid, route in ((1, "/api/a"), (2, "/api/b")):
            db.execute("INSERT INTO findings (id, key, method, route, kind, what, count, "
                       "first_seen, last_seen) VALUES (?, ?, 'GET', ?, 'value', '$.a', 1, 0, 0)",
                       (fid, f"GET {route} value $.a", route))
            db.execute("INSERT INTO finding_signatures VALUES (?, ?, 0, 1)",
                       (fid, f"GET {route} body $.a"))
            db.execute("INSERT INTO finding_minutes VALUES (?, 1, 1)", (fid,))
        db.execute("INSERT INTO finding_links VALUES (1, 2, 'evidence', 1, 0, 0)")
    db.close()
    runner = CliRunner()
    assert runner.invoke(main, ["store", "purge", "-c", config, "--reason", "x"]).exit_code == 2
    assert runner.invoke(main, ["store", "purge", "-c", config, "--all", "--route", "/api/a",
                                "--reason", "x"]).exit_code == 2
    result = runner.invoke(main, ["store", "purge", "-c", config, "--route", "/api/b",
                                  "--reason", "subject access request 42"])
    assert result.exit_code == 0 and "1 signatures, 1 samples" in result.output
    assert "1 findings" in result.output
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT route FROM findings").fetchall() == [("/api/a",)]
    assert db.execute("SELECT finding_id FROM finding_signatures").fetchall() == [(1,)]
    assert db.execute("SELECT count(*) FROM finding_links").fetchone() == (0,)
    db.close()
    assert runner.invoke(main, ["privacy-check", "-c", config]).exit_code == 0
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*") if p.suffix != ".key")
    assert b"jane@example.com" not in raw and b"anxious" not in raw
    result = runner.invoke(main, ["store", "purge", "-c", config, "--all", "--reason", "reset"])
    assert result.exit_code == 0
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT count(*) FROM samples").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM signatures").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM findings").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM finding_minutes").fetchone() == (0,)
    audit = db.execute("SELECT action, reason, who, gate FROM audit ORDER BY id").fetchall()
    db.close()
    assert [(a, r) for a, r, _, _ in audit] == [("store_purge", "subject access request 42"),
                                                ("store_purge", "reset")]
    assert audit[0][2].startswith("cli:") and orjson.loads(audit[0][3])["route"] == "/api/b"


def test_privacy_check_scans_findings_noise_and_the_audit_log_too(tmp_path):
    config = write_config(tmp_path)
    fill(tmp_path, {"/api/a": CLEAN})
    db = sqlite3.connect(tmp_path / "state.db")
    with db:
        db.execute("INSERT INTO findings (key, method, route, kind, what, count, first_seen, "
                   "last_seen) VALUES (?, 'GET', '/api/a', 'value', ?, 1, 0, 0)",
                   ("GET /api/a value $['jane@example.com']", "$['jane@example.com']"))
        db.execute("INSERT INTO meta (key, value) VALUES ('noise', ?)", (orjson.dumps(
            {"GET /api/a": {"pairs": 5, "places": [["$.sessions['ana@example.com']", "body",
                                                     5, "learnt"]]}}).decode(),))
        db.execute("INSERT INTO audit (at, action, forced, reason, who, gate) "
                   "VALUES (0, 'finding_state', 0, 'call +44 7700 900123', 'admin', '{}')")
    db.close()
    result = CliRunner().invoke(main, ["privacy-check", "-c", config])
    assert result.exit_code == 1, result.output
    for where in ("findings #1.key", "findings #1.what", "meta noise", "audit #1.reason"):
        assert where in result.output, where
    assert "jane" not in result.output and "ana@" not in result.output
    assert "7700" not in result.output
