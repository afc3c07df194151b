"""Cluster DNS answers for every record kind, from a dict-backed lookup."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from capstan.api.core.v1 import core_pb2
from proxy.dns_records import ClusterDns
from proxy.dns_server import DnsServer, split_host_port

pytestmark = pytest.mark.unit


class DictLookup:
    def __init__(self) -> None:
        self.services: dict[tuple[str, str], core_pb2.Service] = {}
        self.eps: dict[tuple[str, str], core_pb2.Endpoints] = {}

    def add(self, svc: core_pb2.Service, eps: core_pb2.Endpoints | None = None) -> None:
        key = (svc.metadata.namespace, svc.metadata.name)
        self.services[key] = svc
        if eps is not None:
            self.eps[key] = eps

    def service(self, namespace: str, name: str) -> core_pb2.Service | None:
        return self.services.get((namespace, name))

    def endpoints(self, namespace: str, name: str) -> core_pb2.Endpoints | None:
        return self.eps.get((namespace, name))

    def has_namespace(self, namespace: str) -> bool:
        return any(ns == namespace for ns, _ in self.services)

    def services_by_cluster_ip(self, ip: str) -> list[core_pb2.Service]:
        return [s for s in self.services.values() if s.spec.cluster_ip == ip]


def _svc(name: str, ip: str, kind: str = "ClusterIP", ns: str = "default") -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, ns
    svc.spec.type, svc.spec.cluster_ip = kind, ip
    svc.spec.ports.add(name="http", port=80, protocol="TCP")
    svc.spec.ports.add(name="", port=81, protocol="TCP")
    return svc


def _eps(*addrs: tuple[str, str], not_ready: tuple[str, ...] = ()) -> core_pb2.Endpoints:
    eps = core_pb2.Endpoints()
    sub = eps.subsets.add()
    for ip, hostname in addrs:
        sub.addresses.add(ip=ip, hostname=hostname)
    for ip in not_ready:
        sub.not_ready_addresses.add(ip=ip)
    sub.ports.add(name="http", port=8080, protocol="TCP")
    return eps


@pytest.fixture
def resolver() -> ClusterDns:
    lookup = DictLookup()
    lookup.add(_svc("web", "10.96.0.10"))
    lookup.add(
        _svc("db", "None"),
        _eps(("10.244.0.5", "db-0"), ("10.244.0.6", "db-1"), not_ready=("10.244.0.7",)),
    )
    ext = _svc("search", "", "ExternalName")
    ext.spec.external_name = "search.example.org"
    lookup.add(ext)
    return ClusterDns(lookup, "cluster.local", ttl=5)


def ask(resolver: ClusterDns, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    response = resolver.answer(query)
    # The response survives the wire round trip (what a client sees).
    return dns.message.from_wire(response.to_wire())


def records(msg: dns.message.Message, section: str = "answer") -> list[str]:
    return sorted(rd.to_text() for rrset in getattr(msg, section) for rd in rrset)


def test_cluster_ip_service_a_record(resolver: ClusterDns) -> None:
    msg = ask(resolver, "web.default.svc.cluster.local.")
    assert msg.rcode() == dns.rcode.NOERROR and msg.flags & dns.flags.AA
    assert records(msg) == ["10.96.0.10"]
    assert msg.answer[0].ttl == 5
    assert records(ask(resolver, "WEB.Default.SVC.cluster.local.")) == ["10.96.0.10"]


def test_headless_service_answers_ready_endpoints(resolver: ClusterDns) -> None:
    assert records(ask(resolver, "db.default.svc.cluster.local.")) == ["10.244.0.5", "10.244.0.6"]


def test_statefulset_pod_hostname_and_dashed_ip(resolver: ClusterDns) -> None:
    assert records(ask(resolver, "db-1.db.default.svc.cluster.local.")) == ["10.244.0.6"]
    assert records(ask(resolver, "10-244-0-5.db.default.svc.cluster.local.")) == ["10.244.0.5"]
    missing = ask(resolver, "db-9.db.default.svc.cluster.local.")
    assert missing.rcode() == dns.rcode.NXDOMAIN


def test_srv_for_named_port(resolver: ClusterDns) -> None:
    msg = ask(resolver, "_http._tcp.web.default.svc.cluster.local.", "SRV")
    assert records(msg) == ["0 100 80 web.default.svc.cluster.local."]
    assert records(msg, "additional") == ["10.96.0.10"]
    headless = ask(resolver, "_http._tcp.db.default.svc.cluster.local.", "SRV")
    assert records(headless) == [
        "0 100 8080 db-0.db.default.svc.cluster.local.",
        "0 100 8080 db-1.db.default.svc.cluster.local.",
    ]
    assert records(headless, "additional") == ["10.244.0.5", "10.244.0.6"]
    # SRV on the service name lists named ports only (the unnamed port 81 has no SRV).
    assert records(ask(resolver, "web.default.svc.cluster.local.", "SRV")) == [
        "0 100 80 web.default.svc.cluster.local."
    ]
    assert ask(resolver, "_nope._tcp.web.default.svc.cluster.local.", "SRV").rcode() == (
        dns.rcode.NXDOMAIN
    )
    assert ask(resolver, "_http._udp.web.default.svc.cluster.local.", "SRV").rcode() == (
        dns.rcode.NXDOMAIN
    )


def test_external_name_is_a_cname(resolver: ClusterDns) -> None:
    msg = ask(resolver, "search.default.svc.cluster.local.")
    assert msg.answer[0].rdtype == dns.rdatatype.CNAME
    assert records(msg) == ["search.example.org."]


def test_nxdomain_and_nodata_carry_the_soa(resolver: ClusterDns) -> None:
    for name in (
        "nope.default.svc.cluster.local.",
        "web.other.svc.cluster.local.",
        "other.svc.cluster.local.",
        "web.default.pod.cluster.local.",
        "a.b.c.web.default.svc.cluster.local.",
    ):
        msg = ask(resolver, name)
        assert msg.rcode() == dns.rcode.NXDOMAIN, name
        assert msg.authority[0].rdtype == dns.rdatatype.SOA
    for name, rdtype in (
        ("web.default.svc.cluster.local.", "AAAA"),
        ("web.default.svc.cluster.local.", "MX"),
        ("default.svc.cluster.local.", "A"),
        ("svc.cluster.local.", "A"),
        ("cluster.local.", "A"),
    ):
        msg = ask(resolver, name, rdtype)
        assert msg.rcode() == dns.rcode.NOERROR and not msg.answer, name
        assert msg.authority[0].rdtype == dns.rdatatype.SOA


def test_configurable_zone_and_reverse_lookup() -> None:
    lookup = DictLookup()
    lookup.add(_svc("web", "10.96.0.10"))
    resolver = ClusterDns(lookup, "corp.internal")
    assert records(ask(resolver, "web.default.svc.corp.internal.")) == ["10.96.0.10"]
    assert not resolver.handles(dns.name.from_text("web.default.svc.cluster.local."))
    ptr = ask(resolver, "10.0.96.10.in-addr.arpa.", "PTR")
    assert records(ptr) == ["web.default.svc.corp.internal."]
    assert not resolver.handles(dns.name.from_text("1.0.0.127.in-addr.arpa."))


async def test_server_refuses_outside_names_without_upstream(resolver: ClusterDns) -> None:
    server = DnsServer(resolver)
    query = dns.message.make_query("example.org.", "A")
    out = await server.handle(query.to_wire(), 512)
    assert out is not None
    assert dns.message.from_wire(out).rcode() == dns.rcode.REFUSED
    # Short forms are never completed by the server (resolv.conf search does that).
    short = dns.message.make_query("web.default.", "A")
    out = await server.handle(short.to_wire(), 512)
    assert out is not None and dns.message.from_wire(out).rcode() == dns.rcode.REFUSED


async def test_server_caches_answers_until_invalidated(resolver: ClusterDns) -> None:
    server = DnsServer(resolver)
    query = dns.message.make_query("web.default.svc.cluster.local.", "A")
    first = await server.handle(query.to_wire(), 512)
    query.id = (query.id + 1) % 65536
    second = await server.handle(query.to_wire(), 512)
    assert first is not None and second is not None
    assert second[:2] == query.to_wire()[:2] and first[2:] == second[2:]
    lookup = resolver.lookup
    assert isinstance(lookup, DictLookup)
    lookup.services[("default", "web")].spec.cluster_ip = "10.96.0.99"
    server.invalidate()
    third = await server.handle(query.to_wire(), 512)
    assert third is not None and records(dns.message.from_wire(third)) == ["10.96.0.99"]


async def test_server_truncates_oversized_udp_answers() -> None:
    lookup = DictLookup()
    many = [(f"10.244.1.{i}", f"p{i}") for i in range(100)]
    lookup.add(_svc("big", "None"), _eps(*many))
    server = DnsServer(ClusterDns(lookup))
    query = dns.message.make_query("big.default.svc.cluster.local.", "A", use_edns=False)
    out = await server.handle(query.to_wire(), 512)
    assert out is not None and len(out) <= 512
    assert dns.message.from_wire(out).flags & dns.flags.TC
    full = await server.handle(query.to_wire(), None)  # TCP
    assert full is not None and len(records(dns.message.from_wire(full))) == 100


async def test_garbage_gets_formerr_and_responses_are_ignored(resolver: ClusterDns) -> None:
    server = DnsServer(resolver)
    out = await server.handle(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff", 512)
    assert out is not None and out[:2] == b"\x12\x34"
    assert out[3] & 0x0F == dns.rcode.FORMERR
    response = dns.message.make_response(
        dns.message.make_query("web.default.svc.cluster.local.", "A")
    )
    assert await server.handle(response.to_wire(), 512) is None


def test_split_host_port() -> None:
    assert split_host_port("10.0.0.1:5353") == ("10.0.0.1", 5353)
    assert split_host_port("10.0.0.1") == ("10.0.0.1", 53)
    assert split_host_port("[::1]:54") == ("::1", 54)
    assert split_host_port("::1") == ("::1", 53)
