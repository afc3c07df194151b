"""What the scheduler needs to know about a pod, computed once per pod version.

Filters and scores run for hundreds of nodes per pod, so everything they read from the pod
(summed requests, host ports, compiled node selectors, tolerations, controller owner) is
parsed out of the protobuf message here, once, into plain Python values.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from capstan.api.core.v1 import core_pb2
from capstan.machinery.labels import Requirement, Selector, SelectorError
from capstan.machinery.quantity import QuantityError, cpu_millis, to_bytes

# Kubernetes' non-zero defaults: pods without requests still count for spreading by load
# (scoring only; the fit filter uses the real requests).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

_NODE_OPERATORS = {
    "In": "in",
    "NotIn": "notin",
    "Exists": "exists",
    "DoesNotExist": "!",
    "Gt": "gt",
    "Lt": "lt",
}


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # Equal or Exists
    value: str
    effect: str  # "" tolerates every effect

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        """Kubernetes' Toleration.ToleratesTaint."""
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == value


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """One term: labels and fields (metadata.name) are ANDed. A term that failed to
    compile (an invalid requirement) matches no node, as in Kubernetes."""

    labels: Selector | None
    fields: Selector | None
    valid: bool = True

    def matches(self, node_labels: dict[str, str], node_fields: dict[str, str]) -> bool:
        if not self.valid:
            return False
        if self.labels is not None and not self.labels.matches(node_labels):
            return False
        return self.fields is None or self.fields.matches(node_fields)


def _requirements(items: Any) -> Selector | None:
    reqs = []
    for r in items:
        op = _NODE_OPERATORS.get(r.operator)
        if op is None:
            raise SelectorError(f"unknown node selector operator {r.operator!r}")
        reqs.append(Requirement(r.key, op, list(r.values)))
    return Selector(reqs) if reqs else None


def compile_term(term: core_pb2.NodeSelectorTerm) -> NodeSelectorTerm:
    try:
        labels = _requirements(term.match_expressions)
        fields = _requirements(term.match_fields)
    except SelectorError:
        return NodeSelectorTerm(None, None, valid=False)
    if labels is None and fields is None:
        # An empty term matches nothing (Kubernetes: "empty or null term matches no objects").
        return NodeSelectorTerm(None, None, valid=False)
    return NodeSelectorTerm(labels, fields)


def _pinned_node_names(terms: tuple[NodeSelectorTerm, ...]) -> frozenset[str] | None:
    """When every required term pins metadata.name (DaemonSet pods), the only nodes
    worth filtering; None when the terms do not restrict names."""
    names: set[str] = set()
    for term in terms:
        if term.fields is None:
            return None
        exact = [
            r.values
            for r in term.fields.requirements
            if r.key == "metadata.name" and r.operator.value == "in"
        ]
        if not exact:
            return None
        names.update(exact[0])
    return frozenset(names)


@functools.lru_cache(maxsize=4096)
def _cpu(text: str) -> int:
    return cpu_millis(text)


@functools.lru_cache(maxsize=4096)
def _bytes(text: str) -> int:
    return to_bytes(text)


def _container_requests(containers: Any) -> list[tuple[int, int]]:
    out = []
    for c in containers:
        req = c.resources.requests
        cpu = req.get("cpu")
        mem = req.get("memory")
        try:
            out.append((_cpu(cpu) if cpu else 0, _bytes(mem) if mem else 0))
        except QuantityError:
            out.append((0, 0))
    return out


def pod_requests(spec: core_pb2.PodSpec) -> tuple[int, int]:
    """(milli-cpu, memory bytes): the sum over containers, or the largest init container
    if that is larger (init containers run one at a time, before the app containers)."""
    cpu = mem = 0
    for c, m in _container_requests(spec.containers):
        cpu += c
        mem += m
    for c, m in _container_requests(spec.init_containers):
        cpu = max(cpu, c)
        mem = max(mem, m)
    return cpu, mem


def controller_owner_uid(meta: Any) -> str:
    for ref in meta.owner_references:
        if ref.controller:
            return str(ref.uid)
    return ""


@dataclass(slots=True)
class PodInfo:
    key: str  # namespace/name
    uid: str
    namespace: str
    name: str
    node_name: str
    priority: int
    created: float  # creation_timestamp in seconds (queue order)
    milli_cpu: int
    memory: int
    nonzero_cpu: int
    nonzero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]  # (host ip, protocol, port)
    owner_uid: str
    node_selector: dict[str, str]
    required_terms: tuple[NodeSelectorTerm, ...] | None
    preferred_terms: tuple[tuple[int, NodeSelectorTerm], ...]
    tolerations: tuple[Toleration, ...]
    pinned_nodes: frozenset[str] | None
    pod: core_pb2.Pod = field(repr=False)


def pod_info(pod: core_pb2.Pod) -> PodInfo:
    meta, spec = pod.metadata, pod.spec
    cpu, mem = pod_requests(spec)
    ports = tuple(
        (p.host_ip or "0.0.0.0", p.protocol or "TCP", p.host_port)
        for c in spec.containers
        for p in c.ports
        if p.host_port
    )
    required: tuple[NodeSelectorTerm, ...] | None = None
    preferred: tuple[tuple[int, NodeSelectorTerm], ...] = ()
    if spec.HasField("affinity") and spec.affinity.HasField("node_affinity"):
        na = spec.affinity.node_affinity
        if na.HasField("required_during_scheduling_ignored_during_execution"):
            required = tuple(
                compile_term(t)
                for t in na.required_during_scheduling_ignored_during_execution.node_selector_terms
            )
        preferred = tuple(
            (p.weight, compile_term(p.preference))
            for p in na.preferred_during_scheduling_ignored_during_execution
            if p.weight
        )
    created = meta.creation_timestamp.seconds + meta.creation_timestamp.nanos / 1e9
    return PodInfo(
        key=f"{meta.namespace}/{meta.name}",
        uid=meta.uid,
        namespace=meta.namespace,
        name=meta.name,
        node_name=spec.node_name,
        priority=spec.priority if spec.HasField("priority") else 0,
        created=created,
        milli_cpu=cpu,
        memory=mem,
        nonzero_cpu=cpu or DEFAULT_MILLI_CPU,
        nonzero_memory=mem or DEFAULT_MEMORY,
        host_ports=ports,
        owner_uid=controller_owner_uid(meta),
        node_selector=dict(spec.node_selector),
        required_terms=required,
        preferred_terms=preferred,
        tolerations=tuple(
            Toleration(t.key, t.operator or "Equal", t.value, t.effect) for t in spec.tolerations
        ),
        pinned_nodes=_pinned_node_names(required) if required else None,
        pod=pod,
    )
