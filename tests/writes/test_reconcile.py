"""One-sided rows whose twin another group holds are reconciled before they are
reported (shadow.writes.reconcile). Pure: no I/O."""

from shadow.rows.keymap import KeyMap
from shadow.rows.match import ChangeMatcher
from shadow.rows.model import RowRules
from shadow.rows.sequences import as_anchor
from shadow.rows.stamps import RowStamps
from shadow.verdict import Difference, Kind
from shadow.writes.attribution import GroupRows
from shadow.writes.reconcile import Reconcile
from tests.rows.test_rows_pairing import CANDIDATE, LEGACY, note

ROLES = ("legacy", "candidate")


class Verdicts:
    """Where delivered rows land: what a Pair's `set_rows` would get."""

    def __init__(self, name: str, got: list) -> None:
        self.name, self.got = name, got

    def set_rows(self, rows) -> None:
        self.got.append((self.name, [d.kind for d in rows.differences], rows.normalised))


def setup(keymap=None, key_wait=None, busy=True, read=False):
    """A Reconcile on a clock the test moves; `busy`: whether an open group is taken to
    have inserted into every table (so key differences wait); `read`: whether the
    sequences' positions are read for it."""
    clock = [0.0]
    keymap = keymap if keymap is not None else KeyMap()
    matcher = ChangeMatcher(LEGACY, CANDIDATE, RowRules(), keymap, RowStamps())
    return Reconcile(wait=2.0, matcher=lambda p, s: matcher, clock=lambda: clock[0],
                     key_wait=key_wait, busy=lambda table: busy, read=read,
                     anchor=lambda roles, table: as_anchor(keymap.anchor(table))), clock


def missing(change):
    return GroupRows(primary=(change,), differences=(Difference(
        Kind.ROW_MISSING, f"notes[{change.key[0]}]", change.after, None, "insert"),))


def extra(change):
    return GroupRows(shadow=(change,), differences=(Difference(
        Kind.ROW_EXTRA, f"notes[{change.key[0]}]", None, change.after, "insert"),))


def test_a_row_charged_to_one_group_on_each_side_is_no_difference_in_either():
    reconcile, _ = setup()
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), missing(note(4, "audit")))])
    assert got == []  # held: its twin may be in another group
    reconcile.offer(ROLES, [(Verdicts("get", got), extra(note(9, "audit", legacy=False)))])
    assert sorted(got) == [("get", [], 1), ("post", [], 1)] and reconcile.reconciled == 1


def test_a_one_sided_row_without_twin_is_reported_when_its_wait_is_over():
    reconcile, clock = setup()
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), missing(note(4, "lost")))])
    reconcile.offer(ROLES, [(Verdicts("get", got), extra(note(9, "other", legacy=False)))])
    clock[0] = 1.0
    reconcile.due()
    assert got == []
    clock[0] = 2.5
    reconcile.due()
    assert sorted(got) == [("get", ["row_extra"], 0), ("post", ["row_missing"], 0)]


def test_rows_without_one_sided_differences_are_delivered_at_once():
    reconcile, _ = setup()
    got: list = []
    changed = GroupRows(differences=(Difference(Kind.ROW_CHANGED, "notes[1].title", "a", "b",
                                                ""),))
    reconcile.offer(ROLES, [(Verdicts("a", got), changed), (Verdicts("b", got), GroupRows())])
    assert got == [("a", ["row_changed"], 0), ("b", [], 0)]


def keyed(key: int, expected: int):
    return GroupRows(differences=(Difference(
        Kind.ROW_CHANGED, f"notes[{key}].id", key, key,
        f"key: the shadow was expected to use {expected}"),))


def test_key_differences_around_a_reconciled_row_are_its_artefacts():
    reconcile, clock = setup()
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), missing(note(4, "audit")))])
    reconcile.offer(ROLES, [(Verdicts("between", got), keyed(5, 4))])  # the anchor moved
    assert got == []
    reconcile.offer(ROLES, [(Verdicts("get", got), extra(note(9, "audit", legacy=False)))])
    assert sorted(got) == [("between", [], 1), ("get", [], 1), ("post", [], 1)]


def test_a_burnt_sequence_value_with_no_one_sided_row_nearby_is_still_reported():
    reconcile, clock = setup()
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), keyed(5, 4))])
    clock[0] = 2.5
    reconcile.due()
    assert got == [("post", ["row_changed"], 0)]


def _group(primary, shadow, keymap):
    from tests.rows.test_rows_pairing import run

    result = run(primary, shadow, keymap=keymap)
    return GroupRows(primary=tuple(primary), shadow=tuple(shadow),
                     differences=tuple(result.differences), pairs=tuple(result.new_pairs))


def test_groups_that_took_their_keys_in_another_order_on_each_side_are_no_difference():
    """`a` took 201 and 202 on the primary, `b` 203; on the shadow `b` went first (201)
    and `a` took 202 and 203. `b` concluded first: each group alone breaks the sequence
    as the other left it; once both are in, the sequences stand in step again."""
    keymap = KeyMap()
    keymap.learn("notes", (200,), (200,))
    reconcile, _ = setup(keymap)
    got: list = []
    b = _group([note(203, "b")], [note(201, "b", legacy=False)], keymap)
    assert [d.kind for d in b.differences] == [Kind.ROW_CHANGED]
    reconcile.offer(ROLES, [(Verdicts("b", got), b)])
    assert got == []  # held: another group may have taken the keys it skipped
    a = _group([note(201, "a1"), note(202, "a2")],
               [note(202, "a1", legacy=False), note(203, "a2", legacy=False)], keymap)
    reconcile.offer(ROLES, [(Verdicts("a", got), a)])
    assert sorted((name, kinds) for name, kinds, _ in got) == [("a", []), ("b", [])]
    assert reconcile.reordered == len(a.differences) + 1
    c = _group([note(204, "c")], [note(204, "c", legacy=False)], keymap)
    assert not c.differences  # the sequences go on from the highest keys


def test_a_key_difference_is_reported_at_once_when_no_open_group_inserts_into_its_table():
    reconcile, _ = setup(busy=False, key_wait=10.0)
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), keyed(5, 4))])
    assert got == [("post", ["row_changed"], 0)]


def test_a_burnt_value_read_with_the_next_group_is_still_one_difference():
    keymap = KeyMap()
    keymap.learn("notes", (200,), (200,))
    reconcile, clock = setup(keymap, key_wait=10.0)
    got: list = []
    burnt = _group([note(201, "a")], [note(202, "a", legacy=False)], keymap)
    reconcile.offer(ROLES, [(Verdicts("burnt", got), burnt)])
    after = _group([note(202, "b")], [note(203, "b", legacy=False)], keymap)
    assert not after.differences
    reconcile.offer(ROLES, [(Verdicts("after", got), after)])
    assert got == [("after", [], 0)]
    clock[0] = 2.5
    reconcile.due()
    assert len(got) == 1  # a key difference waits longer than a one-sided row
    clock[0] = 10.5
    reconcile.due()
    assert got[1] == ("burnt", [Kind.ROW_CHANGED], 0) and reconcile.reordered == 0


def test_burnt_values_taken_in_another_order_are_no_difference_once_the_sequences_agree():
    """Two writes at once each burnt a value (ON CONFLICT DO NOTHING): on the primary the
    other write's burn came after this insert took 202, on the shadow before it, so the
    row took 203 there. The logs show no burnt value; the sequences, read once no write
    runs, both stand at 203: in step."""
    keymap = KeyMap()
    keymap.learn("notes", (200,), (200,))
    reconcile, _ = setup(keymap, key_wait=10.0, busy=False, read=True)
    got: list = []
    group = _group([note(202, "a")], [note(203, "a", legacy=False)], keymap)
    assert [d.kind for d in group.differences] == [Kind.ROW_CHANGED]
    reconcile.offer(ROLES, [(Verdicts("a", got), group)])
    assert got == [] and reconcile.asking() == {(ROLES, "notes")}
    reconcile.sequences(ROLES, "notes", (203, 203))
    assert got == [("a", [], 1)] and reconcile.reordered == 1 and not reconcile.asking()


def test_a_burnt_value_the_sequences_confirm_is_reported_at_once():
    keymap = KeyMap()
    keymap.learn("notes", (200,), (200,))
    reconcile, _ = setup(keymap, key_wait=10.0, busy=False, read=True)
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("a", got), _group(
        [note(201, "a")], [note(202, "a", legacy=False)], keymap))])
    assert got == []
    reconcile.sequences(ROLES, "notes", (201, 202))  # the shadow's burnt 201 for good
    assert got == [("a", [Kind.ROW_CHANGED], 0)] and reconcile.reordered == 0


def test_sequences_that_cannot_be_read_leave_the_key_difference_as_it_stands():
    reconcile, clock = setup(key_wait=10.0, busy=False, read=True)
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), keyed(5, 4))])
    reconcile.sequences(ROLES, "notes", None)
    assert got == [("post", [Kind.ROW_CHANGED], 0)]


def test_a_table_still_written_is_not_read_and_its_key_difference_waits():
    reconcile, clock = setup(key_wait=10.0, busy=True, read=True)
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), keyed(5, 4))])
    assert reconcile.asking() == set() and got == []
    clock[0] = 10.5
    reconcile.due()
    assert got == [("post", [Kind.ROW_CHANGED], 0)]


def test_a_one_sided_row_waits_only_until_every_exchange_begun_before_it_concluded():
    """Exchanges 1..7 had begun when the verdict was held; its twin can only be in one of
    them. While 5 is open it waits (however long, up to its wait); once all are
    concluded no twin can come, and it is reported without waiting out its wait."""
    clock, latest, oldest_open = [0.0], [7], [5]
    keymap = KeyMap()
    matcher = ChangeMatcher(LEGACY, CANDIDATE, RowRules(), keymap, RowStamps())
    reconcile = Reconcile(wait=10.0, matcher=lambda p, s: matcher, clock=lambda: clock[0],
                          horizon=lambda: latest[0],
                          concluded=lambda flow: oldest_open[0] is None or oldest_open[0] > flow)
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), missing(note(4, "lost")))])
    latest[0] = 9  # later exchanges begin: they cannot hold its twin
    clock[0] = 3.0
    reconcile.due()
    assert got == []
    oldest_open[0] = 8
    reconcile.due()
    assert got == [("post", ["row_missing"], 0)]


def test_a_twin_in_an_exchange_begun_before_is_still_paired_when_it_concludes_late():
    clock, oldest_open = [0.0], [3]
    keymap = KeyMap()
    matcher = ChangeMatcher(LEGACY, CANDIDATE, RowRules(), keymap, RowStamps())
    reconcile = Reconcile(wait=10.0, matcher=lambda p, s: matcher, clock=lambda: clock[0],
                          horizon=lambda: 4,
                          concluded=lambda flow: oldest_open[0] is None or oldest_open[0] > flow)
    got: list = []
    reconcile.offer(ROLES, [(Verdicts("post", got), missing(note(4, "audit")))])
    clock[0] = 6.0  # past the old 2 s wait: the shadow is seconds behind
    reconcile.due()
    oldest_open[0] = None
    reconcile.offer(ROLES, [(Verdicts("get", got), extra(note(9, "audit", legacy=False)))])
    assert sorted(got) == [("get", [], 1), ("post", [], 1)]
