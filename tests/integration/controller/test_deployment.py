"""Deployment rollouts against a real apiserver with the fake scheduler/kubelet, and the
Kubernetes invariants checked on every pod event of a watch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.client import Client, Informer
from controller import podutil
from controller.deployment import CHANGE_CAUSE, REVISION, REVISION_HISTORY

from tests.integration.controller.conftest import cluster, controllers, eventually, update
from tests.integration.controller.fakecluster import Outcome
from tests.integration.controller.workloads import deployment

pytestmark = pytest.mark.integration


class Monitor:
    """Counts, on every pod event, the pods that are available (ready, not terminating)
    and that exist (not finished, not terminating); keeps the extremes."""

    def __init__(self, pods: Informer[core_pb2.Pod]) -> None:
        self.pods = pods
        self.min_available = 1 << 30
        self.max_total = 0
        self.armed = False
        pods.add_event_handler(self._check, lambda o, n: self._check(n), self._check)

    def _check(self, _: object) -> None:
        if not self.armed:
            return
        live = [p for p in self.pods.list() if podutil.is_active(p)]
        self.min_available = min(self.min_available, sum(podutil.is_ready(p) for p in live))
        self.max_total = max(self.max_total, len(live))


async def rolled_out(client: Client, ns: str, name: str, replicas: int) -> bool:
    d = await client.deployments.get(name, ns)
    s = d.status
    return (
        s.observed_generation >= d.metadata.generation
        and s.updated_replicas == replicas
        and s.replicas == replicas
        and s.available_replicas == replicas
    )


async def owned_sets(client: Client, ns: str, d: apps_pb2.Deployment) -> list[apps_pb2.ReplicaSet]:
    items = (await client.replicasets.list(ns)).items
    return [
        rs for rs in items if any(r.uid == d.metadata.uid for r in rs.metadata.owner_references)
    ]


@pytest.mark.parametrize(
    ("surge", "unavailable", "lo", "hi"), [(3, 2, 8, 13), ("20%", "10%", 9, 12)]
)
async def test_rolling_update_invariants(
    client: Client, ns: str, surge: int | str, unavailable: int | str, lo: int, hi: int
) -> None:
    # Pods take a moment to become ready so the rollout is spread over many steps.
    async with (
        cluster(client, ns, lambda p: Outcome(ready_after=0.15)) as fc,
        controllers(client, "deployment", "replicaset"),
    ):
        await fc.add_node(f"{ns}-n1")
        monitor = Monitor(fc.pods)
        d = deployment(ns, "web", 10, surge=surge, unavailable=unavailable)
        d.metadata.annotations[CHANGE_CAUSE] = "first"
        created = await client.deployments.create(d)
        await eventually(lambda: rolled_out(client, ns, "web", 10), timeout=30)
        monitor.armed = True

        def change(cur: Any) -> None:
            cur.spec.template.spec.containers[0].image = "busybox:2"
            cur.metadata.annotations[CHANGE_CAUSE] = "second"

        await update(client.deployments, "web", ns, change)
        await eventually(lambda: rolled_out(client, ns, "web", 10), timeout=60)
        monitor.armed = False
        assert monitor.min_available >= lo, monitor.min_available
        assert monitor.max_total <= hi, monitor.max_total
        assert monitor.max_total > 10  # it did surge

        sets = await owned_sets(client, ns, created)
        by_rev = {rs.metadata.annotations[REVISION]: rs for rs in sets}
        assert set(by_rev) == {"1", "2"}
        new = by_rev["2"]
        h = new.metadata.labels["pod-template-hash"]
        assert new.metadata.name == f"web-{h}"
        assert new.spec.selector.match_labels["pod-template-hash"] == h
        assert new.metadata.annotations[CHANGE_CAUSE] == "second"
        assert by_rev["1"].metadata.annotations[CHANGE_CAUSE] == "first"
        assert by_rev["1"].spec.replicas == 0
        final = await client.deployments.get("web", ns)
        conds = {c.type: c for c in final.status.conditions}
        assert conds["Available"].status == "True"
        assert conds["Available"].reason == "MinimumReplicasAvailable"
        assert conds["Progressing"].reason == "NewReplicaSetAvailable"
        messages = [e.message for e in (await client.events.list(ns)).items]
        assert any(m.startswith(f"Scaled up replica set {new.metadata.name} to") for m in messages)


async def test_recreate_rollback_history_and_pause(client: Client, ns: str) -> None:
    async with cluster(client, ns) as fc, controllers(client, "deployment", "replicaset"):
        await fc.add_node(f"{ns}-n1")
        monitor = Monitor(fc.pods)
        d = deployment(ns, "rec", 3, strategy="Recreate")
        d.spec.revision_history_limit = 1
        created = await client.deployments.create(d)
        await eventually(lambda: rolled_out(client, ns, "rec", 3))
        for image in ("busybox:2", "busybox:3"):
            monitor.armed = True

            def set_image(cur: Any, image: str = image) -> None:
                cur.spec.template.spec.containers[0].image = image

            await update(client.deployments, "rec", ns, set_image)
            await eventually(lambda: rolled_out(client, ns, "rec", 3))
        # Recreate never runs old and new pods together.
        assert monitor.max_total <= 3
        # History limit 1: the new set plus one old one.
        await eventually(lambda: _count_sets(client, ns, created, 2))
        # Roll back to the previous template: that set is reused under revision 4.
        sets = await owned_sets(client, ns, created)
        old = next(rs for rs in sets if rs.metadata.annotations[REVISION] == "2")

        def roll_back(cur: Any) -> None:
            cur.spec.template.CopyFrom(old.spec.template)
            del cur.spec.template.metadata.labels["pod-template-hash"]

        await update(client.deployments, "rec", ns, roll_back)
        await eventually(lambda: rolled_out(client, ns, "rec", 3))
        back = await client.replicasets.get(old.metadata.name, ns)
        assert back.metadata.annotations[REVISION] == "4"
        assert back.metadata.annotations[REVISION_HISTORY] == "2"

        # Paused: template changes are not rolled out, scaling still is.
        def change(cur: Any) -> None:
            cur.spec.paused = True
            cur.spec.template.spec.containers[0].image = "busybox:9"
            cur.spec.replicas = 4

        await update(client.deployments, "rec", ns, change)
        await eventually(lambda: _ready(fc.running(), 4))
        assert {p.spec.containers[0].image for p in fc.running()} == {"busybox:2"}
        paused = await client.deployments.get("rec", ns)
        progressing = {c.type: c for c in paused.status.conditions}["Progressing"]
        assert progressing.reason == "DeploymentPaused"


def _ready(pods: list[core_pb2.Pod], n: int) -> bool:
    return len(pods) == n and all(podutil.is_ready(p) for p in pods)


async def _count_sets(client: Client, ns: str, d: apps_pb2.Deployment, n: int) -> bool:
    return len(await owned_sets(client, ns, d)) == n


async def test_proportional_scaling_mid_rollout(client: Client, ns: str) -> None:
    # New pods never become ready, so the rollout stalls with both sets alive.
    async with (
        cluster(
            client, ns, lambda p: Outcome(ready=p.spec.containers[0].image == "busybox:1")
        ) as fc,
        controllers(client, "deployment", "replicaset"),
    ):
        await fc.add_node(f"{ns}-n1")
        await client.deployments.create(deployment(ns, "prop", 10, surge=3, unavailable=2))
        await eventually(lambda: rolled_out(client, ns, "prop", 10))

        def change(cur: Any) -> None:
            cur.spec.template.spec.containers[0].image = "busybox:2"

        await update(client.deployments, "prop", ns, change)
        # 10 + 3 surge: old 8 (2 unavailable allowed), new 5.
        await eventually(lambda: len(fc.running()) == 13)
        await asyncio.sleep(0.5)

        def change(cur: Any) -> None:
            cur.spec.replicas = 20

        await update(client.deployments, "prop", ns, change)
        # 20 + 3 surge = 23: the 10 added are split in proportion 8:5 (+6, +4).
        await eventually(lambda: len(fc.running()) == 23)
        await asyncio.sleep(0.3)
        images = [p.spec.containers[0].image for p in fc.running()]
        assert images.count("busybox:1") == 14 and images.count("busybox:2") == 9, images


async def test_progress_deadline_exceeded(client: Client, ns: str) -> None:
    async with (
        cluster(client, ns, lambda p: Outcome(ready=False)) as fc,
        controllers(client, "deployment", "replicaset"),
    ):
        await fc.add_node(f"{ns}-n1")
        d = deployment(ns, "stuck", 2)
        d.spec.progress_deadline_seconds = 1
        await client.deployments.create(d)

        async def exceeded() -> bool:
            cur = await client.deployments.get("stuck", ns)
            return any(
                c.type == "Progressing"
                and c.status == "False"
                and c.reason == "ProgressDeadlineExceeded"
                for c in cur.status.conditions
            )

        await eventually(exceeded, timeout=10)
