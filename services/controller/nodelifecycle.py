"""The node lifecycle controller: notices nodes whose kubelet stopped heartbeating, taints
them, evicts their pods, and hands out pod CIDRs.

A heartbeat is the node's Lease in kube-node-lease being renewed or its Ready condition's
lastHeartbeatTime moving. Like Kubernetes, staleness is measured on this controller's own
clock from the moment a change in the heartbeat was last *observed*, so a skewed node clock
cannot make a healthy node look dead. After --node-monitor-grace-period without one, every
condition becomes Unknown (reason NodeStatusUnknown) and the node's pods are marked not
Ready. The node carries taints that mirror its Ready condition: unreachable (Unknown) or
not-ready (False), each NoSchedule and NoExecute; unschedulable nodes carry the
unschedulable NoSchedule taint. Pods that do not tolerate a NoExecute taint are deleted
--pod-eviction-timeout after it was added; a pod tolerating it for tolerationSeconds is
deleted that long after, one tolerating it forever stays. Their controllers recreate them
on healthy nodes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ConflictError, NotFoundError
from capstan.client import NODE_NAME_INDEX, WARNING, Controller, Informer, index_by_node_name
from google.protobuf.timestamp_pb2 import Timestamp

from controller.registry import ControllerContext

log = structlog.get_logger(__name__)

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
LEASE_NAMESPACE = "kube-node-lease"
Clock = Callable[[], float]


@dataclass
class Options:
    grace_period: float = 40.0
    eviction_timeout: float = 300.0
    allocate_node_cidrs: bool = False
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _stamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def ready_status(node: Any) -> str:
    """The node's Ready condition status ("" when the kubelet never posted one)."""
    for c in node.status.conditions:
        if c.type == "Ready":
            return str(c.status)
    return ""


def heartbeat(node: Any, lease: Any | None) -> float:
    """The newest heartbeat the node gave: Lease renewal or Ready condition heartbeat."""
    beats = [_seconds(c.last_heartbeat_time) for c in node.status.conditions if c.type == "Ready"]
    if lease is not None and lease.spec.HasField("renew_time"):
        beats.append(_seconds(lease.spec.renew_time))
    return max(beats, default=0.0)


def desired_taints(node: Any) -> list[tuple[str, str]]:
    """(key, effect) of the taints the node's state calls for."""
    status = ready_status(node)
    out: list[tuple[str, str]] = []
    if status == "Unknown":
        out += [(UNREACHABLE, NO_SCHEDULE), (UNREACHABLE, NO_EXECUTE)]
    elif status == "False":
        out += [(NOT_READY, NO_SCHEDULE), (NOT_READY, NO_EXECUTE)]
    if node.spec.unschedulable:
        out.append((UNSCHEDULABLE, NO_SCHEDULE))
    return out


MANAGED = {UNREACHABLE, NOT_READY, UNSCHEDULABLE}


def reconcile_taints(node: Any, now: float) -> bool:
    """Make node's managed taints the desired ones, keeping time_added of those that stay;
    True if anything changed."""
    want = desired_taints(node)
    current = [(t.key, t.effect) for t in node.spec.taints if t.key in MANAGED]
    if sorted(current) == sorted(want):
        return False
    keep = [t for t in node.spec.taints if t.key not in MANAGED or (t.key, t.effect) in want]
    have = {(t.key, t.effect) for t in keep}
    taints = [core_pb2.Taint(key=t.key, value=t.value, effect=t.effect) for t in keep]
    for t, old in zip(taints, keep, strict=True):
        if old.HasField("time_added"):
            t.time_added.CopyFrom(old.time_added)
    for key, effect in want:
        if (key, effect) not in have:
            t = core_pb2.Taint(key=key, effect=effect)
            if effect == NO_EXECUTE:
                t.time_added.CopyFrom(_stamp(now))
            taints.append(t)
    del node.spec.taints[:]
    node.spec.taints.extend(taints)
    return True


def tolerates(toleration: Any, taint: Any) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.operator == "Exists":
        return bool(not toleration.key or toleration.key == taint.key)
    return bool(toleration.key == taint.key and toleration.value == taint.value)


def eviction_time(pod: Any, taints: list[Any], default_timeout: float) -> float | None:
    """When (wall-clock seconds) pod must leave a node with these NoExecute taints, or
    None if it tolerates them all forever. The earliest deadline over the taints wins."""
    deadlines: list[float] = []
    for taint in taints:
        if taint.effect != NO_EXECUTE:
            continue
        added = _seconds(taint.time_added) if taint.HasField("time_added") else 0.0
        matching = [t for t in pod.spec.tolerations if tolerates(t, taint)]
        if not matching:
            deadlines.append(added + default_timeout)
            continue
        bounded = [t.toleration_seconds for t in matching if t.HasField("toleration_seconds")]
        if len(bounded) == len(matching):
            deadlines.append(added + max(0, min(bounded)))
    return min(deadlines, default=None)


def mark_unknown(node: Any, now: float) -> None:
    """Every condition Unknown, as Kubernetes does for a node that stopped reporting."""
    stamp = _stamp(now)
    found = False
    for c in node.status.conditions:
        found = found or c.type == "Ready"
        if c.status != "Unknown":
            c.status = "Unknown"
            c.last_transition_time.CopyFrom(stamp)
        c.reason = "NodeStatusUnknown"
        c.message = "Kubelet stopped posting node status."
    if not found:
        c = node.status.conditions.add(
            type="Ready",
            status="Unknown",
            reason="NodeStatusNeverUpdated",
            message="Kubelet never posted node status.",
        )
        c.last_transition_time.CopyFrom(stamp)


class CidrAllocator:
    """Hands out one node-sized block of the cluster CIDR per node (range allocator)."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr)
        self.mask_size = mask_size
        if mask_size < self.network.prefixlen:
            raise ValueError(f"node CIDR mask /{mask_size} is larger than {cluster_cidr}")
        self.reserved: set[str] = set()

    def allocate(self, used: set[str]) -> str | None:
        for subnet in self.network.subnets(new_prefix=self.mask_size):
            text = str(subnet)
            if text not in used and text not in self.reserved:
                self.reserved.add(text)
                return text
        return None


class NodeLifecycleController:
    def __init__(
        self,
        client: Any,
        nodes: Informer[core_pb2.Node],
        leases: Informer[Any],
        pods: Informer[core_pb2.Pod],
        recorder: Any,
        options: Options,
        *,
        clock: Clock = time.time,
        workers: int = 2,
    ) -> None:
        self.client = client
        self.nodes = nodes
        self.leases = leases
        self.pods = pods
        self.recorder = recorder
        self.options = options
        self.clock = clock
        self.cidrs = (
            CidrAllocator(options.cluster_cidr, options.node_cidr_mask_size)
            if options.allocate_node_cidrs
            else None
        )
        self._cidr_lock = asyncio.Lock()
        # node -> (last heartbeat value seen, our clock when it was first seen)
        self.observed: dict[str, tuple[float, float]] = {}
        pods.add_indexers({NODE_NAME_INDEX: index_by_node_name})
        self.controller = Controller("nodelifecycle", self.reconcile, workers=workers)
        self.controller.watch(nodes)
        self.controller.watch(leases, self._node_of_lease)
        self.controller.watch(pods, self._node_of_pod)

    @staticmethod
    def _node_of_lease(lease: Any) -> list[str]:
        return [lease.metadata.name] if lease.metadata.namespace == LEASE_NAMESPACE else []

    def _node_of_pod(self, pod: Any) -> list[str]:
        """A pod landing on a tainted node must get its eviction deadline scheduled."""
        name = pod.spec.node_name
        node = self.nodes.get(name) if name else None
        if node is None or not any(t.effect == NO_EXECUTE for t in node.spec.taints):
            return []
        return [name]

    def _probe(self, node: Any) -> float:
        """Our clock's time of the last observed heartbeat change."""
        name = node.metadata.name
        beat = heartbeat(node, self.leases.get(name, LEASE_NAMESPACE))
        seen = self.observed.get(name)
        now = self.clock()
        if seen is None or seen[0] != beat:
            self.observed[name] = (beat, now)
            return now
        return seen[1]

    async def reconcile(self, key: str) -> float | None:
        cached = self.nodes.get(key)
        if cached is None:
            self.observed.pop(key, None)
            return None
        node = core_pb2.Node()
        node.CopyFrom(cached)
        now = self.clock()
        if self.cidrs is not None and not node.spec.pod_cidr:
            node = await self._assign_cidr(node)
        wait: list[float] = []
        stale_at = self._probe(node) + self.options.grace_period
        if now >= stale_at:
            if ready_status(node) != "Unknown":
                node = await self._mark_unknown(node, now)
        else:
            wait.append(stale_at - now)
        if reconcile_taints(node, now):
            node = await self.client.nodes.update(node)
        if ready_status(node) == "Unknown":
            await self._mark_pods_not_ready(node.metadata.name)
        next_eviction = await self._evict(node, now)
        if next_eviction is not None:
            wait.append(max(0.0, next_eviction - now))
        return min(wait) + 0.05 if wait else None

    async def _assign_cidr(self, node: Any) -> Any:
        assert self.cidrs is not None
        async with self._cidr_lock:
            used = {n.spec.pod_cidr for n in self.nodes.list() if n.spec.pod_cidr}
            cidr = self.cidrs.allocate(used)
            if cidr is None:
                self.recorder.record(
                    node, WARNING, "CIDRNotAvailable", "no pod CIDR left in the cluster CIDR"
                )
                return node
            node.spec.pod_cidr = cidr
            del node.spec.pod_cidrs[:]
            node.spec.pod_cidrs.append(cidr)
            try:
                updated = await self.client.nodes.update(node)
            except BaseException:
                self.cidrs.reserved.discard(cidr)
                raise
            log.info("allocated pod CIDR", node=node.metadata.name, cidr=cidr)
            return updated

    async def _mark_unknown(self, node: Any, now: float) -> Any:
        mark_unknown(node, now)
        updated = await self.client.nodes.update_status(node)
        log.warning("node stopped heartbeating", node=node.metadata.name)
        self.recorder.record(
            updated,
            "Normal",
            "NodeNotReady",
            f"Node {node.metadata.name} status is now: NodeNotReady",
        )
        return updated

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for pod in self.pods.by_index(NODE_NAME_INDEX, node_name):
            if pod.status.phase in ("Succeeded", "Failed"):
                continue
            ready = next((c for c in pod.status.conditions if c.type == "Ready"), None)
            if ready is None or ready.status == "False":
                continue
            new = core_pb2.Pod()
            new.CopyFrom(pod)
            for c in new.status.conditions:
                if c.type in ("Ready", "ContainersReady") and c.status != "False":
                    c.status = "False"
                    c.last_transition_time.CopyFrom(_stamp(self.clock()))
            try:
                await self.client.pods.update_status(new)
            except (NotFoundError, ConflictError):
                continue

    async def _evict(self, node: Any, now: float) -> float | None:
        """Delete the pods whose toleration of the node's NoExecute taints ran out; the
        earliest deadline still ahead."""
        taints = [t for t in node.spec.taints if t.effect == NO_EXECUTE]
        if not taints:
            return None
        upcoming: list[float] = []
        for pod in self.pods.by_index(NODE_NAME_INDEX, node.metadata.name):
            if pod.metadata.HasField("deletion_timestamp"):
                continue
            deadline = eviction_time(pod, taints, self.options.eviction_timeout)
            if deadline is None:
                continue
            if deadline > now:
                upcoming.append(deadline)
                continue
            self.recorder.record(
                pod,
                "Normal",
                "TaintManagerEviction",
                f"Marking for deletion Pod {pod.metadata.namespace}/{pod.metadata.name}",
            )
            try:
                await self.client.pods.delete(
                    pod.metadata.name, pod.metadata.namespace, preconditions_uid=pod.metadata.uid
                )
            except (NotFoundError, ConflictError):
                continue
        return min(upcoming, default=None)


def options_from_args(args: Any) -> Options:
    d = Options()
    return Options(
        grace_period=float(getattr(args, "node_monitor_grace_period", d.grace_period)),
        eviction_timeout=float(getattr(args, "pod_eviction_timeout", d.eviction_timeout)),
        allocate_node_cidrs=bool(getattr(args, "allocate_node_cidrs", d.allocate_node_cidrs)),
        cluster_cidr=str(getattr(args, "cluster_cidr", d.cluster_cidr)),
        node_cidr_mask_size=int(getattr(args, "node_cidr_mask_size", d.node_cidr_mask_size)),
    )


def new_nodelifecycle_controller(ctx: ControllerContext) -> Controller:
    client, informers = ctx.client, ctx.informers
    c = NodeLifecycleController(
        client,
        informers.for_resource(client.nodes),
        informers.for_resource(client.leases, namespace=LEASE_NAMESPACE),
        informers.for_resource(client.pods),
        ctx.recorder,
        options_from_args(ctx.args),
        workers=ctx.workers("nodelifecycle", 2),
    )
    return c.controller
