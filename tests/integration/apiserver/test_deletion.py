"""Graceful deletion, finalizers, propagation policies and delete preconditions."""

from __future__ import annotations

import time

import grpc
import pytest
from capstan.api.core.v1 import core_pb2

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


async def _bound_pod(api: Clients, ns: str, name: str, grace: int | None = None) -> core_pb2.Pod:
    await api.pods.Create(pod(ns, name, grace=grace), timeout=RPC_TIMEOUT)
    return await api.bind(ns, name, "node-a")


@pytest.mark.parametrize(
    ("pod_grace", "requested", "expected"),
    [(None, None, 30), (5, None, 5), (5, 7, 7)],
    ids=["default", "pod-spec", "request"],
)
async def test_bound_pod_deletion_is_graceful(
    api: Clients, ns: str, pod_grace: int | None, requested: int | None, expected: int
) -> None:
    await _bound_pod(api, ns, "p", pod_grace)
    before = int(time.time())
    deleted = await api.pods.Delete(delete_request(ns, "p", grace=requested), timeout=RPC_TIMEOUT)
    m = deleted.metadata
    assert m.HasField("deletion_timestamp")
    assert m.deletion_grace_period_seconds == expected
    assert before + expected - 1 <= m.deletion_timestamp.seconds <= int(time.time()) + expected + 1
    got = await api.pods.Get(get(ns, "p"), timeout=RPC_TIMEOUT)
    assert got.metadata.deletion_grace_period_seconds == expected
    assert got.metadata.resource_version == m.resource_version

    # Deleting again without a shorter grace changes nothing.
    again = await api.pods.Delete(delete_request(ns, "p"), timeout=RPC_TIMEOUT)
    assert again.metadata.resource_version == m.resource_version

    # An Update cannot end the deletion.
    got.metadata.ClearField("deletion_timestamp")
    got.metadata.ClearField("deletion_grace_period_seconds")
    got.metadata.labels["touched"] = "yes"
    updated = await api.pods.Update(got, timeout=RPC_TIMEOUT)
    assert updated.metadata.HasField("deletion_timestamp")
    assert updated.metadata.deletion_grace_period_seconds == expected

    # Grace 0 (what the kubelet sends once the containers stopped) removes it.
    await api.pods.Delete(delete_request(ns, "p", grace=0), timeout=RPC_TIMEOUT)
    await fails(api.pods.Get(get(ns, "p"), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND)


async def test_shorter_grace_shortens_deletion(api: Clients, ns: str) -> None:
    await _bound_pod(api, ns, "p")
    first = await api.pods.Delete(delete_request(ns, "p"), timeout=RPC_TIMEOUT)
    assert first.metadata.deletion_grace_period_seconds == 30
    second = await api.pods.Delete(delete_request(ns, "p", grace=3), timeout=RPC_TIMEOUT)
    assert second.metadata.deletion_grace_period_seconds == 3
    assert second.metadata.deletion_timestamp.seconds < first.metadata.deletion_timestamp.seconds


async def test_unscheduled_pod_is_deleted_at_once(api: Clients, ns: str) -> None:
    created = await api.pods.Create(pod(ns, "p"), timeout=RPC_TIMEOUT)
    deleted = await api.pods.Delete(delete_request(ns, "p"), timeout=RPC_TIMEOUT)
    assert deleted.metadata.uid == created.metadata.uid
    assert int(deleted.metadata.resource_version) > int(created.metadata.resource_version)
    await fails(api.pods.Get(get(ns, "p"), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND)


async def test_finalizers_hold_deletion_until_removed(api: Clients, ns: str) -> None:
    cm = configmap(ns, "held", {"k": "v"})
    cm.metadata.finalizers.extend(["example.com/a", "example.com/b"])
    await api.configmaps.Create(cm, timeout=RPC_TIMEOUT)
    deleting = await api.configmaps.Delete(delete_request(ns, "held"), timeout=RPC_TIMEOUT)
    assert deleting.metadata.HasField("deletion_timestamp")
    assert deleting.metadata.deletion_grace_period_seconds == 0
    assert list(deleting.metadata.finalizers) == ["example.com/a", "example.com/b"]

    del deleting.metadata.finalizers[0]
    one_left = await api.configmaps.Update(deleting, timeout=RPC_TIMEOUT)
    assert list(one_left.metadata.finalizers) == ["example.com/b"]
    assert one_left.metadata.HasField("deletion_timestamp")
    assert (await api.configmaps.Get(get(ns, "held"), timeout=RPC_TIMEOUT)).metadata.finalizers

    del one_left.metadata.finalizers[:]
    await api.configmaps.Update(one_left, timeout=RPC_TIMEOUT)
    await fails(api.configmaps.Get(get(ns, "held"), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND)


async def test_terminating_object_refuses_new_finalizers(api: Clients, ns: str) -> None:
    cm = configmap(ns, "fin")
    cm.metadata.finalizers.append("example.com/a")
    await api.configmaps.Create(cm, timeout=RPC_TIMEOUT)
    deleting = await api.configmaps.Delete(delete_request(ns, "fin"), timeout=RPC_TIMEOUT)
    deleting.metadata.finalizers.append("example.com/late")
    err = await fails(
        api.configmaps.Update(deleting, timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "metadata.finalizers" in [v.field for v in err.violations]


@pytest.mark.parametrize(
    ("policy", "finalizer"), [("Orphan", "orphan"), ("Foreground", "foregroundDeletion")]
)
async def test_propagation_policy_adds_finalizer(
    api: Clients, ns: str, policy: str, finalizer: str
) -> None:
    await api.configmaps.Create(configmap(ns, "owner"), timeout=RPC_TIMEOUT)
    deleting = await api.configmaps.Delete(
        delete_request(ns, "owner", policy=policy), timeout=RPC_TIMEOUT
    )
    assert list(deleting.metadata.finalizers) == [finalizer]
    assert deleting.metadata.HasField("deletion_timestamp")
    got = await api.configmaps.Get(get(ns, "owner"), timeout=RPC_TIMEOUT)
    assert list(got.metadata.finalizers) == [finalizer]


async def test_background_policy_deletes_at_once(api: Clients, ns: str) -> None:
    await api.configmaps.Create(configmap(ns, "bg"), timeout=RPC_TIMEOUT)
    await api.configmaps.Delete(delete_request(ns, "bg", policy="Background"), timeout=RPC_TIMEOUT)
    await fails(api.configmaps.Get(get(ns, "bg"), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND)


async def test_invalid_propagation_policy(api: Clients, ns: str) -> None:
    await api.configmaps.Create(configmap(ns, "cm"), timeout=RPC_TIMEOUT)
    err = await fails(
        api.configmaps.Delete(delete_request(ns, "cm", policy="Sideways"), timeout=RPC_TIMEOUT),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert 'Unsupported value: "Sideways"' in err.message
    assert '"Orphan", "Background", "Foreground"' in err.message
    await api.configmaps.Get(get(ns, "cm"), timeout=RPC_TIMEOUT)


async def test_negative_grace_period(api: Clients, ns: str) -> None:
    await _bound_pod(api, ns, "p")
    err = await fails(
        api.pods.Delete(delete_request(ns, "p", grace=-1), timeout=RPC_TIMEOUT),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "gracePeriodSeconds" in err.message


async def test_delete_preconditions(api: Clients, ns: str) -> None:
    created = await api.configmaps.Create(configmap(ns, "pre"), timeout=RPC_TIMEOUT)
    err = await fails(
        api.configmaps.Delete(delete_request(ns, "pre", uid="other-uid"), timeout=RPC_TIMEOUT),
        grpc.StatusCode.ABORTED,
    )
    assert "Precondition failed: UID in precondition: other-uid" in err.message
    assert created.metadata.uid in err.message

    stale = str(int(created.metadata.resource_version) - 1)
    err = await fails(
        api.configmaps.Delete(
            delete_request(ns, "pre", resource_version=stale), timeout=RPC_TIMEOUT
        ),
        grpc.StatusCode.ABORTED,
    )
    assert f"ResourceVersion in precondition: {stale}" in err.message
    await api.configmaps.Get(get(ns, "pre"), timeout=RPC_TIMEOUT)

    await api.configmaps.Delete(
        delete_request(
            ns, "pre", uid=created.metadata.uid, resource_version=created.metadata.resource_version
        ),
        timeout=RPC_TIMEOUT,
    )
    await fails(api.configmaps.Get(get(ns, "pre"), timeout=RPC_TIMEOUT), grpc.StatusCode.NOT_FOUND)
