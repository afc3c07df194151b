from __future__ import annotations

import pytest
from kubelet.backoff import CrashLoopBackoff

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_restart_immediate_then_doubling_to_the_cap() -> None:
    clock = Clock()
    b = CrashLoopBackoff(10, 300, clock)
    assert b.remaining("p/c", clock.now) == 0
    delays = []
    for _ in range(8):
        b.restarted("p/c")
        delays.append(b.delay("p/c"))
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_remaining_counts_from_the_exit() -> None:
    clock = Clock()
    b = CrashLoopBackoff(10, 300, clock)
    b.restarted("p/c")
    exited = clock.now
    clock.now += 4
    assert b.remaining("p/c", exited) == pytest.approx(6)
    clock.now += 7
    assert b.remaining("p/c", exited) == 0


def test_a_long_healthy_run_resets_the_backoff() -> None:
    clock = Clock()
    b = CrashLoopBackoff(10, 300, clock)
    for _ in range(4):
        b.restarted("p/c")
    assert b.delay("p/c") == 80
    clock.now += 601
    b.restarted("p/c")
    assert b.delay("p/c") == 10


def test_forget_by_pod() -> None:
    b = CrashLoopBackoff(10, 300, Clock())
    b.restarted("u1/a")
    b.restarted("u2/a")
    b.forget("u1/")
    assert b.delay("u1/a") == 0 and b.delay("u2/a") == 10


def test_remaining_since_update_counts_from_the_last_failure() -> None:
    clock = Clock()
    b = CrashLoopBackoff(10, 300, clock)
    assert b.remaining_since_update("p/pull:img") == 0
    b.restarted("p/pull:img")
    clock.now += 4
    assert b.remaining_since_update("p/pull:img") == pytest.approx(6)
    clock.now += 6
    assert b.remaining_since_update("p/pull:img") == 0
    b.restarted("p/pull:img")
    clock.now += 5
    assert b.remaining_since_update("p/pull:img") == pytest.approx(15)
