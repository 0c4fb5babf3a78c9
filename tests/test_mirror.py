"""The mirror lane in isolation: bounded, never blocking, drops counted, failures reported."""

import asyncio

from shadow.mirror import MirrorLane


def lane(**kw):
    errors: list[tuple[str, BaseException]] = []
    drops: list[str] = []
    defaults = dict(name="t", queue_size=2, workers=1, timeout=1.0,
                    raised=lambda op, exc: errors.append((op, exc)), on_dropped=drops.append)
    defaults.update(kw)
    return MirrorLane(**defaults), errors, drops


async def test_full_queue_drops_without_waiting_and_tells_the_job():
    mirror, _, drops = lane()
    mirror.start()
    gate = asyncio.Event()
    told: list[str] = []

    async def blocked():
        await gate.wait()

    # submitted in one loop turn: the queue holds two, the rest are dropped at once
    accepted = [mirror.submit(blocked, on_drop=told.append) for _ in range(5)]
    assert accepted == [True, True, False, False, False]
    await asyncio.sleep(0.05)
    # a worker took one: there is room for exactly one more
    assert mirror.busy == 1
    assert [mirror.submit(blocked, on_drop=told.append) for _ in range(2)] == [True, False]
    assert drops.count("queue_full") == 4 and told == ["queue_full"] * 4
    gate.set()
    assert await mirror.drain(2.0)


async def test_jobs_of_an_ordered_lane_run_in_submission_order():
    mirror, _, _ = lane(queue_size=100, workers=1)
    mirror.start()
    order: list[int] = []

    def job(i):
        async def run():
            await asyncio.sleep(0.001 * (5 - i % 5))
            order.append(i)
        return run

    for i in range(20):
        assert mirror.submit(job(i))
    assert await mirror.drain(5.0)
    assert order == list(range(20))


async def test_timeout_and_failure_are_data_not_exceptions():
    mirror, errors, drops = lane(timeout=0.05, queue_size=10, workers=2)
    mirror.start()
    told: list[str] = []

    async def hang():
        await asyncio.sleep(10)

    async def boom():
        raise ValueError("bug in the verifier")

    mirror.submit(hang, on_drop=told.append)
    mirror.submit(boom)
    await asyncio.sleep(0.2)
    assert told == ["timeout"] and "timeout" in drops
    assert [op for op, _ in errors] == ["lane_t"]
    assert await mirror.drain(1.0)


async def test_drain_cancels_what_is_left_at_the_deadline():
    mirror, _, drops = lane(queue_size=10, workers=1, timeout=30)
    mirror.start()
    told: list[str] = []

    async def hang():
        await asyncio.sleep(30)

    for _ in range(3):
        mirror.submit(hang, on_drop=told.append)
    await asyncio.sleep(0.02)
    assert not await mirror.drain(0.1)
    assert sorted(told) == ["cancelled", "shutdown", "shutdown"]
    assert not mirror.submit(hang)
    assert drops[-1] == "closing"


async def test_a_read_waits_only_for_writes_the_primary_finished_before_it_arrived():
    from shadow.writes import WriteOrder

    order = WriteOrder(max_parked=10)
    released: list[str] = []
    concurrent = order.read_arrived()          # arrives before any write is done
    w1, _ = order.write_started()
    order.write_done_on_primary(w1)
    after_w1 = order.read_arrived()            # arrives after w1 finished on the primary
    w2, _ = order.write_started()              # w2 still running on the primary...
    during_w2 = order.read_arrived()           # ...when this read arrives: concurrent
    for name, ticket in (("concurrent", concurrent), ("after_w1", after_w1),
                         ("during_w2", during_w2)):
        order.when_visible(ticket, lambda n=name: released.append(n), released.append)
    assert released == ["concurrent"]
    order.finished(w1)
    assert released == ["concurrent", "after_w1", "during_w2"]
    assert order.parked == 0


async def test_a_write_waits_for_reads_the_primary_finished_before_it_started():
    from shadow.writes import WriteOrder

    order = WriteOrder(max_parked=10)
    early, late = order.read_arrived(), order.read_arrived()
    order.read_done_on_primary(early)
    seq, reads_before = order.write_started()
    order.read_done_on_primary(late)           # finished after the write started
    waiting = asyncio.ensure_future(order.reads_done(reads_before, timeout=1.0))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    order.read_done_on_shadow(early)
    assert await waiting                       # `late` is concurrent: not waited for
    assert not await order.reads_done(order.write_started()[1], timeout=0.05)


async def test_parked_reads_are_bounded_and_dropped_writes_release_them():
    from shadow.writes import WriteOrder

    reported: list[str] = []
    order = WriteOrder(max_parked=1, on_dropped=reported.append)
    w1, _ = order.write_started()
    w2, _ = order.write_started()
    order.write_done_on_primary(w2)
    out: list[str] = []
    order.when_visible(order.read_arrived(), lambda: out.append("ran"), out.append)
    order.when_visible(order.read_arrived(), lambda: out.append("ran"), out.append)
    assert out == ["queue_full"]
    order.dropped(w2)                          # out of turn: waits for w1
    assert out == ["queue_full"]
    order.finished(w1)
    assert out == ["queue_full", "ran"] and order.pending == 0
    assert reported == ["queue_full"]  # counted once, where the drop happened
    order.when_visible(order.read_arrived(), lambda: out.append("ran"), out.append)
    w3, _ = order.write_started()
    order.write_done_on_primary(w3)
    order.when_visible(order.read_arrived(), lambda: out.append("late"), out.append)
    order.drop_parked("shutdown")
    assert out[-1] == "shutdown" and reported == ["queue_full", "shutdown"]


async def test_write_completion_never_goes_back_when_writes_are_answered_out_of_turn():
    from shadow.writes import WriteOrder

    order = WriteOrder(max_parked=10)
    w1, _ = order.write_started()
    w2, _ = order.write_started()           # the lock passed on at w1's last reply byte
    order.write_done_on_primary(w2)         # w2's handler happened to resume first
    order.write_done_on_primary(w1)
    ran: list[str] = []
    order.when_visible(order.read_arrived(), lambda: ran.append("read"), ran.append)
    order.finished(w1)
    assert ran == []                        # it must see w2 too
    order.finished(w2)
    assert ran == ["read"]


async def test_a_write_dropped_after_it_finished_changes_nothing():
    from shadow.writes import WriteOrder

    order = WriteOrder(max_parked=10)
    w1, _ = order.write_started()
    order.finished(w1)                      # its reply was on the wire...
    order.dropped(w1)                       # ...then its job timed out draining rows
    w2, _ = order.write_started()
    order.write_done_on_primary(w2)
    ran: list[str] = []
    order.when_visible(order.read_arrived(), lambda: ran.append("read"), ran.append)
    assert ran == [] and order.pending == 1
    order.finished(w2)
    assert ran == ["read"] and order.pending == 0
