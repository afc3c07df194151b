"""When to sync: batched, rate-limited, periodic (kube-proxy's BoundedFrequencyRunner).

Changes only mark the state dirty. A sync runs at once when the last one is at least
`min_interval` ago (a change after a quiet period is applied immediately), otherwise at
last + min_interval, carrying every change that arrived meanwhile: a burst of endpoint
updates costs one iptables-restore per interval, not one per update. Every `resync_period`
a resync also compares the kernel's rules with ours. A failed sync is retried with
exponential backoff (capped at the resync period) and the next attempt rewrites everything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

SyncFn = Callable[[bool], Awaitable[None]]  # argument: resync (check the kernel state)


class SyncRunner:
    def __init__(
        self,
        sync: SyncFn,
        *,
        min_interval: float = 1.0,
        resync_period: float = 30.0,
        retry_initial: float = 0.5,
    ) -> None:
        self._sync = sync
        self.min_interval = min_interval
        self.resync_period = resync_period
        self.retry_initial = retry_initial
        self._wake = asyncio.Event()
        self._pending = False
        self._resync_pending = True  # the first sync checks the kernel
        self.last_run = -float("inf")  # monotonic time of the last sync attempt
        self.last_success = 0.0  # wall clock of the last successful sync (0: never)
        self.failures = 0  # consecutive

    def request(self, resync: bool = False) -> None:
        self._pending = True
        self._resync_pending = self._resync_pending or resync
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled."""
        next_resync = time.monotonic() + self.resync_period
        while True:
            now = time.monotonic()
            if not self._pending:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_resync - now))
                except TimeoutError:
                    self.request(resync=True)
                continue
            due = self.last_run + self._interval()
            if now < due:
                await asyncio.sleep(due - now)
                continue
            resync = self._resync_pending
            self._pending = self._resync_pending = False
            self.last_run = time.monotonic()
            try:
                await self._sync(resync)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.exception("sync failed; retrying", failures=self.failures)
                self.request(resync=True)
            else:
                self.failures = 0
                self.last_success = time.time()
            if resync:
                next_resync = time.monotonic() + self.resync_period

    def _interval(self) -> float:
        if self.failures:
            backoff: float = self.retry_initial * 2 ** (self.failures - 1)
            return max(self.min_interval, min(backoff, self.resync_period))
        return self.min_interval
