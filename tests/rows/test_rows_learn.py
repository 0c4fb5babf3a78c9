"""Key pairs learnt from inserts whose rows are not compared (an overflowed group's pool).
Pure: no I/O."""

from shadow.rows.keymap import KeyMap
from shadow.rows.learn import learn_pairs
from shadow.rows.model import RowRules
from shadow.rows.pairing import CompareColumn, Content, pair_unique
from shadow.compare.bridge import ValueKind
from shadow.rows.model import ColumnRule
from tests.rows.test_rows_diff import ins, upd
from tests.rows.test_rows_pairing import CANDIDATE, LEGACY, note


def learn(primary, shadow, keymap=None):
    keymap = keymap if keymap is not None else KeyMap()
    pairs, used_p, used_s = learn_pairs(primary, shadow, primary_tables=LEGACY,
                                        shadow_tables=CANDIDATE, rules=RowRules(), keymap=keymap)
    return pairs, used_p, used_s, keymap


def test_rows_numbered_in_another_order_pair_by_content():
    primary = [note(1, "a"), note(2, "b"), note(3, "c")]
    shadow = [note(1, "c", legacy=False), note(2, "a", legacy=False), note(3, "b", legacy=False)]
    pairs, used_p, used_s, keymap = learn(primary, shadow)
    assert sorted(pairs) == [("notes", (1,), (2,)), ("notes", (2,), (3,)),
                             ("notes", (3,), (1,))]
    assert used_p == used_s == {("notes", (k,)) for k in (1, 2, 3)}
    assert keymap.primary_key("notes", (1,)) == (3,)
    assert keymap.anchor("notes") == ((3,), (3,))  # the highest ids: the next insert's offset


def test_a_row_whose_twin_has_not_arrived_stays_unpaired():
    primary = [note(7, "a"), note(8, "b")]
    shadow = [note(9, "b", legacy=False)]
    pairs, used_p, used_s, keymap = learn(primary, shadow)
    assert pairs == [("notes", (8,), (9,))]
    assert used_p == {("notes", (8,))} and used_s == {("notes", (9,))}
    assert keymap.shadow_key("notes", (7,)) is None


def test_rows_of_the_same_content_are_not_guessed_at():
    primary = [note(1, "same"), note(2, "same"), note(3, "other")]
    shadow = [note(2, "same", legacy=False), note(1, "same", legacy=False),
              note(3, "other", legacy=False)]
    pairs, _, _, _ = learn(primary, shadow)
    assert pairs == [("notes", (3,), (3,))]


def test_the_anchor_keeps_the_highest_ids_whatever_order_pairs_come_in():
    keymap = KeyMap()
    keymap.set_anchor("notes", (10,), (12,))
    learn([note(5, "old")], [note(6, "old", legacy=False)], keymap)
    assert keymap.anchor("notes") == ((10,), (12,))
    learn([note(13, "x"), note(11, "y")], [note(14, "y", legacy=False),
                                           note(13, "x", legacy=False)], keymap)
    assert keymap.anchor("notes") == ((13,), (14,))


def test_children_are_paired_after_their_parents_through_the_new_pairs():
    primary = [ins("tags", (1,), id=1, note_id=1, tag="t"), note(1, "a")]
    shadow = [ins("tags", (5,), id=5, note_id=2, tag="t"), note(2, "a", legacy=False)]
    pairs, _, _, _ = learn(primary, shadow)
    assert pairs == [("notes", (1,), (2,)), ("tags", (1,), (5,))]


def test_only_inserts_are_learnt_from():
    primary = [upd("notes", (1,), {"title": "a"}, {"title": "b"})]
    shadow = [upd("notes", (2,), {"title": "a"}, {"title": "b"})]
    assert learn(primary, shadow)[0] == []


def test_no_column_to_compare_pairs_nothing():
    rows = [ins("t", (1,), id=1)]
    assert pair_unique(rows, rows, Content((), lambda parent, value: value)) == []
    column = CompareColumn("v", "v", ValueKind.ANY, ColumnRule())
    assert pair_unique(rows, rows, Content((column,), lambda parent, value: value)) == [
        (rows[0], rows[0])]
