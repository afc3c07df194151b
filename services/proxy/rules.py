"""The desired iptables state for a set of service ports: pure, deterministic, no I/O.

The chain layout is kube-proxy's (iptables mode), with CAPSTAN- names:

nat:    PREROUTING, OUTPUT -> CAPSTAN-SERVICES   one jump per cluster IP / external IP:port,
                                                 last: local destinations -> CAPSTAN-NODEPORTS
        CAPSTAN-NODEPORTS                        one jump per node port -> CAPSTAN-EXT-<hash>
        CAPSTAN-EXT-<hash>                       mark for masquerade, then the service chain
        CAPSTAN-SVC-<hash>  (one per port)       session-affinity checks, then endpoints chosen
                                                 with statistic probabilities 1/n, 1/(n-1), ..., 1
        CAPSTAN-SEP-<hash>  (one per endpoint)   hairpin masquerade mark, DNAT to ip:port
        CAPSTAN-MARK-MASQ                        sets the masquerade bit
        POSTROUTING -> CAPSTAN-POSTROUTING       MASQUERADE what carries the bit
filter: INPUT, FORWARD, OUTPUT -> CAPSTAN-SERVICES  REJECT service ports without ready
                                                 endpoints, and anything else still addressed
                                                 to the service CIDR after DNAT (no such service)

Chain names hash the service port's identity (and the endpoint), so a restarted proxy derives
the same names and a changed service rewrites only its own chains.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.model import ServicePort

PREFIX = "CAPSTAN-"
SERVICES = "CAPSTAN-SERVICES"
NODEPORTS = "CAPSTAN-NODEPORTS"
POSTROUTING = "CAPSTAN-POSTROUTING"
MARK_MASQ = "CAPSTAN-MARK-MASQ"

# The chains every service port adds lines to; written last in a sync (see restore.py).
JUMP_TABLES = frozenset({("nat", SERVICES), ("nat", NODEPORTS), ("filter", SERVICES)})

# table -> chain -> rule arguments (the part after "-A CHAIN"), in order.
Tables = dict[str, dict[str, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Hook:
    """A jump from a built-in chain into one of ours: the only rules we put outside our chains."""

    table: str
    chain: str
    target: str
    match: str = ""

    @property
    def rule(self) -> str:
        match = f"{self.match} " if self.match else ""
        return f'{match}-m comment --comment "capstan service portals" -j {self.target}'


HOOKS: tuple[Hook, ...] = (
    Hook("filter", "INPUT", SERVICES, "-m conntrack --ctstate NEW"),
    Hook("filter", "FORWARD", SERVICES, "-m conntrack --ctstate NEW"),
    Hook("filter", "OUTPUT", SERVICES, "-m conntrack --ctstate NEW"),
    Hook("nat", "PREROUTING", SERVICES),
    Hook("nat", "OUTPUT", SERVICES),
    Hook("nat", "POSTROUTING", POSTROUTING),
)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    service_cidr: str = "10.96.0.0/12"
    # Traffic to a cluster IP from outside this CIDR (the node's pod CIDR, or --cluster-cidr)
    # is masqueraded so replies come back through this node; "" disables that rule.
    local_cidr: str = ""
    masquerade_all: bool = False
    masquerade_bit: int = 14

    @property
    def mark(self) -> str:
        return f"{1 << self.masquerade_bit:#x}"


def chain_name(kind: str, *parts: str) -> str:
    """CAPSTAN-<KIND>-<16 base32 chars>: 28 characters, iptables' limit for chain names."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return f"{PREFIX}{kind}-{base64.b32encode(digest).decode()[:16]}"


def svc_chain(sp: ServicePort) -> str:
    return chain_name("SVC", sp.ident)


def ext_chain(sp: ServicePort) -> str:
    return chain_name("EXT", sp.ident)


def sep_chain(sp: ServicePort, ip: str, port: int) -> str:
    return chain_name("SEP", sp.ident, f"{ip}:{port}")


def probability(n: int) -> str:
    """1/n as the statistic match stores it (a 31-bit fixed-point fraction) and prints it."""
    return f"{round(0x80000000 / n) / 0x80000000:.11f}"


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """One service port's share of the rules: lines for the shared jump tables and the
    chains it owns alone. Cached per service port by the daemon, so a sync re-renders only
    the services that changed."""

    nat_services: tuple[str, ...] = ()
    nat_nodeports: tuple[str, ...] = ()
    filter_services: tuple[str, ...] = ()
    # Ordered so that each chain jumps only to chains before it (or to fixed chains): any
    # prefix of the sequence can be written on its own (see restore.plan_sync's batches).
    chains: tuple[tuple[str, tuple[str, ...]], ...] = ()


def render(ports: Iterable[ServicePort], config: RuleConfig) -> Tables:
    """Every chain we own with its full contents."""
    return assemble((render_service(sp, config) for sp in sort_ports(ports)), config)


def sort_ports(ports: Iterable[ServicePort]) -> list[ServicePort]:
    return sorted(ports, key=lambda p: (p.namespace, p.name, p.port_name, p.protocol))


def assemble(rendered: Iterable[ServiceRules], config: RuleConfig) -> Tables:
    """The fixed chains around the per-service parts (kept in the order given). Fixed chains
    are listed even when empty: the hooks jump to them."""
    mark = config.mark
    nat_services: list[str] = []
    nodeports: list[str] = []
    flt_services: list[str] = []
    nat: dict[str, tuple[str, ...]] = {
        MARK_MASQ: (f"-j MARK --set-xmark {mark}/{mark}",),
        POSTROUTING: (
            f"-m mark ! --mark {mark}/{mark} -j RETURN",
            # Clear the bit so a packet that re-enters the stack is not masqueraded twice.
            f"-j MARK --set-xmark {mark}/0x0",
            '-m comment --comment "capstan service traffic requiring SNAT" -j MASQUERADE',
        ),
    }
    for part in rendered:
        nat_services.extend(part.nat_services)
        nodeports.extend(part.nat_nodeports)
        flt_services.extend(part.filter_services)
        nat.update(part.chains)
    nat_services.append(
        '! -d 127.0.0.0/8 -m comment --comment "node ports on local addresses" '
        f"-m addrtype --dst-type LOCAL -j {NODEPORTS}"
    )
    flt_services.append(
        f'-d {config.service_cidr} -m comment --comment "no service at this cluster IP and port" '
        "-j REJECT --reject-with icmp-net-unreachable"
    )
    nat[SERVICES] = tuple(nat_services)
    nat[NODEPORTS] = tuple(nodeports)
    return {"filter": {SERVICES: tuple(flt_services)}, "nat": nat}


def render_service(sp: ServicePort, config: RuleConfig) -> ServiceRules:
    """Rules are written in the canonical form iptables-save prints them in (matches in
    its order, MARK as --set-xmark, probabilities as the kernel stores them), so the periodic
    resync can compare the kernel's rules with ours line by line."""
    if not sp.endpoints:
        return _rejected(sp)
    proto = sp.protocol
    svc, ext = svc_chain(sp), ext_chain(sp)
    dport = f"-m {proto} --dport {sp.port}"
    comment = f'-m comment --comment "{sp.key} cluster IP"'
    services = [f"-d {sp.cluster_ip}/32 -p {proto} {comment} {dport} -j {svc}"]
    nodeports: list[str] = []
    chains: list[tuple[str, tuple[str, ...]]] = []
    rules: list[str] = []
    masq = f"-d {sp.cluster_ip}/32 -p {proto} {comment} {dport} -j {MARK_MASQ}"
    if config.masquerade_all:
        rules.append(masq)
    elif config.local_cidr:
        rules.append(f"! -s {config.local_cidr} {masq}")
    if sp.node_port or sp.external_ips:
        for ip in sp.external_ips:
            services.append(
                f'-d {ip}/32 -p {proto} -m comment --comment "{sp.key} external IP" '
                f"{dport} -j {ext}"
            )
        if sp.node_port:
            nodeports.append(
                f'-p {proto} -m comment --comment "{sp.key}" -m {proto} --dport {sp.node_port} '
                f"-j {ext}"
            )
    seps = [(ep, sep_chain(sp, ep.ip, ep.port)) for ep in sp.endpoints]
    if sp.affinity_timeout:
        for ep, sep in seps:
            rules.append(
                f'-m comment --comment "{sp.key} -> {ep.ip}:{ep.port}" -m recent --rcheck '
                f"--seconds {sp.affinity_timeout} --reap --name {sep} --mask 255.255.255.255 "
                f"--rsource -j {sep}"
            )
    n = len(seps)
    for i, (ep, sep) in enumerate(seps):
        pick = (
            "" if i == n - 1 else f" -m statistic --mode random --probability {probability(n - i)}"
        )
        rules.append(f'-m comment --comment "{sp.key} -> {ep.ip}:{ep.port}"{pick} -j {sep}')
    for ep, sep in seps:
        remember = (
            f" -m recent --set --name {sep} --mask 255.255.255.255 --rsource"
            if sp.affinity_timeout
            else ""
        )
        chains.append(
            (
                sep,
                (
                    f'-s {ep.ip}/32 -m comment --comment "{sp.key}" -j {MARK_MASQ}',
                    f'-p {proto} -m comment --comment "{sp.key}"{remember} '
                    f"-j DNAT --to-destination {ep.ip}:{ep.port}",
                ),
            )
        )
    chains.append((svc, tuple(rules)))
    if sp.node_port or sp.external_ips:
        chains.append(
            (
                ext,
                (
                    f'-m comment --comment "masquerade traffic from outside" -j {MARK_MASQ}',
                    f"-j {svc}",
                ),
            )
        )
    return ServiceRules(tuple(services), tuple(nodeports), (), tuple(chains))


def _rejected(sp: ServicePort) -> ServiceRules:
    """No ready endpoints: refuse at once instead of letting the SYN time out."""
    proto = sp.protocol
    comment = f'-m comment --comment "{sp.key} has no endpoints"'
    reject = "-j REJECT --reject-with icmp-port-unreachable"
    lines = [
        f"-d {ip}/32 -p {proto} {comment} -m {proto} --dport {sp.port} {reject}"
        for ip in (sp.cluster_ip, *sp.external_ips)
    ]
    if sp.node_port:
        lines.append(
            f"-p {proto} {comment} -m addrtype --dst-type LOCAL -m {proto} --dport {sp.node_port} "
            f"{reject}"
        )
    return ServiceRules(filter_services=tuple(lines))


def rule_count(tables: Tables) -> int:
    return sum(len(rules) for chains in tables.values() for rules in chains.values())
