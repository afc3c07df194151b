"""Endpoints computation: readiness, named ports resolved per pod, hostnames, terminating pods."""

from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.machinery.intstr import make_int_or_str
from controller.endpoints import compute_subsets, desired_endpoints

pytestmark = pytest.mark.unit


def service(*ports: tuple[str, int, int | str], publish: bool = False) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = "web", "ns"
    svc.spec.selector["app"] = "web"
    svc.spec.publish_not_ready_addresses = publish
    for name, port, target in ports:
        p = svc.spec.ports.add(name=name, port=port, protocol="TCP")
        p.target_port.CopyFrom(make_int_or_str(target))
    return svc


def pod(name: str, ip: str, *, ready: bool = True, http: int = 8080) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, "ns", f"uid-{name}"
    p.metadata.labels["app"] = "web"
    c = p.spec.containers.add(name="c", image="x")
    c.ports.add(name="http", container_port=http, protocol="TCP")
    p.spec.node_name = "n1"
    p.status.phase = "Running"
    p.status.pod_ip = ip
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    return p


def test_ready_and_not_ready_addresses_with_target_refs() -> None:
    subsets = compute_subsets(
        service(("http", 80, 8080)), [pod("b", "10.0.0.2", ready=False), pod("a", "10.0.0.1")]
    )
    assert len(subsets) == 1
    s = subsets[0]
    assert [a.ip for a in s.addresses] == ["10.0.0.1"]
    assert [a.ip for a in s.not_ready_addresses] == ["10.0.0.2"]
    assert s.addresses[0].target_ref.name == "a" and s.addresses[0].node_name == "n1"
    assert [(p.name, p.port) for p in s.ports] == [("http", 8080)]


def test_named_target_port_resolved_per_pod_splits_subsets() -> None:
    subsets = compute_subsets(
        service(("http", 80, "http")),
        [pod("a", "10.0.0.1", http=8080), pod("b", "10.0.0.2", http=9090)],
    )
    got = sorted((s.addresses[0].ip, s.ports[0].port) for s in subsets)
    assert got == [("10.0.0.1", 8080), ("10.0.0.2", 9090)]


def test_pod_without_the_named_port_is_left_out() -> None:
    svc = service(("metrics", 9100, "metrics"))
    assert compute_subsets(svc, [pod("a", "10.0.0.1")]) == []


def test_terminating_and_ipless_pods_excluded_unless_publishing_not_ready() -> None:
    term = pod("t", "10.0.0.3")
    term.metadata.deletion_timestamp.seconds = 1
    no_ip = pod("n", "")
    assert compute_subsets(service(("http", 80, 8080)), [term, no_ip]) == []
    published = compute_subsets(
        service(("http", 80, 8080), publish=True), [term, pod("u", "10.0.0.4", ready=False)]
    )
    assert [a.ip for a in published[0].addresses] == ["10.0.0.3", "10.0.0.4"]
    assert not published[0].not_ready_addresses


def test_hostname_only_with_matching_subdomain() -> None:
    a, b = pod("a", "10.0.0.1"), pod("b", "10.0.0.2")
    a.spec.hostname, a.spec.subdomain = "a-0", "web"
    b.spec.hostname, b.spec.subdomain = "b-0", "other"
    ep = desired_endpoints(service(("http", 80, 8080)), [a, b])
    names = {addr.ip: addr.hostname for addr in ep.subsets[0].addresses}
    assert names == {"10.0.0.1": "a-0", "10.0.0.2": ""}
    assert ep.metadata.name == "web"


def test_multi_port_service_groups_pods_with_identical_ports() -> None:
    svc = service(("http", 80, "http"), ("admin", 81, 9000))
    subsets = compute_subsets(svc, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")])
    assert len(subsets) == 1
    assert sorted((p.name, p.port) for p in subsets[0].ports) == [("admin", 9000), ("http", 8080)]
    assert len(subsets[0].addresses) == 2
