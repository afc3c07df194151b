"""DaemonSet: one pod per eligible node, as Kubernetes' daemon controller does.

A node is eligible when the pod template fits it (nodeSelector, required node affinity,
NoSchedule/NoExecute taints against the template's tolerations plus the ones every daemon
pod gets, e.g. for unschedulable or not-ready nodes). Daemon pods are placed the modern
way: the controller pins each pod with a required node affinity term matchFields
metadata.name=<node> and the scheduler binds it, so resources and ports are still
checked. New nodes get a pod, nodes that stop being eligible lose theirs, extra or failed
pods on a node are replaced.

Updates: RollingUpdate replaces pods of old revisions node by node, never with more than
maxUnavailable nodes' pods unavailable at once (old pods that are unavailable anyway go
first); OnDelete replaces a pod only when someone deletes it. Template history is kept
as ControllerRevisions, bounded by revisionHistoryLimit.
"""

from __future__ import annotations

import copy

from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.client import Controller, Informer
from capstan.client.indexer import object_key
from capstan.machinery.intstr import resolve_int_or_percent
from capstan.machinery.labels import selector_from_proto

from controller import podutil
from controller.common import owned, owner_informer, pod_informer, track_owned_pods, write_status
from controller.expectations import Expectations
from controller.nodematch import fits
from controller.ownership import claim
from controller.podcontrol import PodControl, pod_from_template
from controller.registry import ControllerContext
from controller.revisions import REVISION_HASH_LABEL, sync_revisions, truncate_history

DaemonSet = apps_pb2.DaemonSet

# Kubernetes' AddOrUpdateDaemonPodTolerations.
DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)


def daemon_pod_spec(template: core_pb2.PodTemplateSpec) -> core_pb2.PodSpec:
    """The template's spec with the daemon tolerations added."""
    spec = core_pb2.PodSpec()
    spec.CopyFrom(template.spec)
    have = {(t.key, t.operator, t.effect) for t in spec.tolerations}
    for key, effect in DAEMON_TOLERATIONS:
        if (key, "Exists", effect) not in have:
            spec.tolerations.add(key=key, operator="Exists", effect=effect)
    return spec


def pin_to_node(spec: core_pb2.PodSpec, node: str) -> None:
    """Replace the required node affinity with metadata.name In [node]: the node already
    satisfied the original terms, and the scheduler now has one place to put the pod."""
    required = spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    del required.node_selector_terms[:]
    term = required.node_selector_terms.add()
    term.match_fields.add(key="metadata.name", operator="In", values=[node])


def target_node(pod: core_pb2.Pod) -> str:
    if pod.spec.node_name:
        return pod.spec.node_name
    required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    for term in required.node_selector_terms:
        for req in term.match_fields:
            if req.key == "metadata.name" and req.operator == "In" and len(req.values) == 1:
                return str(req.values[0])
    return ""


class DaemonSetLoop:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.sets: Informer[DaemonSet] = ctx.informers.for_resource(ctx.client.daemonsets)
        self.nodes = ctx.informers.for_resource(ctx.client.nodes, namespace="")
        self.pods = pod_informer(ctx)
        self.revisions = owner_informer(ctx, ctx.client.controllerrevisions)
        self.expectations = Expectations()
        self.control = PodControl(ctx.client, ctx.recorder)
        name = "daemonset"
        self.controller = Controller(name, self.reconcile, workers=ctx.workers(name))
        self.controller.watch(self.sets)
        self.controller.watch(self.nodes, lambda _: [object_key(d) for d in self.sets.list()])
        self.controller.informers.append(self.revisions)
        track_owned_pods(self.pods, "DaemonSet", self.controller, self.expectations)

    async def reconcile(self, key: str) -> float | None:
        cached = self.sets.get_by_key(key)
        if cached is None:
            self.expectations.forget(key)
            return None
        ds = copy.deepcopy(cached)
        ns = ds.metadata.namespace
        pods = await claim(
            ds, selector_from_proto(ds.spec.selector), self.pods.list(ns), self.pods.resource
        )
        collision = ds.status.collision_count if ds.status.HasField("collision_count") else None
        current, history = await sync_revisions(
            self.client, ds, owned(self.revisions, ds.metadata.uid), ds.spec.template, collision
        )
        h = current.metadata.labels.get(REVISION_HASH_LABEL, "")
        spec = daemon_pod_spec(ds.spec.template)
        nodes = {n.metadata.name: n for n in self.nodes.list()}
        eligible = {name for name, n in nodes.items() if fits(spec, n)}
        by_node: dict[str, list[core_pb2.Pod]] = {}
        for p in pods:
            if not podutil.is_terminating(p):
                by_node.setdefault(target_node(p), []).append(p)

        requeue: float | None = None
        if not ds.metadata.HasField("deletion_timestamp") and self.expectations.satisfied(key):
            requeue = await self._manage(ds, key, h, spec, eligible, by_node)

        min_ready = ds.spec.min_ready_seconds
        status = apps_pb2.DaemonSetStatus()
        status.CopyFrom(ds.status)
        status.observed_generation = ds.metadata.generation
        status.desired_number_scheduled = len(eligible)
        status.current_number_scheduled = sum(1 for n in eligible if by_node.get(n))
        status.number_misscheduled = sum(1 for n, ps in by_node.items() if ps and n not in eligible)
        on_eligible = [p for n in eligible for p in by_node.get(n, [])[:1]]
        status.number_ready = sum(1 for p in on_eligible if podutil.is_ready(p))
        status.updated_number_scheduled = sum(
            1 for p in on_eligible if p.metadata.labels.get(REVISION_HASH_LABEL) == h
        )
        status.number_available = sum(1 for p in on_eligible if podutil.is_available(p, min_ready))
        status.number_unavailable = len(eligible) - status.number_available
        await write_status(self.client.daemonsets, cached, status)
        limit = ds.spec.revision_history_limit if ds.spec.HasField("revision_history_limit") else 10
        live = {current.metadata.name} | {
            f"{ds.metadata.name}-{p.metadata.labels.get(REVISION_HASH_LABEL, '')}" for p in pods
        }
        await truncate_history(self.client, history, live, limit)
        return requeue

    async def _manage(
        self,
        ds: DaemonSet,
        key: str,
        h: str,
        spec: core_pb2.PodSpec,
        eligible: set[str],
        by_node: dict[str, list[core_pb2.Pod]],
    ) -> float | None:
        to_create: list[str] = []
        to_delete: list[core_pb2.Pod] = []
        for node in sorted(eligible):
            node_pods = by_node.get(node, [])
            failed = [p for p in node_pods if p.status.phase == podutil.FAILED]
            alive = [p for p in node_pods if p.status.phase != podutil.FAILED]
            to_delete.extend(failed)
            if not alive:
                to_create.append(node)
            elif len(alive) > 1:
                alive.sort(key=lambda p: podutil.seconds(p.metadata.creation_timestamp))
                to_delete.extend(alive[1:])
        for node, node_pods in by_node.items():
            if node not in eligible:
                to_delete.extend(node_pods)
        if not to_create and not to_delete and ds.spec.update_strategy.type != "OnDelete":
            to_delete.extend(self._rolling_victims(ds, h, eligible, by_node))
        await self.control.delete_many(ds, key, self.expectations, to_delete)
        nodes = iter(to_create)

        def make() -> core_pb2.Pod:
            node = next(nodes)
            pod = pod_from_template(ds.spec.template, ds)
            pod.spec.CopyFrom(spec)
            pin_to_node(pod.spec, node)
            pod.metadata.labels[REVISION_HASH_LABEL] = h
            return pod

        await self.control.create_many(ds, key, self.expectations, len(to_create), make)
        if ds.spec.min_ready_seconds > 0:
            return float(ds.spec.min_ready_seconds)
        return None

    def _rolling_victims(
        self, ds: DaemonSet, h: str, eligible: set[str], by_node: dict[str, list[core_pb2.Pod]]
    ) -> list[core_pb2.Pod]:
        ru = ds.spec.update_strategy.rolling_update
        desired = len(eligible)
        max_unavailable = (
            resolve_int_or_percent(ru.max_unavailable, desired, True)
            if ru.HasField("max_unavailable")
            else 1
        )
        min_ready = ds.spec.min_ready_seconds
        unavailable = 0
        old_available: list[core_pb2.Pod] = []
        victims: list[core_pb2.Pod] = []
        for node in sorted(eligible):
            pods = by_node.get(node, [])
            pod = pods[0] if pods else None
            available = pod is not None and podutil.is_available(pod, min_ready)
            if not available:
                unavailable += 1
            if pod is None or pod.metadata.labels.get(REVISION_HASH_LABEL) == h:
                continue
            if available:
                old_available.append(pod)
            else:
                victims.append(pod)
        for pod in old_available:
            if unavailable >= max_unavailable:
                break
            victims.append(pod)
            unavailable += 1
        return victims


def new_daemonset_controller(ctx: ControllerContext) -> Controller:
    return DaemonSetLoop(ctx).controller
