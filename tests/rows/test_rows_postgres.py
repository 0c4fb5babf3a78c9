"""PostgresCapture with triggers against a real PostgreSQL database (a fresh one per test);
logical decoding has its own tests (test_rows_postgres_decoding.py)."""

from decimal import Decimal

import asyncpg
import pytest

from shadow.rows.capture import CaptureError
from shadow.rows.model import RowRules
from shadow.rows.postgres import PostgresCapture

pytestmark = pytest.mark.postgres

SCHEMA = '''
CREATE TABLE entries (id serial PRIMARY KEY, note text CHECK (note <> 'bad'),
                      done boolean, at timestamptz, score numeric(10, 2), meta jsonb,
                      raw bytea);
CREATE TABLE tags (entry_id integer REFERENCES entries(id), tag text, weight real,
                   PRIMARY KEY (entry_id, tag));
CREATE TABLE "Odd ""Name""" (k text PRIMARY KEY, v integer);
CREATE TABLE audit (msg text);
CREATE INDEX entries_at ON entries(at);
CREATE VIEW open_entries AS SELECT * FROM entries WHERE NOT done;
CREATE FUNCTION app_touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER app_touch BEFORE UPDATE ON entries FOR EACH ROW EXECUTE FUNCTION app_touch();
COMMENT ON TABLE entries IS 'the app''s own comment';
INSERT INTO entries (note, done, at, score, meta, raw)
VALUES ('first', false, '2026-02-04 15:47:20+00', 1.50, '{"b": 1, "a": [1]}', '\\x00ff');
INSERT INTO tags VALUES (1, 'x', 0.5);
INSERT INTO audit VALUES ('hello');
'''

CATALOGUE = [
    """SELECT table_name, column_name, data_type, column_default, is_nullable
       FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
    """SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' ORDER BY 1""",
    "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2",
    """SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
       JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1""",
    "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
    "SELECT objoid, classoid, objsubid, description FROM pg_description ORDER BY 1, 2, 3",
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint ORDER BY 1, 2",
]


@pytest.fixture
async def app(pg_dsn):
    """The application's own connection."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(SCHEMA)
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def capture(app, pg_dsn):
    async with PostgresCapture(pg_dsn, method="triggers") as cap:
        yield cap


async def snapshot(conn):
    """The catalogue (tables, columns, triggers, functions, sequences, comments,
    constraints) and every row of every table."""
    found = [[tuple(r) for r in await conn.fetch(sql)] for sql in CATALOGUE]
    for (name,) in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):
        quoted = '"' + name.replace('"', '""') + '"'
        found.append(sorted(map(repr, await conn.fetch(f"SELECT * FROM {quoted}"))))
    return found


async def test_install_then_uninstall_leaves_the_catalogue_exactly_as_before(app, capture):
    before = await snapshot(app)
    status = await capture.install()
    assert status.healthy
    assert set(status.captured) == {"entries", "tags", 'Odd "Name"'}
    assert dict(status.unverifiable) == {"audit": "no primary key"}
    await app.execute("UPDATE entries SET note = 'changed'")
    await app.execute("UPDATE entries SET note = 'first'")
    await capture.drain()
    await capture.uninstall()
    assert await snapshot(app) == before
    assert not (await capture.status()).installed


async def test_drain_returns_changes_in_write_order_and_empties_the_log(app, capture):
    await capture.install()
    await app.execute("INSERT INTO entries (id, note) VALUES (2, 'b')")
    await app.execute("UPDATE tags SET weight = 2 WHERE entry_id = 1")
    await app.execute("DELETE FROM entries WHERE id = 2")
    await app.execute('''INSERT INTO "Odd ""Name""" VALUES ('k''1', 3)''')
    await app.execute("INSERT INTO audit VALUES ('not captured')")
    changes = await capture.drain()
    assert [(c.table, c.op, c.key) for c in changes] == [
        ("entries", "insert", (2,)), ("tags", "update", (1, "x")),
        ("entries", "delete", (2,)), ('Odd "Name"', "insert", ("k'1",))]
    assert changes[1].before["weight"] == Decimal("0.5") and changes[1].after["weight"] == 2
    assert changes[3].after == {"k": "k'1", "v": 3}
    assert await capture.drain() == []
    assert (await capture.status()).pending == 0


async def test_row_images_in_column_order_with_postgres_values(app, capture):
    await capture.install()
    await app.execute("UPDATE entries SET score = 2.25")
    [change] = await capture.drain()
    assert list(change.before) == ["id", "note", "done", "at", "score", "meta", "raw"]
    assert change.before == {"id": 1, "note": "first", "done": False,
                             "at": "2026-02-04T15:47:20+00:00", "score": Decimal("1.50"),
                             "meta": {"a": [1], "b": 1}, "raw": b"\x00\xff"}
    assert change.after["score"] == Decimal("2.25")


async def test_rolled_back_transaction_leaves_no_change(app, capture):
    await capture.install()
    transaction = app.transaction()
    await transaction.start()
    await app.execute("INSERT INTO entries (note) VALUES ('never')")
    await app.execute("DELETE FROM tags")
    await transaction.rollback()
    assert await capture.drain() == []


async def test_composite_key_and_update_of_a_key(app, capture):
    tables = await capture.introspect()
    assert tables["tags"].key == ("entry_id", "tag")
    assert tables["tags"].references == {"entry_id": "entries"}
    await capture.install()
    await app.execute("INSERT INTO tags VALUES (1, 'y', 1)")
    await app.execute("UPDATE tags SET tag = 'z' WHERE tag = 'x'")
    changes = await capture.drain()
    assert [(c.op, c.key) for c in changes] == [
        ("insert", (1, "y")), ("delete", (1, "x")), ("insert", (1, "z"))]


async def test_tables_created_or_altered_after_install_are_reported(app, capture):
    await capture.install()
    await app.execute("CREATE TABLE later (id int PRIMARY KEY)")
    await app.execute("ALTER TABLE tags ADD COLUMN colour text")
    status = await capture.status()
    assert status.uncaptured == ("later",)
    assert status.stale == ("tags",)
    assert not status.healthy and status.problems()
    status = await capture.install()
    assert status.healthy and {"later", "tags"} <= set(status.captured)


async def test_rules_exclude_tables_and_install_rejects_unknown_names(app, pg_dsn):
    async with PostgresCapture(pg_dsn, method="triggers", rules=RowRules.build(exclude=["tags"])) as cap:
        status = await cap.install()
        assert status.excluded == ("tags",) and "tags" not in status.captured
        with pytest.raises(CaptureError, match="no_such"):
            await cap.install(["entries", "no_such"])
        assert (await cap.install(["entries"])).captured == ("entries",)
        await app.execute("INSERT INTO tags VALUES (1, 'q', 1)")
        assert await cap.drain() == []
        await cap.uninstall()


async def test_other_schema(app, pg_dsn):
    await app.execute('CREATE SCHEMA "App"; CREATE TABLE "App".items (id int PRIMARY KEY)')
    async with PostgresCapture(pg_dsn, schema="App", method="triggers") as cap:
        assert (await cap.install()).captured == ("items",)
        await app.execute('INSERT INTO "App".items VALUES (4)')
        await app.execute("INSERT INTO entries (note) VALUES ('public, not captured')")
        assert [c.key for c in await cap.drain()] == [(4,)]
        await cap.uninstall()
    assert await app.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_shadow%'") == 0


async def test_unreachable_server_is_a_capture_error():
    cap = PostgresCapture("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)
    with pytest.raises(CaptureError):
        await cap.open()
    with pytest.raises(CaptureError):
        await cap.drain()


async def test_odd_names_in_trigger_arguments(app, capture):
    long = "t" * 63
    await app.execute(f'''
        CREATE TABLE "we$shadow$ird" ("it's" text PRIMARY KEY, "a,b" int);
        CREATE TABLE "{long}" (id int PRIMARY KEY);''')
    status = await capture.install()
    assert status.healthy and {"we$shadow$ird", long} <= set(status.captured)
    await app.execute('''INSERT INTO "we$shadow$ird" VALUES ('k$shadow$', 1)''')
    await app.execute(f'INSERT INTO "{long}" VALUES (1)')
    changes = await capture.drain()
    assert [(c.table, c.key, c.after) for c in changes] == [
        ("we$shadow$ird", ("k$shadow$",), {"it's": "k$shadow$", "a,b": 1}),
        (long, (1,), {"id": 1})]


async def test_partitioned_table_is_logged_under_its_own_name(app, capture):
    await app.execute('''
        CREATE TABLE sales (id int, region text, n int, PRIMARY KEY (id, region))
            PARTITION BY LIST (region);
        CREATE TABLE sales_eu PARTITION OF sales FOR VALUES IN ('eu');
        CREATE TABLE sales_us PARTITION OF sales FOR VALUES IN ('us');''')
    status = await capture.install()
    assert "sales" in status.captured and "sales_eu" not in status.captured
    await app.execute("INSERT INTO sales VALUES (1, 'eu', 1)")
    await app.execute("UPDATE sales SET region = 'us'")
    changes = await capture.drain()
    assert [(c.table, c.op, c.key) for c in changes] == [
        ("sales", "insert", (1, "eu")), ("sales", "delete", (1, "eu")),
        ("sales", "insert", (1, "us"))]


async def test_a_key_changes_only_when_jsonb_would_call_it_different(app, capture):
    await app.execute('''
        CREATE TABLE prices (code numeric PRIMARY KEY);
        CREATE TABLE docs (k jsonb PRIMARY KEY);
        INSERT INTO prices VALUES (1.0);
        INSERT INTO docs VALUES ('true');''')
    await capture.install()
    await app.execute("UPDATE prices SET code = 1.00")
    await app.execute("UPDATE docs SET k = '1'")
    changes = await capture.drain()
    assert [(c.table, c.op, c.key) for c in changes] == [
        ("prices", "update", (Decimal("1.00"),)),
        ("docs", "delete", (True,)), ("docs", "insert", (1,))]


async def test_renamed_key_column_does_not_fail_the_application_write(app, capture):
    await capture.install()
    await app.execute('ALTER TABLE "Odd ""Name""" RENAME COLUMN k TO key')
    await app.execute('''INSERT INTO "Odd ""Name""" VALUES ('a', 1)''')
    [change] = await capture.drain()
    assert change.after == {"key": "a", "v": 1}
    assert (await capture.status()).stale == ('Odd "Name"',)


async def test_install_over_a_log_of_the_earlier_layout_keeps_its_changes(app, capture):
    await app.execute('''
        CREATE TABLE _shadow_changes (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tbl text NOT NULL, op text NOT NULL, pk jsonb NOT NULL, before jsonb, after jsonb);
        INSERT INTO _shadow_changes (tbl, op, pk, after)
            VALUES ('tags', 'insert', '[1, "w"]', '{"entry_id": 1, "tag": "w", "weight": 1}');
        CREATE FUNCTION _shadow_capture() RETURNS trigger LANGUAGE plpgsql
            AS $$BEGIN RETURN NULL; END$$;
        CREATE TRIGGER _shadow_capture AFTER INSERT ON tags
            FOR EACH ROW EXECUTE FUNCTION _shadow_capture('tags', 'entry_id', 'tag');
        COMMENT ON TRIGGER _shadow_capture ON tags IS 'shadow capture: old';''')
    assert (await capture.status()).stale == ("tags",)
    assert (await capture.install()).healthy
    await app.execute("INSERT INTO tags VALUES (1, 'v', 2)")
    assert [(c.op, c.key) for c in await capture.drain()] == [
        ("insert", (1, "w")), ("insert", (1, "v"))]


async def test_drain_works_when_a_publication_covers_every_table(app, capture):
    await app.execute("CREATE PUBLICATION everything FOR ALL TABLES")
    try:
        await capture.install()
        await app.execute("DELETE FROM tags")
        assert [c.op for c in await capture.drain()] == ["delete"]
        await capture.uninstall()
    finally:
        await app.execute("DROP PUBLICATION everything")


async def test_a_json_value_jsonb_would_refuse_does_not_fail_the_write(app, capture):
    await app.execute("CREATE TABLE docs (id int PRIMARY KEY, body json)")
    await capture.install()
    await app.execute('''INSERT INTO docs VALUES (1, '{"a": "\\u0000", "n": 1e2}')''')
    [change] = await capture.drain()
    assert change.after == {"id": 1, "body": {"a": "\x00", "n": 100}}


async def test_each_change_carries_the_moment_the_database_made_it(app, capture):
    await capture.install()
    before = await app.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
    await app.execute("INSERT INTO entries (note) VALUES ('timed')")
    await app.execute("DELETE FROM entries WHERE note = 'timed'")
    after = await app.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
    changes = await capture.drain()
    assert [c.op for c in changes] == ["insert", "delete"]
    assert all(before <= c.at <= after for c in changes)
