"""Causality on the shadow, as pure logic: who waits for whom."""

from shadow.writes.causality import Causality


def test_a_request_waits_only_for_writes_the_primary_finished_before_it_was_sent():
    order = Causality(max_parked=10)
    released: list[str] = []
    concurrent = order.sent(1, writes=False)      # sent before any write is done
    w1 = order.sent(2, writes=True)
    order.primary_done(w1)
    after_w1 = order.sent(3, writes=False)        # sent after w1 finished on the primary
    w2 = order.sent(4, writes=True)               # w2 still running on the primary...
    during_w2 = order.sent(5, writes=False)       # ...when this one is sent: concurrent
    for name, ticket in (("concurrent", concurrent), ("after_w1", after_w1),
                         ("during_w2", during_w2)):
        order.when_ready(ticket, lambda n=name: released.append(n), released.append)
    assert released == ["concurrent"]
    order.shadow_done(w1)
    assert released == ["concurrent", "after_w1", "during_w2"]
    assert order.parked == 0 and order.pending == 1
    order.shadow_done(w2)
    assert order.pending == 0


def test_overlapping_writes_run_together_on_the_shadow():
    """A slow write holds no other write on the shadow: the two overlapped on the primary."""
    order = Causality(max_parked=10)
    ran: list[str] = []
    slow = order.sent(1, writes=True)
    fast = order.sent(2, writes=True)
    order.when_ready(slow, lambda: ran.append("slow"), ran.append)
    order.when_ready(fast, lambda: ran.append("fast"), ran.append)
    order.primary_done(fast)
    after_fast = order.sent(3, writes=True)
    order.when_ready(after_fast, lambda: ran.append("after fast"), ran.append)
    assert ran == ["slow", "fast"]
    order.shadow_done(fast)                       # the slow one still runs on the shadow
    assert ran == ["slow", "fast", "after fast"]


def test_a_write_waits_for_reads_the_primary_finished_before_it_was_sent():
    order = Causality(max_parked=10)
    early, late = order.sent(1, writes=False), order.sent(2, writes=False)
    order.primary_done(early)
    write = order.sent(3, writes=True)
    order.primary_done(late)                      # finished after the write was sent
    ran: list[str] = []
    order.when_ready(write, lambda: ran.append("write"), ran.append)
    assert ran == []
    order.shadow_done(early)
    assert ran == ["write"]                       # `late` is concurrent: not waited for


def test_completions_out_of_turn_keep_the_watermark_exact():
    order = Causality(max_parked=10)
    w1, w2 = order.sent(1, writes=True), order.sent(2, writes=True)
    order.shadow_done(w2)                         # the shadow answered before the primary
    order.primary_done(w2)
    order.primary_done(w1)
    ran: list[str] = []
    order.when_ready(order.sent(3, writes=False), lambda: ran.append("read"), ran.append)
    assert ran == []                              # it must see w1 too
    order.shadow_done(w1)
    assert ran == ["read"]


def test_parked_requests_are_bounded_and_dropped_at_shutdown():
    reported: list[str] = []
    order = Causality(max_parked=1, on_dropped=reported.append)
    w1 = order.sent(1, writes=True)
    order.primary_done(w1)
    out: list[str] = []
    order.when_ready(order.sent(2, writes=False), lambda: out.append("ran"), out.append)
    order.when_ready(order.sent(3, writes=False), lambda: out.append("ran"), out.append)
    assert out == ["queue_full"] and order.parked == 1
    order.drop_parked("shutdown")
    assert out == ["queue_full", "shutdown"] and reported == ["queue_full", "shutdown"]


def test_keys_not_learnt_keep_a_request_parked_until_released():
    learnt = {"w1": False}
    order = Causality(max_parked=10, keys_ready=lambda ticket: learnt["w1"])
    w1 = order.sent(1, writes=True)
    order.primary_done(w1)
    order.shadow_done(w1)
    ran: list[str] = []
    order.when_ready(order.sent(2, writes=False), lambda: ran.append("read"), ran.append)
    assert ran == []
    learnt["w1"] = True
    order.release()
    assert ran == ["read"]

