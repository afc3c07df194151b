"""ReplicaSet (and ReplicationController, the same loop over the legacy kind): keep
spec.replicas active pods matching the selector.

One sync: claim pods (adopt orphans, release pods that stopped matching), create or delete
the difference - at most BURST_REPLICAS per sync, creations in slow-start batches,
deletions least valuable first - and write status. Nothing is done while creations or
deletions from the previous sync are still unobserved (expectations), so a slow watch
never doubles a scale-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.client import Client, Controller, Informer, ResourceClient
from capstan.client.indexer import object_key
from capstan.machinery.labels import Selector, selector_from_map, selector_from_proto

from controller import podutil
from controller.common import controller_key, owner_informer, pod_informer, write_status
from controller.expectations import Expectations
from controller.ownership import claim
from controller.podcontrol import PodControl, pod_from_template
from controller.registry import ControllerContext

# Kubernetes' BurstReplicas: the most pods one sync creates or deletes.
BURST_REPLICAS = 500


@dataclass(frozen=True)
class Flavor:
    """What differs between ReplicaSet and ReplicationController."""

    name: str
    kind: str
    resource: Callable[[Client], ResourceClient[Any]]
    selector: Callable[[Any], Selector]
    status: Callable[[], Any]


REPLICASET = Flavor(
    "replicaset",
    "ReplicaSet",
    lambda c: c.replicasets,
    lambda rs: selector_from_proto(rs.spec.selector),
    apps_pb2.ReplicaSetStatus,
)
REPLICATION_CONTROLLER = Flavor(
    "replicationcontroller",
    "ReplicationController",
    lambda c: c.replicationcontrollers,
    lambda rc: selector_from_map(rc.spec.selector),
    core_pb2.ReplicationControllerStatus,
)


class ReplicaSetLoop:
    def __init__(self, ctx: ControllerContext, flavor: Flavor) -> None:
        self.flavor = flavor
        self.resource = flavor.resource(ctx.client)
        self.sets: Informer[Any] = owner_informer(ctx, self.resource)
        self.pods = pod_informer(ctx)
        self.expectations = Expectations()
        self.control = PodControl(ctx.client, ctx.recorder)
        self.controller = Controller(flavor.name, self.reconcile, workers=ctx.workers(flavor.name))
        self.controller.watch(self.sets)
        self.controller.informers.append(self.pods)
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # ------------------------------------------------------------------ pod events
    def _owner(self, pod: core_pb2.Pod) -> str | None:
        return controller_key(pod, self.flavor.kind)

    def _matching_sets(self, pod: core_pb2.Pod) -> list[str]:
        """Sets an orphan could be adopted by."""
        out = []
        for s in self.sets.list(pod.metadata.namespace):
            try:
                if self.flavor.selector(s).matches(pod.metadata.labels):
                    out.append(object_key(s))
            except ValueError:
                continue
        return out

    def _pod_added(self, pod: core_pb2.Pod) -> None:
        key = self._owner(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.controller.enqueue(key)
        elif podutil.is_active(pod):
            for k in self._matching_sets(pod):
                self.controller.enqueue(k)

    def _pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        key = self._owner(new)
        if key is not None and podutil.is_terminating(new) and not podutil.is_terminating(old):
            self.expectations.deletion_observed(key, object_key(new))
        old_key = self._owner(old)
        if old_key is not None and old_key != key:
            self.controller.enqueue(old_key)
        if key is not None:
            self.controller.enqueue(key)
            s = self.sets.get_by_key(key)
            min_ready = s.spec.min_ready_seconds if s is not None else 0
            if min_ready > 0 and podutil.is_ready(new) and not podutil.is_ready(old):
                self.controller.enqueue_after(key, min_ready + 0.5)
        elif old.metadata.labels != new.metadata.labels or old_key is not None:
            for k in self._matching_sets(new):
                self.controller.enqueue(k)

    def _pod_deleted(self, pod: core_pb2.Pod) -> None:
        key = self._owner(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.controller.enqueue(key)

    # ------------------------------------------------------------------ sync
    async def reconcile(self, key: str) -> float | None:
        rs = self.sets.get_by_key(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        selector = self.flavor.selector(rs)
        need_sync = self.expectations.satisfied(key)
        candidates = [p for p in self.pods.list(rs.metadata.namespace) if podutil.is_active(p)]
        pods = await claim(rs, selector, candidates, self.pods.resource)
        error: Exception | None = None
        if need_sync and not rs.metadata.HasField("deletion_timestamp"):
            try:
                await self._manage(rs, key, pods)
            except Exception as e:  # status is still written, then the sync is retried
                error = e
        min_ready = rs.spec.min_ready_seconds
        status = self.status(rs, pods)
        await write_status(self.resource, rs, status)
        if error is not None:
            raise error
        if min_ready > 0 and status.ready_replicas != status.available_replicas:
            waits = [podutil.available_in(p, min_ready) for p in pods if podutil.is_ready(p)]
            positive = [w for w in waits if w > 0]
            return (min(positive) + 0.05) if positive else float(min_ready)
        return None

    async def _manage(self, rs: Any, key: str, pods: list[core_pb2.Pod]) -> None:
        desired = rs.spec.replicas if rs.spec.HasField("replicas") else 1
        diff = len(pods) - desired
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            template = rs.spec.template
            await self.control.create_many(
                rs,
                key,
                self.expectations,
                count,
                lambda: _new_pod(rs, template),
            )
        elif diff > 0:
            victims = podutil.pods_to_delete(pods, min(diff, BURST_REPLICAS))
            await self.control.delete_many(rs, key, self.expectations, victims)

    def status(self, rs: Any, pods: list[core_pb2.Pod]) -> Any:
        template_labels = rs.spec.template.metadata.labels
        status = self.flavor.status()
        status.CopyFrom(rs.status)
        min_ready = rs.spec.min_ready_seconds
        status.replicas = len(pods)
        status.fully_labeled_replicas = sum(
            1
            for p in pods
            if all(p.metadata.labels.get(k) == v for k, v in template_labels.items())
        )
        status.ready_replicas = sum(1 for p in pods if podutil.is_ready(p))
        status.available_replicas = sum(1 for p in pods if podutil.is_available(p, min_ready))
        status.observed_generation = rs.metadata.generation
        return status


def _new_pod(rs: Any, template: core_pb2.PodTemplateSpec) -> core_pb2.Pod:
    return pod_from_template(template, rs)


def new_replicaset_controller(ctx: ControllerContext) -> Controller:
    return ReplicaSetLoop(ctx, REPLICASET).controller


def new_replicationcontroller_controller(ctx: ControllerContext) -> Controller:
    return ReplicaSetLoop(ctx, REPLICATION_CONTROLLER).controller
