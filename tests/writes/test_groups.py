"""Groups of exchanges whose changes cannot be told apart (pure logic)."""

from shadow.verdict import RowChange
from shadow.writes.groups import POOL, Group, Groups, Member


def member(flow: int, shadow: str | None = "candidate") -> Member:
    return Member(flow, "POST", f"/r{flow}", "legacy", shadow, True, pair=object())


def change(key: int) -> RowChange:
    return RowChange("t", (key,), "insert", None, {"id": key})


def test_a_lone_exchange_is_final_once_both_of_its_windows_are():
    final: list[Group] = []
    groups = Groups(max_members=8, on_final=final.append)
    groups.add(member(1))
    groups.place("legacy", 1, change(1), [1])
    groups.done(1, "legacy")
    assert final == []
    groups.place("candidate", 2, change(1), [1])
    groups.done(1, "candidate")
    [group] = final
    assert group.exact and group.rows("legacy") == group.rows("candidate") == (change(1),)
    assert len(groups) == 0


def test_a_change_of_two_windows_joins_their_exchanges_and_both_sides_count():
    final: list[Group] = []
    groups = Groups(max_members=8, on_final=final.append)
    for flow in (1, 2, 3):
        groups.add(member(flow))
    groups.place("legacy", 1, change(1), [1])
    groups.place("legacy", 2, change(2), [2])
    groups.place("candidate", 3, change(2), [2, 3])   # grouped on the shadow only
    groups.place("candidate", 4, change(1), [1])
    for flow in (1, 2, 3):
        groups.done(flow, "legacy")
        groups.done(flow, "candidate")
    assert [len(g.members) for g in final] == [1, 2]
    assert final[1].rows("candidate") == (change(2),)
    assert groups.same(2, 3) is False             # forgotten once final


def test_a_group_is_final_only_when_every_member_is():
    final: list[Group] = []
    groups = Groups(max_members=8, on_final=final.append)
    groups.add(member(1))
    groups.add(member(2, shadow=None))            # never mirrored: waits for the primary only
    groups.place("legacy", 1, change(1), [1, 2])
    groups.done(1, "legacy")
    groups.done(1, "candidate")
    assert final == []
    groups.done(2, "legacy")
    assert [sorted(m.flow for m in g.members) for g in final] == [[1, 2]]


def test_changes_come_out_in_drain_order_whatever_the_merge_order():
    final: list[Group] = []
    groups = Groups(max_members=8, on_final=final.append)
    groups.add(member(1))
    groups.add(member(2))
    groups.place("legacy", 5, change(5), [2])
    groups.place("legacy", 3, change(3), [1])
    groups.place("legacy", 7, change(7), [1, 2])
    for flow in (1, 2):
        groups.done(flow, "legacy")
        groups.done(flow, "candidate")
    assert [c.key for c in final[0].rows("legacy")] == [(3,), (5,), (7,)]


def test_an_overflowing_group_lets_its_members_go_without_rows():
    final: list[Group] = []
    groups = Groups(max_members=2, on_final=final.append)
    for flow in (1, 2, 3):
        groups.add(member(flow))
    groups.place("legacy", 1, change(1), [1, 2])
    groups.done(1, "legacy")
    groups.done(1, "candidate")
    assert final == []
    groups.place("legacy", 2, change(2), [2, 3])  # three members: over the limit
    assert [g.members[0].flow for g in final] == [1] and final[0].overflow
    for flow in (2, 3):
        groups.done(flow, "legacy")
        groups.done(flow, "candidate")
    assert [g.members[0].flow for g in final] == [1, 2, 3]
    assert groups.discarded == 2 and len(groups) == 0


def test_an_overflowing_group_keeps_a_bounded_pool_of_inserts_for_its_key_pairs():
    final: list[Group] = []
    groups = Groups(max_members=3, on_final=final.append)
    for flow in (1, 2, 3, 4):
        groups.add(member(flow))
    groups.place("legacy", 1, change(1), [1])
    groups.place("legacy", 2, RowChange("t", (1,), "update", {"id": 1}, {"id": 1}), [1])
    groups.place("candidate", 3, change(1), [2])
    groups.place("candidate", 5, change(9), [1, 2])  # two groups with changes join
    groups.place("candidate", 6, change(8), [2, 3])
    for flow in (1, 2):
        groups.done(flow, "legacy")
        groups.done(flow, "candidate")
    assert final == []  # 3 is still running
    groups.place("legacy", 7, change(7), [4])
    groups.place("legacy", 4, change(2), [3, 4])  # four members: over the limit
    [batch] = final  # the finished members let go at once, with the group's pool
    assert [m.flow for m in batch.members] == [1, 2] and batch.overflow
    assert [c.key for c in batch.rows("legacy")] == [(1,), (2,), (7,)]  # inserts only
    assert [c.key for c in batch.rows("candidate")] == [(1,), (9,), (8,)]
    for key in range(3, 3 + POOL * 3 + 1):
        groups.place("legacy", 10 + key, change(key), [3, 4])
    groups.place("legacy", 99, RowChange("t", (3,), "delete", {"id": 3}, None), [4])
    legacy = [c.key for c in batch.rows("legacy")]  # the pool is shared, and bounded
    assert len(legacy) == POOL * 3 and legacy[-1] == (3 + POOL * 3,)
    assert groups.discarded == 7 + POOL * 3 + 1 + 1  # each change counted once
    for flow in (3, 4):
        groups.done(flow, "legacy")
        groups.done(flow, "candidate")
    assert [len(g.members) for g in final] == [2, 1, 1] and len(groups) == 0
