"""The decision over a cache: feasible-node sampling, rotation, summary, tie-breaking."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from scheduler.cache import SchedulerCache
from scheduler.framework import FitError, Framework, num_feasible_nodes_to_find, summarize
from scheduler.podinfo import pod_info

from tests.unit.scheduler.builders import node, pod, require

pytestmark = pytest.mark.unit


def cache_with(*nodes: object) -> SchedulerCache:
    c = SchedulerCache()
    for n in nodes:
        c.set_node(n)  # type: ignore[arg-type]
    return c


@pytest.mark.parametrize(
    ("nodes", "percentage", "want"),
    [
        (50, 0, 50),
        (500, 0, 230),
        (5000, 0, 500),
        (100_000, 0, 5000),
        (500, 10, 100),
        (500, 100, 500),
    ],
)
def test_num_feasible_nodes_to_find(nodes: int, percentage: int, want: int) -> None:
    assert num_feasible_nodes_to_find(nodes, percentage) == want


def test_summary_orders_by_count() -> None:
    reasons = Counter({"node(s) didn't match node selector": 1, "Insufficient cpu": 2})
    assert summarize(3, reasons) == (
        "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) didn't match node selector."
    )


def test_fit_error_counts_every_reason_of_every_node() -> None:
    c = cache_with(
        node("a", cpu="1", memory="1Gi"),
        node("b", cpu="1", memory="8Gi"),
        node("c", ready=False),
    )
    with pytest.raises(FitError) as e:
        Framework().schedule(pod_info(pod("x", cpu="2", memory="2Gi")), c)
    assert e.value.message == (
        "0/3 nodes are available: 2 Insufficient cpu, 1 Insufficient memory, "
        "1 node(s) were not ready."
    )


def test_pinned_pod_only_considers_its_node() -> None:
    c = cache_with(*(node(f"n{i}") for i in range(5)))
    x = pod_info(require(pod("ds"), fields=[("metadata.name", "In", ["n3"])]))
    assert Framework().schedule(x, c).node == "n3"
    gone = pod_info(require(pod("ds"), fields=[("metadata.name", "In", ["n9"])]))
    with pytest.raises(FitError) as e:
        Framework().schedule(gone, c)
    assert e.value.message == "0/5 nodes are available: 5 node(s) didn't match Pod's node affinity."


def test_large_cluster_filters_a_sample_and_rotates_the_start() -> None:
    c = cache_with(*(node(f"n{i:04}") for i in range(1000)))
    fw = Framework(rng=random.Random(1))
    first = fw.schedule(pod_info(pod("a")), c)
    second = fw.schedule(pod_info(pod("b")), c)
    want = num_feasible_nodes_to_find(1000)
    assert (first.evaluated, first.feasible) == (want, want)
    # The second search starts where the first stopped, so it looks at other nodes.
    assert int(first.node[1:]) < want <= int(second.node[1:]) < 2 * want


def test_ties_are_broken_at_random() -> None:
    c = cache_with(*(node(f"n{i}") for i in range(4)))
    fw = Framework(rng=random.Random(7))
    picks = Counter(fw.schedule(pod_info(pod(f"p{i}")), c).node for i in range(200))
    assert set(picks) == {"n0", "n1", "n2", "n3"}


def test_assumed_pods_count_for_the_next_decision() -> None:
    c = cache_with(node("a", cpu="1"), node("b", cpu="1"))
    fw = Framework()
    first = pod_info(pod("x", cpu="1"))
    c.assume(first, fw.schedule(first, c).node)
    second = pod_info(pod("y", cpu="1"))
    chosen = fw.schedule(second, c).node
    assert chosen != c.node_of(first.key)
    c.assume(second, chosen)
    with pytest.raises(FitError):
        fw.schedule(pod_info(pod("z", cpu="1")), c)
    freed = c.node_of(first.key)
    c.forget(first.key)
    assert c.node_of(first.key) is None
    assert fw.schedule(pod_info(pod("z", cpu="1")), c).node == freed
