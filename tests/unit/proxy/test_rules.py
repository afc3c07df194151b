"""The rule renderer and the restore planner: layout, even spread, partial syncs, drift
repair, batching and cleanup - all on plain values, no iptables."""

from __future__ import annotations

from fractions import Fraction

import pytest
from capstan.api.core.v1 import core_pb2
from proxy.model import Endpoint, ServicePort, service_ports
from proxy.restore import Saved, parse_save, plan_cleanup, plan_sync
from proxy.rules import (
    HOOKS,
    MARK_MASQ,
    NODEPORTS,
    SERVICES,
    RuleConfig,
    ext_chain,
    render,
    rule_count,
    sep_chain,
    svc_chain,
)

pytestmark = pytest.mark.unit

CONFIG = RuleConfig(service_cidr="10.96.0.0/12")


def web(n: int = 3, **kw: object) -> ServicePort:
    eps = tuple(Endpoint(f"10.244.0.{10 + i}", 8080) for i in range(n))
    fields: dict[str, object] = dict(
        namespace="default", name="web", port_name="http", protocol="tcp",
        cluster_ip="10.96.0.10", port=80, endpoints=eps,
    )  # fmt: skip
    fields.update(kw)
    return ServicePort(**fields)  # type: ignore[arg-type]


def _apply(saved: Saved, text: str) -> Saved:
    """A small model of `iptables-restore --noflush` for the plans' own lines."""
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            saved.tables.setdefault(table, {})
        elif line.startswith(":"):
            saved.tables[table][line[1:].split(" ")[0]] = []
        elif line.startswith("-A "):
            _, chain, rule = line.split(" ", 2)
            saved.tables[table][chain].append(rule)
        elif line.startswith("-I "):
            _, chain, _pos, rule = line.split(" ", 3)
            saved.tables[table].setdefault(chain, []).insert(0, rule)
        elif line.startswith("-D "):
            _, chain, rule = line.split(" ", 2)
            saved.tables[table][chain].remove(rule)
        elif line.startswith("-X "):
            del saved.tables[table][line[3:]]
    return saved


def test_chain_names_are_stable_and_fit_iptables_limit() -> None:
    sp = web()
    names = {svc_chain(sp), ext_chain(sp), sep_chain(sp, "10.244.0.10", 8080)}
    assert len(names) == 3
    assert all(len(n) == 28 and n.startswith("CAPSTAN-") for n in names)
    assert svc_chain(sp) == svc_chain(web(5))  # endpoints do not change the service chain
    assert svc_chain(sp) != svc_chain(web(protocol="udp"))


def test_statistic_probabilities_spread_evenly() -> None:
    sp = web(4)
    rules = render([sp], CONFIG)["nat"][svc_chain(sp)]
    probs = [
        Fraction(r.split("--probability ")[1].split(" ")[0]) if "statistic" in r else Fraction(1)
        for r in rules
    ]
    # P(endpoint i) = p_i * prod(1 - p_j, j < i) must be 1/4 for every endpoint.
    reach = Fraction(1)
    shares = []
    for p in probs:
        shares.append(reach * p)
        reach *= 1 - p
    assert [round(float(s), 6) for s in shares] == [0.25] * 4
    assert "statistic" not in rules[-1]
    for i, ep in enumerate(sp.endpoints):
        assert rules[i].endswith(f"-j {sep_chain(sp, ep.ip, ep.port)}")


def test_endpoint_chain_dnats_and_marks_hairpin() -> None:
    sp = web(1)
    sep = sep_chain(sp, "10.244.0.10", 8080)
    rules = render([sp], CONFIG)["nat"][sep]
    assert rules[0].startswith("-s 10.244.0.10/32") and rules[0].endswith(f"-j {MARK_MASQ}")
    assert rules[1].endswith("-j DNAT --to-destination 10.244.0.10:8080")


def test_no_endpoints_rejects_in_filter_and_has_no_nat_chain() -> None:
    sp = web(0, node_port=30080)
    tables = render([sp], CONFIG)
    assert svc_chain(sp) not in tables["nat"]
    rejects = [r for r in tables["filter"][SERVICES] if "has no endpoints" in r]
    assert len(rejects) == 2
    assert "-d 10.96.0.10/32" in rejects[0] and "--dport 80" in rejects[0]
    assert "--dst-type LOCAL" in rejects[1] and "--dport 30080" in rejects[1]
    assert tables["filter"][SERVICES][-1].startswith("-d 10.96.0.0/12 ")


def test_node_port_and_external_ip_go_through_masquerading_ext_chain() -> None:
    sp = web(2, node_port=30080, external_ips=("192.0.2.7",))
    nat = render([sp], CONFIG)["nat"]
    ext = ext_chain(sp)
    assert nat[ext] == (
        f'-m comment --comment "masquerade traffic from outside" -j {MARK_MASQ}',
        f"-j {svc_chain(sp)}",
    )
    assert any("--dport 30080" in r and r.endswith(ext) for r in nat[NODEPORTS])
    assert any(r.startswith("-d 192.0.2.7/32") and r.endswith(ext) for r in nat[SERVICES])
    assert nat[SERVICES][-1].endswith(f"--dst-type LOCAL -j {NODEPORTS}")


def test_session_affinity_checks_recent_before_spreading() -> None:
    sp = web(2, affinity_timeout=600)
    nat = render([sp], CONFIG)["nat"]
    rules = nat[svc_chain(sp)]
    assert all("--rcheck --seconds 600 --reap" in r for r in rules[:2])
    assert all("statistic" not in r for r in rules[:2])
    assert all(
        "--set --name CAPSTAN-SEP-" in nat[sep_chain(sp, e.ip, e.port)][1] for e in sp.endpoints
    )


def test_local_cidr_masquerades_traffic_from_elsewhere() -> None:
    sp = web(1)
    rules = render([sp], RuleConfig(local_cidr="10.244.0.0/24"))["nat"][svc_chain(sp)]
    assert rules[0].startswith("! -s 10.244.0.0/24 -d 10.96.0.10/32") and rules[0].endswith(
        MARK_MASQ
    )
    assert not render([sp], CONFIG)["nat"][svc_chain(sp)][0].endswith(MARK_MASQ)


def _service(kind: str = "ClusterIP", ip: str = "10.96.0.10") -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = "web", "default"
    svc.spec.type, svc.spec.cluster_ip = kind, ip
    svc.spec.ports.add(name="http", port=80, protocol="TCP", node_port=30080)
    return svc


def test_service_ports_take_ready_endpoints_of_the_matching_port_only() -> None:
    eps = core_pb2.Endpoints()
    sub = eps.subsets.add()
    sub.addresses.add(ip="10.244.0.2")
    sub.addresses.add(ip="10.244.0.1")
    sub.not_ready_addresses.add(ip="10.244.0.3")
    sub.ports.add(name="http", port=8080, protocol="TCP")
    sub.ports.add(name="metrics", port=9090, protocol="TCP")
    (sp,) = service_ports(_service(), eps)
    assert sp.endpoints == (Endpoint("10.244.0.1", 8080), Endpoint("10.244.0.2", 8080))
    assert sp.node_port == 0  # ClusterIP: node_port ignored
    assert service_ports(_service("NodePort"), eps)[0].node_port == 30080
    assert service_ports(_service(ip="None"), eps) == []
    ext = _service("ExternalName", "")
    ext.spec.external_name = "example.org"
    assert service_ports(ext, eps) == []
    aff = _service()
    aff.spec.session_affinity = "ClientIP"
    assert service_ports(aff, eps)[0].affinity_timeout == 10800
    aff.spec.session_affinity_config.client_ip.timeout_seconds = 30
    assert service_ports(aff, eps)[0].affinity_timeout == 30


def test_first_sync_writes_everything_and_inserts_hooks() -> None:
    desired = render([web()], CONFIG)
    plan = plan_sync(desired, None, parse_save(""))
    assert len(plan.texts) == 1
    assert plan.rules_written == rule_count(desired)
    assert plan.hooks_inserted == len(HOOKS)
    kernel = _apply(Saved(), plan.texts[0])
    for table, chains in desired.items():
        for chain, rules in chains.items():
            assert tuple(kernel.tables[table][chain]) == rules
    assert all(kernel.has_hook(h) for h in HOOKS)


def test_partial_sync_writes_only_changed_chains_and_deletes_gone_ones() -> None:
    a, b = web(), web(name="api", cluster_ip="10.96.0.11")
    first = plan_sync(render([a, b], CONFIG), None, parse_save(""))
    kernel = _apply(Saved(), first.texts[0])
    a2 = web(2)  # one endpoint gone
    plan = plan_sync(render([a2, b], CONFIG), first.written)
    text = plan.texts[0]
    assert f":{svc_chain(a)} " in text
    assert svc_chain(b) not in text  # unchanged service untouched
    assert f"-X {sep_chain(a, '10.244.0.12', 8080)}" in text
    assert plan.chains_deleted == 1
    assert f":{SERVICES} " not in text  # the jump table did not change either
    kernel = _apply(kernel, text)
    assert plan_sync(render([a2, b], CONFIG), plan.written).empty
    # Deleting a service removes all of its chains and its jump.
    gone = plan_sync(render([b], CONFIG), plan.written)
    kernel = _apply(kernel, gone.texts[0])
    assert not [c for c in kernel.chains("nat") if c in (svc_chain(a),)]
    assert not any("default/web" in r for rules in kernel.chains("nat").values() for r in rules)


def test_resync_repairs_what_someone_else_changed() -> None:
    desired = render([web()], CONFIG)
    first = plan_sync(desired, None, parse_save(""))
    kernel = _apply(Saved(), first.texts[0])
    assert plan_sync(desired, first.written, kernel).empty
    sp = web()
    kernel.tables["nat"][svc_chain(sp)].pop()  # a rule deleted behind our back
    kernel.tables["nat"]["PREROUTING"].clear()  # and a hook
    kernel.tables["nat"]["CAPSTAN-SVC-LEFTOVERFROMBEFORE"] = []
    plan = plan_sync(desired, first.written, kernel)
    assert (plan.chains_repaired, plan.hooks_inserted, plan.chains_deleted) == (1, 1, 1)
    kernel = _apply(kernel, plan.texts[0])
    assert plan_sync(desired, plan.written, kernel).empty


def test_large_syncs_are_split_with_jump_tables_last() -> None:
    ports = [web(3, name=f"s{i}", cluster_ip=f"10.96.1.{i}") for i in range(20)]
    desired = render(ports, CONFIG)
    plan = plan_sync(desired, None, parse_save(""), max_chains=10)
    assert len(plan.texts) > 2
    kernel = Saved()
    for i, text in enumerate(plan.texts):
        before = set(kernel.chains("nat"))
        kernel = _apply(kernel, text)
        # Every jump in every transaction targets a chain that exists by then.
        for rules in kernel.chains("nat").values():
            for r in rules:
                target = r.rpartition("-j ")[2].split(" ")[0]
                if target.startswith("CAPSTAN-"):
                    assert target in kernel.chains("nat"), (i, target)
        if i < len(plan.texts) - 1:
            assert SERVICES not in set(kernel.chains("nat")) - before
    assert plan_sync(desired, plan.written, kernel).empty


def test_cleanup_removes_only_our_chains_and_hooks() -> None:
    foreign = (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
        ":DOCKER - [0:0]\n"
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
        "-A DOCKER -i docker0 -j RETURN\nCOMMIT\n"
    )
    kernel = parse_save(foreign)
    kernel = _apply(
        kernel, plan_sync(render([web(node_port=30080)], CONFIG), None, kernel).texts[0]
    )
    (text,) = plan_cleanup(kernel)
    assert "DOCKER" not in text
    kernel = _apply(kernel, text)
    assert kernel.tables["nat"] == parse_save(foreign).tables["nat"]
    assert kernel.tables["filter"] == {"INPUT": [], "FORWARD": [], "OUTPUT": []}
    assert plan_cleanup(kernel) == []


def test_batched_cleanup_deletes_referrers_first() -> None:
    ports = [web(3, name=f"s{i}", cluster_ip=f"10.96.1.{i}", node_port=30000 + i) for i in range(5)]
    kernel = Saved()
    for text in plan_sync(render(ports, CONFIG), None, parse_save("")).texts:
        kernel = _apply(kernel, text)
    texts = plan_cleanup(kernel, max_chains=4)
    assert len(texts) > 3
    for text in texts:
        kernel = _apply(kernel, text)
        left = kernel.chains("nat")
        for rules in left.values():  # nothing left jumps to a deleted chain
            for r in rules:
                target = r.rpartition("-j ")[2].split(" ")[0]
                assert not target.startswith("CAPSTAN-") or target in left
    assert not kernel.owned("nat") and not kernel.owned("filter")
