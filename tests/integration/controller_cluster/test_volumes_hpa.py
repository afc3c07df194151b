"""PVC binding (static, smallest fit), dynamic hostPath provisioning with the default
StorageClass and reclaim; HPA scaling through the Scale subresource with injected metrics;
`capstan autoscale`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import NotFoundError
from capstan.client import Client, Controller
from capstan.machinery.kinds import by_kind
from controller.hpa import HorizontalPodAutoscalerController, Options
from controller.registry import ControllerContext

from tests.integration.controller_cluster.conftest import cli, eventually, pod, running
from tests.integration.controller_cluster.conftest import set_pod_status as kubelet_status
from tests.support.apiserver import RunningApiserver

pytestmark = pytest.mark.integration


def volume(name: str, size: str, cls: str = "manual") -> core_pb2.PersistentVolume:
    pv = core_pb2.PersistentVolume()
    pv.metadata.name = name
    pv.spec.capacity["storage"] = size
    pv.spec.access_modes.append("ReadWriteOnce")
    pv.spec.storage_class_name = cls
    pv.spec.persistent_volume_reclaim_policy = "Retain"
    pv.spec.host_path.path = f"/tmp/{name}"
    return pv


def claim(name: str, ns: str, size: str, cls: str | None) -> core_pb2.PersistentVolumeClaim:
    c = core_pb2.PersistentVolumeClaim()
    c.metadata.name, c.metadata.namespace = name, ns
    c.spec.access_modes.append("ReadWriteOnce")
    c.spec.resources.requests["storage"] = size
    if cls is not None:
        c.spec.storage_class_name = cls
    return c


async def test_static_binding_and_dynamic_provisioning(
    client: Client, ns: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    for name, size in ((f"big-{tag}", "10Gi"), (f"small-{tag}", "1Gi"), (f"mid-{tag}", "3Gi")):
        await client.persistentvolumes.create(volume(name, size, cls=f"manual-{tag}"))
    await client.persistentvolumeclaims.create(claim("static", ns, "2Gi", f"manual-{tag}"))
    await client.persistentvolumeclaims.create(claim("dynamic", ns, "1Gi", None))
    root = tmp_path / "pv"
    async with running(client, "persistentvolume-binder", extra_args=["--pv-root", str(root)]):

        async def bound(name: str) -> Any:
            c = await client.persistentvolumeclaims.get(name, ns)
            return c if c.status.phase == "Bound" else None

        await eventually(lambda: bound("static"))
        static = await client.persistentvolumeclaims.get("static", ns)
        assert static.spec.volume_name == f"mid-{tag}"
        assert static.status.capacity["storage"] == "3Gi"
        pv = await client.persistentvolumes.get(f"mid-{tag}")
        assert pv.status.phase == "Bound" and pv.spec.claim_ref.name == "static"

        await eventually(lambda: bound("dynamic"))
        dynamic = await client.persistentvolumeclaims.get("dynamic", ns)
        sc = await client.storageclasses.get("standard")
        assert sc.metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
        provisioned = await client.persistentvolumes.get(dynamic.spec.volume_name)
        directory = Path(provisioned.spec.host_path.path)
        assert directory.parent == root and is_dir(directory)

        await client.persistentvolumeclaims.delete("dynamic", ns)
        await client.persistentvolumeclaims.delete("static", ns)

        async def reclaimed() -> bool:
            try:
                await client.persistentvolumes.get(provisioned.metadata.name)
                return False
            except NotFoundError:
                pass
            retained = await client.persistentvolumes.get(f"mid-{tag}")
            return retained.status.phase == "Released" and not is_dir(directory)

        await eventually(reclaimed)


def is_dir(path: Path) -> bool:
    return path.is_dir()


class FakeMetrics:
    def __init__(self) -> None:
        self.millis: dict[str, int] = {}

    async def pod_cpu_millis(self, namespace: str, pods: Iterable[Any]) -> dict[str, int]:
        return {
            p.metadata.name: self.millis[p.metadata.name]
            for p in pods
            if p.metadata.name in self.millis
        }


async def test_hpa_scales_replicaset_with_injected_metrics(
    client: Client, ns: str, apiserver: RunningApiserver, tmp_path: Path
) -> None:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace = "web", ns
    rs.spec.replicas = 2
    rs.spec.selector.match_labels["app"] = "web"
    rs.spec.template.metadata.labels["app"] = "web"
    rs.spec.template.spec.containers.add(name="c", image="busybox")
    await client.replicasets.create(rs)
    for i in range(2):
        p = pod(f"web-{i}", ns, {"app": "web"})
        p.spec.containers[0].resources.requests["cpu"] = "100m"
        await client.pods.create(p)
        await kubelet_status(client, ns, f"web-{i}", ip=f"10.9.0.{i + 1}", ready=True)
    code, _, err = await cli(
        apiserver.address, tmp_path, "autoscale", "rs", "web", "-n", ns,
        "--min", "1", "--max", "5", "--cpu-percent", "50",
    )  # fmt: skip
    assert code == 0, err
    hpa = await client.horizontalpodautoscalers.get("web", ns)
    assert hpa.spec.scale_target_ref.kind == "ReplicaSet" and hpa.spec.max_replicas == 5
    metrics = FakeMetrics()
    metrics.millis = {"web-0": 100, "web-1": 100}  # 100% of request against a 50% target

    def loops(ctx: ControllerContext) -> list[Controller]:
        c = HorizontalPodAutoscalerController(
            ctx.client,
            ctx.informers.for_resource(ctx.client.horizontalpodautoscalers),
            ctx.informers.for_resource(ctx.client.pods),
            metrics,
            ctx.recorder,
            Options(sync_period=0.2, downscale_stabilization=0.0),
        )
        return [c.controller]

    async with running(client, loops=loops):

        async def replicas(n: int) -> bool:
            scale = await client.replicasets.get_scale("web", ns)
            return scale.spec.replicas == n

        await eventually(lambda: replicas(4))
        status = (await client.horizontalpodautoscalers.get("web", ns)).status
        assert status.current_cpu_utilization_percentage == 100
        assert status.desired_replicas == 4
        metrics.millis = {"web-0": 10, "web-1": 10}
        # 10% against 50% over 2 measured pods: ceil(2 * 0.2) = 1 (the minimum).
        await eventually(lambda: replicas(1))
    assert by_kind("HorizontalPodAutoscaler").plural == "horizontalpodautoscalers"
