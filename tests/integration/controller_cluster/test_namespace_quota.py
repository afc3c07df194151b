"""Namespace deletion empties then removes the namespace; quota admission and status;
LimitRange defaults and bounds."""

from __future__ import annotations

import uuid

import grpc
import pytest
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ForbiddenError, NotFoundError
from capstan.client import Client

from tests.integration.controller_cluster.conftest import eventually, pod, running

pytestmark = pytest.mark.integration


async def test_namespace_deletion_removes_content_then_namespace(client: Client) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    n = core_pb2.Namespace()
    n.metadata.name = name
    await client.namespaces.create(n)
    for i in range(3):
        cm = core_pb2.ConfigMap()
        cm.metadata.name, cm.metadata.namespace = f"cm{i}", name
        await client.configmaps.create(cm)
    await client.pods.create(pod("p", name))
    async with running(client, "namespace"):
        deleting = await client.namespaces.delete(name)
        assert deleting.status.phase == "Terminating"

        async def gone() -> bool:
            try:
                await client.namespaces.get(name)
            except NotFoundError:
                return True
            return False

        await eventually(gone)
    left, _ = await client.configmaps.list_all(name)
    assert left == []


def resourced(name: str, ns: str, cpu: str = "100m") -> core_pb2.Pod:
    p = pod(name, ns)
    p.spec.containers[0].resources.requests["cpu"] = cpu
    p.spec.containers[0].resources.limits["cpu"] = cpu
    return p


async def test_quota_admission_and_status(client: Client, ns: str) -> None:
    quota = core_pb2.ResourceQuota()
    quota.metadata.name, quota.metadata.namespace = "q", ns
    quota.spec.hard.update({"pods": "2", "requests.cpu": "1", "count/configmaps": "5"})
    await client.resourcequotas.create(quota)
    async with running(client, "resourcequota"):

        async def counted() -> bool:
            q = await client.resourcequotas.get("q", ns)
            return dict(q.status.used) == {
                "pods": "0", "requests.cpu": "0", "count/configmaps": "0",
            }  # fmt: skip

        await eventually(counted)
        await client.pods.create(resourced("a", ns))
        await client.pods.create(resourced("b", ns, "200m"))
        with pytest.raises(ForbiddenError) as info:
            await client.pods.create(resourced("c", ns))
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2" in str(
            info.value.message
        )
        with pytest.raises(ForbiddenError, match=r"must specify requests\.cpu"):
            await client.pods.create(pod("bare", ns))
        used = (await client.resourcequotas.get("q", ns)).status.used
        assert (used["pods"], used["requests.cpu"]) == ("2", "300m")
        await client.pods.delete("a", ns)

        async def replenished() -> bool:
            q = await client.resourcequotas.get("q", ns)
            return (q.status.used["pods"], q.status.used["requests.cpu"]) == ("1", "200m")

        await eventually(replenished)
        await client.pods.create(resourced("c", ns))


async def test_limit_range_defaults_and_max(client: Client, ns: str) -> None:
    lr = core_pb2.LimitRange()
    lr.metadata.name, lr.metadata.namespace = "limits", ns
    item = lr.spec.limits.add(type="Container")
    item.default.update({"cpu": "500m", "memory": "256Mi"})
    item.default_request.update({"cpu": "100m"})
    item.max.update({"cpu": "1"})
    await client.limitranges.create(lr)

    async def defaulted() -> bool:
        try:
            created = await client.pods.create(pod(f"p{uuid.uuid4().hex[:4]}", ns))
        except ForbiddenError:
            return False
        res = created.spec.containers[0].resources
        return dict(res.limits) == {"cpu": "500m", "memory": "256Mi"} and dict(res.requests) == {
            "cpu": "100m",
            "memory": "256Mi",
        }

    # The LimitRange reaches admission through the apiserver's watch cache.
    await eventually(defaulted)
    with pytest.raises(ForbiddenError, match="maximum cpu usage per Container is 1"):
        await client.pods.create(resourced("huge", ns, "2"))
