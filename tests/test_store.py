"""The state store on a real SQLite file."""

import time

import pytest

from shadow.store import Store

SIG = ("GET /a body $.x", "GET", "/a", "body", "$.x")


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(str(tmp_path / "state.db"), samples_per_signature=2, max_signatures=3,
                         retention_hours=1, flush_interval=3600, sample_interval=60)
    yield s
    await s.close()


async def test_counts_fold_in_memory_and_land_in_one_flush(store):
    for i in range(10):
        store.record(signatures=[SIG], exchange_id=f"e{i}", method="GET", route="/a",
                     sample={"n": i})
    assert await store.signatures() == []  # nothing written before a flush
    await store.flush()
    [row] = await store.signatures()
    assert row["count"] == 10 and row["samples"] == 2 and row["trend"][-1] == 10
    samples = await store.samples(signature=SIG[0])
    assert [s["sample"]["n"] for s in samples] == [1, 0]  # cap reached, then throttled


async def test_newest_samples_are_kept_once_the_interval_passes(store):
    now = time.time()
    for i in range(4):
        store.record(signatures=[SIG], exchange_id=f"e{i}", method="GET", route="/a",
                     sample={"n": i}, now=now + i * 61)
    await store.flush()
    assert [s["sample"]["n"] for s in await store.samples()] == [3, 2]


async def test_sample_cap_on_number_of_signatures(store):
    for i in range(5):
        sig = (f"GET /a body $.f{i}", "GET", "/a", "body", f"$.f{i}")
        assert store.wants_sample(sig[0]) == (i < 3)
        store.record(signatures=[sig], exchange_id="e", method="GET", route="/a", sample={"i": i})
    await store.flush()
    # Past max_signatures the oldest of equally frequent signatures go, samples with them.
    assert [r["signature"][-2:] for r in await store.signatures()] == ["f2", "f3", "f4"]
    assert len(await store.samples()) == 1


async def test_meta_audit_and_reopen_keep_state(tmp_path):
    path = str(tmp_path / "state.db")
    s = await Store.open(path)
    await s.set_meta("mode", "cutover")
    await s.add_audit(action="mode", from_mode="shadow", to_mode="cutover", forced=True,
                      reason="hotfix", who="ops", gate={"passed": False})
    s.record(signatures=[SIG], exchange_id="e1", method="GET", route="/a", sample={"n": 1})
    await s.close()  # close flushes
    s = await Store.open(path)
    try:
        assert await s.get_meta("mode") == "cutover"
        [entry] = await s.audit()
        assert entry["forced"] is True and entry["gate"] == {"passed": False}
        assert (await s.signatures())[0]["count"] == 1
    finally:
        await s.close()


async def test_prune_drops_old_samples(store):
    store.record(signatures=[SIG], exchange_id="old", method="GET", route="/a",
                 sample={"n": 0}, now=time.time() - 7200)
    await store.flush()
    assert await store.prune() == 1
    assert await store.samples() == []


async def test_signatures_past_the_cap_are_evicted_least_frequent_and_least_recent_first(tmp_path):
    s = await Store.open(str(tmp_path / "cap.db"), samples_per_signature=1, max_signatures=3,
                         retention_hours=1, flush_interval=3600, sample_interval=60)
    evicted = []
    s.on_evicted = evicted.append
    now = time.time()
    try:
        for _ in range(50):  # one cause seen often, long ago
            s.record(signatures=[("frequent", "GET", "/a", "body", "$.x")], exchange_id="f",
                     method="GET", route="/a", sample={"n": 0}, now=now - 7200)
        for i in range(20):  # a flood of signatures keyed by request values, seen once
            s.record(signatures=[(f"flood{i}", "GET", "/b", "body", f"$.k{i}")],
                     exchange_id=f"e{i}", method="GET", route="/b", sample={"n": i},
                     now=now + i)
        await s.flush()
        kept = {row["signature"] for row in await s.signatures()}
        assert kept == {"frequent", "flood19", "flood18"}
        assert evicted == [18] and s.signature_count == 3
        assert {row["signature"] for row in await s.samples()} <= kept
    finally:
        await s.close()
