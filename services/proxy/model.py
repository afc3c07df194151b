"""What the proxy needs to know about one service port, distilled from a Service and its
Endpoints: the rule renderer and its tests work on these plain values, never on protobufs,
so the same renderer serves the daemon, the unit tests and the benchmark.

Kubernetes semantics: an Endpoints port is matched to a ServicePort by name (a single
unnamed port matches the unnamed port), only `addresses` (ready) are load-balanced, and a
Service without a cluster IP (headless, ExternalName) gets no rules at all.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from capstan.api.core.v1 import core_pb2

DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds: Kubernetes' ClientIP default (3 hours)


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # lower case, as iptables spells it: tcp, udp, sctp
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    affinity_timeout: int = 0  # 0: no session affinity
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def key(self) -> str:
        """ns/name:port (ns/name for an unnamed port), as kube-proxy's rule comments say."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def ident(self) -> str:
        """What chain names are hashed from: stable across restarts, unique per port."""
        return f"{self.namespace}/{self.name}:{self.port_name}/{self.protocol}"


def is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def has_cluster_ip(service: core_pb2.Service) -> bool:
    ip = service.spec.cluster_ip
    return bool(ip) and ip != "None" and service.spec.type != "ExternalName"


def ready_endpoints(
    endpoints: core_pb2.Endpoints | None, port_name: str, protocol: str
) -> tuple[Endpoint, ...]:
    """Ready addresses serving the named port, deduplicated and sorted (deterministic rules)."""
    if endpoints is None:
        return ()
    found: set[Endpoint] = set()
    for subset in endpoints.subsets:
        for ep_port in subset.ports:
            if ep_port.name != port_name or (ep_port.protocol or "TCP").lower() != protocol:
                continue
            for address in subset.addresses:
                if is_ipv4(address.ip):
                    found.add(Endpoint(address.ip, ep_port.port))
    return tuple(sorted(found))


def service_ports(
    service: core_pb2.Service, endpoints: core_pb2.Endpoints | None
) -> list[ServicePort]:
    """One ServicePort per port of a Service that has rules; [] for headless/ExternalName."""
    if not has_cluster_ip(service) or not is_ipv4(service.spec.cluster_ip):
        return []
    spec = service.spec
    affinity = 0
    if spec.session_affinity == "ClientIP":
        cfg = spec.session_affinity_config.client_ip
        affinity = (
            cfg.timeout_seconds if cfg.HasField("timeout_seconds") else DEFAULT_AFFINITY_TIMEOUT
        )
    external = [ip for ip in spec.external_ips if is_ipv4(ip)]
    external += [i.ip for i in service.status.load_balancer.ingress if is_ipv4(i.ip)]
    node_ports = spec.type in ("NodePort", "LoadBalancer")
    out = []
    for p in spec.ports:
        protocol = (p.protocol or "TCP").lower()
        out.append(
            ServicePort(
                namespace=service.metadata.namespace,
                name=service.metadata.name,
                port_name=p.name,
                protocol=protocol,
                cluster_ip=spec.cluster_ip,
                port=p.port,
                node_port=p.node_port if node_ports else 0,
                external_ips=tuple(sorted(set(external))),
                affinity_timeout=affinity,
                endpoints=ready_endpoints(endpoints, p.name, protocol),
            )
        )
    return out
