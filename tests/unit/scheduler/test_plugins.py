"""Each filter and score as a pure function of (PodInfo, NodeInfo)."""

from __future__ import annotations

import pytest
from scheduler import plugins as p
from scheduler.nodeinfo import node_info
from scheduler.podinfo import pod_info, pod_requests

from tests.unit.scheduler.builders import node, pod, prefer, require

pytestmark = pytest.mark.unit


def test_requests_sum_containers_and_take_the_largest_init_container() -> None:
    x = pod("x", cpu="250m", memory="64Mi")
    x.spec.containers.add(name="side").resources.requests.update({"cpu": "250m"})
    x.spec.init_containers.add(name="init").resources.requests.update({"cpu": "1", "memory": "1Mi"})
    assert pod_requests(x.spec) == (1000, 64 * 1024 * 1024)


def test_node_ready_and_unschedulable() -> None:
    pi = pod_info(pod("x"))
    assert p.node_ready(pi, node_info(node("n"))) is None
    assert p.node_ready(pi, node_info(node("n", ready=False))) == (p.NOT_READY,)
    cordoned = node_info(node("n", unschedulable=True))
    assert p.node_unschedulable(pi, cordoned) == (p.UNSCHEDULABLE,)
    tolerant = pod_info(
        pod("t", tolerations=[("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule")])
    )
    assert p.node_unschedulable(tolerant, cordoned) is None


def test_resources_fit_counts_bound_pods_and_reports_every_shortage() -> None:
    n = node_info(node("n", cpu="2", memory="1Gi", pods="2"), [pod_info(pod("a", cpu="1500m"))])
    assert p.node_resources_fit(pod_info(pod("x", cpu="500m")), n) is None
    assert p.node_resources_fit(pod_info(pod("x", cpu="600m", memory="2Gi")), n) == (
        p.INSUFFICIENT_CPU,
        p.INSUFFICIENT_MEMORY,
    )
    n.add_pod(pod_info(pod("b")))
    assert p.node_resources_fit(pod_info(pod("x")), n) == (p.TOO_MANY_PODS,)
    n.remove_pod("default/b")
    assert p.node_resources_fit(pod_info(pod("x")), n) is None


def test_node_selector() -> None:
    n = node_info(node("n", labels={"disk": "ssd"}))
    assert p.node_selector(pod_info(pod("x", node_selector={"disk": "ssd"})), n) is None
    assert p.node_selector(pod_info(pod("x", node_selector={"disk": "hdd"})), n) == (
        p.SELECTOR_MISMATCH,
    )


@pytest.mark.parametrize(
    ("exprs", "fits"),
    [
        ([("zone", "In", ["a", "b"])], True),
        ([("zone", "In", ["c"])], False),
        ([("zone", "NotIn", ["a"])], False),
        ([("zone", "NotIn", ["c"])], True),
        ([("gpu", "Exists", [])], False),
        ([("gpu", "DoesNotExist", [])], True),
        ([("cores", "Gt", ["8"])], True),
        ([("cores", "Gt", ["16"])], False),
        ([("cores", "Lt", ["16"])], True),
        ([("zone", "Lt", ["3"])], False),  # not an integer label: never matches
        ([("zone", "In", ["a"]), ("cores", "Lt", ["4"])], False),  # ANDed
        ([("zone", "Bogus", ["a"])], False),  # invalid term matches nothing
    ],
)
def test_required_node_affinity_operators(
    exprs: list[tuple[str, str, list[str]]], fits: bool
) -> None:
    n = node_info(node("n", labels={"zone": "a", "cores": "12"}))
    result = p.required_node_affinity(pod_info(require(pod("x"), exprs)), n)
    assert (result is None) is fits


def test_required_node_affinity_terms_are_ored_and_match_fields() -> None:
    n = node_info(node("node-7", labels={"zone": "a"}))
    ored = require(pod("x"), [("zone", "In", ["b"])], [("zone", "In", ["a"])])
    assert p.required_node_affinity(pod_info(ored), n) is None
    daemon = pod_info(require(pod("d"), fields=[("metadata.name", "In", ["node-7"])]))
    assert daemon.pinned_nodes == frozenset({"node-7"})
    assert p.required_node_affinity(daemon, n) is None
    other = pod_info(require(pod("d"), fields=[("metadata.name", "In", ["node-8"])]))
    assert p.required_node_affinity(other, n) == (p.AFFINITY_MISMATCH,)


def test_taints_and_tolerations() -> None:
    n = node_info(node("n", taints=[("k", "v", "NoSchedule"), ("soft", "", "PreferNoSchedule")]))
    assert p.taint_toleration(pod_info(pod("x")), n) == ("node(s) had untolerated taint {k: v}",)
    for tol in [("k", "Equal", "v", "NoSchedule"), ("k", "Exists", "", ""), ("", "Exists", "", "")]:
        assert p.taint_toleration(pod_info(pod("x", tolerations=[tol])), n) is None
    wrong = pod_info(pod("x", tolerations=[("k", "Equal", "w", "NoSchedule")]))
    assert p.taint_toleration(wrong, n) is not None
    no_exec = node_info(node("n", taints=[("k", "", "NoExecute")]))
    assert p.taint_toleration(pod_info(pod("x")), no_exec) is not None
    wrong_effect = pod_info(pod("x", tolerations=[("k", "Exists", "", "NoSchedule")]))
    assert p.taint_toleration(wrong_effect, no_exec) is not None


def test_host_ports() -> None:
    n = node_info(node("n"), [pod_info(pod("a", host_port=8080))])
    assert p.node_ports(pod_info(pod("x", host_port=8080)), n) == (p.PORTS_IN_USE,)
    assert p.node_ports(pod_info(pod("x", host_port=9090)), n) is None
    n.remove_pod("default/a")
    assert p.node_ports(pod_info(pod("x", host_port=8080)), n) is None


def test_least_allocated_prefers_the_emptier_node() -> None:
    x = pod_info(pod("x", cpu="1", memory="1Gi"))
    empty = node_info(node("e", cpu="4", memory="4Gi"))
    busy = node_info(node("b", cpu="4", memory="4Gi"), [pod_info(pod("a", cpu="2", memory="2Gi"))])
    assert p.least_allocated(x, empty) == 75
    assert p.least_allocated(x, busy) == 25


def test_balanced_allocation_prefers_even_use() -> None:
    x = pod_info(pod("x", cpu="1", memory="1Gi"))
    even = node_info(node("e", cpu="4", memory="4Gi"))
    skewed = node_info(node("s", cpu="4", memory="4Gi"), [pod_info(pod("a", cpu="2"))])
    assert p.balanced_allocation(x, even) == 100
    assert p.balanced_allocation(x, skewed) < 100


def test_owner_spread_counts_pods_of_the_same_controller() -> None:
    x = pod_info(pod("x", owner_uid="rs-1"))
    n = node_info(
        node("n"),
        [pod_info(pod("a", owner_uid="rs-1")), pod_info(pod("b", owner_uid="rs-2"))],
    )
    assert p.owner_pod_count(x, n) == 1
    assert p.normalize_reverse([0, 1, 2]) == [100, 50, 0]
    assert p.normalize_reverse([0, 0]) == [100, 100]


def test_preferred_node_affinity_sums_matching_weights() -> None:
    x = pod_info(prefer(prefer(pod("x"), 30, [("a", "Exists", [])]), 70, [("b", "In", ["1"])]))
    assert p.preferred_node_affinity(x, node_info(node("n", labels={"a": "", "b": "1"}))) == 100
    assert p.preferred_node_affinity(x, node_info(node("n", labels={"a": ""}))) == 30
    assert p.normalize_max([30, 100, 0]) == [30, 100, 0]
    assert p.normalize_max([0, 0]) == [0, 0]


def test_prefer_no_schedule_counts_intolerable_taints() -> None:
    n = node_info(node("n", taints=[("a", "", "PreferNoSchedule"), ("b", "", "PreferNoSchedule")]))
    assert p.intolerable_prefer_no_schedule(pod_info(pod("x")), n) == 2
    tolerant = pod_info(pod("x", tolerations=[("a", "Exists", "", "PreferNoSchedule")]))
    assert p.intolerable_prefer_no_schedule(tolerant, n) == 1
    # PreferNoSchedule never filters.
    assert p.taint_toleration(pod_info(pod("x")), n) is None
