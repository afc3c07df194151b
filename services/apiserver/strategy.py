"""What differs between kinds in the write path, beyond defaulting and validation:
the status an object starts with, how long its deletion is delayed, and what holds a
deletion open. One small class per kind that needs it; every other kind uses the base."""

from __future__ import annotations

from typing import Any

from capstan.apierrors import BadRequestError
from capstan.machinery.kinds import Kind

DEFAULT_GRACE_SECONDS = 30


class Strategy:
    def __init__(self, kind: Kind) -> None:
        self.kind = kind

    def prepare_create(self, obj: Any) -> None:
        """Clear what a client may not set on create; set the initial status."""
        if self.kind.has_status and self.kind.reset_status_on_create:
            obj.ClearField("status")

    def prepare_update(self, new: Any, old: Any) -> None:
        """Adjust an Update before defaulting and validation (server-owned fields are
        already restored from old)."""

    def grace_period(self, obj: Any, requested: int | None) -> int:
        """Seconds the deletion is delayed (0 = remove now unless finalizers hold it)."""
        if requested is not None and requested < 0:
            raise BadRequestError("gracePeriodSeconds must be >= 0")
        return 0

    def blocks_deletion(self, obj: Any) -> bool:
        return bool(obj.metadata.finalizers)

    def deletion_started(self, obj: Any) -> None:
        """Called once when an object enters graceful or finalized deletion."""


class PodStrategy(Strategy):
    def prepare_create(self, obj: Any) -> None:
        super().prepare_create(obj)
        obj.status.phase = "Pending"
        obj.status.qos_class = qos_class(obj)

    def grace_period(self, obj: Any, requested: int | None) -> int:
        super().grace_period(obj, requested)
        # A pod no kubelet runs (unscheduled or finished) has nothing to stop.
        if not obj.spec.node_name or obj.status.phase in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return requested
        if obj.metadata.HasField("deletion_grace_period_seconds"):
            return int(obj.metadata.deletion_grace_period_seconds)
        if obj.spec.HasField("termination_grace_period_seconds"):
            return int(obj.spec.termination_grace_period_seconds)
        return DEFAULT_GRACE_SECONDS


class NamespaceStrategy(Strategy):
    def prepare_create(self, obj: Any) -> None:
        super().prepare_create(obj)
        obj.status.phase = "Active"

    def blocks_deletion(self, obj: Any) -> bool:
        # spec.finalizers ("kubernetes") is cleared by the namespace controller once the
        # namespace is empty.
        return super().blocks_deletion(obj) or bool(obj.spec.finalizers)

    def deletion_started(self, obj: Any) -> None:
        obj.status.phase = "Terminating"


class ServiceStrategy(Strategy):
    def prepare_update(self, new: Any, old: Any) -> None:
        """Kubernetes' dropTypeDependentFields: when the type changes to one that no longer
        uses an allocated or defaulted field, and the client sent that field back
        unchanged (as `kubectl edit` of the type alone does), clear it rather than
        refuse the update; the allocator then releases what the Service no longer holds."""
        spec, old_spec = new.spec, old.spec
        same_ips = spec.cluster_ip == old_spec.cluster_ip and list(spec.cluster_ips) == list(
            old_spec.cluster_ips
        )
        if old_spec.type != "ExternalName" and spec.type == "ExternalName":
            if same_ips:
                spec.cluster_ip = ""
                del spec.cluster_ips[:]
            if list(spec.ip_families) == list(old_spec.ip_families):
                del spec.ip_families[:]
            if spec.ip_family_policy == old_spec.ip_family_policy:
                spec.ClearField("ip_family_policy")
        node_port_types = ("NodePort", "LoadBalancer")
        if old_spec.type in node_port_types and spec.type not in node_port_types:
            if [p.node_port for p in spec.ports] == [p.node_port for p in old_spec.ports]:
                for p in spec.ports:
                    p.node_port = 0
            if spec.health_check_node_port == old_spec.health_check_node_port:
                spec.health_check_node_port = 0
            if spec.external_traffic_policy == old_spec.external_traffic_policy:
                spec.external_traffic_policy = ""
        if spec.type != "LoadBalancer":
            spec.ClearField("allocate_load_balancer_node_ports")
            if old_spec.type == "LoadBalancer" and spec.load_balancer_class == (
                old_spec.load_balancer_class
            ):
                spec.ClearField("load_balancer_class")


class PhaseStrategy(Strategy):
    """Kinds that start in a phase (PersistentVolume, PersistentVolumeClaim)."""

    def __init__(self, kind: Kind, phase: str) -> None:
        super().__init__(kind)
        self.phase = phase

    def prepare_create(self, obj: Any) -> None:
        super().prepare_create(obj)
        obj.status.phase = self.phase


def qos_class(pod: Any) -> str:
    """Kubernetes' QoS class: Guaranteed when every container's cpu and memory requests
    equal limits, BestEffort when none has any, Burstable otherwise."""
    containers = list(pod.spec.containers) + list(pod.spec.init_containers)
    any_set = False
    guaranteed = True
    for c in containers:
        req, lim = c.resources.requests, c.resources.limits
        if req or lim:
            any_set = True
        for res in ("cpu", "memory"):
            if res not in lim or req.get(res, lim[res]) != lim[res]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def strategy_for(kind: Kind) -> Strategy:
    if kind.kind == "Pod":
        return PodStrategy(kind)
    if kind.kind == "Namespace":
        return NamespaceStrategy(kind)
    if kind.kind == "Service":
        return ServiceStrategy(kind)
    if kind.kind == "PersistentVolume":
        return PhaseStrategy(kind, "Pending")
    if kind.kind == "PersistentVolumeClaim":
        return PhaseStrategy(kind, "Pending")
    return Strategy(kind)
