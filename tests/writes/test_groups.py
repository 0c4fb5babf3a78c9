"""Groups of exchanges whose changes cannot be told apart (pure logic)."""

from shadow.verdict import RowChange
from shadow.writes.groups import Group, Groups, Member


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


def test_an_overflowing_group_lets_its_members_go_and_streams_its_changes():
    final: list[Group] = []
    streamed: list[tuple] = []
    groups = Groups(max_members=2, on_final=final.append,
                    on_stream=lambda backend, seq, c, flows: streamed.append(
                        (backend, seq, c.key, flows)))
    for flow in (1, 2, 3):
        groups.add(member(flow))
    groups.place("legacy", 1, change(1), [1, 2])
    groups.done(1, "legacy")
    groups.done(1, "candidate")
    assert final == [] and streamed == []
    groups.place("legacy", 2, change(2), [2, 3])  # three members: over the limit
    assert streamed == [("legacy", 1, (1,), (1, 2)), ("legacy", 2, (2,), (2, 3))]
    assert [g.members[0].flow for g in final] == [1] and final[0].overflow
    assert final[0].changes == {}  # its changes went to the stream, before 1 was let go
    groups.place("candidate", 3, change(2), [3])
    assert streamed[-1] == ("candidate", 3, (2,), (3,))
    for flow in (2, 3):
        groups.done(flow, "legacy")
        groups.done(flow, "candidate")
    assert [g.members[0].flow for g in final] == [1, 2, 3] and len(groups) == 0


def test_changes_placed_before_a_group_overflows_are_streamed_in_drain_order():
    final: list[Group] = []
    streamed: list[tuple] = []
    groups = Groups(max_members=3, on_final=final.append,
                    on_stream=lambda backend, seq, c, flows: streamed.append((backend, seq)))
    for flow in (1, 2, 3, 4):
        groups.add(member(flow))
    groups.place("legacy", 1, change(1), [1])
    groups.place("candidate", 3, change(1), [2])
    groups.place("candidate", 5, change(9), [1, 2])  # two groups with changes join
    groups.place("legacy", 2, change(2), [3])
    groups.place("legacy", 4, change(3), [3, 4])
    assert streamed == []
    groups.place("legacy", 6, change(4), [2, 3])  # four members: over the limit
    per_backend = {b: [seq for bb, seq in streamed if bb == b] for b in ("legacy", "candidate")}
    assert per_backend == {"legacy": [1, 2, 4, 6], "candidate": [3, 5]}
