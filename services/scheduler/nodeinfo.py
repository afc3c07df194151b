"""A node as the filters and scores see it: its parsed spec/status plus running totals
of the pods on it (bound and assumed).

Totals are kept incrementally (add_pod/remove_pod), so a filter or score reads a handful
of integers and never walks the node's pods: at 5000 nodes the per-pod cost must not grow
with the number of pods in the cluster.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from capstan.api.core.v1 import core_pb2
from capstan.machinery.quantity import QuantityError, cpu_millis, to_bytes

from scheduler.podinfo import PodInfo

# Kubernetes' kubelet default when a node does not report allocatable pods.
DEFAULT_MAX_PODS = 110


def _allocatable(node: core_pb2.Node) -> tuple[int, int, int]:
    alloc = node.status.allocatable or node.status.capacity
    try:
        cpu = cpu_millis(alloc["cpu"]) if "cpu" in alloc else 0
        mem = to_bytes(alloc["memory"]) if "memory" in alloc else 0
        pods = to_bytes(alloc["pods"]) if "pods" in alloc else DEFAULT_MAX_PODS
    except QuantityError:
        return 0, 0, 0
    return cpu, mem, pods


def node_ready(node: core_pb2.Node) -> bool:
    for c in node.status.conditions:
        if c.type == "Ready":
            return c.status == "True"
    return False


@dataclass(slots=True)
class NodeInfo:
    name: str
    node: core_pb2.Node | None = None
    labels: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    # (key, value, effect) for NoSchedule/NoExecute taints; PreferNoSchedule kept apart.
    taints: tuple[tuple[str, str, str], ...] = ()
    prefer_taints: tuple[tuple[str, str, str], ...] = ()
    unschedulable: bool = False
    ready: bool = False
    # Ready, schedulable, untainted: node-state filters pass every pod here.
    clean: bool = False
    alloc_cpu: int = 0
    alloc_memory: int = 0
    alloc_pods: int = 0
    requested_cpu: int = 0
    requested_memory: int = 0
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pod_count: int = 0
    used_ports: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    owner_counts: Counter[str] = field(default_factory=Counter)
    pods: dict[str, PodInfo] = field(default_factory=dict)

    def set_node(self, node: core_pb2.Node) -> None:
        self.node = node
        self.labels = dict(node.metadata.labels)
        self.fields = {"metadata.name": node.metadata.name}
        taints = [(t.key, t.value, t.effect) for t in node.spec.taints]
        self.taints = tuple(t for t in taints if t[2] in ("NoSchedule", "NoExecute"))
        self.prefer_taints = tuple(t for t in taints if t[2] == "PreferNoSchedule")
        self.unschedulable = node.spec.unschedulable
        self.ready = node_ready(node)
        self.clean = self.ready and not self.unschedulable and not self.taints
        self.alloc_cpu, self.alloc_memory, self.alloc_pods = _allocatable(node)

    def add_pod(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        self.requested_cpu += pod.milli_cpu
        self.requested_memory += pod.memory
        self.nonzero_cpu += pod.nonzero_cpu
        self.nonzero_memory += pod.nonzero_memory
        self.pod_count += 1
        for port in pod.host_ports:
            self.used_ports[port] += 1
        if pod.owner_uid:
            self.owner_counts[pod.owner_uid] += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.requested_cpu -= pod.milli_cpu
        self.requested_memory -= pod.memory
        self.nonzero_cpu -= pod.nonzero_cpu
        self.nonzero_memory -= pod.nonzero_memory
        self.pod_count -= 1
        for port in pod.host_ports:
            self.used_ports[port] -= 1
            if self.used_ports[port] <= 0:
                del self.used_ports[port]
        if pod.owner_uid:
            self.owner_counts[pod.owner_uid] -= 1
            if self.owner_counts[pod.owner_uid] <= 0:
                del self.owner_counts[pod.owner_uid]
        return pod


def node_info(node: core_pb2.Node, pods: list[PodInfo] | None = None) -> NodeInfo:
    """A NodeInfo for a node and the pods on it (tests and the cache)."""
    info = NodeInfo(node.metadata.name)
    info.set_node(node)
    for pod in pods or []:
        info.add_pod(pod)
    return info
