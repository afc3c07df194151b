"""Cluster DNS answers, following CoreDNS's kubernetes plugin (the DNS-based service
discovery spec), from whatever holds Services and Endpoints (the proxy's informer caches).

    <svc>.<ns>.svc.<zone>                 A/AAAA: cluster IP; headless: ready endpoint IPs;
                                          ExternalName: CNAME; SRV: one per named port
    _<port>._<proto>.<svc>.<ns>.svc.<zone>  SRV for a named port (headless: one per endpoint)
    <hostname>.<svc>.<ns>.svc.<zone>      A: the endpoint with that hostname (StatefulSet
                                          pods), or the dashed IP form a-b-c-d of an endpoint
    <d>.<c>.<b>.<a>.in-addr.arpa          PTR for a cluster IP

Names that exist only as a path (`svc.<zone>`, `<ns>.svc.<zone>`) and known names asked for
a type they lack answer NOERROR with no records (NODATA); everything else in the zone is
NXDOMAIN, with the zone's SOA so resolvers cache the negative answer. Short forms (`svc`,
`svc.ns`) are the resolver's business through resolv.conf's search list: like CoreDNS, this
server answers only fully qualified names and never forwards a name inside the zone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.reversename
import dns.rrset
from capstan.api.core.v1 import core_pb2

IN = dns.rdataclass.IN
A, AAAA, SRV, CNAME, PTR, SOA, ANY = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.SRV,
    dns.rdatatype.CNAME,
    dns.rdatatype.PTR,
    dns.rdatatype.SOA,
    dns.rdatatype.ANY,
)
REVERSE_V4 = dns.name.from_text("in-addr.arpa.")


class ServiceLookup(Protocol):
    def service(self, namespace: str, name: str) -> core_pb2.Service | None: ...

    def endpoints(self, namespace: str, name: str) -> core_pb2.Endpoints | None: ...

    def has_namespace(self, namespace: str) -> bool:
        """Any Service in it (the name <ns>.svc.<zone> then exists)."""
        ...

    def services_by_cluster_ip(self, ip: str) -> list[core_pb2.Service]: ...


@dataclass(frozen=True, slots=True)
class _Target:
    """One address behind a name: its IP and the label naming it under the service."""

    ip: str
    label: str


def _rdata(cls: Any, rdtype: int, *args: Any) -> dns.rdata.Rdata:
    """dnspython's rdata constructors are untyped; one typed door to them."""
    return cast(dns.rdata.Rdata, cls(IN, rdtype, *args))


def _dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def _family(ip: str) -> int:
    return AAAA if ":" in ip else A


class ClusterDns:
    def __init__(self, lookup: ServiceLookup, zone: str = "cluster.local", ttl: int = 5) -> None:
        self.lookup = lookup
        self.zone = dns.name.from_text(zone.strip(".") + ".")
        self.ttl = ttl
        self._soa = dns.rrset.from_rdata(
            self.zone,
            ttl,
            _rdata(
                dns.rdtypes.ANY.SOA.SOA,
                SOA,
                dns.name.from_text("ns.dns", self.zone),
                dns.name.from_text("hostmaster", self.zone),
                1,
                7200,
                1800,
                86400,
                ttl,
            ),
        )

    def handles(self, qname: dns.name.Name) -> bool:
        """Ours to answer (never forwarded): the zone, and reverse names of cluster IPs."""
        if qname.is_subdomain(self.zone):
            return True
        return qname.is_subdomain(REVERSE_V4) and bool(self._ptr_targets(qname))

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        q = query.question[0]
        if q.rdclass != IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if q.name.is_subdomain(REVERSE_V4):
            targets = self._ptr_targets(q.name) if q.rdtype in (PTR, ANY) else []
            if targets:
                rdatas = [_rdata(dns.rdtypes.ANY.PTR.PTR, PTR, t) for t in targets]
                response.answer.append(dns.rrset.from_rdata_list(q.name, self.ttl, rdatas))
            return response
        found = self._records(q.name, q.rdtype)
        if found is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa)
            return response
        answer, additional = found
        response.answer.extend(answer)
        response.additional.extend(additional)
        if not answer:
            response.authority.append(self._soa)  # NODATA
        return response

    # ------------------------------------------------------------------ the zone
    def _records(
        self, qname: dns.name.Name, qtype: int
    ) -> tuple[list[dns.rrset.RRset], list[dns.rrset.RRset]] | None:
        """(answer, additional) for a name that exists (answer may be empty), None for
        NXDOMAIN."""
        labels = [label.decode().lower() for label in qname.relativize(self.zone).labels]
        if not labels or labels == ["@"]:
            return ([self._soa] if qtype in (SOA, ANY) else []), []
        if labels[-1] != "svc":
            return None
        path = labels[:-1]
        if not path:
            return [], []
        if len(path) == 1:
            return ([], []) if self.lookup.has_namespace(path[0]) else None
        ns, svc_name = path[-1], path[-2]
        service = self.lookup.service(ns, svc_name)
        if service is None:
            return None
        svc_fqdn = dns.name.from_text(f"{svc_name}.{ns}.svc", self.zone)
        if service.spec.type == "ExternalName":
            if len(path) != 2:
                return None
            target = dns.name.from_text(service.spec.external_name.strip(".") + ".")
            cname = _rdata(dns.rdtypes.ANY.CNAME.CNAME, CNAME, target)
            return [dns.rrset.from_rdata(qname, self.ttl, cname)], []
        headless = service.spec.cluster_ip in ("", "None")
        endpoints = self.lookup.endpoints(ns, svc_name)
        targets = self._targets(service, endpoints) if headless else []
        if len(path) == 2:
            if qtype == SRV:
                return self._srv(qname, svc_fqdn, service, endpoints, targets, None)
            if headless:
                ips = [t.ip for t in targets]
            else:
                ips = [service.spec.cluster_ip, *service.spec.cluster_ips[1:]]
            return self._addresses(qname, qtype, ips), []
        if len(path) == 3:
            host = path[0]
            ips = [t.ip for t in targets if t.label == host or _dashed(t.ip) == host]
            return (self._addresses(qname, qtype, ips), []) if ips else None
        if len(path) == 4 and path[0].startswith("_") and path[1].startswith("_"):
            port_name, proto = path[0][1:], path[1][1:]
            ports = [
                p
                for p in service.spec.ports
                if p.name.lower() == port_name and (p.protocol or "TCP").lower() == proto
            ]
            if not ports:
                return None
            if qtype != SRV:
                return [], []
            return self._srv(qname, svc_fqdn, service, endpoints, targets, ports[0])
        return None

    def _addresses(
        self, qname: dns.name.Name, qtype: int, ips: Iterable[str]
    ) -> list[dns.rrset.RRset]:
        out = []
        for rdtype, cls in ((A, dns.rdtypes.IN.A.A), (AAAA, dns.rdtypes.IN.AAAA.AAAA)):
            if qtype not in (rdtype, ANY):
                continue
            rdatas = [_rdata(cls, rdtype, ip) for ip in dict.fromkeys(ips) if _family(ip) == rdtype]
            if rdatas:
                out.append(dns.rrset.from_rdata_list(qname, self.ttl, rdatas))
        return out

    def _targets(
        self, service: core_pb2.Service, endpoints: core_pb2.Endpoints | None
    ) -> list[_Target]:
        if endpoints is None:
            return []
        out: dict[str, _Target] = {}
        for subset in endpoints.subsets:
            addresses = list(subset.addresses)
            if service.spec.publish_not_ready_addresses:
                addresses += subset.not_ready_addresses
            for a in addresses:
                out.setdefault(a.ip, _Target(a.ip, (a.hostname or _dashed(a.ip)).lower()))
        return sorted(out.values(), key=lambda t: t.label)

    def _srv(
        self,
        qname: dns.name.Name,
        svc_fqdn: dns.name.Name,
        service: core_pb2.Service,
        endpoints: core_pb2.Endpoints | None,
        targets: list[_Target],
        only: core_pb2.ServicePort | None,
    ) -> tuple[list[dns.rrset.RRset], list[dns.rrset.RRset]]:
        """SRV for named ports: a cluster-IP service points at its own name and port; a
        headless one at each endpoint's name and the port the endpoint serves."""
        ports = [only] if only is not None else [p for p in service.spec.ports if p.name]
        rdatas: list[dns.rdata.Rdata] = []
        additional: list[dns.rrset.RRset] = []
        if service.spec.cluster_ip not in ("", "None"):
            for p in ports:
                rdatas.append(_rdata(dns.rdtypes.IN.SRV.SRV, SRV, 0, 100, p.port, svc_fqdn))
            if rdatas:
                additional = self._addresses(svc_fqdn, ANY, [service.spec.cluster_ip])
        else:
            by_ip = {t.ip: t for t in targets}
            seen: set[dns.name.Name] = set()
            for p in ports:
                for ip, port in _endpoint_ports(endpoints, p, service):
                    target = by_ip.get(ip)
                    if target is None:
                        continue
                    name = dns.name.from_text(target.label, svc_fqdn)
                    rdatas.append(_rdata(dns.rdtypes.IN.SRV.SRV, SRV, 0, 100, port, name))
                    if name not in seen:
                        seen.add(name)
                        additional += self._addresses(name, ANY, [ip])
        if not rdatas:
            return [], []
        return [dns.rrset.from_rdata_list(qname, self.ttl, rdatas)], additional

    # ------------------------------------------------------------------ reverse
    def _ptr_targets(self, qname: dns.name.Name) -> list[dns.name.Name]:
        try:
            ip = str(dns.reversename.to_address(qname))
            ipaddress.IPv4Address(ip)
        except (dns.exception.SyntaxError, ValueError):
            return []
        return [
            dns.name.from_text(f"{s.metadata.name}.{s.metadata.namespace}.svc", self.zone)
            for s in self.lookup.services_by_cluster_ip(ip)
        ]


def _endpoint_ports(
    endpoints: core_pb2.Endpoints | None, port: core_pb2.ServicePort, service: core_pb2.Service
) -> list[tuple[str, int]]:
    if endpoints is None:
        return []
    out = []
    protocol = port.protocol or "TCP"
    for subset in endpoints.subsets:
        addresses = list(subset.addresses)
        if service.spec.publish_not_ready_addresses:
            addresses += subset.not_ready_addresses
        for ep_port in subset.ports:
            if ep_port.name == port.name and (ep_port.protocol or "TCP") == protocol:
                out += [(a.ip, ep_port.port) for a in addresses]
    return sorted(set(out))
