"""Sync pacing: immediate after a quiet period, batched within the minimum interval,
periodic resyncs, retries after failures."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from proxy.runner import SyncRunner

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[float, bool]] = []
        self.fail = fail

    async def __call__(self, resync: bool) -> None:
        self.calls.append((time.monotonic(), resync))
        if self.fail:
            self.fail -= 1
            raise RuntimeError("restore failed")


@contextlib.asynccontextmanager
async def running(runner: SyncRunner) -> AsyncIterator[None]:
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_change_after_quiet_period_applies_at_once_and_bursts_are_batched() -> None:
    rec = Recorder()
    runner = SyncRunner(rec, min_interval=0.3, resync_period=60)
    async with running(runner):
        start = time.monotonic()
        runner.request()
        await asyncio.sleep(0.05)
        assert len(rec.calls) == 1 and rec.calls[0][0] - start < 0.05
        assert rec.calls[0][1] is True  # the first sync checks the kernel
        for _ in range(20):
            runner.request()
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.45)
        assert len(rec.calls) == 2  # the burst became one sync...
        assert rec.calls[1][0] - rec.calls[0][0] >= 0.3  # ...no sooner than min_interval
        assert rec.calls[1][1] is False
        await asyncio.sleep(0.35)
        runner.request()  # quiet again: immediate
        await asyncio.sleep(0.05)
        assert len(rec.calls) == 3


async def test_periodic_resync_and_retry_with_backoff() -> None:
    rec = Recorder(fail=2)
    runner = SyncRunner(rec, min_interval=0.01, resync_period=0.4, retry_initial=0.05)
    async with running(runner):
        runner.request()
        await asyncio.sleep(0.3)
        # Failed, retried after 0.05 s, failed, retried after 0.1 s, succeeded.
        assert len(rec.calls) == 3 and all(resync for _, resync in rec.calls)
        assert rec.calls[2][0] - rec.calls[1][0] >= 0.09
        assert runner.failures == 0 and runner.last_success > 0
        await asyncio.sleep(0.5)
        assert len(rec.calls) == 4 and rec.calls[3][1] is True  # the periodic resync
