"""Service cluster IP and node port allocation through the API."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

import grpc
import pytest
from apiserver.allocators import RANGES_ROOT
from capstan.api.meta.v1 import meta_pb2

from tests.integration.apiserver.helpers import (
    RPC_TIMEOUT,
    Clients,
    delete_request,
    fails,
    get,
    service,
    violation_fields,
)
from tests.support.apiserver import run_apiserver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
KUBERNETES_IP = "10.96.0.1"


def _in_cidr(ip: str) -> bool:
    return ipaddress.ip_address(ip) in SERVICE_CIDR


async def test_cluster_ip_allocated(api: Clients, ns: str) -> None:
    created = await api.services.Create(service(ns, "web"), timeout=RPC_TIMEOUT)
    ip = created.spec.cluster_ip
    assert _in_cidr(ip)
    assert ip not in (KUBERNETES_IP, "10.96.0.0", "10.111.255.255")
    assert list(created.spec.cluster_ips) == [ip]
    assert created.spec.type == "ClusterIP"
    got = await api.services.Get(get(ns, "web"), timeout=RPC_TIMEOUT)
    assert got.spec.cluster_ip == ip


async def test_kubernetes_service_holds_first_ip(api: Clients) -> None:
    svc = await api.services.Get(get("default", "kubernetes"), timeout=RPC_TIMEOUT)
    assert svc.spec.cluster_ip == KUBERNETES_IP
    assert list(svc.spec.cluster_ips) == [KUBERNETES_IP]
    assert [(p.name, p.port) for p in svc.spec.ports] == [("https", 443)]


async def test_requested_ips(api: Clients, ns: str) -> None:
    first = await api.services.Create(service(ns, "auto"), timeout=RPC_TIMEOUT)
    # A free address is honoured.
    free = _free_ip(first.spec.cluster_ip)
    chosen = await api.services.Create(service(ns, "chosen", cluster_ip=free), timeout=RPC_TIMEOUT)
    assert chosen.spec.cluster_ip == free
    assert list(chosen.spec.cluster_ips) == [free]
    # A taken one is refused, naming the field.
    for taken in (first.spec.cluster_ip, free, KUBERNETES_IP):
        err = await fails(
            api.services.Create(service(ns, "clash", cluster_ip=taken), timeout=RPC_TIMEOUT),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert violation_fields(err) == ["spec.clusterIPs"]
        assert "already allocated" in err.violations[0].description
    # One outside the range is refused, naming the range.
    err = await fails(
        api.services.Create(service(ns, "outside", cluster_ip="10.200.0.5"), timeout=RPC_TIMEOUT),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert violation_fields(err) == ["spec.clusterIPs"]
    assert "The range of valid IPs is 10.96.0.0/12" in err.violations[0].description
    await fails(api.services.Get(get(ns, "clash"), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND)


def _free_ip(near: str) -> str:
    """An address next to an allocated one, very likely free (the range has ~1M)."""
    ip = ipaddress.ip_address(near) + 1
    if ip not in SERVICE_CIDR or ip == SERVICE_CIDR.broadcast_address:
        ip = ipaddress.ip_address(near) - 1
    return str(ip)


async def test_headless_and_external_name_get_no_ip(api: Clients, ns: str) -> None:
    headless = await api.services.Create(
        service(ns, "headless", cluster_ip="None"), timeout=RPC_TIMEOUT
    )
    assert headless.spec.cluster_ip == "None"
    assert all(ip == "None" for ip in headless.spec.cluster_ips)
    external = await api.services.Create(
        service(ns, "ext", type_="ExternalName", external_name="db.example.com", ports=()),
        timeout=RPC_TIMEOUT,
    )
    assert external.spec.cluster_ip == ""
    assert list(external.spec.cluster_ips) == []


async def test_node_ports_are_unique(api: Clients, ns: str) -> None:
    ports: list[int] = []
    ips: list[str] = []
    for i in range(50):
        svc = await api.services.Create(
            service(ns, f"np-{i}", type_="NodePort", ports=(80, 443)), timeout=RPC_TIMEOUT
        )
        ports.extend(p.node_port for p in svc.spec.ports)
        ips.append(svc.spec.cluster_ip)
    assert all(30000 <= p <= 32767 for p in ports)
    assert len(set(ports)) == len(ports) == 100
    assert len(set(ips)) == 50


async def test_requested_node_port(api: Clients, ns: str) -> None:
    auto = await api.services.Create(service(ns, "auto", type_="NodePort"), timeout=RPC_TIMEOUT)
    taken = auto.spec.ports[0].node_port
    wanted = 30000 if taken != 30000 else 30001
    # Another test on this apiserver may hold the wanted port: find one that is free.
    for candidate in range(wanted, wanted + 50):
        try:
            chosen = await api.services.Create(
                service(ns, "chosen", type_="NodePort", node_ports=(candidate,)),
                timeout=RPC_TIMEOUT,
            )
            break
        except grpc.aio.AioRpcError as e:
            assert "already allocated" in (e.details() or "")
    assert chosen.spec.ports[0].node_port == candidate
    for clash in (taken, candidate):
        err = await fails(
            api.services.Create(
                service(ns, "clash", type_="NodePort", node_ports=(clash,)), timeout=RPC_TIMEOUT
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert violation_fields(err) == ["spec.ports[0].nodePort"]
        assert "provided port is already allocated" in err.violations[0].description
    err = await fails(
        api.services.Create(
            service(ns, "low", type_="NodePort", node_ports=(8080,)), timeout=RPC_TIMEOUT
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert violation_fields(err) == ["spec.ports[0].nodePort"]
    assert "The range of valid ports is 30000-32767" in err.violations[0].description
    listed = await api.services.List(meta_pb2.ListOptions(namespace=ns), timeout=RPC_TIMEOUT)
    assert sorted(s.metadata.name for s in listed.items) == ["auto", "chosen"]


async def test_failed_create_leaks_no_allocation(api: Clients, ns: str) -> None:
    """A create refused after its cluster IP was allocated (a node port is taken) gives
    the IP back. Counted in the store, as nothing else in the API shows a leak."""
    server = api.running.server
    assert server is not None
    holder = await api.services.Create(service(ns, "holder", type_="NodePort"), timeout=RPC_TIMEOUT)
    taken = holder.spec.ports[0].node_port

    async def allocated() -> int:
        return len((await server.store.range(RANGES_ROOT)).kvs)

    before = await allocated()
    for i in range(3):
        await fails(
            api.services.Create(
                service(ns, f"clash-{i}", type_="NodePort", ports=(80, 81), node_ports=(0, taken)),
                timeout=RPC_TIMEOUT,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    assert await allocated() == before


async def test_changing_node_port_releases_the_old_one(api: Clients, ns: str) -> None:
    svc = await api.services.Create(service(ns, "a", type_="NodePort"), timeout=RPC_TIMEOUT)
    old_port = svc.spec.ports[0].node_port
    new_port = await _free_node_port(api, ns, avoid={old_port})
    svc.spec.ports[0].node_port = new_port
    moved = await api.services.Update(svc, timeout=RPC_TIMEOUT)
    assert moved.spec.ports[0].node_port == new_port
    taker = await api.services.Create(
        service(ns, "b", type_="NodePort", node_ports=(old_port,)), timeout=RPC_TIMEOUT
    )
    assert taker.spec.ports[0].node_port == old_port


async def _free_node_port(api: Clients, ns: str, avoid: set[int]) -> int:
    """A node port no Service holds: allocate one with a scratch Service, then free it."""
    scratch = await api.services.Create(
        service(ns, "scratch", type_="NodePort"), timeout=RPC_TIMEOUT
    )
    port = scratch.spec.ports[0].node_port
    assert port not in avoid
    await api.services.Delete(delete_request(ns, "scratch"), timeout=RPC_TIMEOUT)
    return port


async def test_delete_releases_ip_and_ports(api: Clients, ns: str) -> None:
    svc = await api.services.Create(service(ns, "a", type_="NodePort"), timeout=RPC_TIMEOUT)
    ip, port = svc.spec.cluster_ip, svc.spec.ports[0].node_port
    await api.services.Delete(delete_request(ns, "a"), timeout=RPC_TIMEOUT)
    again = await api.services.Create(
        service(ns, "b", type_="NodePort", cluster_ip=ip, node_ports=(port,)), timeout=RPC_TIMEOUT
    )
    assert (again.spec.cluster_ip, again.spec.ports[0].node_port) == (ip, port)


async def test_type_change_releases_node_ports(api: Clients, ns: str) -> None:
    svc = await api.services.Create(service(ns, "a", type_="NodePort"), timeout=RPC_TIMEOUT)
    ip, port = svc.spec.cluster_ip, svc.spec.ports[0].node_port
    # As `kubectl edit` would: only the type changes, the allocated values come back as read.
    svc.spec.type = "ClusterIP"
    changed = await api.services.Update(svc, timeout=RPC_TIMEOUT)
    assert changed.spec.type == "ClusterIP"
    assert changed.spec.ports[0].node_port == 0
    assert changed.spec.cluster_ip == ip
    taker = await api.services.Create(
        service(ns, "b", type_="NodePort", node_ports=(port,)), timeout=RPC_TIMEOUT
    )
    assert taker.spec.ports[0].node_port == port


async def test_type_change_to_external_name_releases_ip(api: Clients, ns: str) -> None:
    svc = await api.services.Create(service(ns, "a"), timeout=RPC_TIMEOUT)
    ip = svc.spec.cluster_ip
    svc.spec.type = "ExternalName"
    svc.spec.external_name = "db.example.com"
    changed = await api.services.Update(svc, timeout=RPC_TIMEOUT)
    assert (changed.spec.cluster_ip, list(changed.spec.cluster_ips)) == ("", [])
    taker = await api.services.Create(service(ns, "b", cluster_ip=ip), timeout=RPC_TIMEOUT)
    assert taker.spec.cluster_ip == ip


async def test_update_keeps_allocations_left_out(api: Clients, ns: str) -> None:
    svc = await api.services.Create(service(ns, "a", type_="NodePort"), timeout=RPC_TIMEOUT)
    fresh = service(ns, "a", type_="NodePort")
    fresh.metadata.labels["edited"] = "yes"
    updated = await api.services.Update(fresh, timeout=RPC_TIMEOUT)
    assert updated.spec.cluster_ip == svc.spec.cluster_ip
    assert list(updated.spec.cluster_ips) == list(svc.spec.cluster_ips)
    assert updated.spec.ports[0].node_port == svc.spec.ports[0].node_port
    changed_ip = service(ns, "a", type_="NodePort", cluster_ip=_free_ip(svc.spec.cluster_ip))
    err = await fails(
        api.services.Update(changed_ip, timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "spec.clusterIP" in violation_fields(err)


async def test_allocations_survive_restart(tmp_path: Path, backend: str, store_url: str) -> None:
    """Stop an apiserver and start a new one on the same store (for SQLite, the same
    file; the session apiserver holds its own file locked): what the first allocated
    stays allocated."""
    url = f"sqlite://{tmp_path / 'state.db'}" if backend == "sqlite" else store_url
    ns = f"t-{uuid.uuid4().hex[:10]}"
    async with run_apiserver(url) as first:
        api = Clients.connect(first)
        await api.create_namespace(ns)
        held = set()
        for i in range(20):
            svc = await api.services.Create(
                service(ns, f"s{i}", type_="NodePort"), timeout=RPC_TIMEOUT
            )
            held.add(svc.spec.cluster_ip)
        ports = await _node_ports(api)
    async with run_apiserver(url) as second:
        api = Clients.connect(second)
        kubernetes = await api.services.Get(get("default", "kubernetes"), timeout=RPC_TIMEOUT)
        assert kubernetes.spec.cluster_ip == KUBERNETES_IP
        for ip in held:
            err = await fails(
                api.services.Create(service(ns, "clash", cluster_ip=ip), timeout=RPC_TIMEOUT),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            assert "already allocated" in err.violations[0].description
        for i in range(20):
            svc = await api.services.Create(
                service(ns, f"n{i}", type_="NodePort"), timeout=RPC_TIMEOUT
            )
            assert svc.spec.cluster_ip not in held | {KUBERNETES_IP}
            assert svc.spec.ports[0].node_port not in ports
            held.add(svc.spec.cluster_ip)
            ports.add(svc.spec.ports[0].node_port)


async def _node_ports(api: Clients) -> set[int]:
    listed = await api.services.List(meta_pb2.ListOptions(), timeout=RPC_TIMEOUT)
    return {p.node_port for s in listed.items for p in s.spec.ports if p.node_port}
