"""The client driver loops every benchmark shares, so that a baseline and the thing compared
with it are driven identically (same coroutine shape, same bookkeeping per call).

closed_loop keeps a fixed number of calls in flight (throughput); paced starts calls on a
fixed clock whatever the server does (latency without coordinated omission).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

Call = Callable[[int], Awaitable[Any]]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Throughput:
    count: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else math.nan


async def closed_loop(call: Call, count: int, concurrency: int) -> Throughput:
    """Run call(0..count-1) with `concurrency` calls in flight; any failure aborts the run
    (a benchmark that silently drops errors measures the error path)."""
    next_index = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            start = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, count)):
            tg.create_task(worker())
    return Throughput(count, time.perf_counter() - start, latencies)


@dataclass(frozen=True)
class Paced:
    rate: float
    # From each call's scheduled start: what a client on a fixed clock experiences.
    latencies: list[float]
    # From each call's actual start: the service time alone.
    service: list[float]
    # How late the client itself started calls (its own loop being busy).
    max_start_lag: float


async def paced(call: Call, rate: float, seconds: float) -> Paced:
    """Start call(i) at t0 + i/rate for `seconds`, each in its own task, never waiting for
    earlier calls: a slow server shows as latency, not as a lower request rate."""
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    latencies: list[float] = []
    service: list[float] = []
    lag = 0.0

    async def one(i: int, scheduled: float) -> None:
        started = loop.time()
        await call(i)
        done = loop.time()
        latencies.append(done - scheduled)
        service.append(done - started)

    t0 = loop.time() + 0.05
    async with asyncio.TaskGroup() as tg:
        for i in range(total):
            scheduled = t0 + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lag = max(lag, loop.time() - scheduled)
            tg.create_task(one(i, scheduled))
    return Paced(rate, latencies, service, lag)
