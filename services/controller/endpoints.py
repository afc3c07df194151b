"""The Endpoints controller: for every Service with a selector, an Endpoints object of the
same name listing the matching pods' IPs and the ports they serve on.

Named target ports are resolved per pod (two pods may give the name different numbers), so
pods are grouped into subsets by the ports they resolved to, as Kubernetes' RepackSubsets
does. A pod is a ready address when its Ready condition is True, a not-ready address
otherwise; with publishNotReadyAddresses every pod is ready. Deleting or finished pods and
pods without an IP are left out. Services without a selector are never touched: their
Endpoints are written by hand.
"""

from __future__ import annotations

from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import AlreadyExistsError, NotFoundError
from capstan.client import Controller, Informer, split_key
from capstan.machinery.intstr import IntOrStringError, int_or_str
from capstan.machinery.labels import selector_from_map

from controller.registry import ControllerContext

log = structlog.get_logger(__name__)

HEADLESS_LABEL = "service.kubernetes.io/headless"
PortKey = tuple[tuple[str, int, str, str], ...]


def pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def include_pod(pod: Any, tolerate_unready: bool) -> bool:
    """Kubernetes' ShouldPodBeInEndpoints."""
    if not pod.status.pod_ip:
        return False
    if pod.status.phase in ("Succeeded", "Failed"):
        return False
    return not pod.metadata.HasField("deletion_timestamp") or tolerate_unready


def resolve_port(pod: Any, port: Any) -> int | None:
    """The pod's number for a service port's targetPort (a number, a container port name,
    or unset: the service port itself); None if the pod has no port of that name."""
    try:
        target = int_or_str(port.target_port) if port.HasField("target_port") else None
    except IntOrStringError:
        return None
    if target is None or target == 0 or target == "":
        return int(port.port)
    if isinstance(target, int):
        return target
    protocol = port.protocol or "TCP"
    for ctr in pod.spec.containers:
        for cp in ctr.ports:
            if cp.name == target and (cp.protocol or "TCP") == protocol:
                return int(cp.container_port)
    return None


def _address(pod: Any, service: Any) -> core_pb2.EndpointAddress:
    addr = core_pb2.EndpointAddress(ip=pod.status.pod_ip)
    spec = pod.spec
    if spec.hostname and spec.subdomain == service.metadata.name:
        addr.hostname = spec.hostname
    if spec.node_name:
        addr.node_name = spec.node_name
    ref = addr.target_ref
    ref.kind, ref.namespace, ref.name = "Pod", pod.metadata.namespace, pod.metadata.name
    ref.uid = pod.metadata.uid
    return addr


def compute_subsets(service: Any, pods: list[Any]) -> list[core_pb2.EndpointSubset]:
    """The subsets of a Service's Endpoints given the pods its selector matches."""
    tolerate = service.spec.publish_not_ready_addresses
    groups: dict[PortKey, tuple[list[Any], list[Any]]] = {}
    for pod in pods:
        if not include_pod(pod, tolerate):
            continue
        ports: list[tuple[str, int, str, str]] = []
        for sp in service.spec.ports:
            number = resolve_port(pod, sp)
            if number is not None:
                app = sp.app_protocol if sp.HasField("app_protocol") else ""
                ports.append((sp.name, number, sp.protocol or "TCP", app))
        if service.spec.ports and not ports:
            continue
        key = tuple(sorted(ports))
        ready, not_ready = groups.setdefault(key, ([], []))
        is_ready = tolerate or (pod_ready(pod) and not pod.metadata.HasField("deletion_timestamp"))
        (ready if is_ready else not_ready).append(_address(pod, service))
    subsets: list[core_pb2.EndpointSubset] = []
    for key, (ready, not_ready) in groups.items():
        subset = core_pb2.EndpointSubset()
        subset.addresses.extend(sorted(ready, key=_addr_order))
        subset.not_ready_addresses.extend(sorted(not_ready, key=_addr_order))
        for name, number, protocol, app in key:
            ep = subset.ports.add(name=name, port=number, protocol=protocol)
            if app:
                ep.app_protocol = app
        subsets.append(subset)
    subsets.sort(key=_subset_order)
    return subsets


def _addr_order(addr: core_pb2.EndpointAddress) -> tuple[str, str]:
    return addr.ip, addr.target_ref.uid


def _subset_order(subset: core_pb2.EndpointSubset) -> tuple[str, ...]:
    first = subset.addresses or subset.not_ready_addresses
    return (first[0].ip if first else "", *(f"{p.name}:{p.port}" for p in subset.ports))


def desired_endpoints(service: Any, pods: list[Any]) -> core_pb2.Endpoints:
    ep = core_pb2.Endpoints()
    ep.metadata.name = service.metadata.name
    ep.metadata.namespace = service.metadata.namespace
    ep.metadata.labels.update(service.metadata.labels)
    if service.spec.cluster_ip == "None":
        ep.metadata.labels[HEADLESS_LABEL] = ""
    ep.subsets.extend(compute_subsets(service, pods))
    return ep


class EndpointsController:
    def __init__(
        self,
        client: Any,
        services: Informer[core_pb2.Service],
        pods: Informer[core_pb2.Pod],
        endpoints: Informer[core_pb2.Endpoints],
        *,
        workers: int = 5,
    ) -> None:
        self.client = client
        self.services = services
        self.pods = pods
        self.endpoints = endpoints
        self.controller = Controller("endpoints", self.reconcile, workers=workers)
        self.controller.watch(services)
        self.controller.watch(pods, self._services_of_pod)
        self.controller.watch(endpoints, self._managed_endpoints)

    def _services_of_pod(self, pod: Any) -> list[str]:
        ns = pod.metadata.namespace
        labels = pod.metadata.labels
        return [
            f"{ns}/{svc.metadata.name}"
            for svc in self.services.list(ns)
            if svc.spec.selector and selector_from_map(svc.spec.selector).matches(labels)
        ]

    def _managed_endpoints(self, ep: Any) -> list[str]:
        """An edited or deleted Endpoints is put back only if a selector owns it."""
        svc = self.services.get(ep.metadata.name, ep.metadata.namespace)
        return [f"{ep.metadata.namespace}/{ep.metadata.name}"] if svc and svc.spec.selector else []

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        service = self.services.get(name, namespace)
        current = self.endpoints.get(name, namespace)
        if service is None:
            # Reached when the Service was deleted: its Endpoints go with it, as in
            # Kubernetes (a hand-written Endpoints without a Service queues nothing).
            if current is not None:
                await delete_orphaned(self.client, namespace, name)
            return None
        if not service.spec.selector or service.spec.type == "ExternalName":
            return None
        selector = selector_from_map(service.spec.selector)
        pods = [p for p in self.pods.list(namespace) if selector.matches(p.metadata.labels)]
        want = desired_endpoints(service, pods)
        if current is not None:
            if list(current.subsets) == list(want.subsets) and dict(
                current.metadata.labels
            ) == dict(want.metadata.labels):
                return None
            updated = core_pb2.Endpoints()
            updated.CopyFrom(current)
            updated.metadata.labels.clear()
            updated.metadata.labels.update(want.metadata.labels)
            del updated.subsets[:]
            updated.subsets.extend(want.subsets)
            await self.client.endpoints.update(updated)
            return None
        try:
            await self.client.endpoints.create(want)
        except AlreadyExistsError:
            # Our cache lags: reconcile again once the watch delivered it.
            return 0.5
        return None


async def delete_orphaned(client: Any, namespace: str, name: str) -> None:
    """Delete an Endpoints object (its Service is gone); absent is fine."""
    try:
        await client.endpoints.delete(name, namespace)
    except NotFoundError:
        return


def new_endpoints_controller(ctx: ControllerContext) -> Controller:
    informers = ctx.informers
    c = EndpointsController(
        ctx.client,
        informers.for_resource(ctx.client.services),
        informers.for_resource(ctx.client.pods),
        informers.for_resource(ctx.client.endpoints),
        workers=ctx.workers("endpoints", 5),
    )
    return c.controller
