"""Changes of writes too entangled to compare as groups, verified one by one as they are
drained (shadow.rows.stream, shadow.rows.match). Pure: no I/O."""

from dataclasses import replace

from shadow.rows.keymap import KeyMap
from shadow.rows.match import ChangeMatcher
from shadow.rows.model import RowRules
from shadow.rows.stamps import RowStamps
from shadow.rows.stream import PRIMARY, SHADOW, Stream
from tests.rows.test_rows_diff import dele, ins, upd
from shadow.verdict import Kind
from tests.rows.test_rows_pairing import CANDIDATE, LEGACY, note, run


def stream(keymap=None, limit=4096):
    keymap = keymap if keymap is not None else KeyMap()
    matcher = ChangeMatcher(LEGACY, CANDIDATE, RowRules(), keymap, RowStamps())
    return Stream(matcher, limit=limit), keymap


def at(change, when):
    return replace(change, at=when)


def test_inserts_numbered_in_another_order_pair_as_they_arrive_and_teach_their_keys():
    s, keymap = stream()
    s.add(PRIMARY, 1, note(1, "a"), [10, 11])
    s.add(PRIMARY, 2, note(2, "b"), [10, 11])
    s.add(SHADOW, 3, note(1, "b", legacy=False), [11])
    assert keymap.shadow_key("notes", (2,)) == (1,)  # learnt at once, before any end
    s.add(SHADOW, 4, note(2, "a", legacy=False), [10])
    assert keymap.shadow_key("notes", (1,)) == (2,)
    first = s.release(10)
    assert (first.primary, first.shadow) == ([], [])
    assert sorted(first.pairs) == [("notes", (1,), (2,)), ("notes", (2,), (1,))]
    last = s.release(11)
    assert (last.primary, last.shadow, last.verified) == ([], [], 2)
    assert s.unpaired(PRIMARY) == s.unpaired(SHADOW) == 0


def test_a_now_stamp_is_read_against_the_moment_each_side_wrote_it():
    s, keymap = stream()
    primary = at(note(1, "a", at="2026-02-04 15:47:20"), 1_770_220_040.0)
    late = at(note(5, "a", legacy=False, at="2026-02-04T15:47:26+00:00"), 1_770_220_046.0)
    s.add(PRIMARY, 1, primary, [1])
    s.add(SHADOW, 2, late, [1])  # replayed six seconds late: the same meaning
    assert keymap.shadow_key("notes", (1,)) == (5,)
    wrong = at(note(6, "b", legacy=False, at="2026-02-04T16:47:26+00:00"), 1_770_220_046.0)
    s.add(PRIMARY, 3, at(note(2, "b", at="2026-02-04 15:47:20"), 1_770_220_040.0), [2])
    s.add(SHADOW, 4, wrong, [2])  # an hour off: a time-zone bug stays a difference
    settled = s.release(2)
    assert [c.key for c in settled.primary] == [(2,)] and [c.key for c in settled.shadow] == [(6,)]


def test_an_insert_the_shadow_never_made_is_left_over_when_its_exchanges_end():
    s, _ = stream()
    s.add(PRIMARY, 1, note(1, "lost"), [1, 2])
    s.add(PRIMARY, 2, note(2, "kept"), [2])
    s.add(SHADOW, 3, note(7, "kept", legacy=False), [2])
    assert s.release(1).primary == []  # 2 may still have made it
    settled = s.release(2)
    assert [c.key for c in settled.primary] == [(1,)] and settled.shadow == []
    assert settled.verified == 1


def test_a_child_whose_parent_pair_came_later_pairs_when_it_settles():
    s, keymap = stream()
    s.add(PRIMARY, 1, ins("tags", (1,), id=1, note_id=1, tag="t"), [1])
    s.add(SHADOW, 2, ins("tags", (4,), id=4, note_id=3, tag="t"), [1])  # parent unknown yet
    s.add(PRIMARY, 3, note(1, "a"), [1])
    s.add(SHADOW, 4, note(3, "a", legacy=False), [1])
    settled = s.release(1)
    assert (settled.primary, settled.shadow, settled.verified) == ([], [], 2)
    assert keymap.shadow_key("tags", (1,)) == (4,)


def test_updates_pair_by_their_row_and_a_wrong_value_is_left_over():
    keymap = KeyMap()
    keymap.learn("notes", (1,), (3,))
    s, _ = stream(keymap)
    s.add(PRIMARY, 1, upd("notes", (1,), None, {"id": 1, "title": "x", "done": 1,
                                                  "at": "2026-02-04 15:47:20"}), [1])
    s.add(SHADOW, 2, upd("notes", (3,), None, {"id": 3, "title": "y", "done": True,
                                                 "at": "2026-02-04T15:47:20+00:00"}), [1])
    settled = s.release(1)
    assert [c.key for c in settled.primary] == [(1,)] and [c.key for c in settled.shadow] == [(3,)]
    assert settled.verified == 0


def test_a_stale_image_is_not_judged_while_a_later_change_of_the_row_is_pending():
    s, _ = stream()
    first = {"id": 1, "title": "x", "done": 0, "at": "2026-02-04 15:47:20"}
    second = {**first, "title": "y"}
    s.add(PRIMARY, 1, upd("notes", (1,), None, first), [1])
    s.add(PRIMARY, 2, upd("notes", (1,), None, second), [2])
    shadow_second = {"id": 1, "title": "y", "done": False, "at": "2026-02-04T15:47:20+00:00"}
    s.add(SHADOW, 3, upd("notes", (1,), None, shadow_second), [1])  # read after both
    s.add(SHADOW, 4, upd("notes", (1,), None, shadow_second), [2])
    assert (s.release(1).primary, s.release(2).primary) == ([], [])


def test_deletes_pair_by_their_row():
    s, _ = stream()
    s.add(PRIMARY, 1, dele("notes", (4,), id=4), [1])
    s.add(SHADOW, 2, dele("notes", (4,), id=4), [1])
    s.add(PRIMARY, 3, dele("notes", (5,), id=5), [1])
    settled = s.release(1)
    assert [c.key for c in settled.primary] == [(5,)] and settled.verified == 1


def test_the_stream_is_bounded_and_counts_what_it_dropped():
    s, _ = stream(limit=3)
    for key in range(1, 6):
        s.add(PRIMARY, key, note(key, f"n{key}"), [1])
    assert s.unpaired(PRIMARY) == 3 and s.dropped == 2
    settled = s.release(1)
    assert [c.key for c in settled.primary] == [(3,), (4,), (5,)]


def test_a_change_no_running_exchange_could_have_made_settles_at_once():
    s, _ = stream()
    settled = s.add(PRIMARY, 1, note(1, "late"), [])
    assert [c.key for c in settled.primary] == [(1,)]


def test_an_upsert_is_an_insert_on_one_side_and_an_update_on_the_other():
    s, keymap = stream()
    row = {"code": "theme", "value": "dark"}
    s.add(PRIMARY, 1, ins("settings", ("theme",), **row), [1])
    s.add(SHADOW, 2, upd("settings", ("theme",), {**row, "value": "light"}, row), [1])
    settled = s.release(1)
    assert (settled.primary, settled.shadow, settled.verified) == ([], [], 1)


def test_the_anchor_keeps_the_highest_ids_whatever_order_pairs_come_in():
    keymap = KeyMap()
    keymap.set_anchor("notes", (10,), (12,))
    s, _ = stream(keymap)
    s.add(PRIMARY, 1, note(13, "x"), [1])
    s.add(PRIMARY, 2, note(11, "y"), [1])
    s.add(SHADOW, 3, note(13, "y", legacy=False), [1])
    s.add(SHADOW, 4, note(14, "x", legacy=False), [1])
    assert keymap.anchor("notes") == ((13,), (14,))  # the next insert follows the latest
    s.add(PRIMARY, 5, note(5, "old"), [1])
    s.add(SHADOW, 6, note(6, "old", legacy=False), [1])
    assert keymap.anchor("notes") == ((13,), (14,))


def test_an_update_of_a_row_whose_insert_was_never_compared_reads_its_stamp_as_lagged():
    matcher = ChangeMatcher(LEGACY, CANDIDATE, RowRules(), KeyMap(), RowStamps())
    image = {"id": 1, "title": "b", "done": 0, "at": "2026-02-04 15:47:20"}
    primary = at(upd("notes", (1,), None, image), 1_770_220_100.0)
    shadow = at(upd("notes", (1,), None, {**image, "done": False,
                                          "at": "2026-02-04T15:47:23.5+00:00"}), 1_770_220_104.0)
    assert matcher.same(primary, shadow)  # stamped 3.5 s later, replayed 4 s later
    hour = at(upd("notes", (1,), None, {**image, "done": False,
                                        "at": "2026-02-04T16:47:20+00:00"}), 1_770_220_104.0)
    assert not matcher.same(primary, hour)
    stale = at(upd("notes", (1,), None, {**image, "done": False,
                                         "at": "2026-02-04T15:40:00+00:00"}), 1_770_220_104.0)
    assert not matcher.same(primary, stale)


def test_a_child_whose_twin_settles_first_still_finds_it_once_the_parent_pair_is_known():
    s, keymap = stream()
    s.add(PRIMARY, 1, ins("tags", (1,), id=1, note_id=1, tag="t"), [1, 2])
    s.add(SHADOW, 2, ins("tags", (4,), id=4, note_id=3, tag="t"), [2])  # parent unknown yet
    s.add(PRIMARY, 3, note(1, "a"), [1])
    s.add(SHADOW, 4, note(3, "a", legacy=False), [1])
    first = s.release(2)  # the shadow's child settles before the primary's
    assert (first.primary, first.shadow) == ([], [])
    second = s.release(1)
    assert (second.primary, second.shadow) == ([], [])
    assert keymap.shadow_key("tags", (1,)) == (4,)


def test_twins_pairs_the_inserts_drained_so_far_that_have_exactly_one_twin():
    keymap = KeyMap()
    matcher = ChangeMatcher(LEGACY, CANDIDATE, RowRules(), keymap, RowStamps())
    primary = [note(1, "a"), note(2, "b"), note(3, "same"), note(4, "same"), note(5, "c")]
    shadow = [note(1, "b", legacy=False), note(2, "a", legacy=False),
              note(3, "same", legacy=False), note(4, "same", legacy=False),
              note(6, "C", legacy=False)]  # c's twin differs: no pair
    assert sorted(matcher.twins(primary, shadow)) == [("notes", (1,), (2,)),
                                                      ("notes", (2,), (1,))]
    assert len(keymap) == 0  # nothing learnt: the caller decides


def test_a_group_pairs_its_new_rows_by_content_whatever_was_learnt_of_them_early():
    """Pairs learnt before the group is compared only serve the requests sent meanwhile:
    the group's comparison pairs its new rows by content as ever, corrects a pair learnt
    wrongly among rows of the same content, reads the sequences past all of them, and
    still catches a shadow key off the sequence."""
    keymap = KeyMap()
    keymap.learn("notes", (1,), (1,))
    keymap.learn("notes", (2,), (3,), anchor=False)  # right: b's twin
    keymap.learn("notes", (3,), (4,), anchor=False)  # wrong: the other "same"
    primary = [note(2, "b"), note(3, "same"), note(4, "same")]
    shadow = [note(2, "same", legacy=False), note(3, "b", legacy=False),
              note(4, "same", legacy=False)]
    result = run(primary, shadow, keymap=keymap)
    assert not result.differences
    assert sorted(result.new_pairs) == [("notes", (2,), (3,)), ("notes", (3,), (2,)),
                                        ("notes", (4,), (4,))]
    assert keymap.shadow_key("notes", (3,)) == (2,) and keymap.anchor("notes") == ((4,), (4,))
    off = run([note(5, "d")], [note(6, "d", legacy=False)], keymap=keymap)
    assert [d.kind for d in off.differences] == [Kind.ROW_CHANGED]


def test_a_stream_says_which_tables_still_wait_for_an_insert_twin():
    s, _ = stream()
    s.add(PRIMARY, 1, note(1, "a"), [10])
    assert s.inserting("notes") and not s.inserting("entries")
    s.add(SHADOW, 2, note(7, "a", legacy=False), [10])
    assert not s.inserting("notes")  # paired: nothing left to bring the sequence back
