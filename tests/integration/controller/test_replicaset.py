"""ReplicaSet against a real apiserver with the fake scheduler/kubelet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from capstan.client import Client
from controller import podutil

from tests.integration.controller.conftest import cluster, controllers, eventually, update
from tests.integration.controller.workloads import replicaset

pytestmark = pytest.mark.integration


async def test_scale_up_down_adopt_release(client: Client, ns: str) -> None:
    async with cluster(client, ns) as fc, controllers(client, "replicaset"):
        await fc.add_node(f"{ns}-n1")
        rs = await client.replicasets.create(replicaset(ns, "web", 3))

        def ready() -> int:
            return sum(1 for p in fc.running() if podutil.is_ready(p))

        await eventually(lambda: ready() == 3)

        async def status_ok() -> bool:
            cur = await client.replicasets.get("web", ns)
            s = cur.status
            return (
                s.replicas,
                s.ready_replicas,
                s.available_replicas,
                s.fully_labeled_replicas,
            ) == (3, 3, 3, 3) and s.observed_generation == cur.metadata.generation

        await eventually(status_ok)
        for p in fc.running():
            assert p.metadata.owner_references[0].uid == rs.metadata.uid
            assert p.metadata.owner_references[0].controller

        # Release: a pod whose labels stop matching is let go and replaced.
        victim = fc.running()[0]
        victim.metadata.labels["app"] = "quarantined"
        await client.pods.update(victim)
        await eventually(
            lambda: len([p for p in fc.running() if p.metadata.labels["app"] == "web"]) == 3
        )
        freed = await client.pods.get(victim.metadata.name, ns)
        assert not freed.metadata.owner_references

        # Adopt: an orphan that matches is taken, and then the extra pod is deleted.
        freed.metadata.labels["app"] = "web"
        await client.pods.update(freed)
        await eventually(lambda: len(fc.running()) == 3)

        # Scale down deletes the least valuable pods: the unscheduled/not-ready one first.
        def change(cur: Any) -> None:
            cur.spec.replicas = 1

        await update(client.replicasets, "web", ns, change)
        await eventually(lambda: len(fc.running()) == 1)

        events = await client.events.list(ns)
        reasons = {e.reason for e in events.items}
        assert {"SuccessfulCreate", "SuccessfulDelete"} <= reasons


async def test_exactly_replicas_created_while_status_churns(client: Client, ns: str) -> None:
    """Expectations: the status writes and pod events of a 40-pod burst re-sync the set
    many times before the watch has delivered every creation; none may create more."""
    async with controllers(client, "replicaset"):
        await client.replicasets.create(replicaset(ns, "burst", 40))

        async def count() -> int:
            return len((await client.pods.list(ns)).items)

        async def all_there() -> bool:
            return await count() == 40

        await eventually(all_there)
        await asyncio.sleep(1.0)
        assert await count() == 40


async def test_deletion_order_prefers_unready(client: Client, ns: str) -> None:
    ready_names: set[str] = set()

    async with cluster(client, ns) as fc, controllers(client, "replicaset"):
        await fc.add_node(f"{ns}-n1")
        await client.replicasets.create(replicaset(ns, "order", 2))
        await eventually(lambda: sum(podutil.is_ready(p) for p in fc.running()) == 2)
        ready_names = {p.metadata.name for p in fc.running()}
        fc.hold = True

        def change(cur: Any) -> None:
            cur.spec.replicas = 4

        await update(client.replicasets, "order", ns, change)
        await eventually(lambda: len(fc.running()) == 4)

        def change(cur: Any) -> None:
            cur.spec.replicas = 2

        await update(client.replicasets, "order", ns, change)
        await eventually(lambda: len(fc.running()) == 2)
        assert {p.metadata.name for p in fc.running()} == ready_names
