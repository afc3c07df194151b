"""The scheduling queue on a fake clock: order, backoff, unschedulable pool, moves."""

from __future__ import annotations

import asyncio

import pytest
from scheduler.podinfo import pod_info
from scheduler.queue import SchedulingQueue

from tests.unit.scheduler.builders import pod

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def info(name: str, priority: int = 0, created: int = 0) -> object:
    p = pod(name, priority=priority)
    p.metadata.creation_timestamp.seconds = created
    return pod_info(p)


async def pop_name(q: SchedulingQueue) -> str:
    async with asyncio.timeout(0.5):
        return (await q.pop()).info.name


async def test_priority_then_age() -> None:
    q = SchedulingQueue(clock=Clock())
    q.add(info("old-low", 0, 1))  # type: ignore[arg-type]
    q.add(info("new-high", 10, 5))  # type: ignore[arg-type]
    q.add(info("older-low", 0, 0))  # type: ignore[arg-type]
    assert [await pop_name(q) for _ in range(3)] == ["new-high", "older-low", "old-low"]


def test_backoff_doubles_to_the_cap() -> None:
    q = SchedulingQueue()
    assert [q.backoff_duration(a) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_unschedulable_waits_for_an_event_then_respects_backoff() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(info("x"))  # type: ignore[arg-type]
    qp = await q.pop()
    q.requeue_unschedulable(qp)
    assert q.lengths() == {"active": 0, "backoff": 0, "unschedulable": 1}
    # A node appears 0.5 s later: backoff (1 s) not over yet, so it goes to backoff.
    clock.now += 0.5
    q.move_all_to_active_or_backoff()
    assert q.lengths() == {"active": 0, "backoff": 1, "unschedulable": 0}
    clock.now += 0.6
    assert await pop_name(q) == "x"


async def test_event_during_the_attempt_sends_the_pod_to_backoff_not_the_pool() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(info("x"))  # type: ignore[arg-type]
    qp = await q.pop()
    q.move_all_to_active_or_backoff()  # e.g. a node added while x was being scheduled
    q.requeue_unschedulable(qp)
    assert q.lengths()["backoff"] == 1


async def test_unschedulable_pods_are_retried_after_the_timeout() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock, unschedulable_timeout=30)
    q.add(info("x"))  # type: ignore[arg-type]
    q.requeue_unschedulable(await q.pop())
    clock.now += 31
    assert await pop_name(q) == "x"


async def test_deleted_pods_are_never_popped() -> None:
    q = SchedulingQueue(clock=Clock())
    q.add(info("gone"))  # type: ignore[arg-type]
    q.add(info("stays"))  # type: ignore[arg-type]
    q.delete("default/gone")
    assert await pop_name(q) == "stays"
    with pytest.raises(TimeoutError):
        await pop_name(q)


async def test_spec_update_reactivates_an_unschedulable_pod() -> None:
    q = SchedulingQueue(clock=Clock())
    q.add(info("x"))  # type: ignore[arg-type]
    q.requeue_unschedulable(await q.pop())
    q.update(info("x"), spec_changed=False)  # type: ignore[arg-type]
    assert q.lengths()["unschedulable"] == 1
    q.update(info("x"), spec_changed=True)  # type: ignore[arg-type]
    assert await pop_name(q) == "x"


async def test_failed_bind_is_retried_after_backoff() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(info("x"))  # type: ignore[arg-type]
    qp = await q.pop()
    q.done("default/x")
    q.requeue_backoff(qp)
    assert q.lengths()["backoff"] == 1
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await q.pop()
    clock.now += 1.0
    assert await pop_name(q) == "x"
