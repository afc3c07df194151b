"""A rate-limited work queue of keys with Kubernetes' client-go semantics.

- A key is queued at most once however often it is added (dirty set), so a burst of
  events for one object becomes one reconcile.
- A key being processed is never handed to a second worker: adds during processing mark
  it dirty and it is queued again when the first worker calls done().
- add_rate_limited() backs off per key exponentially (base * 2^failures, capped) until
  forget() is called after a success; add_after() delays an add.
- shutdown() stops accepting adds; get() still hands out what is queued and then returns
  None; with drain=True shutdown() waits until every handed-out key is done.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: collections.deque[K] = collections.deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._delayed: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._changed = asyncio.Event()
        self._shutting_down = False
        self.adds = 0
        self.retries = 0

    # ------------------------------------------------------------------ adding
    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self.adds += 1
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._changed.set()

    def add_after(self, key: K, delay: float) -> None:
        """Add key after delay seconds; of several pending delays the earliest wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        self._delayed[key] = (when, loop.call_at(when, self._fire, key))

    def _fire(self, key: K) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def backoff(self, key: K) -> float:
        """The delay the next add_rate_limited(key) will wait."""
        exp = self._failures.get(key, 0)
        # Guard the float power against overflow for keys that fail for days.
        return self.max_delay if exp > 60 else min(self.base_delay * 2**exp, self.max_delay)

    def add_rate_limited(self, key: K) -> None:
        delay = self.backoff(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.retries += 1
        self.add_after(key, delay)

    def forget(self, key: K) -> None:
        """Reset key's backoff (call after it was processed successfully)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    # ------------------------------------------------------------------ processing
    async def get(self) -> K | None:
        """The next key, marked as processing until done(key); None once shut down and
        empty."""
        while not self._queue:
            if self._shutting_down:
                return None
            self._changed.clear()
            await self._changed.wait()
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        if not self._queue:
            self._changed.clear()
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
        self._changed.set()

    # ------------------------------------------------------------------ state
    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def pending_delayed(self) -> int:
        return len(self._delayed)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    async def shutdown(self, *, drain: bool = True) -> None:
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        self._changed.set()
        if drain:
            while self._queue or self._processing:
                self._changed.clear()
                await self._changed.wait()
