"""Which table a name refers to, and references read from names where none is declared
(shadow.rows.naming). Pure: no I/O."""

import sqlite3

from shadow.compare.bridge import kind_of_sqlite
from shadow.rows.diff import diff_rows
from shadow.rows.keymap import KeyMap
from shadow.rows.model import RowRules
from shadow.rows.naming import table_named, with_named_references
from shadow.rows.sqlite_schema import read_tables
from shadow.verdict import RowChange
from tests.rows.test_rows_diff import table

TABLES = {"users", "moods", "journal_entries", "stories", "mood_logs_archive"}


def test_a_name_leads_to_the_one_table_it_can_mean():
    assert table_named("user_id", TABLES) == "users"
    assert table_named("moods", TABLES) == "moods"
    assert table_named("entry_id", TABLES) == "journal_entries"
    assert table_named("story_id", TABLES) == "stories"
    assert table_named("session_id", TABLES) is None
    assert table_named("id", TABLES) is None
    assert table_named("log_id", {"mood_logs", "sleep_logs"}) is None  # two tables: none


def _schema():
    users = table("users", ("id",), kind_of_sqlite, id="INTEGER", username="TEXT")
    entries = table("journal_entries", ("id",), kind_of_sqlite, id="INTEGER",
                    user_id="INTEGER", title="TEXT")
    reflections = table("reflections", ("id",), kind_of_sqlite, refs={"user_id": "users"},
                        id="INTEGER", user_id="INTEGER", entry_id="INTEGER",
                        request_id="TEXT", reply="TEXT")
    points = table("points", ("user_id",), kind_of_sqlite, user_id="INTEGER", points="INTEGER")
    return {t.name: t for t in (users, entries, reflections, points)}


def test_undeclared_id_columns_refer_to_the_table_their_name_leads_to():
    infos = with_named_references(_schema())
    assert dict(infos["reflections"].references) == {"user_id": "users",
                                                     "entry_id": "journal_entries"}
    assert dict(infos["journal_entries"].references) == {"user_id": "users"}
    assert dict(infos["points"].references) == {}  # a key column keeps what was declared
    assert dict(infos["users"].references) == {}


def test_a_sqlite_catalogue_reads_references_from_names(tmp_path):
    db = sqlite3.connect(tmp_path / "app.db")
    db.executescript(
        "CREATE TABLE journal_entries (id INTEGER PRIMARY KEY, title TEXT);"
        "CREATE TABLE reflections (id INTEGER PRIMARY KEY, entry_id INTEGER NOT NULL,"
        " reply TEXT)")
    infos, _ = read_tables(lambda sql, args: db.execute(sql, args).fetchall(), kind_of_sqlite)
    assert dict(infos["reflections"].references) == {"entry_id": "journal_entries"}


def test_an_undeclared_reference_is_followed_through_the_key_map_in_the_row_diff():
    """Two entries numbered in another order on each side, and a reflection of one: its
    `entry_id` differs in value and names the same row."""
    infos = with_named_references(_schema())
    keymap = KeyMap()
    keymap.learn("journal_entries", (22,), (23,))
    primary = [RowChange("reflections", (4,), "insert", None,
                         {"id": 4, "user_id": 9, "entry_id": 22, "request_id": "r",
                          "reply": "ok"})]
    shadow = [RowChange("reflections", (4,), "insert", None,
                        {"id": 4, "user_id": 9, "entry_id": 23, "request_id": "r",
                         "reply": "ok"})]
    result = diff_rows(primary, shadow, primary_tables=infos, shadow_tables=infos,
                       rules=RowRules(), keymap=keymap)
    assert not result.differences
    bare = diff_rows(primary, shadow, primary_tables=_schema(), shadow_tables=_schema(),
                     rules=RowRules(), keymap=keymap)
    assert [d.path for d in bare.differences] == ["reflections[4].entry_id"]
