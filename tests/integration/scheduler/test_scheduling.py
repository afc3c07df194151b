"""The scheduler against a real apiserver: what gets bound where, what stays Pending and
what it says about it (PodScheduled condition, FailedScheduling/Scheduled events)."""

from __future__ import annotations

from collections import Counter

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.client import Client
from scheduler.scheduler import Scheduler

from tests.integration.scheduler.conftest import create_node, events_for, eventually
from tests.unit.scheduler.builders import node, pod, prefer, require

pytestmark = pytest.mark.integration


async def node_of(client: Client, name: str, namespace: str = "default") -> str:
    return (await client.pods.get(name, namespace)).spec.node_name


async def wait_bound(client: Client, *names: str, timeout: float = 10.0) -> dict[str, str]:
    placed: dict[str, str] = {}

    async def check() -> None:
        for name in names:
            placed[name] = await node_of(client, name)
            assert placed[name], f"{name} not bound"

    await eventually(check, timeout)
    return placed


def scheduled_condition(p: core_pb2.Pod) -> tuple[str, str, str] | None:
    for c in p.status.conditions:
        if c.type == "PodScheduled":
            return c.status, c.reason, c.message
    return None


async def test_oversize_pod_pending_with_summary_then_scheduled_on_new_node(
    client: Client, scheduler: Scheduler
) -> None:
    await create_node(client, node("small-1", cpu="1", labels={"accel": "gpu"}))
    await create_node(client, node("small-2", cpu="1", labels={"accel": "gpu"}))
    await create_node(client, node("cpu-only", cpu="8", labels={"accel": "none"}))
    await client.pods.create(pod("big", cpu="2", node_selector={"accel": "gpu"}))
    expected = "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) didn't match node selector."

    async def pending_with_reason() -> None:
        p = await client.pods.get("big", "default")
        assert not p.spec.node_name
        assert scheduled_condition(p) == ("False", "Unschedulable", expected)
        events = await events_for(client, "default", "big")
        assert [(e.type, e.reason, e.message) for e in events] == [
            ("Warning", "FailedScheduling", expected)
        ]

    await eventually(pending_with_reason)
    await create_node(client, node("big-1", cpu="4", labels={"accel": "gpu"}))
    placed = await wait_bound(client, "big")
    assert placed == {"big": "big-1"}
    p = await client.pods.get("big", "default")
    assert scheduled_condition(p) is not None and scheduled_condition(p)[0] == "True"  # type: ignore[index]

    async def scheduled_event() -> None:
        events = await events_for(client, "default", "big")
        assert ("Normal", "Scheduled", "Successfully assigned default/big to big-1") in {
            (e.type, e.reason, e.message) for e in events
        }

    await eventually(scheduled_event)


async def test_requests_are_accounted_across_pods_and_assumed_binds(
    client: Client, scheduler: Scheduler
) -> None:
    await create_node(client, node("a", cpu="2"))
    await create_node(client, node("b", cpu="2"))
    names = [f"p{i}" for i in range(5)]
    for name in names:
        await client.pods.create(pod(name, cpu="1"))
    # 4 fit (2 per node), the fifth does not, whichever order the binds land in.
    await eventually(lambda: _count_bound(client, names, 4), 10)
    placed = Counter([await node_of(client, n) for n in names])
    assert placed == Counter({"a": 2, "b": 2, "": 1})
    pending = [n for n in names if not await node_of(client, n)]
    # Freeing one slot lets the pending pod in.
    victim = next(n for n in names if n not in pending)
    await client.pods.delete(victim, "default", grace_period_seconds=0)
    await wait_bound(client, pending[0])


async def _count_bound(client: Client, names: list[str], want: int) -> None:
    bound = [n for n in names if await node_of(client, n)]
    assert len(bound) == want, bound


async def test_node_selector_and_node_affinity(client: Client, scheduler: Scheduler) -> None:
    await create_node(client, node("ssd-1", labels={"disk": "ssd", "rank": "3"}))
    await create_node(client, node("hdd-1", labels={"disk": "hdd", "rank": "7"}))
    await create_node(client, node("plain", labels={"rank": "1"}))
    await client.pods.create(pod("sel", node_selector={"disk": "ssd"}))
    await client.pods.create(require(pod("in"), [("disk", "In", ["hdd", "nvme"])]))
    await client.pods.create(require(pod("notin"), [("disk", "DoesNotExist", [])]))
    await client.pods.create(require(pod("gt"), [("rank", "Gt", ["5"])]))
    # Terms are ORed: only the second can match.
    await client.pods.create(
        require(pod("or"), [("disk", "In", ["tape"])], [("rank", "Lt", ["2"])])
    )
    # DaemonSet style: pinned by matchFields metadata.name.
    await client.pods.create(require(pod("ds"), fields=[("metadata.name", "In", ["ssd-1"])]))
    # Preferred affinity decides among feasible nodes.
    await client.pods.create(prefer(pod("pref"), 100, [("disk", "In", ["hdd"])]))
    placed = await wait_bound(client, "sel", "in", "notin", "gt", "or", "ds", "pref")
    assert placed == {
        "sel": "ssd-1",
        "in": "hdd-1",
        "notin": "plain",
        "gt": "hdd-1",
        "or": "plain",
        "ds": "ssd-1",
        "pref": "hdd-1",
    }


async def test_unmatched_affinity_stays_pending(client: Client, scheduler: Scheduler) -> None:
    await create_node(client, node("n1", labels={"zone": "a"}))
    await client.pods.create(require(pod("nowhere"), [("zone", "NotIn", ["a"])]))

    async def pending() -> None:
        p = await client.pods.get("nowhere", "default")
        assert scheduled_condition(p) == (
            "False",
            "Unschedulable",
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity.",
        )

    await eventually(pending)
    # Relabelling the node is a cluster event that re-queues the pod.
    n = await client.nodes.get("n1")
    n.metadata.labels["zone"] = "b"
    await client.nodes.update(n)
    assert await wait_bound(client, "nowhere") == {"nowhere": "n1"}


async def test_taints_and_tolerations(client: Client, scheduler: Scheduler) -> None:
    await create_node(client, node("tainted", taints=[("dedicated", "db", "NoSchedule")]))
    await create_node(client, node("evicting", taints=[("gone", "", "NoExecute")]))
    await create_node(client, node("cordoned", unschedulable=True))
    await client.pods.create(pod("plain"))
    await client.pods.create(
        pod("tolerant", tolerations=[("dedicated", "Equal", "db", "NoSchedule")])
    )
    await client.pods.create(pod("any", tolerations=[("gone", "Exists", "", "")]))

    async def plain_pending() -> None:
        p = await client.pods.get("plain", "default")
        assert scheduled_condition(p) == (
            "False",
            "Unschedulable",
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
            "1 node(s) had untolerated taint {gone: }, 1 node(s) were unschedulable.",
        )

    await eventually(plain_pending)
    placed = await wait_bound(client, "tolerant", "any")
    assert placed == {"tolerant": "tainted", "any": "evicting"}
    # Uncordon: the pending pod lands there.
    n = await client.nodes.get("cordoned")
    n.spec.unschedulable = False
    await client.nodes.update(n)
    assert await wait_bound(client, "plain") == {"plain": "cordoned"}


async def test_prefer_no_schedule_is_avoided(client: Client, scheduler: Scheduler) -> None:
    await create_node(client, node("soft", taints=[("spot", "", "PreferNoSchedule")]))
    await create_node(client, node("clean"))
    for i in range(4):
        await client.pods.create(pod(f"p{i}"))
    placed = await wait_bound(client, *[f"p{i}" for i in range(4)])
    assert set(placed.values()) == {"clean"}


async def test_nine_replicas_spread_three_per_node(client: Client, scheduler: Scheduler) -> None:
    for i in range(3):
        await create_node(client, node(f"n{i}"))
    for i in range(9):
        await client.pods.create(pod(f"web-{i}", owner_uid="rs-web-uid", cpu="100m"))
    placed = await wait_bound(client, *[f"web-{i}" for i in range(9)])
    assert Counter(placed.values()) == Counter({"n0": 3, "n1": 3, "n2": 3})


async def test_bound_pods_and_other_schedulers_are_left_alone(
    client: Client, scheduler: Scheduler
) -> None:
    await create_node(client, node("n1", cpu="1"))
    await create_node(client, node("n2", cpu="1"))
    # Already bound (as a DaemonSet or a user may do): the scheduler must not touch it,
    # but must count it: n1 is then full.
    await client.pods.create(pod("pre", cpu="1", node_name="n1"))
    await client.pods.create(pod("mine", cpu="1"))
    await client.pods.create(pod("theirs", scheduler_name="other-scheduler"))
    assert await wait_bound(client, "mine") == {"mine": "n2"}
    assert await node_of(client, "pre") == "n1"
    assert await node_of(client, "theirs") == ""
    assert await events_for(client, "default", "theirs") == []
