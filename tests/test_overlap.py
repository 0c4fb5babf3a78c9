"""The overlap of an exchange with writes, from the counters the proxy keeps (pure).

Exchange numbers are assigned on arrival at the proxy: a larger number arrived later."""

from __future__ import annotations

from shadow.overlap import KEPT, Clocks, WriteClock


def test_a_write_that_arrived_after_a_read_but_ran_first_on_the_shadow_overtook_it():
    clocks = Clocks()
    watch = clocks.watch(10)            # the read arrives; nothing runs on either side
    watch.primary_replied()             # the primary served it alone
    later = clocks.primary.start(11)    # then a write arrives that causality does not
    later()                             # order behind it (a read that writes)...
    copy = clocks.shadow.start(11)      # ...and its copy runs first on the shadow
    copy()
    watch.sending_shadow()
    watch.shadow_replied()
    assert (watch.primary, watch.shadow, watch.overtaken, watch.writes) == (0, 0, 1, 1)


def test_writes_that_arrived_before_a_read_ran_before_its_copy_without_overtaking_it():
    clocks = Clocks()
    earlier = clocks.primary.start(4)   # served on the primary before the read arrived
    earlier()
    watch = clocks.watch(5)
    watch.primary_replied()
    clocks.shadow.start(4)()            # the shadow replays it before the read's copy
    watch.sending_shadow()
    watch.shadow_replied()
    assert watch.writes == 0


def test_the_next_write_of_a_client_that_waits_for_each_reply_is_no_overlap():
    clocks = Clocks()
    watch = clocks.watch(7)
    watch.primary_replied()
    clocks.primary.start(8)()           # sent once the read's reply was in
    watch.sending_shadow()              # causality keeps its copy behind the read's
    watch.shadow_replied()
    clocks.shadow.start(8)()
    assert watch.writes == 0


def test_an_exchange_counted_as_a_write_does_not_overlap_itself():
    clocks = Clocks()
    watch = clocks.watch(3, itself=True)
    end = clocks.primary.start(3)
    end()
    watch.primary_replied()
    watch.sending_shadow()
    copy = clocks.shadow.start(3)
    copy()
    watch.shadow_replied()
    assert (watch.primary, watch.shadow, watch.overtaken) == (0, 0, 0)
    beside = clocks.watch(4, itself=True)
    mine, other = clocks.primary.start(4), clocks.primary.start(5)
    mine()
    other()
    beside.primary_replied()
    assert beside.primary == 1


def test_writes_started_beyond_the_numbers_kept_all_count_as_overtaking():
    clock = WriteClock()
    mark = clock.mark()
    for n in range(KEPT + 5):           # the oldest five are forgotten
        clock.start(n)()
    assert clock.later(mark, KEPT + 100) == 5
    assert clock.later(mark, -1) == KEPT + 5
    assert clock.later(clock.mark(), 0) == 0
