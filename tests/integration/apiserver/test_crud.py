"""Create, Get, Update, UpdateStatus and Delete: Kubernetes' object semantics over gRPC."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from capstan.api.core.v1 import core_pb2
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


async def test_create_sets_server_fields(api: Clients, ns: str) -> None:
    before = int(time.time())
    created = await api.pods.Create(pod(ns, "web"), timeout=RPC_TIMEOUT)
    m = created.metadata
    assert (m.name, m.namespace) == ("web", ns)
    assert len(m.uid) == 36 and m.uid.count("-") == 4
    assert m.resource_version.isdigit() and int(m.resource_version) > 0
    assert m.generation == 1
    assert before - 1 <= m.creation_timestamp.seconds <= int(time.time()) + 1
    assert not m.HasField("deletion_timestamp")
    fetched = await api.pods.Get(get(ns, "web"), timeout=RPC_TIMEOUT)
    assert fetched == created


async def test_client_cannot_set_server_fields(api: Clients, ns: str) -> None:
    cm = configmap(ns, "forged")
    cm.metadata.uid = "forged-uid"
    cm.metadata.resource_version = "12345678"
    cm.metadata.generation = 7
    cm.metadata.creation_timestamp.seconds = 1
    created = await api.configmaps.Create(cm, timeout=RPC_TIMEOUT)
    assert created.metadata.uid != "forged-uid"
    assert created.metadata.generation == 1
    assert created.metadata.creation_timestamp.seconds > 1
    assert created.metadata.resource_version != "12345678"

    p = pod(ns, "forged-status")
    p.status.phase = "Running"
    p.status.pod_ip = "10.244.0.9"
    made = await api.pods.Create(p, timeout=RPC_TIMEOUT)
    assert made.status.phase == "Pending"
    assert made.status.pod_ip == ""


@pytest.mark.parametrize("rv", ["abc", "-3", " 7"])
async def test_bad_resource_version(api: Clients, ns: str, rv: str) -> None:
    opts = meta_pb2.ListOptions(namespace=ns, resource_version=rv)
    err = await fails(
        api.configmaps.List(opts, timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "invalid resourceVersion" in err.message
    call = api.configmaps.Watch(opts, timeout=RPC_TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    cm = configmap(ns, "cm")
    await api.configmaps.Create(cm, timeout=RPC_TIMEOUT)
    cm.metadata.resource_version = rv
    await fails(api.configmaps.Update(cm, timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT)


async def test_generate_name(api: Clients, ns: str) -> None:
    cm = configmap(ns, "")
    cm.metadata.generate_name = "gen-"
    first = await api.configmaps.Create(cm, timeout=RPC_TIMEOUT)
    second = await api.configmaps.Create(cm, timeout=RPC_TIMEOUT)
    for made in (first, second):
        assert made.metadata.name.startswith("gen-")
        assert len(made.metadata.name) == len("gen-") + 5
        assert made.metadata.generate_name == "gen-"
    assert first.metadata.name != second.metadata.name
    got = await api.configmaps.Get(get(ns, first.metadata.name), timeout=RPC_TIMEOUT)
    assert got.metadata.uid == first.metadata.uid


async def test_already_exists(api: Clients, ns: str) -> None:
    await api.configmaps.Create(configmap(ns, "dup"), timeout=RPC_TIMEOUT)
    err = await fails(
        api.configmaps.Create(configmap(ns, "dup"), timeout=RPC_TIMEOUT),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert err.message == 'configmaps "dup" already exists'
    assert err.metadata == {"resource": "configmaps", "name": "dup"}


async def test_not_found_on_get_update_delete(api: Clients, ns: str) -> None:
    for call in (
        api.configmaps.Get(get(ns, "ghost"), timeout=RPC_TIMEOUT),
        api.configmaps.Update(configmap(ns, "ghost"), timeout=RPC_TIMEOUT),
        api.configmaps.Delete(delete_request(ns, "ghost"), timeout=RPC_TIMEOUT),
    ):
        err = await fails(call, grpc.StatusCode.NOT_FOUND)
        assert err.message == 'configmaps "ghost" not found'
        assert err.reason == "NotFound"


async def test_stale_resource_version_is_a_conflict(api: Clients, ns: str) -> None:
    v1 = await api.configmaps.Create(configmap(ns, "cas", {"k": "1"}), timeout=RPC_TIMEOUT)
    v2_req = configmap(ns, "cas", {"k": "2"})
    v2_req.metadata.resource_version = v1.metadata.resource_version
    v2 = await api.configmaps.Update(v2_req, timeout=RPC_TIMEOUT)
    assert int(v2.metadata.resource_version) > int(v1.metadata.resource_version)

    stale = configmap(ns, "cas", {"k": "3"})
    stale.metadata.resource_version = v1.metadata.resource_version
    err = await fails(api.configmaps.Update(stale, timeout=RPC_TIMEOUT), grpc.StatusCode.ABORTED)
    assert "the object has been modified" in err.message
    assert 'configmaps "cas"' in err.message
    got = await api.configmaps.Get(get(ns, "cas"), timeout=RPC_TIMEOUT)
    assert dict(got.data) == {"k": "2"}


async def test_unconditional_update(api: Clients, ns: str) -> None:
    await api.configmaps.Create(configmap(ns, "free", {"k": "1"}), timeout=RPC_TIMEOUT)
    updated = await api.configmaps.Update(configmap(ns, "free", {"k": "2"}), timeout=RPC_TIMEOUT)
    assert dict(updated.data) == {"k": "2"}
    got = await api.configmaps.Get(get(ns, "free"), timeout=RPC_TIMEOUT)
    assert got.metadata.resource_version == updated.metadata.resource_version


async def test_noop_update_keeps_resource_version(api: Clients, ns: str) -> None:
    created = await api.pods.Create(pod(ns, "same", labels={"a": "b"}), timeout=RPC_TIMEOUT)
    again = await api.pods.Update(created, timeout=RPC_TIMEOUT)
    assert again.metadata.resource_version == created.metadata.resource_version
    assert again == created
    unconditional = core_pb2.Pod()
    unconditional.CopyFrom(created)
    unconditional.metadata.resource_version = ""
    again = await api.pods.Update(unconditional, timeout=RPC_TIMEOUT)
    assert again.metadata.resource_version == created.metadata.resource_version


async def test_generation_bumps_on_spec_change_only(api: Clients, ns: str) -> None:
    created = await api.pods.Create(pod(ns, "gen"), timeout=RPC_TIMEOUT)
    relabelled = core_pb2.Pod()
    relabelled.CopyFrom(created)
    relabelled.metadata.labels["tier"] = "web"
    relabelled.metadata.annotations["note"] = "x"
    after_labels = await api.pods.Update(relabelled, timeout=RPC_TIMEOUT)
    assert after_labels.metadata.generation == 1
    assert int(after_labels.metadata.resource_version) > int(created.metadata.resource_version)

    respec = core_pb2.Pod()
    respec.CopyFrom(after_labels)
    respec.spec.active_deadline_seconds = 600
    after_spec = await api.pods.Update(respec, timeout=RPC_TIMEOUT)
    assert after_spec.metadata.generation == 2
    assert after_spec.spec.active_deadline_seconds == 600


async def test_update_ignores_status_and_update_status_ignores_spec(api: Clients, ns: str) -> None:
    created = await api.pods.Create(pod(ns, "split"), timeout=RPC_TIMEOUT)
    assert created.status.phase == "Pending"

    via_update = core_pb2.Pod()
    via_update.CopyFrom(created)
    via_update.status.phase = "Running"
    via_update.status.message = "from update"
    after = await api.pods.Update(via_update, timeout=RPC_TIMEOUT)
    assert after.status.phase == "Pending"
    assert after.status.message == ""

    via_status = core_pb2.Pod()
    via_status.CopyFrom(after)
    via_status.status.phase = "Running"
    via_status.spec.active_deadline_seconds = 99
    via_status.metadata.labels["sneaky"] = "yes"
    status_updated = await api.pods.UpdateStatus(via_status, timeout=RPC_TIMEOUT)
    assert status_updated.status.phase == "Running"
    assert not status_updated.spec.HasField("active_deadline_seconds")
    assert "sneaky" not in status_updated.metadata.labels
    assert status_updated.metadata.generation == 1
    got = await api.pods.Get(get(ns, "split"), timeout=RPC_TIMEOUT)
    assert got == status_updated


async def test_update_status_with_stale_resource_version(api: Clients, ns: str) -> None:
    created = await api.pods.Create(pod(ns, "st"), timeout=RPC_TIMEOUT)
    relabel = core_pb2.Pod()
    relabel.CopyFrom(created)
    relabel.metadata.labels["x"] = "y"
    await api.pods.Update(relabel, timeout=RPC_TIMEOUT)
    created.status.phase = "Running"
    await fails(api.pods.UpdateStatus(created, timeout=RPC_TIMEOUT), grpc.StatusCode.ABORTED)


async def test_cluster_scoped_kinds_ignore_namespace(api: Clients, ns: str) -> None:
    node = core_pb2.Node()
    node.metadata.name = f"node-{ns}"
    node.metadata.namespace = ns
    created = await api.nodes.Create(node, timeout=RPC_TIMEOUT)
    assert created.metadata.namespace == ""
    assert (await api.nodes.Get(get("", node.metadata.name), timeout=RPC_TIMEOUT)).metadata.uid
    # The namespace in the request does not address another copy.
    got = await api.nodes.Get(get("elsewhere", node.metadata.name), timeout=RPC_TIMEOUT)
    assert got.metadata.uid == created.metadata.uid

    pv = core_pb2.PersistentVolume()
    pv.metadata.name = f"pv-{ns}"
    pv.metadata.namespace = ns
    pv.spec.capacity["storage"] = "1Gi"
    pv.spec.access_modes.append("ReadWriteOnce")
    pv.spec.host_path.path = "/tmp/pv"
    created_pv = await api.pvs.Create(pv, timeout=RPC_TIMEOUT)
    assert created_pv.metadata.namespace == ""

    child = core_pb2.Namespace()
    child.metadata.name = f"{ns}-child"
    child.metadata.namespace = ns
    created_ns = await api.namespaces.Create(child, timeout=RPC_TIMEOUT)
    assert created_ns.metadata.namespace == ""


async def test_namespaced_kinds_default_to_default(api: Clients, ns: str) -> None:
    name = f"in-default-{ns}"
    created = await api.configmaps.Create(configmap("", name), timeout=RPC_TIMEOUT)
    assert created.metadata.namespace == "default"
    got = await api.configmaps.Get(get("default", name), timeout=RPC_TIMEOUT)
    assert got.metadata.uid == created.metadata.uid
    got = await api.configmaps.Get(get("", name), timeout=RPC_TIMEOUT)
    assert got.metadata.uid == created.metadata.uid
    await api.configmaps.Delete(delete_request("", name), timeout=RPC_TIMEOUT)
    await fails(
        api.configmaps.Get(get("default", name), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND
    )


async def test_name_required(api: Clients, ns: str) -> None:
    err = await fails(
        api.configmaps.Get(get(ns, ""), timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "name is required" in err.message


async def test_concurrent_conditional_updates_have_one_winner(api: Clients, ns: str) -> None:
    created = await api.configmaps.Create(configmap(ns, "race", {"v": "0"}), timeout=RPC_TIMEOUT)

    async def attempt(i: int) -> bool:
        cm = configmap(ns, "race", {"v": str(i + 1)})
        cm.metadata.resource_version = created.metadata.resource_version
        try:
            await api.configmaps.Update(cm, timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.ABORTED, e.details()
            return False
        return True

    won = await asyncio.gather(*(attempt(i) for i in range(10)))
    assert sum(won) == 1
    final = await api.configmaps.Get(get(ns, "race"), timeout=RPC_TIMEOUT)
    assert final.data["v"] == str(won.index(True) + 1)


async def test_concurrent_unconditional_updates_all_apply(api: Clients, ns: str) -> None:
    await api.configmaps.Create(configmap(ns, "many"), timeout=RPC_TIMEOUT)
    results = await asyncio.gather(
        *(
            api.configmaps.Update(configmap(ns, "many", {"v": str(i)}), timeout=RPC_TIMEOUT)
            for i in range(10)
        )
    )
    versions = [int(r.metadata.resource_version) for r in results]
    assert len(set(versions)) == 10
    final = await api.configmaps.Get(get(ns, "many"), timeout=RPC_TIMEOUT)
    last = results[versions.index(max(versions))]
    assert final.data == last.data
