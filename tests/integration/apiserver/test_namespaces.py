"""Namespace lifecycle: the system namespaces, and no new content in a missing or
terminating namespace."""

from __future__ import annotations

import uuid

import grpc
import pytest
from capstan.api.meta.v1 import meta_pb2

from tests.integration.apiserver.helpers import (
    RPC_TIMEOUT,
    Clients,
    configmap,
    delete_request,
    fails,
    get,
    pod,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_system_namespaces_exist(api: Clients) -> None:
    listed = await api.namespaces.List(meta_pb2.ListOptions(), timeout=RPC_TIMEOUT)
    names = {n.metadata.name for n in listed.items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        ns = await api.namespaces.Get(get("", name), timeout=RPC_TIMEOUT)
        assert ns.status.phase == "Active"
        assert not ns.metadata.HasField("deletion_timestamp")


async def test_create_in_missing_namespace(api: Clients) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    err = await fails(
        api.configmaps.Create(configmap(missing, "x"), timeout=RPC_TIMEOUT),
        grpc.StatusCode.NOT_FOUND,
    )
    assert err.message == f'namespaces "{missing}" not found'
    assert err.metadata == {"resource": "namespaces", "name": missing}


async def test_delete_in_missing_namespace(api: Clients) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    err = await fails(
        api.pods.Delete(delete_request(missing, "x"), timeout=RPC_TIMEOUT),
        grpc.StatusCode.NOT_FOUND,
    )
    assert err.message == 'pods "x" not found'


async def test_deleted_namespace_terminates_and_refuses_content(api: Clients, ns: str) -> None:
    await api.configmaps.Create(configmap(ns, "before"), timeout=RPC_TIMEOUT)
    deleted = await api.namespaces.Delete(delete_request("", ns), timeout=RPC_TIMEOUT)
    assert deleted.metadata.HasField("deletion_timestamp")
    assert deleted.status.phase == "Terminating"
    got = await api.namespaces.Get(get("", ns), timeout=RPC_TIMEOUT)
    assert got.metadata.HasField("deletion_timestamp")
    assert got.status.phase == "Terminating"
    # Right after the delete returned, on every kind.
    for call in (
        api.configmaps.Create(configmap(ns, "after"), timeout=RPC_TIMEOUT),
        api.pods.Create(pod(ns, "after"), timeout=RPC_TIMEOUT),
    ):
        err = await fails(call, grpc.StatusCode.FAILED_PRECONDITION)
        assert "because it is being terminated" in err.message
        assert ns in err.message
        assert err.reason == "Forbidden"
    # What is there stays readable, updatable and deletable.
    before = await api.configmaps.Get(get(ns, "before"), timeout=RPC_TIMEOUT)
    before.data["k"] = "v"
    await api.configmaps.Update(before, timeout=RPC_TIMEOUT)
    await api.configmaps.Delete(delete_request(ns, "before"), timeout=RPC_TIMEOUT)
