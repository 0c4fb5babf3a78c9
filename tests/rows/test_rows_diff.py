"""diff_rows without I/O: net effect, pairing, key map, the dialect bridge on row values.

Values are written the way the captures deliver them: SQLite images hold ints, floats,
text and bytes; PostgreSQL images hold bool, Decimal, ISO timestamps, parsed JSON, bytes.
"""

from decimal import Decimal

import pytest

from shadow.compare.bridge import ValueKind, kind_of_postgres, kind_of_sqlite
from shadow.rows.diff import diff_rows
from shadow.rows.netchange import net_changes
from shadow.rows.keymap import KeyMap
from shadow.rows.model import Column, ColumnRule, RowRules, TableInfo
from shadow.verdict import Kind, RowChange


def table(name, key, kind_of, refs=None, **columns):
    cols = tuple(Column(c, t, kind_of(t)) for c, t in columns.items())
    return TableInfo(name, key, cols, references=refs or {})


LEGACY = {"entries": table("entries", ("id",), kind_of_sqlite, id="INTEGER", note="TEXT",
                           done="BOOLEAN", at="DATETIME", score="REAL", meta="JSON",
                           raw="BLOB")}
CANDIDATE = {"entries": table("entries", ("id",), kind_of_postgres, id="integer", note="text",
                              done="boolean", at="timestamp with time zone",
                              score="numeric", meta="jsonb", raw="bytea")}


def ins(tbl, key, **row):
    return RowChange(tbl, key, "insert", None, row)


def upd(tbl, key, before, after):
    return RowChange(tbl, key, "update", before, after)


def dele(tbl, key, **row):
    return RowChange(tbl, key, "delete", row, None)


def diff(primary, shadow, rules=None, keymap=None, p_tables=LEGACY, s_tables=CANDIDATE):
    return diff_rows(primary, shadow, primary_tables=p_tables, shadow_tables=s_tables,
                     rules=rules or RowRules(), keymap=keymap if keymap is not None else KeyMap())


def one_column(legacy_value, candidate_value, column, rules=None):
    return diff([ins("entries", (1,), id=1, **{column: legacy_value})],
                [ins("entries", (1,), id=1, **{column: candidate_value})], rules)


@pytest.mark.parametrize("column, legacy, candidate", [
    ("done", 1, True),
    ("done", 0, False),
    ("at", "2026-02-04 15:47:20", "2026-02-04T15:47:20+00:00"),
    ("meta", '{"b": 1, "a": [1, 2]}', {"a": [1, 2], "b": 1}),
])
def test_bridge_makes_dialect_renderings_equal_and_counts_them(column, legacy, candidate):
    result = one_column(legacy, candidate, column)
    assert result.differences == ()
    assert result.normalised == 1


@pytest.mark.parametrize("column, legacy, candidate", [
    ("done", 0, True),
    ("at", "2026-02-04 15:47:20", "2026-02-04T16:47:20+00:00"),
    ("meta", '{"a": [2, 1]}', {"a": [1, 2]}),
    ("raw", b"\x01\x02", b"\x01\x03"),
    ("score", 1.5, Decimal("1.6")),
])
def test_bridge_keeps_real_differences(column, legacy, candidate):
    result = one_column(legacy, candidate, column)
    [difference] = result.differences
    assert difference.kind == Kind.ROW_CHANGED
    assert difference.path == f"entries[1].{column}"
    assert (difference.primary, difference.shadow) == (legacy, candidate)


def test_blob_and_bytea_with_the_same_bytes_are_equal():
    assert one_column(b"\x00\xff", b"\x00\xff", "raw").differences == ()


def test_real_against_numeric_within_tolerance():
    value = 0.1 + 0.2
    assert one_column(value, Decimal("0.30"), "score").differences != ()
    rules = RowRules.build(columns={"entries.score": ColumnRule(tolerance=0.001)})
    assert one_column(value, Decimal("0.30"), "score", rules).differences == ()
    assert one_column(15.0, Decimal("15"), "score").differences == ()


def test_empty_text_against_null_is_a_difference_unless_configured():
    [difference] = one_column("", None, "note").differences
    assert (difference.primary, difference.shadow) == ("", None)
    rules = RowRules.build(columns={"entries.note": ColumnRule(empty_is_null=True)})
    result = one_column("", None, "note", rules)
    assert result.differences == ()
    assert result.normalised == 1


def test_kind_override_reads_json_from_a_text_column():
    p_tables = {"t": table("t", ("id",), kind_of_sqlite, id="INTEGER", doc="TEXT")}
    s_tables = {"t": table("t", ("id",), kind_of_postgres, id="integer", doc="text")}
    rules = RowRules.build(columns={"t.doc": ColumnRule(kind=ValueKind.JSON)})
    primary = [ins("t", (1,), id=1, doc='{"b":1,"a":2}')]
    shadow = [ins("t", (1,), id=1, doc='{"a": 2, "b": 1}')]
    assert diff(primary, shadow, p_tables=p_tables, s_tables=s_tables).differences != ()
    assert diff(primary, shadow, rules, p_tables=p_tables, s_tables=s_tables).differences == ()


def test_burnt_sequence_value_gives_one_difference_then_none():
    keys = KeyMap()
    steps = [(1, 1), (2, 3), (3, 4)]
    found = []
    for legacy_id, candidate_id in steps:
        result = diff([ins("entries", (legacy_id,), id=legacy_id, note="n")],
                      [ins("entries", (candidate_id,), id=candidate_id, note="n")], keymap=keys)
        assert result.new_pairs == [("entries", (legacy_id,), (candidate_id,))]
        found.append(result.differences)
    assert found[0] == ()
    [burnt] = found[1]
    assert (burnt.kind, burnt.path, burnt.primary, burnt.shadow) == (
        Kind.ROW_CHANGED, "entries[2].id", 2, 3)
    assert found[2] == ()
    later = diff([upd("entries", (2,), {"id": 2, "note": "n"}, {"id": 2, "note": "m"})],
                 [upd("entries", (3,), {"id": 3, "note": "n"}, {"id": 3, "note": "m"})],
                 keymap=keys)
    assert later.differences == () and later.new_pairs == []


def test_several_inserts_in_one_exchange_pair_in_order():
    result = diff([ins("entries", (k,), id=k, note=str(k)) for k in (2, 3)],
                  [ins("entries", (k,), id=k, note=str(k - 1)) for k in (3, 4)])
    assert [d.path for d in result.differences] == ["entries[2].id"]
    assert result.new_pairs == [("entries", (2,), (3,)), ("entries", (3,), (4,))]


def test_foreign_key_values_follow_the_key_map():
    keys = KeyMap()
    keys.learn("users", (2,), (3,))
    p_tables = {"moods": table("moods", ("id",), kind_of_sqlite, {"user_id": "users"},
                               id="INTEGER", user_id="INTEGER")}
    s_tables = {"moods": table("moods", ("id",), kind_of_postgres, {"user_id": "users"},
                               id="integer", user_id="integer")}
    result = diff([ins("moods", (5,), id=5, user_id=2)], [ins("moods", (5,), id=5, user_id=3)],
                  keymap=keys, p_tables=p_tables, s_tables=s_tables)
    assert result.differences == ()
    wrong = diff([ins("moods", (6,), id=6, user_id=2)], [ins("moods", (6,), id=6, user_id=2)],
                 keymap=keys, p_tables=p_tables, s_tables=s_tables)
    [difference] = wrong.differences
    assert difference.path == "moods[6].user_id" and "3" in difference.detail


def test_row_written_only_by_the_primary_is_missing_and_only_by_the_shadow_extra():
    result = diff([ins("entries", (1,), id=1, note="a")], [])
    [missing] = result.differences
    assert (missing.kind, missing.path, missing.shadow) == (Kind.ROW_MISSING, "entries[1]", None)
    assert missing.primary == {"id": 1, "note": "a"}
    [extra] = diff([], [dele("entries", (9,), id=9, note="x")]).differences
    assert (extra.kind, extra.path) == (Kind.ROW_EXTRA, "entries[9]")
    assert "delete" in extra.detail


def test_net_effect_of_several_changes_to_one_row():
    primary = [ins("entries", (1,), id=1, note="a"),
               upd("entries", (1,), {"id": 1, "note": "a"}, {"id": 1, "note": "b"}),
               ins("entries", (2,), id=2, note="tmp"), dele("entries", (2,), id=2, note="tmp"),
               upd("entries", (7,), {"id": 7, "note": "x"}, {"id": 7, "note": "x"})]
    nets = net_changes(primary, RowRules())["entries"]
    assert [(n.op, n.key, n.after, n.noop) for n in nets] == [
        ("insert", (1,), {"id": 1, "note": "b"}, False), ("update", (7,), {"id": 7, "note": "x"}, True)]
    assert diff(primary, [ins("entries", (1,), id=1, note="b")]).differences == ()


def test_an_update_without_before_image_pairs_with_a_no_op_update_on_the_other_side():
    row = {"id": 7, "note": "x"}
    unknown = [upd("entries", (7,), None, row)]
    known_noop = [upd("entries", (7,), row, row)]
    assert diff(unknown, known_noop).differences == ()
    assert diff(known_noop, unknown).differences == ()
    assert diff(known_noop, []).differences == ()
    [missing] = diff(unknown, []).differences
    assert missing.kind == Kind.ROW_MISSING


def test_existing_rows_pair_by_key_including_composite_keys():
    p_tables = {"tags": table("tags", ("entry_id", "tag"), kind_of_sqlite,
                              entry_id="INTEGER", tag="TEXT", weight="REAL")}
    s_tables = {"tags": table("tags", ("entry_id", "tag"), kind_of_postgres,
                              entry_id="integer", tag="text", weight="double precision")}
    before = {"entry_id": 4, "tag": "a b", "weight": 1.0}
    primary = [upd("tags", (4, "a b"), before, {**before, "weight": 2.0}),
               dele("tags", (4, "c"), entry_id=4, tag="c", weight=1.0)]
    shadow = [upd("tags", (4, "a b"), before, {**before, "weight": 2.5})]
    result = diff(primary, shadow, p_tables=p_tables, s_tables=s_tables)
    assert [(d.kind, d.path) for d in result.differences] == [
        (Kind.ROW_MISSING, 'tags[4,"c"]'), (Kind.ROW_CHANGED, 'tags[4,"a b"].weight')]


def test_deleted_on_one_side_only():
    row = {"id": 3, "note": "x"}
    [difference] = diff([dele("entries", (3,), **row)],
                        [upd("entries", (3,), row, {**row, "note": "y"})]).differences
    assert difference.kind == Kind.ROW_CHANGED and difference.path == "entries[3]"
    assert "primary deleted" in difference.detail


def test_ignored_columns_excluded_tables_and_one_sided_columns():
    rules = RowRules.build(exclude=["sessions"],
                           columns={"*.note": ColumnRule(ignore=True)})
    primary = [ins("entries", (1,), id=1, note="a", extra=5), ins("sessions", ("s",), v=1)]
    shadow = [ins("entries", (1,), id=1, note="b")]
    [difference] = diff(primary, shadow, rules).differences
    assert difference.path == "entries[1].extra" and "only on the primary" in difference.detail


def test_table_names_and_columns_match_case_insensitively():
    primary = [ins("Entries", (1,), id=1, Note="a")]
    shadow = [ins("entries", (1,), id=1, note="a")]
    assert diff(primary, shadow).differences == ()


def test_an_update_within_the_rules_is_no_change_on_either_side():
    """SQLite stamps whole seconds, PostgreSQL microseconds: a repeated update moves
    updated_at on one side by under its tolerance and must not count as a change there."""
    from shadow.compare.bridge import ValueKind as VK
    from shadow.rows.diff import diff_rows
    from shadow.rows.keymap import KeyMap
    from shadow.rows.model import Column, ColumnRule, RowRules, TableInfo
    from shadow.verdict import RowChange

    def table(stamp_kind):
        return {"notes": TableInfo("notes", ("id",), (Column("id", "integer", VK.INTEGER),
                                                     Column("updated_at", "t", stamp_kind)))}

    rules = RowRules.build(columns={"*.updated_at": ColumnRule(tolerance=2.0)})
    legacy = [RowChange("notes", (1,), "update", {"id": 1, "updated_at": "2026-01-01 10:00:00"},
                        {"id": 1, "updated_at": "2026-01-01 10:00:01"})]
    candidate = []  # the same second: the candidate's row did not move at all
    result = diff_rows(legacy, candidate, primary_tables=table(VK.TEXT),
                       shadow_tables=table(VK.TIMESTAMP), rules=rules, keymap=KeyMap())
    assert result.differences == ()


def test_a_truncate_pairs_with_a_truncate_or_stands_for_the_other_sides_deletes():
    truncate = RowChange("entries", (), "truncate", None, None)
    deletes = [dele("entries", (1,), id=1, note="a"), dele("entries", (2,), id=2, note="b")]
    assert diff([truncate], [truncate]).differences == ()
    assert diff(deletes, [truncate]).differences == ()
    assert diff([truncate], deletes).differences == ()
    [extra] = diff([], [truncate]).differences
    assert (extra.kind, extra.path, extra.detail) == (
        Kind.ROW_EXTRA, "entries[]", "truncate on the shadow only")


def test_now_stamps_compare_relative_to_when_each_database_made_the_change():
    from shadow.compare.bridge import ValueKind
    from shadow.rows.model import Column, TableInfo

    def table(kind):
        return {"moods": TableInfo("moods", ("id",), (Column("id", "INTEGER", ValueKind.INTEGER),
                                                      Column("created_at", "", kind)), True, "")}

    def change(at, stamp):
        return RowChange("moods", (1,), "insert", None, {"id": 1, "created_at": stamp}, at=at)

    base = 1_770_220_040.0  # 2026-02-04 15:47:20 UTC
    lagging = diff_rows([change(base + 0.2, "2026-02-04 15:47:20")],
                        [change(base + 9.5, "2026-02-04T15:47:29.4+00:00")],
                        primary_tables=table(ValueKind.TEXT),
                        shadow_tables=table(ValueKind.TIMESTAMP),
                        rules=RowRules(), keymap=KeyMap())
    assert lagging.differences == () and lagging.normalised == 1
    wrong_zone = diff_rows([change(base + 0.2, "2026-02-04 15:47:20")],
                           [change(base + 9.5, "2026-02-04T16:47:29.4+00:00")],
                           primary_tables=table(ValueKind.TEXT),
                           shadow_tables=table(ValueKind.TIMESTAMP),
                           rules=RowRules(), keymap=KeyMap())
    assert [d.path for d in wrong_zone.differences] == ["moods[1].created_at"]
    off = diff_rows([change(base + 0.2, "2026-02-04 15:47:20")],
                    [change(base + 9.5, "2026-02-04T15:47:29.4+00:00")],
                    primary_tables=table(ValueKind.TEXT), shadow_tables=table(ValueKind.TIMESTAMP),
                    rules=RowRules(now_tolerance=0), keymap=KeyMap())
    assert len(off.differences) == 1


def test_salted_password_hashes_are_compared_by_scheme_without_a_rule():
    fresh = "scrypt$16384$8$1$c2FsdC1vbmUtMTIzNDU2$ZGlnZXN0LW9uZS0xMjM0NTY3ODkwMTIzNDU2Nzg5MA=="
    other = "scrypt$16384$8$1$c2FsdC10d28tNjU0MzIx$ZGlnZXN0LXR3by0xMjM0NTY3ODkwMTIzNDU2Nzg5MA=="
    same = one_column(fresh, other, "note")
    assert same.differences == () and same.normalised == 1
    weaker = one_column(fresh, other.replace("16384", "1024"), "note")
    assert [d.path for d in weaker.differences] == ["entries[1].note"]
    clear = one_column(fresh, "hunter2", "note")
    assert len(clear.differences) == 1


def test_an_update_is_compared_on_the_columns_it_changed_on_either_side():
    from shadow.rows.model import Column, TableInfo

    tables = {"notes": TableInfo("notes", ("id",), (
        Column("id", "INTEGER", ValueKind.INTEGER), Column("body", "TEXT", ValueKind.TEXT),
        Column("pinned", "INTEGER", ValueKind.INTEGER),
        Column("created_at", "TEXT", ValueKind.TEXT)), True, "")}

    def update(created, before, after):
        return RowChange("notes", (1,), "update", {"id": 1, "created_at": created, **before},
                         {"id": 1, "created_at": created, **after})

    # created_at differs by the lag of the insert long ago: not this update's doing
    same = diff_rows([update("2026-02-04 15:47:20", {"body": "a", "pinned": 0},
                             {"body": "b", "pinned": 0})],
                     [update("2026-02-04 15:49:00", {"body": "a", "pinned": 0},
                             {"body": "b", "pinned": 0})],
                     primary_tables=tables, shadow_tables=tables, rules=RowRules(),
                     keymap=KeyMap())
    assert same.differences == ()
    # the shadow also changed a column the primary left alone: that is this update's doing
    stray = diff_rows([update("x", {"body": "a", "pinned": 0}, {"body": "b", "pinned": 0})],
                      [update("x", {"body": "a", "pinned": 0}, {"body": "b", "pinned": 1})],
                      primary_tables=tables, shadow_tables=tables, rules=RowRules(),
                      keymap=KeyMap())
    assert [d.path for d in stray.differences] == ["notes[1].pinned"]
    # a lost update: the primary changed the body, the shadow wrote the row unchanged
    lost = diff_rows([update("x", {"body": "a"}, {"body": "b"})],
                     [update("x", {"body": "a"}, {"body": "a"})],
                     primary_tables=tables, shadow_tables=tables, rules=RowRules(),
                     keymap=KeyMap())
    assert [(d.kind, d.path) for d in lost.differences] == [(Kind.ROW_CHANGED, "notes[1].body")]


def test_an_update_that_changed_nothing_on_one_side_pairs_and_is_never_reported_alone():
    # SQLite keeps whole seconds: `SET updated_at = CURRENT_TIMESTAMP` in the second of the
    # insert changes nothing there, while PostgreSQL's now() moves on.
    at = 1_770_220_040.3  # 2026-02-04 15:47:20.3 UTC
    row = {"id": 1, "title": "t", "updated_at": "2026-02-04 15:47:20"}
    primary = [RowChange("entries", (1,), "update", row, dict(row), at=at)]
    shadow = [RowChange("entries", (1,), "update",
                        {**row, "updated_at": "2026-02-04T15:47:20.100+00:00"},
                        {**row, "updated_at": "2026-02-04T15:47:21.900+00:00"}, at=at + 1.6)]
    assert diff(primary, shadow).differences == ()
    assert diff(primary, []).differences == ()
    assert diff([], primary).differences == ()


def test_a_stamp_an_earlier_write_made_is_read_against_that_writes_moments():
    from shadow.rows.stamps import RowStamps

    tables = {"notes": TableInfo("notes", ("id",), (
        Column("id", "INTEGER", ValueKind.INTEGER), Column("body", "TEXT", ValueKind.TEXT),
        Column("created_at", "TEXT", ValueKind.TEXT)), True, "")}

    def write(op, at, created, body):
        row = {"id": 1, "body": body, "created_at": created}
        return RowChange("notes", (1,), op, None, row, at=at)

    def run(stamps, shadow_created):
        # the insert reached the shadow 6 s late; the edit, much later, at once
        first = diff_rows([write("insert", 1000.0, "2026-02-04 15:46:40", "a")],
                          [write("insert", 1006.0, "2026-02-04T15:46:46+00:00", "a")],
                          primary_tables=tables, shadow_tables=tables, rules=RowRules(),
                          keymap=KeyMap(), stamps=stamps)
        assert first.differences == ()
        return diff_rows([write("update", 1100.0, "2026-02-04 15:46:40", "b")],
                         [write("update", 1100.2, shadow_created, "b")],
                         primary_tables=tables, shadow_tables=tables, rules=RowRules(),
                         keymap=KeyMap(), stamps=stamps)

    assert run(RowStamps(), "2026-02-04T15:46:46+00:00").differences == ()
    # without the memory, the insert's lag shows in the edit's image
    assert [d.path for d in run(None, "2026-02-04T15:46:46+00:00").differences] == [
        "notes[1].created_at"]
    # an hour off at the insert is still an hour off
    assert [d.path for d in run(RowStamps(), "2026-02-04T16:46:46+00:00").differences] == [
        "notes[1].created_at"]


def test_row_stamps_are_bounded():
    from shadow.rows.stamps import PER_ROW, RowStamps

    stamps = RowStamps(max_rows=2)
    for i in range(6):
        stamps.wrote("t", (1,), float(i), float(i))
    assert len(stamps.earlier("T", (1,))) == PER_ROW
    assert stamps.earlier("t", (1,))[0] == (5.0, 5.0)
    stamps.wrote("t", (2,), 1.0, 1.0)
    stamps.wrote("t", (3,), 1.0, 1.0)
    assert len(stamps) == 2 and stamps.earlier("t", (1,)) == ()
    stamps.wrote("t", (4,), None, 1.0)
    assert stamps.earlier("t", (4,)) == ()


def test_an_update_one_side_cannot_show_is_no_difference_when_nothing_changed():
    """SQLite's write-ahead log shows pages, not statements: an update that stored the
    same bytes (the same values stamped within the same second) writes nothing, while
    PostgreSQL stamps microseconds and shows it. Read against the row as the primary's
    recent writes left it, that update changes nothing the two databases hold."""
    from shadow.rows.stamps import RecentImages

    edited = {"id": 1, "note": "b", "at": "2026-02-04 15:47:20"}
    primary = RecentImages()
    primary.add([upd("entries", (1,), None, edited)])
    again = {**edited, "at": "2026-02-04T15:47:20.870+00:00"}

    def shadow_only(image):
        return diff_rows([], [upd("entries", (1,), None, image)], primary_tables=LEGACY,
                         shadow_tables=CANDIDATE, rules=RowRules(), keymap=KeyMap(),
                         recent=(primary, None)).differences

    assert shadow_only(again) == ()
    assert [d.kind for d in shadow_only({**again, "note": "c"})] == [Kind.ROW_EXTRA]
    assert [d.kind for d in shadow_only({**again, "at": "2026-02-04T15:47:22+00:00"})] \
        == [Kind.ROW_EXTRA]
