"""Pods and nodes as the API carries them, for the scheduler's tests (unit and
integration): small keyword-driven builders so each test states only what it is about."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from capstan.api.core.v1 import core_pb2

_serial = itertools.count()


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: Mapping[str, str] | None = None,
    taints: Sequence[tuple[str, str, str]] = (),
    ready: bool = True,
    unschedulable: bool = False,
) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    n.metadata.labels.update({"kubernetes.io/hostname": name, **(labels or {})})
    for key, value, effect in taints:
        n.spec.taints.add(key=key, value=value, effect=effect)
    n.spec.unschedulable = unschedulable
    alloc = {"cpu": cpu, "memory": memory, "pods": pods}
    n.status.capacity.update(alloc)
    n.status.allocatable.update(alloc)
    n.status.conditions.add(type="Ready", status="True" if ready else "False")
    return n


def pod(
    name: str,
    namespace: str = "default",
    *,
    cpu: str = "",
    memory: str = "",
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[tuple[str, str, str, str]] = (),
    host_port: int = 0,
    owner_uid: str = "",
    priority: int | None = None,
    node_name: str = "",
    scheduler_name: str = "default-scheduler",
) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = namespace
    p.metadata.uid = f"uid-{name}-{next(_serial)}"
    c = p.spec.containers.add(name="main", image="busybox")
    if cpu:
        c.resources.requests["cpu"] = cpu
    if memory:
        c.resources.requests["memory"] = memory
    if host_port:
        c.ports.add(container_port=80, host_port=host_port, protocol="TCP")
    p.spec.node_selector.update(node_selector or {})
    for key, operator, value, effect in tolerations:
        p.spec.tolerations.add(key=key, operator=operator, value=value, effect=effect)
    if owner_uid:
        p.metadata.owner_references.add(
            api_version="apps/v1", kind="ReplicaSet", name="rs", uid=owner_uid, controller=True
        )
    if priority is not None:
        p.spec.priority = priority
    p.spec.node_name = node_name
    p.spec.scheduler_name = scheduler_name
    return p


def require(
    p: core_pb2.Pod,
    *terms: Sequence[tuple[str, str, Sequence[str]]],
    fields: Sequence[tuple[str, str, Sequence[str]]] = (),
) -> core_pb2.Pod:
    """Add required node affinity: each positional argument is one term of
    (key, operator, values) match expressions; `fields` adds matchFields to a term."""
    req = p.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    for exprs in terms or ((),):
        term = req.node_selector_terms.add()
        for key, op, values in exprs:
            term.match_expressions.add(key=key, operator=op, values=list(values))
        for key, op, values in fields:
            term.match_fields.add(key=key, operator=op, values=list(values))
    return p


def prefer(
    p: core_pb2.Pod, weight: int, exprs: Sequence[tuple[str, str, Sequence[str]]]
) -> core_pb2.Pod:
    pref = p.spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution
    term = pref.add(weight=weight)
    for key, op, values in exprs:
        term.preference.match_expressions.add(key=key, operator=op, values=list(values))
    return p
