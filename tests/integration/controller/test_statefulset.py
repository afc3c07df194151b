"""StatefulSet ordering, identity, claims and partitioned updates on a real apiserver."""

from __future__ import annotations

from typing import Any

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.client import Client
from controller import podutil
from controller.statefulset import ordinal_of

from tests.integration.controller.conftest import cluster, controllers, eventually, update
from tests.integration.controller.fakecluster import Outcome
from tests.integration.controller.workloads import statefulset

pytestmark = pytest.mark.integration


async def test_ordered_ready_identity_claims_and_scale_down(client: Client, ns: str) -> None:
    async with (
        cluster(client, ns, lambda p: Outcome(ready_after=0.2)) as fc,
        controllers(client, "statefulset"),
    ):
        await fc.add_node(f"{ns}-n1")
        violations: list[str] = []
        deleted_order: list[int] = []

        def on_add(pod: core_pb2.Pod) -> None:
            n = ordinal_of("db", pod)
            if n:
                prev = fc.pods.get(f"db-{n - 1}", ns)
                if prev is None or not podutil.is_ready(prev):
                    violations.append(pod.metadata.name)

        def on_delete(pod: core_pb2.Pod) -> None:
            n = ordinal_of("db", pod)
            if n is not None:
                deleted_order.append(n)

        fc.pods.add_event_handler(on_add, None, on_delete)
        sts = statefulset(ns, "db", 3)
        claim = sts.spec.volume_claim_templates.add()
        claim.metadata.name = "data"
        claim.spec.access_modes.append("ReadWriteOnce")
        claim.spec.resources.requests["storage"] = "1Gi"
        await client.statefulsets.create(sts)

        def all_ready(n: int) -> bool:
            pods = fc.running()
            return len(pods) == n and all(podutil.is_ready(p) for p in pods)

        await eventually(lambda: all_ready(3))
        assert not violations, violations
        pod = fc.pods.get("db-1", ns)
        assert pod is not None
        assert pod.spec.hostname == "db-1" and pod.spec.subdomain == "db"
        assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == "db-1"
        vols = {v.name: v.persistent_volume_claim.claim_name for v in pod.spec.volumes}
        assert vols["data"] == "data-db-1"
        claims = {c.metadata.name for c in (await client.persistentvolumeclaims.list(ns)).items}
        assert claims == {"data-db-0", "data-db-1", "data-db-2"}

        def change(cur: Any) -> None:
            cur.spec.replicas = 1

        await update(client.statefulsets, "db", ns, change)
        await eventually(lambda: all_ready(1))
        # A pod stops counting as active when its deletion starts; its DELETED event comes
        # once the (fake) kubelet confirms, so wait for both before checking the order.
        await eventually(lambda: len(deleted_order) >= 2)
        assert deleted_order == [2, 1]
        # Claims outlive their pods.
        claims = {c.metadata.name for c in (await client.persistentvolumeclaims.list(ns)).items}
        assert claims == {"data-db-0", "data-db-1", "data-db-2"}

        async def status_ok() -> bool:
            s = (await client.statefulsets.get("db", ns)).status
            return s.replicas == 1 and s.ready_replicas == 1

        await eventually(status_ok)


async def test_partitioned_rolling_update(client: Client, ns: str) -> None:
    async with cluster(client, ns) as fc, controllers(client, "statefulset"):
        await fc.add_node(f"{ns}-n1")
        sts = statefulset(ns, "web", 4, policy="Parallel")
        sts.spec.update_strategy.type = "RollingUpdate"
        sts.spec.update_strategy.rolling_update.partition = 2
        await client.statefulsets.create(sts)
        await eventually(lambda: sum(podutil.is_ready(p) for p in fc.running()) == 4)

        def change(cur: Any) -> None:
            cur.spec.template.spec.containers[0].image = "busybox:2"

        await update(client.statefulsets, "web", ns, change)

        def images() -> dict[str, str]:
            return {p.metadata.name: p.spec.containers[0].image for p in fc.running()}

        want = {
            "web-0": "busybox:1",
            "web-1": "busybox:1",
            "web-2": "busybox:2",
            "web-3": "busybox:2",
        }
        await eventually(lambda: images() == want)

        async def status_ok() -> bool:
            s = (await client.statefulsets.get("web", ns)).status
            return (
                s.updated_replicas == 2
                and s.current_replicas == 2
                and s.current_revision != s.update_revision
            )

        await eventually(status_ok)

        def change(cur: Any) -> None:
            cur.spec.update_strategy.rolling_update.partition = 0

        await update(client.statefulsets, "web", ns, change)
        await eventually(lambda: set(images().values()) == {"busybox:2"} and len(images()) == 4)

        async def converged() -> bool:
            s = (await client.statefulsets.get("web", ns)).status
            return s.current_revision == s.update_revision and s.updated_replicas == 4

        await eventually(converged)
        revisions = (await client.controllerrevisions.list(ns)).items
        assert sorted(r.revision for r in revisions) == [1, 2]
