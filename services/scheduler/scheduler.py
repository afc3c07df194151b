"""The scheduler loop: informers feed the cache and the queue; one pod at a time is
filtered, scored, assumed and handed to a bind task.

Binds are pipelined: up to `max_binds_in_flight` Bindings are outstanding while the loop
already schedules the next pod against the cache, which holds the assumed placements. The
apiserver (one write per bind) is the bottleneck, so the loop must never wait for a bind
to return before deciding the next pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import ApiError, ConflictError, NotFoundError
from capstan.client import (
    NORMAL,
    WARNING,
    Client,
    EventRecorder,
    LeaderContext,
    SharedInformerFactory,
)
from capstan.client.informer import Informer
from google.protobuf.timestamp_pb2 import Timestamp

from scheduler import metrics
from scheduler.cache import SchedulerCache
from scheduler.framework import FitError, Framework
from scheduler.podinfo import PodInfo, pod_info
from scheduler.queue import QueuedPod, SchedulingQueue

log = structlog.get_logger(__name__)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
# Terminal pods hold no resources; the informer does not even receive them.
ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class Options:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    percentage_of_nodes_to_score: int = 0
    max_binds_in_flight: int = 128
    initial_backoff: float = 1.0
    max_backoff: float = 10.0


def _key(pod: core_pb2.Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def _node_changed(old: core_pb2.Node, new: core_pb2.Node) -> bool:
    """Changes that can make a pending pod fit (heartbeats are not among them)."""
    return (
        old.metadata.labels != new.metadata.labels
        or old.spec.taints != new.spec.taints
        or old.spec.unschedulable != new.spec.unschedulable
        or old.status.allocatable != new.status.allocatable
        or [(c.type, c.status) for c in old.status.conditions]
        != [(c.type, c.status) for c in new.status.conditions]
    )


def unschedulable_condition(pod: core_pb2.Pod, message: str) -> core_pb2.Pod | None:
    """The pod with PodScheduled=False/Unschedulable and message, or None if it already
    says exactly that (no write for a repeat of the same failure)."""
    for c in pod.status.conditions:
        if c.type == "PodScheduled":
            if c.status == "False" and c.reason == "Unschedulable" and c.message == message:
                return None
            break
    out = core_pb2.Pod()
    out.CopyFrom(pod)
    now = Timestamp()
    now.FromNanoseconds(time.time_ns())
    for c in out.status.conditions:
        if c.type == "PodScheduled":
            if c.status != "False":
                c.last_transition_time.CopyFrom(now)
            c.status, c.reason, c.message = "False", "Unschedulable", message
            c.last_probe_time.CopyFrom(now)
            return out
    out.status.conditions.add(
        type="PodScheduled",
        status="False",
        reason="Unschedulable",
        message=message,
        last_transition_time=now,
        last_probe_time=now,
    )
    return out


class Scheduler:
    def __init__(
        self,
        client: Client,
        options: Options | None = None,
        *,
        recorder: EventRecorder | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.options = options or Options()
        opts = self.options
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(
            initial_backoff=opts.initial_backoff, max_backoff=opts.max_backoff
        )
        self.framework = Framework(
            percentage_of_nodes_to_score=opts.percentage_of_nodes_to_score, rng=rng
        )
        self.recorder = recorder or EventRecorder(
            client.events, opts.scheduler_name, socket.gethostname()
        )
        self.factory = SharedInformerFactory(client)
        self.pods: Informer[core_pb2.Pod] = self.factory.for_resource(
            client.pods, field_selector=ACTIVE_PODS
        )
        self.nodes: Informer[core_pb2.Node] = self.factory.for_resource(client.nodes)
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_event_handler(self._node_added, self._node_updated, self._node_deleted)
        self._bind_slots = asyncio.Semaphore(opts.max_binds_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ informer handlers
    def _responsible(self, pod: core_pb2.Pod) -> bool:
        return (
            pod.spec.scheduler_name == self.options.scheduler_name
            and not pod.spec.node_name
            and not pod.metadata.HasField("deletion_timestamp")
        )

    def _pod_added(self, pod: core_pb2.Pod) -> None:
        if pod.spec.node_name:
            self.cache.set_pod(pod_info(pod))
        elif self._responsible(pod):
            self.queue.add(pod_info(pod))

    def _pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        key = _key(new)
        if new.spec.node_name:
            if not old.spec.node_name:
                self.queue.delete(key)
            elif self.cache.node_of(key) == new.spec.node_name and old.spec == new.spec:
                return  # a status update of a bound pod: nothing the scheduler counts
            if self.cache.confirm(key, new.spec.node_name):
                return
            self.cache.set_pod(pod_info(new))
        elif self._responsible(new):
            if self.cache.node_of(key) is not None:
                return  # assumed, its bind in flight
            changed = old.spec != new.spec or old.metadata.labels != new.metadata.labels
            self.queue.update(pod_info(new), spec_changed=changed)
        else:
            self.queue.delete(key)

    def _pod_deleted(self, pod: core_pb2.Pod) -> None:
        key = _key(pod)
        self.queue.delete(key)
        if self.cache.node_of(key) is not None:
            self.cache.remove_pod(key)
            self.queue.move_all_to_active_or_backoff()

    def _node_added(self, node: core_pb2.Node) -> None:
        self.cache.set_node(node)
        self.queue.move_all_to_active_or_backoff()

    def _node_updated(self, old: core_pb2.Node, new: core_pb2.Node) -> None:
        self.cache.set_node(new)
        if _node_changed(old, new):
            self.queue.move_all_to_active_or_backoff()

    def _node_deleted(self, node: core_pb2.Node) -> None:
        self.cache.remove_node(node.metadata.name)

    # ------------------------------------------------------------------ running
    async def run(self, ctx: LeaderContext | None = None) -> None:
        """Schedule until cancelled (leadership lost or the daemon stopping)."""
        ctx = ctx or LeaderContext.always()
        self.recorder.start()
        self.factory.start()
        gauges = asyncio.create_task(self._publish_queue_lengths(), name="scheduler-gauges")
        try:
            await self.factory.wait_for_sync()
            log.info("caches synced", nodes=len(self.cache.node_list))
            await self._loop(ctx)
        finally:
            self.queue.close()
            gauges.cancel()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.factory.stop()
            await self.recorder.stop(timeout=2.0)

    async def _loop(self, ctx: LeaderContext) -> None:
        while True:
            qp = await self.queue.pop()
            await self._bind_slots.acquire()
            try:
                self.schedule_one(qp, ctx)
            except Exception:
                self._bind_slots.release()
                metrics.ERROR.inc()
                log.exception("scheduling failed", pod=qp.info.key)
                self.queue.requeue_backoff(qp)
            # Let watch events and bind replies in before the next decision.
            await asyncio.sleep(0)

    def schedule_one(self, qp: QueuedPod, ctx: LeaderContext) -> None:
        """Decide, assume and start the bind; releases the bind slot unless a bind runs."""
        info = qp.info
        if self.cache.node_of(info.key) is not None:
            self.queue.done(info.key)
            self._bind_slots.release()
            return
        started = time.perf_counter()
        try:
            decision = self.framework.schedule(info, self.cache)
        except FitError as e:
            metrics.ALGORITHM_LATENCY.observe(time.perf_counter() - started)
            self._bind_slots.release()
            self._unschedulable(qp, e)
            return
        metrics.ALGORITHM_LATENCY.observe(time.perf_counter() - started)
        self.cache.assume(info, decision.node)
        self.queue.done(info.key)
        self._spawn(self._bind(qp, decision.node, ctx), release=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], *, release: bool = False) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if release:
            task.add_done_callback(lambda _: self._bind_slots.release())

    async def _bind(self, qp: QueuedPod, node: str, ctx: LeaderContext) -> None:
        info = qp.info
        metrics.BINDS_IN_FLIGHT.inc()
        try:
            if not ctx.is_leading():
                # Past the renew deadline: another scheduler may be leading already.
                self.cache.forget(info.key)
                return
            binding = core_pb2.Binding(
                metadata=meta_pb2.ObjectMeta(
                    name=info.name, namespace=info.namespace, uid=info.uid
                ),
                target=meta_pb2.ObjectReference(kind="Node", name=node),
            )
            await self.client.pods.bind(binding)
        except ApiError as e:
            self._bind_failed(qp, node, e)
            return
        finally:
            metrics.BINDS_IN_FLIGHT.dec()
        metrics.SCHEDULED.inc()
        metrics.E2E_LATENCY.observe(self.queue.clock() - qp.added)
        self.recorder.record(
            info.pod,
            NORMAL,
            "Scheduled",
            f"Successfully assigned {info.namespace}/{info.name} to {node}",
            action="Binding",
        )

    def _bind_failed(self, qp: QueuedPod, node: str, error: ApiError) -> None:
        info = qp.info
        metrics.ERROR.inc()
        self.cache.forget(info.key)
        self.queue.move_all_to_active_or_backoff()
        current = self.pods.get_by_key(info.key)
        gone = isinstance(error, NotFoundError) or current is None
        if gone or (current is not None and not self._responsible(current)):
            log.info("bind not needed any more", pod=info.key, node=node, error=error.message)
            return
        log.warning("bind failed; retrying", pod=info.key, node=node, error=error.message)
        self.recorder.record(info.pod, WARNING, "FailedScheduling", f"Binding rejected: {error}")
        assert current is not None
        self.queue.requeue_backoff(qp, pod_info(current))

    def _unschedulable(self, qp: QueuedPod, error: FitError) -> None:
        info = qp.info
        metrics.UNSCHEDULABLE.inc()
        log.info("pod unschedulable", pod=info.key, reason=error.message)
        self.recorder.record(info.pod, WARNING, "FailedScheduling", error.message)
        self.queue.requeue_unschedulable(qp)
        if unschedulable_condition(info.pod, error.message) is not None:
            self._spawn(self._set_unschedulable(info, error.message))

    async def _set_unschedulable(self, info: PodInfo, message: str) -> None:
        """PodScheduled=False on the pod, re-read on a conflict; never on a bound pod."""
        pod = self.pods.get_by_key(info.key) or info.pod
        for _ in range(3):
            if pod.spec.node_name or pod.metadata.uid != info.uid:
                return
            updated = unschedulable_condition(pod, message)
            if updated is None:
                return
            try:
                await self.client.pods.update_status(updated)
                return
            except ConflictError:
                try:
                    pod = await self.client.pods.get(info.name, info.namespace)
                except NotFoundError:
                    return
            except NotFoundError:
                return
            except ApiError as e:
                log.warning("could not set PodScheduled", pod=info.key, error=e.message)
                return

    async def _publish_queue_lengths(self) -> None:
        while True:
            for name, length in self.queue.lengths().items():
                metrics.PENDING_PODS.labels(name).set(length)
            await asyncio.sleep(1.0)
