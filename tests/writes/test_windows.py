"""Where a drained change may belong, and when a window is final (pure logic)."""

from shadow.verdict import RowChange
from shadow.writes.windows import Clock, Learnt, Side

EXACT = Clock(offset=0.0, before=0.0, after=0.0)


def change(at: float | None, key: int = 1) -> RowChange:
    return RowChange("t", (key,), "insert", None, {"id": key}, at=at)


def flows(placed) -> list[list[int]]:
    return [[w.flow for w in p.windows] for p in placed]


def test_a_change_belongs_to_the_window_its_time_falls_in():
    side = Side("legacy", EXACT)
    a = side.open(1, "/a", True, 10.0)
    side.close(a, 11.0)
    b = side.open(2, "/b", True, 12.0)
    side.close(b, 13.0)
    placed = side.place([change(10.5), change(12.5), change(11.5)], 14.0, 14.1)
    assert flows(placed) == [[1], [2], []]        # the last one: an outside write


def test_overlapping_windows_both_hold_a_change_in_their_overlap():
    side = Side("legacy", EXACT)
    a = side.open(1, "/a", True, 10.0)
    b = side.open(2, "/b", True, 10.5)
    side.close(a, 11.0)
    side.close(b, 12.0)
    assert flows(side.place([change(10.7), change(11.5)], 13.0, 13.1)) == [[1, 2], [2]]


def test_the_margin_of_a_coarse_clock_widens_a_change():
    side = Side("legacy", Clock(offset=0.0, before=0.0002, after=0.0012))
    a = side.open(1, "/a", True, 10.0)
    side.close(a, 10.0100)
    b = side.open(2, "/b", True, 10.0105)         # 0.5 ms later: within the margin
    side.close(b, 10.02)
    assert flows(side.place([change(10.0099)], 10.03, 10.031)) == [[1, 2]]


def test_the_batch_bounds_separate_writes_the_clock_cannot():
    """A write sent after the drain behind the previous one returned shares no change with
    it, whatever the clock's resolution: that is what the hold buys."""
    side = Side("legacy", Clock(offset=0.0, before=0.01, after=0.01))
    a = side.open(1, "/a", True, 10.000)
    side.close(a, 10.001)
    first = side.place([change(10.0005)], 10.0012, 10.0015)   # drained behind `a`
    side.settle(10.0012)
    b = side.open(2, "/b", True, 10.0016)                      # sent after that drain
    side.close(b, 10.0020)
    second = side.place([change(10.0018)], 10.0021, 10.0023)
    assert flows(first) == [[1]] and flows(second) == [[2]]


def test_a_window_is_final_after_the_first_drain_that_began_after_it_closed():
    side = Side("legacy", EXACT)
    a = side.open(1, "/a", True, 10.0)
    b = side.open(2, "/b", True, 10.2)
    side.close(a, 10.5)
    assert side.settle(10.4) == []                # began before `a` closed
    assert side.settle(10.6) == [a]
    assert side.live == [b] and side.open_count == 1


def test_reads_are_candidates_only_until_a_change_shows_their_route_writes():
    side = Side("legacy", EXACT)
    read = side.open(1, "/feed", False, 10.0)
    write = side.open(2, "/post", True, 10.0)
    side.close(read, 11.0)
    side.close(write, 11.0)
    assert flows(side.place([change(10.5)], 12.0, 12.1)) == [[2]]
    side.settle(12.0)
    audit = side.open(3, "/feed", False, 13.0)    # a read that writes, alone
    side.close(audit, 14.0)
    assert flows(side.place([change(13.5)], 15.0, 15.1)) == [[3]]
    assert side.writing == {"/feed"}
    side.settle(15.0)
    read = side.open(4, "/feed", False, 16.0)
    write = side.open(5, "/post", True, 16.0)
    side.close(read, 17.0)
    side.close(write, 17.0)
    assert flows(side.place([change(16.5)], 18.0, 18.1)) == [[4, 5]]


def test_a_change_known_within_a_span_teaches_no_read_route_it_could_be_two_of():
    side = Side("legacy", EXACT)
    feed = side.open(1, "/feed", False, 10.0)
    side.close(feed, 10.004)
    item = side.open(2, "/items/{id}", False, 10.005)    # the client's next read
    side.close(item, 10.009)
    spanned = RowChange("t", (1,), "insert", None, {"id": 1}, at=10.006, since=10.003)
    assert flows(side.place([spanned], 10.0095, 10.0099)) == [[1, 2]]
    assert side.writing == set() and feed.wrote and item.wrote  # both kept from rechecks
    side.settle(10.0095)
    alone = side.open(3, "/feed", False, 11.0)
    side.close(alone, 11.004)
    assert flows(side.place([change(11.002)], 11.005, 11.006)) == [[3]]
    assert side.writing == {"/feed"}


def test_a_change_without_a_time_may_belong_to_any_window_the_batch_allows():
    side = Side("legacy", EXACT)
    a = side.open(1, "/a", True, 10.0)
    side.close(a, 11.0)
    later = side.open(2, "/b", True, 12.5)        # sent after the drain began
    assert flows(side.place([change(None)], 12.0, 12.4)) == [[1]]
    assert later.final is False


def test_a_clock_offset_maps_the_database_time():
    side = Side("candidate", Clock(offset=100.0, before=0.0, after=0.0))
    a = side.open(1, "/a", True, 10.0)
    side.close(a, 11.0)
    assert flows(side.place([change(110.5)], 12.0, 12.1)) == [[1]]


def test_what_one_backend_learns_about_reads_holds_on_the_other():
    """A read seen writing on the shadow is a candidate on the primary too, so its row is
    not charged to a concurrent write on one side and to the read on the other."""
    learnt = Learnt()
    primary, shadow = Side("legacy", EXACT, learnt), Side("candidate", EXACT, learnt)
    audit = shadow.open(1, "/feed", False, 10.0)
    shadow.close(audit, 11.0)
    assert flows(shadow.place([change(10.5)], 12.0, 12.1)) == [[1]]
    read = primary.open(1, "/feed", False, 20.0)
    write = primary.open(2, "/post", True, 20.0)
    primary.close(read, 21.0)
    primary.close(write, 21.0)
    assert flows(primary.place([change(20.5)], 22.0, 22.1)) == [[1, 2]]
    assert primary.writing == shadow.writing == {"/feed"}


def test_a_route_is_usually_writing_when_half_its_reads_wrote():
    learnt = Learnt()
    side = Side("legacy", EXACT, learnt)
    at = 10.0
    for n in range(Learnt.MIN_READS * 2):
        window = side.open(n, "/feed", False, at)
        side.close(window, at + 1)
        side.place([change(at + 0.5)] if n % 2 == 0 else [], at + 2, at + 2.1)
        side.settle(at + 2)
        at += 10
        if n == 0:
            assert "/feed" in side.writing and not learnt.usually("/feed")  # too few reads
    assert learnt.usually("/feed")
    for n in range(3):                                  # reads that write only on errors
        window = side.open(100 + n, "/errors-only", False, at)
        side.close(window, at + 1)
        side.place([change(at + 0.5)] if n == 0 else [], at + 2, at + 2.1)
        side.settle(at + 2)
        at += 10
    for n in range(Learnt.MIN_READS):
        side.open(200 + n, "/errors-only", False, at)
    assert "/errors-only" in side.writing and not learnt.usually("/errors-only")


class Log:
    """A log position the test moves by hand, read by the side like the proxy reads one."""

    def __init__(self) -> None:
        self.low = self.high = 0

    def __call__(self) -> dict[str, tuple[int, int]]:
        return {"db": (self.low, self.high)}

    def commit(self) -> tuple[str, int]:
        self.low = self.high = self.high + 1
        return ("db", self.high)


def marked(mark: tuple[str, int], key: int = 1, at: float = 10.5,
           since: float | None = 10.0) -> RowChange:
    return RowChange("t", (key,), "insert", None, {"id": key}, at=at, since=since, mark=mark)


def test_a_change_placed_in_the_log_belongs_to_the_windows_its_commit_lies_between():
    # every change is known in time only within [10.0, 10.5], which all three windows
    # overlap; the log's order alone tells them apart
    log = Log()
    side = Side("legacy", EXACT, positions=log)
    a = side.open(1, "/a", True, 10.1)
    first = log.commit()
    side.close(a, 10.2)
    b = side.open(2, "/b", True, 10.2)
    c = side.open(3, "/c", True, 10.25)
    second = log.commit()
    side.close(c, 10.3)
    third = log.commit()
    side.close(b, 10.4)
    placed = side.place([marked(first), marked(second, 2), marked(third, 3)], 11.0, 11.1)
    assert flows(placed) == [[1], [2, 3], [2]]


def test_a_commit_being_published_as_a_window_opens_is_kept_in_it():
    # the index header is written twice; a reading between the two writes gives the
    # earlier copy as the lower bound and the later as the upper
    log = Log()
    side = Side("legacy", EXACT, positions=log)
    log.high = 1                                   # frame 1 published in one copy only
    a = side.open(1, "/a", True, 10.0)
    side.close(a, 10.1)
    assert a.opened == {"db": 0} and a.closed == {"db": 1}
    assert flows(side.place([marked(("db", 1), at=10.05, since=10.0)], 11.0, 11.1)) == [[1]]


def test_the_log_decides_over_the_clock_and_time_decides_for_a_log_the_window_did_not_read():
    log = Log()
    side = Side("legacy", EXACT, positions=log)
    a = side.open(1, "/a", True, 10.0)
    side.close(a, 11.0)
    other = marked(("pets", 7), at=10.5, since=10.4)   # a database whose log has no index
    later = marked(("db", 9), at=10.5, since=10.4)     # inside in time, after it in the log
    assert flows(side.place([other, change(10.5, 2), later], 13.0, 13.1)) == [[1], [1], []]
