"""The assume cache: reservations before the bind returns, confirm, forget, placeholders."""

from __future__ import annotations

import pytest
from scheduler.cache import SchedulerCache
from scheduler.podinfo import pod_info

from tests.unit.scheduler.builders import node, pod

pytestmark = pytest.mark.unit


def test_assume_confirm_and_forget() -> None:
    c = SchedulerCache()
    c.set_node(node("a"))
    x = pod_info(pod("x", cpu="1", owner_uid="rs"))
    c.assume(x, "a")
    a = c.nodes["a"]
    assert (a.requested_cpu, a.pod_count, a.owner_counts["rs"]) == (1000, 1, 1)
    assert c.confirm("default/x", "a") and not c.is_assumed("default/x")
    c.forget("default/x")  # confirmed: forgetting does nothing
    assert a.pod_count == 1
    c.remove_pod("default/x")
    assert (a.requested_cpu, a.pod_count, dict(a.owner_counts)) == (0, 0, {})

    y = pod_info(pod("y", cpu="1"))
    c.assume(y, "a")
    c.forget("default/y")
    assert (a.requested_cpu, a.pod_count) == (0, 0)


def test_bound_elsewhere_moves_the_reservation() -> None:
    c = SchedulerCache()
    c.set_node(node("a"))
    c.set_node(node("b"))
    c.assume(pod_info(pod("x", cpu="1")), "a")
    c.set_pod(pod_info(pod("x", cpu="1", node_name="b")))
    assert (c.nodes["a"].requested_cpu, c.nodes["b"].requested_cpu) == (0, 1000)


def test_pods_on_unknown_nodes_wait_on_a_placeholder() -> None:
    c = SchedulerCache()
    c.set_pod(pod_info(pod("x", cpu="1", node_name="late")))
    assert c.node_list == []
    c.set_node(node("late"))
    assert [n.name for n in c.node_list] == ["late"]
    assert c.nodes["late"].requested_cpu == 1000
    c.remove_node("late")
    assert c.node_list == [] and "late" in c.nodes
    c.remove_pod("default/x")
    assert "late" not in c.nodes
