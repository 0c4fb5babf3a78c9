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
