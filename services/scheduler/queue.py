"""The scheduling queue, as kube-scheduler's: three places a pending pod can be.

- active: a heap ordered by priority (highest first), then creation time (oldest first);
  the scheduling loop pops from here.
- backoff: pods that failed recently wait 1 s, doubling per attempt up to 10 s, before
  they become active again (a pod that cannot fit must not spin the loop).
- unschedulable: pods no node could take. They stay until a cluster event that could
  help (node added or changed, pod deleted) moves them back to active - or to backoff if
  their backoff has not expired - and at the latest after `unschedulable_timeout`.

A move request that arrives while a pod is being scheduled (the cluster changed under
the attempt) sends that pod to backoff rather than to the unschedulable pool, so the event
is not lost.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from scheduler.podinfo import PodInfo

Clock = Callable[[], float]


@dataclass(slots=True)
class QueuedPod:
    info: PodInfo
    attempts: int = 0
    # When the pod was first seen (monotonic): the start of its e2e scheduling latency.
    added: float = 0.0
    # When it last failed (monotonic), for the backoff.
    failed_at: float = 0.0
    # The scheduling cycle in which it was last popped.
    cycle: int = 0
    unschedulable_since: float = 0.0
    order: tuple[int, float, int] = field(default=(0, 0.0, 0))


class SchedulingQueue:
    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        unschedulable_timeout: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self.clock = clock
        self._pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[tuple[int, float, int], str]] = []
        self._active_keys: set[str] = set()
        self._backoff: list[tuple[float, int, str]] = []
        self._backoff_keys: set[str] = set()
        self._unschedulable: set[str] = set()
        self._in_flight: set[str] = set()
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._last_stale_scan = float("-inf")
        self.closed = False

    # ------------------------------------------------------------------ sizes
    def lengths(self) -> dict[str, int]:
        return {
            "active": len(self._active_keys),
            "backoff": len(self._backoff_keys),
            "unschedulable": len(self._unschedulable),
        }

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    # ------------------------------------------------------------------ informer side
    def add(self, info: PodInfo) -> None:
        """A new pending pod (or one seen again): straight to active."""
        if info.key in self._pods:
            self.update(info)
            return
        qp = QueuedPod(info, added=self.clock())
        self._pods[info.key] = qp
        self._push_active(qp)

    def update(self, info: PodInfo, *, spec_changed: bool = True) -> None:
        qp = self._pods.get(info.key)
        if qp is None:
            self.add(info)
            return
        qp.info = info
        if spec_changed and info.key in self._unschedulable:
            # Its own change may make it fit (e.g. a relaxed nodeSelector).
            self._unschedulable.discard(info.key)
            self._push_active(qp)

    def delete(self, key: str) -> None:
        self._pods.pop(key, None)
        self._active_keys.discard(key)
        self._backoff_keys.discard(key)
        self._unschedulable.discard(key)
        self._in_flight.discard(key)

    def move_all_to_active_or_backoff(self) -> None:
        """A cluster event that could make unschedulable pods fit."""
        self._move_request_cycle = self.scheduling_cycle
        now = self.clock()
        for key in list(self._unschedulable):
            self._unschedulable.discard(key)
            qp = self._pods[key]
            if now < self._backoff_expiry(qp):
                self._push_backoff(qp)
            else:
                self._push_active(qp)

    # ------------------------------------------------------------------ scheduler side
    async def pop(self) -> QueuedPod:
        """The next pod to schedule; waits (flushing backoff as it expires) while empty."""
        while True:
            self._flush()
            while self._active:
                _, key = heapq.heappop(self._active)
                if key not in self._active_keys:
                    continue  # deleted or moved since it was pushed
                self._active_keys.discard(key)
                qp = self._pods[key]
                self.scheduling_cycle += 1
                qp.cycle = self.scheduling_cycle
                qp.attempts += 1
                self._in_flight.add(key)
                return qp
            if self.closed:
                raise asyncio.CancelledError
            self._wakeup.clear()
            timeout = self._next_wake()
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def done(self, key: str) -> None:
        """The pod was scheduled (assumed and its bind sent): it leaves the queue. If the
        bind fails, the scheduler adds it back with requeue_backoff."""
        self._in_flight.discard(key)
        self._pods.pop(key, None)

    def requeue_unschedulable(self, qp: QueuedPod) -> None:
        key = qp.info.key
        self._in_flight.discard(key)
        if self._pods.get(key) is not qp:
            return  # deleted (or re-added fresh) while it was being scheduled
        qp.failed_at = self.clock()
        if self._move_request_cycle >= qp.cycle:
            self._push_backoff(qp)
        else:
            qp.unschedulable_since = qp.failed_at
            self._unschedulable.add(key)
            self._wake()

    def requeue_backoff(self, qp: QueuedPod, info: PodInfo | None = None) -> None:
        """After an error (e.g. a failed bind): retry after the backoff."""
        key = qp.info.key
        self._in_flight.discard(key)
        if info is not None:
            qp.info = info
        current = self._pods.get(key)
        if current is not None and current is not qp:
            return
        self._pods[key] = qp
        qp.failed_at = self.clock()
        self._push_backoff(qp)

    def backoff_duration(self, attempts: int) -> float:
        return min(self.initial_backoff * float(2 ** max(attempts - 1, 0)), self.max_backoff)

    def close(self) -> None:
        self.closed = True
        self._wake()

    # ------------------------------------------------------------------ internals
    def _backoff_expiry(self, qp: QueuedPod) -> float:
        return qp.failed_at + self.backoff_duration(qp.attempts)

    def _push_active(self, qp: QueuedPod) -> None:
        key = qp.info.key
        self._backoff_keys.discard(key)
        if key in self._active_keys:
            return
        info = qp.info
        qp.order = (-info.priority, info.created, next(self._seq))
        heapq.heappush(self._active, (qp.order, key))
        self._active_keys.add(key)
        self._wake()

    def _push_backoff(self, qp: QueuedPod) -> None:
        key = qp.info.key
        self._unschedulable.discard(key)
        if key in self._backoff_keys or key in self._active_keys:
            return
        heapq.heappush(self._backoff, (self._backoff_expiry(qp), next(self._seq), key))
        self._backoff_keys.add(key)
        self._wake()

    def _flush(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if key in self._backoff_keys:
                self._push_active(self._pods[key])
        if self._unschedulable and now - self._last_stale_scan >= 1.0:
            self._last_stale_scan = now
            stale = [
                k
                for k in self._unschedulable
                if now - self._pods[k].unschedulable_since >= self.unschedulable_timeout
            ]
            for key in stale:
                self._unschedulable.discard(key)
                self._push_active(self._pods[key])

    def _next_wake(self) -> float:
        now = self.clock()
        wake = now + 1.0  # unschedulable timeouts are checked at least every second
        while self._backoff and self._backoff[0][2] not in self._backoff_keys:
            heapq.heappop(self._backoff)
        if self._backoff:
            wake = min(wake, self._backoff[0][0])
        return max(0.0, wake - now)

    def _wake(self) -> None:
        self._wakeup.set()
