"""Subresources: pods/binding and */scale."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from capstan.api.autoscaling.v1 import autoscaling_pb2

from tests.integration.apiserver.helpers import (
    RPC_TIMEOUT,
    Clients,
    delete_request,
    deployment,
    fails,
    get,
    pod,
    replicaset,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_bind_sets_node_and_condition(api: Clients, ns: str) -> None:
    created = await api.pods.Create(pod(ns, "p"), timeout=RPC_TIMEOUT)
    assert created.spec.node_name == ""
    bound = await api.bind(ns, "p", "node-a")
    assert bound.spec.node_name == "node-a"
    scheduled = [c for c in bound.status.conditions if c.type == "PodScheduled"]
    assert len(scheduled) == 1 and scheduled[0].status == "True"
    assert scheduled[0].last_transition_time.seconds > 0
    assert int(bound.metadata.resource_version) > int(created.metadata.resource_version)
    got = await api.pods.Get(get(ns, "p"), timeout=RPC_TIMEOUT)
    assert got == bound


async def test_bind_twice_is_a_conflict(api: Clients, ns: str) -> None:
    await api.pods.Create(pod(ns, "p"), timeout=RPC_TIMEOUT)
    await api.bind(ns, "p", "node-a")
    err = await fails(api.bind(ns, "p", "node-b"), grpc.StatusCode.ABORTED)
    assert "already assigned" in err.message
    assert '"node-a"' in err.message
    got = await api.pods.Get(get(ns, "p"), timeout=RPC_TIMEOUT)
    assert got.spec.node_name == "node-a"


async def test_bind_terminating_pod(api: Clients, ns: str) -> None:
    p = pod(ns, "p")
    p.metadata.finalizers.append("example.com/hold")
    await api.pods.Create(p, timeout=RPC_TIMEOUT)
    await api.pods.Delete(delete_request(ns, "p"), timeout=RPC_TIMEOUT)
    err = await fails(api.bind(ns, "p", "node-a"), grpc.StatusCode.ABORTED)
    assert "is being deleted" in err.message
    assert (await api.pods.Get(get(ns, "p"), timeout=RPC_TIMEOUT)).spec.node_name == ""


async def test_bind_missing_pod(api: Clients, ns: str) -> None:
    err = await fails(api.bind(ns, "ghost", "node-a"), grpc.StatusCode.NOT_FOUND)
    assert err.message == 'pods "ghost" not found'


def _scale_stubs(api: Clients, kind: str) -> Any:
    return api.replicasets if kind == "ReplicaSet" else api.deployments


@pytest.mark.parametrize("kind", ["ReplicaSet", "Deployment"])
async def test_scale(api: Clients, ns: str, kind: str) -> None:
    stub = _scale_stubs(api, kind)
    obj = replicaset(ns, "web", 2) if kind == "ReplicaSet" else deployment(ns, "web", 2)
    created = await stub.Create(obj, timeout=RPC_TIMEOUT)

    scale = await stub.GetScale(get(ns, "web"), timeout=RPC_TIMEOUT)
    assert (scale.metadata.name, scale.metadata.namespace) == ("web", ns)
    assert scale.metadata.uid == created.metadata.uid
    assert scale.metadata.resource_version == created.metadata.resource_version
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=web"

    scale.spec.replicas = 5
    scaled = await stub.UpdateScale(scale, timeout=RPC_TIMEOUT)
    assert scaled.spec.replicas == 5
    assert int(scaled.metadata.resource_version) > int(scale.metadata.resource_version)
    got = await stub.Get(get(ns, "web"), timeout=RPC_TIMEOUT)
    assert got.spec.replicas == 5
    assert got.metadata.generation == 2
    assert got.metadata.resource_version == scaled.metadata.resource_version

    # The resource version of the first read is stale now.
    scale.spec.replicas = 1
    err = await fails(stub.UpdateScale(scale, timeout=RPC_TIMEOUT), grpc.StatusCode.ABORTED)
    assert "the object has been modified" in err.message

    negative = autoscaling_pb2.Scale()
    negative.metadata.namespace, negative.metadata.name = ns, "web"
    negative.spec.replicas = -1
    err = await fails(
        stub.UpdateScale(negative, timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert [v.field for v in err.violations] == ["spec.replicas"]
    assert "greater than or equal to 0" in err.violations[0].description
    assert (await stub.Get(get(ns, "web"), timeout=RPC_TIMEOUT)).spec.replicas == 5

    # Without a resource version the update is unconditional.
    free = autoscaling_pb2.Scale()
    free.metadata.namespace, free.metadata.name = ns, "web"
    free.spec.replicas = 0
    assert (await stub.UpdateScale(free, timeout=RPC_TIMEOUT)).spec.replicas == 0


async def test_scale_selector_with_expressions(api: Clients, ns: str) -> None:
    rs = replicaset(ns, "expr", 1)
    req = rs.spec.selector.match_expressions.add(key="tier", operator="In")
    req.values.extend(["fe", "be"])
    rs.spec.template.metadata.labels["tier"] = "fe"
    await api.replicasets.Create(rs, timeout=RPC_TIMEOUT)
    scale = await api.replicasets.GetScale(get(ns, "expr"), timeout=RPC_TIMEOUT)
    assert scale.status.selector == "app=expr,tier in (be,fe)"


async def test_scale_missing_object(api: Clients, ns: str) -> None:
    err = await fails(
        api.deployments.GetScale(get(ns, "ghost"), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND
    )
    assert err.message == 'deployments.apps "ghost" not found'
