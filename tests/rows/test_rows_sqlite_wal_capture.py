"""SQLite capture read from the write-ahead log, on real database files: the changes and
their images, nothing added to the app's schema, the app's migrations, writes made
while the proxy was down, and the log kept bounded while it is held."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from shadow.rows.sqlite_pages import varint
from shadow.rows.sqlite_records import affinity
from shadow.rows.sqlite_walcapture import SqliteWalCapture

SCHEMA = (
    "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT UNIQUE, "
    "score REAL, body BLOB)",
    "CREATE TABLE tags (owner INTEGER, name TEXT, colour TEXT, PRIMARY KEY (owner, name)) "
    "WITHOUT ROWID",
)


def make_db(tmp_path: Path, *, wal: bool = False) -> Path:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as db, db:
        if wal:
            db.execute("PRAGMA journal_mode = WAL")
        for sql in SCHEMA:
            db.execute(sql)
    return path


def write(path: Path, sql: str, *params) -> None:
    """One request of an app that opens a connection per request."""
    db = sqlite3.connect(path)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def rows_of(path: Path) -> dict[int, tuple]:
    with closing(sqlite3.connect(path)) as db:
        return {r[0]: r[1:] for r in db.execute("SELECT id, title, score, body FROM notes")}


async def installed(path: Path, **options) -> SqliteWalCapture:
    capture = SqliteWalCapture(path, **options)
    await capture.open()
    await capture.install()
    return capture


async def test_changes_carry_their_images_before_and_after(tmp_path):
    path = make_db(tmp_path)
    capture = await installed(path)
    try:
        write(path, "INSERT INTO notes (title, score) VALUES ('a', 1)")
        write(path, "INSERT INTO notes (title, score, body) VALUES ('b', 2.5, ?)", b"x" * 9000)
        write(path, "UPDATE notes SET score = 3 WHERE title = 'a'")
        write(path, "INSERT OR REPLACE INTO notes (title, score) VALUES ('a', 9)")
        write(path, "DELETE FROM notes WHERE title = 'b'")
        write(path, "INSERT INTO tags VALUES (1, 'red', 'r')")
        write(path, "UPDATE tags SET name = 'blue' WHERE owner = 1")
        changes = [(c.table, c.key, c.op, c.before, c.after) for c in await capture.drain()]
    finally:
        await capture.close()
    a1 = {"id": 1, "title": "a", "score": 1.0, "body": None}
    b2 = {"id": 2, "title": "b", "score": 2.5, "body": b"x" * 9000}
    a3 = {**a1, "score": 3.0}
    assert changes == [
        ("notes", (1,), "insert", None, a1),
        ("notes", (2,), "insert", None, b2),  # its body spills onto overflow pages
        ("notes", (1,), "update", a1, a3),    # a whole REAL stays a real
        # the row REPLACE deleted fires no trigger; the log shows it
        ("notes", (1,), "delete", a3, None),
        ("notes", (3,), "insert", None, {"id": 3, "title": "a", "score": 9.0, "body": None}),
        ("notes", (2,), "delete", b2, None),
        ("tags", (1, "red"), "insert", None, {"owner": 1, "name": "red", "colour": "r"}),
        # a WITHOUT ROWID key that changed: a delete of the old key, an insert of the new
        ("tags", (1, "red"), "delete", {"owner": 1, "name": "red", "colour": "r"}, None),
        ("tags", (1, "blue"), "insert", None, {"owner": 1, "name": "blue", "colour": "r"}),
    ]


async def test_install_adds_nothing_a_connection_parses(tmp_path):
    path = make_db(tmp_path)
    with closing(sqlite3.connect(path)) as db:
        schema = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    capture = await installed(path)
    try:
        write(path, "INSERT INTO notes (title) VALUES ('x')")
        assert len(await capture.drain()) == 1
        status = await capture.status()
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT type, name, sql FROM sqlite_master "
                              "ORDER BY name").fetchall() == schema
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert status.installed and status.healthy and status.method == "wal"
        assert set(status.captured) == {"notes", "tags"}
        assert "WAL mode while the proxy reads it, journal_mode=delete otherwise" \
            in capture.reason
        await capture.uninstall()
        assert not (await capture.status()).installed
    finally:
        await capture.close()
    with closing(sqlite3.connect(path)) as db:  # nobody held it open: the mode it had is back
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


async def test_every_write_of_concurrent_apps_is_seen_and_the_log_stays_bounded(tmp_path):
    path = make_db(tmp_path)
    capture = await installed(path, rotate_frames=64)
    model = rows_of(path)
    rng = random.Random(7)
    pooled = sqlite3.connect(path, check_same_thread=False, timeout=10)
    biggest = 0

    lent = threading.Lock()  # a pool of one: its connection serves one request at a time
    failures: list[BaseException] = []

    def app(seed: int) -> None:
        try:
            requests(seed)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    def requests(seed: int) -> None:
        """A connection per request, or the pooled connection, writing at random."""
        mine = random.Random(seed)
        for _ in range(25):
            own = mine.random() >= 0.3
            db = sqlite3.connect(path, timeout=10) if own else pooled
            with contextlib.nullcontext() if own else lent, db:
                roll, name = mine.random(), f"n{mine.randrange(10**9)}"
                if roll < 0.6:
                    db.execute("INSERT INTO notes (title, score, body) VALUES (?, ?, ?)",
                               (name, mine.random(), os.urandom(mine.choice((0, 50, 6000)))))
                elif roll < 0.8:
                    db.execute("UPDATE notes SET score = ? WHERE id = "
                               "(SELECT id FROM notes ORDER BY random() LIMIT 1)", (mine.random(),))
                else:
                    db.execute("DELETE FROM notes WHERE id = "
                               "(SELECT id FROM notes ORDER BY random() LIMIT 1)")
            if own:
                db.close()

    try:
        for _ in range(6):
            threads = [threading.Thread(target=app, args=(rng.random(),)) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert failures == []
            biggest = max(biggest, os.path.getsize(f"{path}-wal"))
            for change in await capture.drain():
                if change.table != "notes":
                    continue
                if change.op == "delete":
                    del model[change.key[0]]
                else:
                    after = change.after
                    model[change.key[0]] = (after["title"], after["score"], after["body"])
            assert model == rows_of(path)
        assert capture.lost == 0 and capture.rotations > 0
    finally:
        pooled.close()
        await capture.close()
    page = 4096 + 24
    assert biggest < (64 + 6 * 3 * 25 * 4) * page  # restarted: never all the writes at once


async def test_each_commit_lies_between_the_log_positions_read_around_it(tmp_path):
    # the proxy reads the position before it sends a request and after the reply: the
    # commit the app made in between lies after the first and at or before the second,
    # across the log's restarts too (it rotates every 16 frames here)
    path = make_db(tmp_path)
    capture = await installed(path, rotate_frames=16)
    around: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {}
    marks: dict[int, tuple[str, int]] = {}
    try:
        for n in range(1, 121):
            before = capture.positions()[str(path)]
            write(path, "INSERT INTO notes (title, score) VALUES (?, ?)", f"n{n}", n)
            around[n] = (before, capture.positions()[str(path)])
            if n % 10 == 0:
                marks.update((c.key[0], c.mark) for c in await capture.drain()
                             if c.table == "notes")
        assert capture.rotations > 2 and capture.lost == 0
    finally:
        await capture.close()
    assert sorted(marks) == list(range(1, 121))
    for n, ((_, before), (_, after)) in around.items():
        log, position = marks[n]
        assert log == str(path) and before < position <= after, n
    assert [marks[n][1] for n in sorted(marks)] == sorted(m[1] for m in marks.values())


@pytest.mark.parametrize("migration, table, columns", [
    ("ALTER TABLE notes ADD COLUMN mood TEXT DEFAULT 'ok'", "notes",
     ["id", "title", "score", "body", "mood"]),
    ("ALTER TABLE notes RENAME COLUMN score TO points", "notes", ["id", "title", "points", "body"]),
    ("ALTER TABLE notes DROP COLUMN body", "notes", ["id", "title", "score"]),
    ("ALTER TABLE notes RENAME TO memos", "memos", ["id", "title", "score", "body"]),
    ("CREATE TABLE moods (id INTEGER PRIMARY KEY, title TEXT)", "moods", ["id", "title"]),
])
async def test_the_apps_migrations_run_and_capture_follows_them(tmp_path, migration, table,
                                                                columns):
    path = make_db(tmp_path)
    capture = await installed(path)
    try:
        write(path, "INSERT INTO notes (title) VALUES ('before')")
        write(path, migration)  # exactly as without capture: nothing of it is in the schema
        write(path, f"INSERT INTO {table} (title) VALUES ('after')")
        changes = await capture.drain()
        assert capture.schema_changes == 1 and capture.lost == 0
        after = [c for c in changes if c.after and c.after["title"] == "after"]
        assert [(c.table, c.op, list(c.after)) for c in after] == [(table, "insert", columns)]
        if "ADD COLUMN" in migration:
            assert after[0].after["mood"] == "ok"
        assert table in (await capture.status()).captured
    finally:
        await capture.close()


async def test_a_dropped_table_is_no_longer_captured(tmp_path):
    path = make_db(tmp_path)
    capture = await installed(path)
    try:
        write(path, "INSERT INTO tags VALUES (1, 'a', 'b')")
        write(path, "DROP TABLE tags")
        write(path, "INSERT INTO notes (title) VALUES ('still')")
        changes = [(c.table, c.op) for c in await capture.drain()]
        assert changes == [("tags", "insert"), ("notes", "insert")]
        assert capture.last_schema_change["dropped"] == ["tags"]
        assert (await capture.status()).captured == ("notes",)
    finally:
        await capture.close()


@pytest.mark.parametrize("wal", [True, False], ids=["was-wal", "was-delete"])
async def test_writes_made_while_down_are_read_while_the_log_holds_them(tmp_path, wal):
    path = make_db(tmp_path, wal=wal)
    app = sqlite3.connect(path)
    try:
        capture = await installed(path)
        # the app keeps a connection it has used in WAL mode: SQLite keeps the log while
        # it is open, and refuses to leave WAL mode
        app.execute("SELECT count(*) FROM notes").fetchall()
        write(path, "INSERT INTO notes (title) VALUES ('seen')")
        assert len(await capture.drain()) == 1
        await capture.close()  # the app holds the file: it stays in WAL mode
        assert journal_mode(path) == "wal"
        write(path, "INSERT INTO notes (title) VALUES ('while down')")
        again = SqliteWalCapture(path)
        await again.open()
        try:
            assert [c.after["title"] for c in await again.drain()] == ["while down"]
            assert again.lost == 0
        finally:
            await again.close()
    finally:
        app.close()


def journal_mode(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


async def test_the_old_journal_mode_is_given_back_while_no_proxy_reads_the_log(tmp_path):
    # an app that opens a connection per request would pay, in WAL mode with nobody
    # holding the file, a checkpoint and the log's removal at every close
    path = make_db(tmp_path)
    capture = await installed(path)
    assert journal_mode(path) == "wal"
    write(path, "INSERT INTO notes (title) VALUES ('seen')")
    assert len(await capture.drain()) == 1
    await capture.close()
    assert journal_mode(path) == "delete" and not Path(f"{path}-wal").exists()
    write(path, "INSERT INTO notes (title) VALUES ('while down')")   # not in any log
    again = SqliteWalCapture(path)
    await again.open()
    try:
        status = await again.status()
        assert status.installed and status.faults == ()
        assert "in journal_mode=delete until a running proxy switches it to WAL" in status.detail
        assert await again.drain() == [] and again.lost == 1         # said, not silent
        assert journal_mode(path) == "wal"
        write(path, "INSERT INTO notes (title) VALUES ('after')")
        assert [c.after["title"] for c in await again.drain()] == ["after"]
        assert again.lost == 1
    finally:
        await again.close()
    assert journal_mode(path) == "delete"
    quiet = SqliteWalCapture(path)          # down with no write: nothing is said lost
    await quiet.open()
    try:
        assert await quiet.drain() == [] and quiet.lost == 0
    finally:
        await quiet.close()


async def test_writes_made_while_down_and_copied_back_are_said_lost(tmp_path):
    path = make_db(tmp_path, wal=True)
    capture = await installed(path)
    await capture.close()
    write(path, "INSERT INTO notes (title) VALUES ('while down')")  # the last connection
    again = SqliteWalCapture(path)                                   # closes: checkpointed
    await again.open()
    try:
        assert await again.drain() == [] and again.lost == 1
    finally:
        await again.close()


def test_varints_and_affinities():
    assert varint(bytes([0x7F]), 0) == (127, 1)
    assert varint(bytes([0x81, 0x00]), 0) == (128, 2)
    assert varint(bytes([0xFF] * 9), 0) == (-1, 9)
    assert [affinity(t) for t in ("INTEGER", "VARCHAR(9)", "", "DOUBLE", "DATETIME", "FLOATING POINT")] \
        == ["INTEGER", "TEXT", "BLOB", "REAL", "NUMERIC", "INTEGER"]


async def test_each_method_installed_over_the_other_removes_what_the_other_left(tmp_path):
    from shadow.rows.sqlite import SqliteCapture

    path = make_db(tmp_path)
    await (await installed(path)).close()
    assert Path(f"{path}-shadow.json").exists()
    triggers = SqliteCapture(path)
    await triggers.open()
    try:
        status = await triggers.install()
        assert status.healthy and not Path(f"{path}-shadow.json").exists()
    finally:
        await triggers.close()
    log = await installed(path)
    try:
        status = await log.status()
        assert status.healthy and status.method == "wal"
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                              "OR name = '_shadow_changes'").fetchone()[0] == 0
    finally:
        await log.close()
