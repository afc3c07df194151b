"""Work queue semantics: dedupe, one worker per key, backoff, delayed adds, drain."""

from __future__ import annotations

import asyncio

import pytest
from capstan.client.workqueue import WorkQueue

pytestmark = pytest.mark.unit


async def test_adds_of_a_queued_key_are_merged_and_order_is_fifo() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "c", "b", "a"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_added_while_processing_is_requeued_only_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await q.get()
    assert key == "a"
    q.add("a")
    q.add("a")
    # Not handed to a second worker while the first holds it.
    assert len(q) == 0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await q.get()
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_one_worker_per_key_under_concurrency() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    overlaps = 0
    processed = 0

    async def worker() -> None:
        nonlocal overlaps, processed
        while (key := await q.get()) is not None:
            if key in active:
                overlaps += 1
            active.add(key)
            await asyncio.sleep(0.001)
            active.discard(key)
            processed += 1
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    for round_ in range(50):
        for key in range(5):
            q.add(key)
        await asyncio.sleep(0.0005 * (round_ % 3))
    await q.shutdown(drain=True)
    await asyncio.gather(*workers)
    assert overlaps == 0
    # Dedupe: far fewer runs than the 250 adds, but every key ran at least once.
    assert 5 <= processed < 250


async def test_rate_limited_backoff_doubles_up_to_the_cap_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.05)
    delays = []
    for _ in range(5):
        delays.append(q.backoff("k"))
        q.add_rate_limited("k")
    assert delays == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert q.num_requeues("k") == 5
    q.forget("k")
    assert q.num_requeues("k") == 0
    assert q.backoff("k") == 0.01
    # Other keys have their own backoff.
    assert q.backoff("other") == 0.01


async def test_rate_limited_add_arrives_after_its_backoff() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.08, max_delay=1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_rate_limited("k")
    assert len(q) == 0
    assert await q.get() == "k"
    assert loop.time() - start >= 0.075


async def test_delayed_adds_fire_in_time_order_and_earliest_wins() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("late", 0.12)
    q.add_after("early", 0.04)
    q.add_after("moved", 0.3)
    q.add_after("moved", 0.08)  # earlier: replaces
    q.add_after("moved", 0.5)  # later: ignored
    got = []
    for _ in range(3):
        key = await q.get()
        assert key is not None
        got.append(key)
        q.done(key)
    assert got == ["early", "moved", "late"]
    assert q.pending_delayed == 0


async def test_shutdown_drains_processing_and_hands_out_the_rest() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in "abc":
        q.add(key)
    first = await q.get()
    assert first == "a"
    q.add_after("never", 0.01)
    drained = asyncio.create_task(q.shutdown(drain=True))
    await asyncio.sleep(0.02)
    assert not drained.done()  # "a" is still being processed; b and c queued
    q.add("d")  # ignored after shutdown
    q.done("a")
    rest = []
    while (next_key := await q.get()) is not None:
        rest.append(next_key)
        q.done(next_key)
    await asyncio.wait_for(drained, 1)
    assert rest == ["b", "c"]
    assert await q.get() is None


async def test_shutdown_wakes_idle_getters() -> None:
    q: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0.01)
    await q.shutdown()
    assert await asyncio.gather(*getters) == [None, None, None]
