"""Inserts paired by content: one extra or missing row is one difference, in one
exchange, across exchanges, and in the union of a group written in another order. Pure,
but for the last test: the row state kept across a restart, on real SQLite files."""

from decimal import Decimal

import orjson

from shadow.compare.bridge import kind_of_postgres, kind_of_sqlite
from shadow.rows.keymap import KeyMap
from shadow.rows.model import ColumnRule, RowRules
from shadow.rows.sequences import expected_key, follow, key_detail
from shadow.verdict import Kind
from tests.rows.test_rows_diff import diff, ins, table

#: table -> (key, foreign keys, column -> (SQLite type, PostgreSQL type))
SCHEMA = {
    "notes": (("id",), None, {"id": ("INTEGER", "integer"), "title": ("TEXT", "text"),
                              "done": ("BOOLEAN", "boolean"), "score": ("REAL", "numeric"),
                              "at": ("DATETIME", "timestamp with time zone")}),
    "tags": (("id",), {"note_id": "notes"}, {"id": ("INTEGER", "integer"),
                                             "note_id": ("INTEGER", "integer"),
                                             "tag": ("TEXT", "text")}),
    "settings": (("code",), None, {"code": ("TEXT", "text"), "value": ("TEXT", "text")}),
}


def side(index, kind_of):
    return {name: table(name, key, kind_of, refs, **{c: t[index] for c, t in cols.items()})
            for name, (key, refs, cols) in SCHEMA.items()}


LEGACY, CANDIDATE = side(0, kind_of_sqlite), side(1, kind_of_postgres)


def note(key, title, legacy=True, **more):
    values = {"done": 0, "at": "2026-02-04 15:47:20"} if legacy else {
        "done": False, "at": "2026-02-04T15:47:20+00:00"}
    return ins("notes", (key,), id=key, title=title, **{**values, **more})


def run(primary, shadow, keymap=None, rules=None):
    return diff(primary, shadow, rules=rules, keymap=keymap, p_tables=LEGACY, s_tables=CANDIDATE)


def summary(result):
    return [(d.kind, d.path) for d in result.differences]


def test_one_extra_row_in_the_middle_is_one_difference_and_shifts_nothing():
    titles = [f"n{k}" for k in range(1, 9)]
    primary = [note(k, t) for k, t in enumerate(titles, 1)]
    shadow_titles = titles[:3] + ["surprise"] + titles[3:]
    shadow = [note(k, t, legacy=False) for k, t in enumerate(shadow_titles, 1)]
    result = run(primary, shadow)
    assert summary(result) == [(Kind.ROW_EXTRA, "notes[4]")]
    assert result.new_pairs == [("notes", (k,), (k if k < 4 else k + 1,)) for k in range(1, 9)]
    assert result.normalised > 0  # 0/1 against false/true, two renderings of one instant


def test_one_missing_row_is_one_difference_and_shifts_nothing():
    primary = [note(k, f"n{k}") for k in range(1, 7)]
    shadow = [note(k, f"n{k + (k >= 3)}", legacy=False) for k in range(1, 6)]
    result = run(primary, shadow)
    assert summary(result) == [(Kind.ROW_MISSING, "notes[3]")]
    assert ("notes", (6,), (5,)) in result.new_pairs


def test_an_extra_row_in_one_exchange_shifts_no_later_exchange():
    keys = KeyMap()
    assert run([note(1, "a")], [note(1, "a", legacy=False)], keys).differences == ()
    twice = run([note(2, "b")], [note(2, "b", legacy=False), note(3, "b", legacy=False)], keys)
    assert summary(twice) == [(Kind.ROW_EXTRA, "notes[3]")]
    for legacy_id in (3, 4, 5):
        later = run([note(legacy_id, f"t{legacy_id}")],
                    [note(legacy_id + 1, f"t{legacy_id}", legacy=False)], keys)
        assert later.differences == (), legacy_id
    assert keys.shadow_key("notes", (5,)) == (6,)


def test_a_missing_row_in_one_exchange_shifts_no_later_exchange():
    keys = KeyMap()
    lost = run([note(1, "a")], [], keys)
    assert summary(lost) == [(Kind.ROW_MISSING, "notes[1]")]
    for legacy_id in (2, 3):
        later = run([note(legacy_id, f"t{legacy_id}")],
                    [note(legacy_id - 1, f"t{legacy_id}", legacy=False)], keys)
        assert later.differences == (), legacy_id


def test_a_burnt_value_is_still_one_difference():
    keys = KeyMap()
    run([note(1, "a")], [note(1, "a", legacy=False)], keys)
    burnt = run([note(2, "b")], [note(3, "b", legacy=False)], keys)
    [difference] = burnt.differences
    assert (difference.path, difference.primary, difference.shadow) == ("notes[2].id", 2, 3)
    assert "expected to use 2" in difference.detail
    assert run([note(3, "c")], [note(4, "c", legacy=False)], keys).differences == ()


def test_a_group_written_in_another_order_with_children_pairs_without_differences():
    """Two overlapping exchanges each insert a note and a tag on it: the primary committed
    A before B, the shadow B before A, so every id differs and the tags point at them."""
    primary = [note(10, "A"), ins("tags", (20,), id=20, note_id=10, tag="x"),
               note(11, "B"), ins("tags", (21,), id=21, note_id=11, tag="y")]
    shadow = [ins("tags", (20,), id=20, note_id=10, tag="y"), note(10, "B", legacy=False),
              note(11, "A", legacy=False), ins("tags", (21,), id=21, note_id=11, tag="x")]
    keys = KeyMap()
    keys.learn("notes", (9,), (9,))
    keys.learn("tags", (19,), (19,))
    result = run(primary, shadow, keys)
    assert result.differences == ()
    assert sorted(result.new_pairs) == [("notes", (10,), (11,)), ("notes", (11,), (10,)),
                                        ("tags", (20,), (21,)), ("tags", (21,), (20,))]


def test_a_group_with_one_lost_write_names_only_that_row():
    primary = [note(k, f"w{k}") for k in range(1, 6)]
    shadow = [note(k, f"w{t}", legacy=False) for k, t in zip(range(1, 5), (2, 1, 5, 4), strict=True)]
    result = run(primary, shadow)
    assert summary(result) == [(Kind.ROW_MISSING, "notes[3]")]


def test_the_closest_row_pairs_when_none_is_equal():
    primary = [note(1, "a", score=1.0), note(2, "b", score=2.0)]
    shadow = [note(1, "zzz", legacy=False, score=Decimal("9")),
              note(2, "a", legacy=False, score=Decimal("1")),
              note(3, "b", legacy=False, score=Decimal("2.5"))]
    result = run(primary, shadow)
    assert summary(result) == [(Kind.ROW_EXTRA, "notes[1]"), (Kind.ROW_CHANGED, "notes[2].score")]
    assert result.new_pairs == [("notes", (1,), (2,)), ("notes", (2,), (3,))]


def test_column_rules_take_part_in_the_pairing():
    rules = RowRules.build(columns={"notes.score": ColumnRule(tolerance=0.01),
                                    "notes.at": ColumnRule(ignore=True)})
    primary = [note(1, "same", score=1.0, at="x"), note(2, "same", score=2.0, at="y")]
    shadow = [note(1, "same", legacy=False, score=Decimal("7")),
              note(2, "same", legacy=False, score=Decimal("1.005")),
              note(3, "same", legacy=False, score=Decimal("2.001"))]
    result = run(primary, shadow, rules=rules)
    assert summary(result) == [(Kind.ROW_EXTRA, "notes[1]")]


def test_a_natural_key_is_content_and_an_integer_key_is_not():
    primary = [ins("settings", ("b",), code="b", value="1"),
               ins("settings", ("a",), code="a", value="1")]
    shadow = [ins("settings", ("a",), code="a", value="1"),
              ins("settings", ("b",), code="b", value="1")]
    result = run(primary, shadow)
    assert result.differences == ()
    assert sorted(result.new_pairs) == [("settings", ("a",), ("a",)), ("settings", ("b",), ("b",))]
    same = run([note(5, "n")], [note(5, "n", legacy=False)])
    assert same.differences == () and same.new_pairs == [("notes", (5,), (5,))]


def test_many_inserts_with_one_extra_are_one_difference_and_deterministic():
    primary = [note(k, f"row {k % 50}", score=float(k % 7)) for k in range(1, 2001)]
    shadow_rows = [(f"row {k % 50}", k % 7) for k in range(1, 2001)]
    shadow_rows.insert(1234, ("intruder", 0))
    shadow = [note(k, t, legacy=False, score=Decimal(s)) for k, (t, s) in enumerate(shadow_rows, 1)]
    first = run(primary, shadow)
    assert summary(first) == [(Kind.ROW_EXTRA, "notes[1235]")]
    assert run(primary, shadow) == first


def test_anchors_that_are_not_pairs_survive_a_reload():
    keys = KeyMap()
    keys.learn("notes", (2,), (2,))
    keys.set_anchor("notes", (2,), (3,))
    assert keys.pairs() == [("notes", (2,), (2,))]
    copy = KeyMap()
    copy.load(keys.pairs())
    copy.load_anchors([[t, list(p), list(s)] for t, p, s in keys.anchors()])
    assert copy.anchor("notes") == ((2,), (3,))
    assert copy.primary_key("notes", (3,)) is None


def test_follow_walks_keys_in_key_order():
    assert follow(None, [(1, 1), (2, 2)], [], []) == ([], (2, 2))
    assert follow((2, 2), [(4, 3), (3, 4)], [], []) == ([], (4, 4))
    assert follow((2, 2), [(3, 4)], [], []) == ([(4, 3)], (3, 4))
    assert follow((2, 2), [(3, 4)], [], [3]) == ([], (3, 4))
    assert follow((2, 2), [(4, 3)], [3], []) == ([], (4, 3))
    assert follow(None, [], [7], [9]) == ([], (7, 9))
    assert follow((5, 5), [(3, 4)], [], []) == ([(4, 3)], (5, 5))  # the highest keys stay


def test_a_key_difference_in_a_group_whose_rows_crossed_expects_its_own_row_key():
    """As seen beside a busy loop: three mood posts at once, the badges of two of them
    numbered 21, 22 and 23, 24 on the primary, 23, 24 and 16, 17 on the shadow, the
    shadow's `ON CONFLICT DO NOTHING` burning 18-22 in between. Walked in key order, the
    shadow's 16 and 23 break the sequence; each is said to be expected at its own row's
    primary key plus the offset the sequences were expected at (0, then -5), so that a
    read of the two sequences back at offset 0 settles them."""
    pairs = [(21, 23), (22, 24), (23, 16), (24, 17)]
    assert follow((15, 15), pairs, [], []) == ([(16, 23), (23, 16)], (24, 24))


def test_a_key_difference_says_which_key_was_expected():
    assert expected_key(key_detail(278)) == 278
    assert expected_key(key_detail(278) + "; group of 2: POST /api/moods #781") == 278
    assert expected_key(key_detail("a-7")) is None  # not an integer key
    assert expected_key("changed") is None


async def test_row_state_keeps_anchors_that_are_not_pairs_across_a_restart(tmp_path):
    """An extra row moved the anchor past the last pair: a restart must not lose that."""
    import sqlite3

    from shadow.rows.live import RowState

    databases = {}
    for name in ("legacy", "candidate"):
        path = tmp_path / f"{name}.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT)")
        databases[name] = f"sqlite:///{path}"
    state = await RowState.open(databases, RowRules(), keymap_size=10, saved=None)
    try:
        run([note(1, "a")], [note(1, "a", legacy=False), note(2, "a", legacy=False)],
            state.keymap)
        saved = orjson.loads(orjson.dumps(state.saved()))
    finally:
        await state.close()
    again = await RowState.open(databases, RowRules(), keymap_size=10, saved=saved)
    try:
        assert again.keymap.anchor("notes") == ((1,), (2,))
        later = run([note(2, "b")], [note(3, "b", legacy=False)], again.keymap)
        assert later.differences == ()
    finally:
        await again.close()
