"""The reconcile-loop skeleton every controller is built from.

A controller declares the informers whose events concern it and how an event maps to the
key of the object to reconcile (usually the object itself, or its owner); the skeleton
runs N workers that take keys from a WorkQueue and call the controller's one function,
reconcile(key). Success forgets the key's backoff; an exception requeues it with
per-key exponential backoff; a returned number requeues it after that many seconds
(periodic checks). Reconcile must be level-triggered: it reads the current state from
the informers' caches, never from the event that queued it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

from capstan.client.indexer import object_key
from capstan.client.informer import Informer
from capstan.client.workqueue import WorkQueue

log = structlog.get_logger(__name__)

RECONCILES = Counter(
    "capstan_controller_reconcile_total",
    "reconcile calls by controller and result (success, error, requeue)",
    ["controller", "result"],
)
RECONCILE_SECONDS = Histogram(
    "capstan_controller_reconcile_duration_seconds",
    "time spent in reconcile",
    ["controller"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("capstan_workqueue_depth", "keys waiting in the work queue", ["controller"])
QUEUE_ADDS = Counter("capstan_workqueue_adds_total", "keys added to the work queue", ["controller"])
QUEUE_RETRIES = Counter(
    "capstan_workqueue_retries_total", "keys requeued with backoff", ["controller"]
)

# Reconcile returns None (done) or seconds after which to look at the key again.
Reconcile = Callable[[str], Awaitable[float | None]]
# Maps an event's object to the keys to reconcile (e.g. a pod to its owner's key).
KeyFunc = Callable[[Any], Iterable[str]]


def own_key(obj: Any) -> list[str]:
    return [object_key(obj)]


def controller_owner_key(kind: str) -> KeyFunc:
    """The key of the controlling owner of the given kind (a Pod -> its ReplicaSet)."""

    def keys(obj: Any) -> list[str]:
        ns = obj.metadata.namespace
        return [
            f"{ns}/{ref.name}" if ns else ref.name
            for ref in obj.metadata.owner_references
            if ref.kind == kind and ref.controller
        ]

    return keys


class Controller:
    def __init__(
        self,
        name: str,
        reconcile: Reconcile,
        *,
        workers: int = 2,
        base_delay: float = 0.005,
        max_delay: float = 300.0,
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.queue: WorkQueue[str] = WorkQueue(base_delay=base_delay, max_delay=max_delay)
        self.informers: list[Informer[Any]] = []
        self._depth = QUEUE_DEPTH.labels(name)
        self._adds = QUEUE_ADDS.labels(name)
        self._retries = QUEUE_RETRIES.labels(name)
        self._ok = RECONCILES.labels(name, "success")
        self._err = RECONCILES.labels(name, "error")
        self._requeue = RECONCILES.labels(name, "requeue")
        self._seconds = RECONCILE_SECONDS.labels(name)
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ wiring
    def enqueue(self, key: str) -> None:
        self.queue.add(key)
        self._adds.inc()
        self._depth.set(len(self.queue))

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)

    def watch(self, informer: Informer[Any], keys: KeyFunc = own_key) -> None:
        """Reconcile keys(obj) on every add, update and delete of informer's objects.
        For updates both the old and the new object's keys are queued (an owner change
        concerns both owners)."""
        self.informers.append(informer)

        def on_add(obj: Any) -> None:
            for key in keys(obj):
                self.enqueue(key)

        def on_update(old: Any, new: Any) -> None:
            for key in {*keys(old), *keys(new)}:
                self.enqueue(key)

        informer.add_event_handler(on_add, on_update, on_add)

    # ------------------------------------------------------------------ running
    async def run(self, *, sync_timeout: float | None = None) -> None:
        """Wait for the informers' first List, then run the workers until stop() (graceful:
        queued keys are reconciled, then run returns) or cancellation (immediate: a
        reconcile is interrupted, which it must tolerate as it tolerates a crash)."""
        for informer in self.informers:
            informer.start()
        for informer in self.informers:
            if not await informer.wait_for_sync(sync_timeout):
                raise TimeoutError(f"{self.name}: informer {informer.kind.plural} did not sync")
        log.info("controller started", controller=self.name, workers=self.workers)
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
            for i in range(self.workers)
        ]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._tasks = []

    async def stop(self) -> None:
        """Accept no more keys, let the workers finish what is queued, end run()."""
        await self.queue.shutdown(drain=True)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            self._depth.set(len(self.queue))
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: str) -> None:
        """One reconcile of key with the queue's bookkeeping (public for tests)."""
        start = time.perf_counter()
        try:
            again = await self.reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconcile failed", controller=self.name, key=key)
            self._err.inc()
            self._retries.inc()
            self.queue.add_rate_limited(key)
            return
        finally:
            self._seconds.observe(time.perf_counter() - start)
        self.queue.forget(key)
        if again is not None:
            self._requeue.inc()
            self.queue.add_after(key, again)
        else:
            self._ok.inc()
