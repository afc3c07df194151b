"""Recording Events about objects, as Kubernetes' event recorder does.

record() never blocks and never fails the caller: events go to a bounded queue that a
background task writes, and are dropped (and counted) when the queue is full or the
involved object exceeds its rate (a token bucket per source and object: a crash-looping
pod must not flood the apiserver). Repeats of the same event - same involved object,
type, reason, message and source within aggregate_window - update the count and
last_timestamp of the Event already written instead of creating another.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from dataclasses import dataclass

import structlog
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter

from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import ApiError, ConflictError, NotFoundError
from capstan.client.client import ResourceClient
from capstan.machinery import kinds

log = structlog.get_logger(__name__)

NORMAL = "Normal"
WARNING = "Warning"

DROPPED = Counter(
    "capstan_events_dropped_total", "events not recorded, by cause", ["component", "cause"]
)

# (kind, namespace, name, uid, api_version, field_path, type, reason, message, component, host)
AggregateKey = tuple[str, ...]


def reference(
    obj: Message | meta_pb2.ObjectReference, field_path: str = ""
) -> meta_pb2.ObjectReference:
    """An ObjectReference to any API object (kind and apiVersion from the kind table)."""
    if isinstance(obj, meta_pb2.ObjectReference):
        return obj
    kind = kinds.by_message(obj)
    meta = obj.metadata  # type: ignore[attr-defined]
    return meta_pb2.ObjectReference(
        kind=kind.kind,
        api_version=kind.api_version,
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        resource_version=meta.resource_version,
        field_path=field_path,
    )


@dataclass
class _Pending:
    ref: meta_pb2.ObjectReference
    type: str
    reason: str
    message: str
    action: str
    related: meta_pb2.ObjectReference | None
    at: Timestamp


@dataclass
class _Seen:
    event: core_pb2.Event
    last_seen: float


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, burst: float) -> None:
        self.tokens = burst
        self.updated = time.monotonic()


class EventRecorder:
    def __init__(
        self,
        events: ResourceClient[core_pb2.Event],
        component: str,
        host: str = "",
        *,
        queue_size: int = 1000,
        burst: int = 25,
        refill_seconds: float = 300.0,
        aggregate_window: float = 600.0,
        cache_size: int = 4096,
    ) -> None:
        self.events = events
        self.source = core_pb2.EventSource(component=component, host=host)
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.aggregate_window = aggregate_window
        self.cache_size = cache_size
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(queue_size)
        self._seen: collections.OrderedDict[AggregateKey, _Seen] = collections.OrderedDict()
        self._buckets: collections.OrderedDict[tuple[str, ...], _Bucket] = collections.OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._dropped_full = DROPPED.labels(component, "queue_full")
        self._dropped_rate = DROPPED.labels(component, "rate_limited")
        self._dropped_error = DROPPED.labels(component, "api_error")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-recorder")

    async def flush(self) -> None:
        """Wait until every event recorded so far has been written (or dropped)."""
        await self._queue.join()

    async def stop(self, *, flush: bool = True, timeout: float = 5.0) -> None:
        if flush and self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def record(
        self,
        obj: Message | meta_pb2.ObjectReference,
        type: str,
        reason: str,
        message: str,
        *,
        action: str = "",
        related: Message | meta_pb2.ObjectReference | None = None,
    ) -> None:
        """Queue an event about obj (type Normal or Warning); returns at once."""
        ref = reference(obj)
        if not self._allow(ref):
            self._dropped_rate.inc()
            return
        ts = Timestamp()
        ts.FromNanoseconds(time.time_ns())
        pending = _Pending(
            ref,
            type,
            reason,
            message[:1024],
            action,
            reference(related) if related is not None else None,
            ts,
        )
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._dropped_full.inc()

    # ------------------------------------------------------------------ internals
    def _allow(self, ref: meta_pb2.ObjectReference) -> bool:
        key = (self.source.component, self.source.host, ref.kind, ref.namespace, ref.name, ref.uid)
        bucket = self._buckets.get(key)
        now = time.monotonic()
        if bucket is None:
            bucket = _Bucket(self.burst)
            self._buckets[key] = bucket
            if len(self._buckets) > self.cache_size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) / self.refill_seconds
            )
            bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _key(self, p: _Pending) -> AggregateKey:
        r = p.ref
        return (
            r.kind,
            r.namespace,
            r.name,
            r.uid,
            r.api_version,
            r.field_path,
            p.type,
            p.reason,
            p.message,
            self.source.component,
            self.source.host,
        )

    async def _run(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write(pending)
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                self._dropped_error.inc()
                log.warning("could not record event", reason=pending.reason, error=e.message)
            except Exception:
                self._dropped_error.inc()
                log.exception("could not record event", reason=pending.reason)
            finally:
                self._queue.task_done()

    async def _write(self, p: _Pending) -> None:
        key = self._key(p)
        seen = self._seen.get(key)
        now = time.monotonic()
        if seen is not None and now - seen.last_seen <= self.aggregate_window:
            updated = await self._increment(seen.event, p.at)
            if updated is not None:
                self._remember(key, updated, now)
                return
        self._remember(key, await self.events.create(self._new_event(p)), now)

    async def _increment(self, event: core_pb2.Event, at: Timestamp) -> core_pb2.Event | None:
        """count+1 on the Event already written; re-read once on a conflict. None if it
        is gone (expired or deleted), so a new one is created."""
        current = event
        for _ in range(2):
            bumped = core_pb2.Event()
            bumped.CopyFrom(current)
            bumped.count = max(current.count, 1) + 1
            bumped.last_timestamp.CopyFrom(at)
            try:
                return await self.events.update(bumped)
            except NotFoundError:
                return None
            except ConflictError:
                try:
                    current = await self.events.get(event.metadata.name, event.metadata.namespace)
                except NotFoundError:
                    return None
        return None

    def _remember(self, key: AggregateKey, event: core_pb2.Event, now: float) -> None:
        self._seen[key] = _Seen(event, now)
        self._seen.move_to_end(key)
        if len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)

    def _new_event(self, p: _Pending) -> core_pb2.Event:
        ev = core_pb2.Event(
            involved_object=p.ref,
            reason=p.reason,
            message=p.message,
            source=self.source,
            first_timestamp=p.at,
            last_timestamp=p.at,
            count=1,
            type=p.type,
            action=p.action,
            reporting_component=self.source.component,
            reporting_instance=self.source.host,
        )
        if p.related is not None:
            ev.related.CopyFrom(p.related)
        # Kubernetes' name: <object>.<unix nanoseconds in hex>; events of cluster-scoped
        # objects live in "default".
        ev.metadata.name = f"{p.ref.name}.{time.time_ns():x}"
        ev.metadata.namespace = p.ref.namespace or "default"
        return ev
