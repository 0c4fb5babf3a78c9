"""The bounded write hold on the primary (asyncio, no I/O)."""

import asyncio

from shadow.writes.hold import Hold


async def test_a_write_waits_for_the_one_in_flight_then_goes():
    hold = Hold(limit=5.0, drains=False)
    first = hold.opened()
    entered = asyncio.ensure_future(hold.enter())
    await asyncio.sleep(0.01)
    assert not entered.done()
    hold.closed(first)
    await entered


async def test_with_row_capture_it_also_waits_for_the_drain_behind_that_write():
    outcomes: list[str] = []
    hold = Hold(limit=5.0, drains=True, on_wait=outcomes.append)
    first = hold.opened()
    hold.closed(first)
    entered = asyncio.ensure_future(hold.enter())
    await asyncio.sleep(0.01)
    assert not entered.done()
    hold.drained(asyncio.get_running_loop().time() + 1e9)   # a drain began after the close
    await entered
    assert outcomes == ["waited"]


async def test_the_wait_is_bounded_and_waiters_go_one_at_a_time():
    outcomes: list[str] = []
    hold = Hold(limit=0.05, drains=False, on_wait=outcomes.append)
    stuck = hold.opened()                     # a write that never ends (a stalled client)
    await hold.enter()                        # gives up after the limit
    assert outcomes == ["expired"]
    hold.closed(stuck)
    a, b = hold.opened(), None
    first = asyncio.ensure_future(hold.enter())
    second = asyncio.ensure_future(hold.enter())
    await asyncio.sleep(0)
    hold.closed(a)
    await first
    b = hold.opened()
    await asyncio.sleep(0.01)
    assert not second.done()                  # the first waiter's write is in flight now
    hold.closed(b)
    await second


async def test_no_wait_behind_a_write_that_already_ran_longer_than_the_limit():
    outcomes: list[str] = []
    hold = Hold(limit=0.02, drains=False, on_wait=outcomes.append)
    hold.opened()
    await asyncio.sleep(0.03)
    await hold.enter()
    assert outcomes == []                     # went at once: waiting would not help


async def test_off_means_no_wait_at_all():
    hold = Hold(limit=0.0, drains=True)
    hold.opened()
    await hold.enter()
