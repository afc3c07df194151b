"""DaemonSet placement, node changes and rolling update on a real apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from capstan.client import Client
from controller import podutil
from controller.daemonset import target_node

from tests.integration.controller.conftest import cluster, controllers, eventually, update
from tests.integration.controller.workloads import daemonset

pytestmark = pytest.mark.integration


async def test_one_pod_per_eligible_node_and_rolling_update(client: Client, ns: str) -> None:
    async with cluster(client, ns) as fc, controllers(client, "daemonset"):
        for i in range(2):
            await fc.add_node(f"{ns}-n{i}", pool=ns)
        await fc.add_node(f"{ns}-other")  # not selected
        await client.daemonsets.create(daemonset(ns, "agent", {"pool": ns}))

        def placement() -> dict[str, str]:
            return {target_node(p): p.spec.containers[0].image for p in fc.running()}

        def ready_on(*nodes: str) -> bool:
            pods = fc.running()
            return sorted(target_node(p) for p in pods) == sorted(nodes) and all(
                podutil.is_ready(p) for p in pods
            )

        await eventually(lambda: ready_on(f"{ns}-n0", f"{ns}-n1"))
        pod = fc.running()[0]
        terms = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
        assert terms.node_selector_terms[0].match_fields[0].key == "metadata.name"
        assert any(t.key == "node.kubernetes.io/unschedulable" for t in pod.spec.tolerations)

        # A new node gets one; a node relabelled away loses it; a NoSchedule taint too.
        await fc.add_node(f"{ns}-n2", pool=ns)
        await eventually(lambda: ready_on(f"{ns}-n0", f"{ns}-n1", f"{ns}-n2"))
        n0 = await client.nodes.get(f"{ns}-n0")
        del n0.metadata.labels["pool"]
        await client.nodes.update(n0)
        await eventually(lambda: ready_on(f"{ns}-n1", f"{ns}-n2"))
        n2 = await client.nodes.get(f"{ns}-n2")
        n2.spec.taints.add(key="dedicated", value="x", effect="NoSchedule")
        await client.nodes.update(n2)
        await eventually(lambda: ready_on(f"{ns}-n1"))
        n2 = await client.nodes.get(f"{ns}-n2")
        del n2.spec.taints[:]
        await client.nodes.update(n2)
        await eventually(lambda: ready_on(f"{ns}-n1", f"{ns}-n2"))

        # Rolling update, one node at a time (maxUnavailable 1 by default).
        worst = {"ready": 2}

        def watch(_: object, new: object = None) -> None:
            if worst.get("armed"):
                worst["ready"] = min(worst["ready"], sum(podutil.is_ready(p) for p in fc.running()))

        fc.pods.add_event_handler(watch, watch, watch)
        worst["armed"] = 1

        def change(cur: Any) -> None:
            cur.spec.template.spec.containers[0].image = "busybox:2"

        await update(client.daemonsets, "agent", ns, change)
        await eventually(
            lambda: (
                placement() == {f"{ns}-n1": "busybox:2", f"{ns}-n2": "busybox:2"}
                and ready_on(f"{ns}-n1", f"{ns}-n2")
            )
        )
        assert worst["ready"] >= 1

        async def status_ok() -> bool:
            s = (await client.daemonsets.get("agent", ns)).status
            return (
                s.desired_number_scheduled == 2
                and s.updated_number_scheduled == 2
                and s.number_available == 2
                and s.number_misscheduled == 0
            )

        await eventually(status_ok)
        revisions = (await client.controllerrevisions.list(ns)).items
        assert sorted(r.revision for r in revisions) == [1, 2]


async def test_on_delete_strategy(client: Client, ns: str) -> None:
    async with cluster(client, ns) as fc, controllers(client, "daemonset"):
        await fc.add_node(f"{ns}-n0", pool=ns)
        ds = daemonset(ns, "od", {"pool": ns})
        ds.spec.update_strategy.type = "OnDelete"
        await client.daemonsets.create(ds)
        await eventually(lambda: len(fc.running()) == 1 and podutil.is_ready(fc.running()[0]))

        def change(cur: Any) -> None:
            cur.spec.template.spec.containers[0].image = "busybox:2"

        await update(client.daemonsets, "od", ns, change)
        old = fc.running()[0]
        await asyncio.sleep(0.5)
        assert [p.metadata.name for p in fc.running()] == [old.metadata.name]
        await client.pods.delete(old.metadata.name, ns)
        await eventually(
            lambda: [p.spec.containers[0].image for p in fc.running()] == ["busybox:2"]
        )
