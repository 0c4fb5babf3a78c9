"""The app's own migrations with SQLite capture installed, and what a running capture makes
of them; the log's cap; what capture adds to the schema every new connection parses."""

import sqlite3

import pytest

from shadow.rows import sqlite_schema
from shadow.rows.sqlite import SqliteCapture

SCHEMA = """
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, dropme TEXT, price REAL);
CREATE TABLE tags (item_id INTEGER, tag TEXT, PRIMARY KEY (item_id, tag));
INSERT INTO items VALUES (1, 'pen', 'x', 1.5);
INSERT INTO tags VALUES (1, 'blue');
"""

MIGRATIONS = {
    "add column": "ALTER TABLE items ADD COLUMN colour TEXT",
    "drop column": "ALTER TABLE items DROP COLUMN dropme",
    "rename column": "ALTER TABLE items RENAME COLUMN name TO title",
    "rename key column": "ALTER TABLE tags RENAME COLUMN tag TO label",
    "rename table": "ALTER TABLE items RENAME TO goods",
    "drop table": "DROP TABLE items",
    "create table": "CREATE TABLE later (id INTEGER PRIMARY KEY, note TEXT)",
}


def database(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA)
    return conn


def app_state(conn):
    """The app's schema and data, leaving out what capture added."""
    master = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                          "WHERE name NOT LIKE '\\_shadow\\_%' ESCAPE '\\' ORDER BY name")
    master = master.fetchall()
    tables = [row[1] for row in master if row[0] == "table"]
    return master, {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}


@pytest.mark.parametrize("migration", MIGRATIONS)
async def test_each_migration_succeeds_exactly_as_without_capture(tmp_path, migration):
    plain, captured = database(tmp_path / "plain.db"), database(tmp_path / "captured.db")
    try:
        async with SqliteCapture(tmp_path / "captured.db") as capture:
            assert (await capture.install()).healthy
        for conn in (plain, captured):
            conn.execute(MIGRATIONS[migration])
        assert app_state(captured) == app_state(plain)
    finally:
        plain.close()
        captured.close()


async def test_a_running_capture_follows_every_migration_and_keeps_every_column(tmp_path):
    app = database(tmp_path / "app.db")
    try:
        async with SqliteCapture(tmp_path / "app.db") as capture:
            await capture.install()
            assert await capture.drain() == []
            app.execute(MIGRATIONS["add column"])
            app.execute("UPDATE items SET colour = 'red' WHERE id = 1")
            [change] = await capture.drain()
            assert change.after["colour"] == "red" and capture.schema_changes == 1

            app.execute(MIGRATIONS["drop column"])
            app.execute(MIGRATIONS["rename column"])
            app.execute("INSERT INTO items (id, title, price, colour) VALUES (2, 'ink', 2, 'k')")
            [change] = await capture.drain()
            assert change.after == {"id": 2, "title": "ink", "price": 2.0, "colour": "k"}

            app.execute(MIGRATIONS["rename key column"])
            app.execute("UPDATE tags SET label = 'green'")
            changes = await capture.drain()
            assert [(c.op, c.key) for c in changes] == [("delete", (1, "blue")),
                                                        ("insert", (1, "green"))]
            assert changes[1].after == {"item_id": 1, "label": "green"}

            app.execute("INSERT INTO items (id, title) VALUES (3, 'cap')")
            app.execute(MIGRATIONS["rename table"])
            app.execute("UPDATE goods SET price = 9 WHERE id = 3")
            changes = await capture.drain()
            assert [(c.table, c.op, c.key) for c in changes] == [
                ("goods", "insert", (3,)), ("goods", "update", (3,))]
            app.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, again TEXT)")
            # A new table is captured from the first drain that sees it on.
            assert await capture.drain() == []
            app.execute("INSERT INTO items VALUES (1, 'new table, old name')")
            app.execute("INSERT INTO goods (id, title) VALUES (4, 'old table, new name')")
            changes = await capture.drain()
            assert [(c.table, c.key) for c in changes] == [("items", (1,)), ("goods", (4,))]

            app.execute(MIGRATIONS["create table"])
            assert await capture.drain() == []
            app.execute("INSERT INTO later VALUES (1, 'hi')")
            app.execute("DELETE FROM goods WHERE id = 4")
            app.execute("DROP TABLE goods")
            changes = await capture.drain()
            assert [(c.table, c.op) for c in changes] == [("later", "insert"), ("goods", "delete")]
            assert changes[0].after == {"id": 1, "note": "hi"}
            status = await capture.status()
            assert status.healthy and set(status.captured) == {"items", "later", "tags"}
            assert capture.schema_changes == 7
    finally:
        app.close()


async def test_the_log_is_capped_while_nobody_drains_and_the_gap_is_counted(tmp_path):
    app = database(tmp_path / "app.db")
    try:
        async with SqliteCapture(tmp_path / "app.db", cap=1024) as capture:
            await capture.install()
            app.execute("BEGIN")
            for i in range(5000):
                app.execute("INSERT INTO items (name) VALUES (?)", (str(i),))
            app.execute("COMMIT")
            pending = (await capture.status()).pending
            assert 1024 <= pending < 2048
            changes = await capture.drain()
            assert len(changes) == pending and capture.lost == 5000 - pending
            assert changes[-1].after["name"] == "4999"
            app.execute("INSERT INTO items (name) VALUES ('after')")
            assert len(await capture.drain()) == 1 and capture.lost == 5000 - pending
    finally:
        app.close()
    with pytest.raises(ValueError, match="at least 1024"):
        sqlite_schema.cap_sql(10)


#: What capture may add per captured table to the text every new connection parses (three
#: triggers of 100 to 115 characters each, the table's name three times in them), and once
#: per database. Each of the three objects per table costs a new connection about 2 us to
#: parse, and each value and column its body names a little more (see
#: shadow.rows.sqlite_schema and bench.sqlite_capture_breakdown).
PER_TABLE_BOUND = 360
ONCE_BOUND = 400


async def test_capture_adds_only_small_triggers_to_the_schema(tmp_path):
    conn = sqlite3.connect(tmp_path / "app.db")
    columns = ", ".join(f"c{i} {('TEXT', 'INTEGER', 'REAL', 'DATETIME')[i % 4]}" for i in range(12))
    for t in range(40):
        conn.execute(f"CREATE TABLE t{t} (id INTEGER PRIMARY KEY AUTOINCREMENT, {columns})")
    conn.commit()
    size = "SELECT count(*), sum(length(sql)) FROM sqlite_master"
    objects, text = conn.execute(size).fetchone()
    async with SqliteCapture(tmp_path / "app.db") as capture:
        await capture.install()
    objects_after, text_after = conn.execute(size).fetchone()
    conn.close()
    assert objects_after - objects == 40 * 3 + 2
    assert text_after - text <= 40 * PER_TABLE_BOUND + ONCE_BOUND
